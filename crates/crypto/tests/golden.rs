//! Frozen formats: a key file written by version 1, a sealed change and an office record
//! written by version 2 and a sealed chunk written by version 1 must open forever. If this
//! fails after a refactor, the refactor broke existing vaults or the wire format. The key file
//! format did not change in version 2; `v2.sealed` was written by `bless`, `v2-record.sealed`
//! by `bless_record` and `v1.chunk` by `bless_chunk` (run with `--ignored`) with the key
//! file's keys and the team key below.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use cairn_crypto::{
    unlock_keys, BlobId, CryptoError, DeviceKeys, KeyShare, Keyring, SealedChange, SealedChunk,
    SealedKind, SecretString, TeamKey,
};

const KEYFILE: &[u8] = include_bytes!("golden/v1.keyfile");
const SEALED: &[u8] = include_bytes!("golden/v2.sealed");
/// An office record (kind 2) of version 2, written by `bless_record`.
const RECORD: &[u8] = include_bytes!("golden/v2-record.sealed");
const CHUNK: &[u8] = include_bytes!("golden/v1.chunk");
/// The golden chunk: the last of three chunks of a blob of 2 * 16 KiB + 5 bytes.
const CHUNK_SIZE_OF_BLOB: u64 = 2 * 16 * 1024 + 5;
const CHUNK_PLAINTEXT: &[u8] = b"chunk";
/// Team T03's key at epoch 2.
const TEAM_KEY: &str = "5c0ffee15bad5eed0ddba11c0ffeec0ded15ea5edfacade0beefcafe12345678";
const PLAINTEXT: &[u8] = b"golden plaintext";
/// Shares 1 and 3 of a 2-of-3 split of the key file's keys, written by `bless_shares`.
const SHARES: [(&str, &[u8]); 2] = [
    (
        "v1-share-1-of-3.txt",
        include_bytes!("golden/v1-share-1-of-3.txt"),
    ),
    (
        "v1-share-3-of-3.txt",
        include_bytes!("golden/v1-share-3-of-3.txt"),
    ),
];

fn keys() -> DeviceKeys {
    unlock_keys(KEYFILE, &SecretString::from("golden passphrase".to_owned())).unwrap()
}

fn team_key(team: &str, epoch: u32) -> TeamKey {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(TEAM_KEY, &mut bytes).unwrap();
    TeamKey::from_bytes(team, epoch, bytes)
}

fn ring(key: TeamKey) -> Keyring {
    let mut ring = Keyring::default();
    ring.insert(key);
    ring
}

#[test]
fn v1_key_file_and_v2_sealed_change_still_open() {
    let keys = keys();
    let sealed = SealedChange::from_bytes(SEALED).unwrap();
    assert_eq!(&SEALED[..4], b"CSC2");
    assert_eq!(sealed.kind, SealedKind::CaseChange);
    assert_eq!(sealed.case_id, [0xab; 16]);
    assert_eq!(sealed.seq, 7);
    assert_eq!(sealed.author, keys.id());
    assert_eq!((sealed.team.as_str(), sealed.epoch), ("T03", 2));
    assert_eq!(
        sealed.to_bytes(),
        SEALED,
        "re-encoding must be byte-identical"
    );
    sealed.verify().unwrap();
    assert_eq!(sealed.open(&ring(team_key("T03", 2))).unwrap(), PLAINTEXT);
    // The same key bytes under another team or epoch open nothing.
    for other in [team_key("T03", 1), team_key("T04", 2)] {
        assert!(matches!(
            sealed.open(&ring(other)),
            Err(CryptoError::NotARecipient { .. })
        ));
    }
    // A version 1 change (magic `CSC1`) is refused as malformed, not misread.
    let mut v1 = SEALED.to_vec();
    v1[3] = b'1';
    assert!(matches!(
        SealedChange::from_bytes(&v1),
        Err(CryptoError::Malformed(_))
    ));
}

/// Kind 2, an office record: team `office`, its own UUID in the id field. A kind no version
/// wrote (3) is refused as malformed, not read as either.
#[test]
fn v2_office_record_still_opens_and_an_unknown_kind_is_refused() {
    let keys = keys();
    let record = SealedChange::from_bytes(RECORD).unwrap();
    assert_eq!(RECORD[4], 2);
    assert_eq!(record.kind, SealedKind::OfficeRecord);
    assert_eq!(record.case_id, [0xcd; 16]);
    assert_eq!(record.seq, 8);
    assert_eq!(record.author, keys.id());
    assert_eq!((record.team.as_str(), record.epoch), ("office", 1));
    assert_eq!(record.to_bytes(), RECORD);
    record.verify().unwrap();
    assert_eq!(
        record.open(&ring(team_key("office", 1))).unwrap(),
        PLAINTEXT
    );
    // The kind is signed: a case change relabelled as a record (or back) does not verify.
    let mut relabelled = SEALED.to_vec();
    relabelled[4] = 2;
    let relabelled = SealedChange::from_bytes(&relabelled).unwrap();
    assert!(matches!(
        relabelled.verify(),
        Err(CryptoError::BadSignature { .. })
    ));
    let mut as_checkpoint = RECORD.to_vec();
    as_checkpoint[4] = 3;
    let as_checkpoint = SealedChange::from_bytes(&as_checkpoint).unwrap();
    assert!(matches!(
        as_checkpoint.verify(),
        Err(CryptoError::BadSignature { .. })
    ));
    let mut unknown = RECORD.to_vec();
    unknown[4] = 4;
    assert!(matches!(
        SealedChange::from_bytes(&unknown),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn v1_sealed_chunk_still_opens() {
    let keys = keys();
    let chunk = SealedChunk::from_bytes(CHUNK).unwrap();
    assert_eq!(&CHUNK[..4], b"CBK1");
    assert_eq!(chunk.blob, BlobId([0xb1; 16]));
    assert_eq!(chunk.case_id, [0xab; 16]);
    assert_eq!(chunk.author, keys.id());
    assert_eq!(
        (chunk.index, chunk.count, chunk.size),
        (2, 3, CHUNK_SIZE_OF_BLOB)
    );
    assert_eq!((chunk.team.as_str(), chunk.epoch), ("T03", 2));
    assert_eq!(
        chunk.to_bytes(),
        CHUNK,
        "re-encoding must be byte-identical"
    );
    // 92 header bytes (with "T03"), 4 length bytes, the seal, the signature.
    assert_eq!(CHUNK.len(), 92 + 4 + 112 + CHUNK_PLAINTEXT.len() + 64);
    chunk.verify().unwrap();
    assert_eq!(
        chunk.open(&ring(team_key("T03", 2))).unwrap(),
        CHUNK_PLAINTEXT
    );
    for other in [team_key("T03", 1), team_key("T04", 2)] {
        assert!(matches!(
            chunk.open(&ring(other)),
            Err(CryptoError::ChunkUnreadable { .. })
        ));
    }
    // A sealed change is not a chunk, nor the other way round.
    assert!(SealedChunk::from_bytes(SEALED).is_err());
    assert!(SealedChange::from_bytes(CHUNK).is_err());
}

/// Writes `v1.chunk`: `cargo test -p cairn-crypto --test golden -- --ignored bless_chunk`.
/// Sealing is randomized: run it only to create a new format version.
#[test]
#[ignore = "writes the golden file; run only to create a new format version"]
fn bless_chunk() {
    let chunk = SealedChunk::seal(
        &keys(),
        &team_key("T03", 2),
        [0xab; 16],
        BlobId([0xb1; 16]),
        2,
        3,
        CHUNK_SIZE_OF_BLOB,
        CHUNK_PLAINTEXT,
    )
    .unwrap();
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1.chunk"),
        chunk.to_bytes(),
    )
    .unwrap();
}

/// Writes `v2-record.sealed`:
/// `cargo test -p cairn-crypto --test golden -- --ignored --exact bless_record`.
#[test]
#[ignore = "writes the golden file; run only to create a new format version"]
fn bless_record() {
    let sealed = SealedChange::seal(
        &keys(),
        &team_key("office", 1),
        SealedKind::OfficeRecord,
        [0xcd; 16],
        8,
        PLAINTEXT,
    )
    .unwrap();
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v2-record.sealed"),
        sealed.to_bytes(),
    )
    .unwrap();
}

/// Writes `v2.sealed`: `cargo test -p cairn-crypto --test golden -- --ignored --exact bless`.
/// Sealing is randomized: run it only to create a new format version.
#[test]
#[ignore = "writes the golden file; run only to create a new format version"]
fn bless() {
    let sealed = SealedChange::seal(
        &keys(),
        &team_key("T03", 2),
        SealedKind::CaseChange,
        [0xab; 16],
        7,
        PLAINTEXT,
    )
    .unwrap();
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v2.sealed"),
        sealed.to_bytes(),
    )
    .unwrap();
}

#[test]
fn v1_office_key_shares_still_rebuild_the_key() {
    let keys = keys();
    let mut shares = Vec::new();
    for (name, bytes) in SHARES {
        let share = KeyShare::from_bytes(bytes).unwrap();
        assert_eq!(
            share.to_text().as_bytes(),
            bytes,
            "{name}: re-encoding must be byte-identical"
        );
        assert_eq!(share.office(), keys.id().short());
        assert_eq!((share.threshold(), share.count()), (2, 3));
        shares.push((name.to_owned(), share));
    }
    let back = cairn_crypto::combine(&shares).unwrap();
    assert_eq!(back.id(), keys.id());
    assert_eq!(
        back.public().recipient.to_string(),
        keys.public().recipient.to_string()
    );
    assert_eq!(
        *back.to_identity_bytes().unwrap(),
        *keys.to_identity_bytes().unwrap()
    );
}

/// Writes the golden shares:
/// `cargo test -p cairn-crypto --test golden -- --ignored --exact bless_shares`.
/// Splitting is randomized: run it only to create a new format version.
#[test]
#[ignore = "writes the golden files; run only to create a new format version"]
fn bless_shares() {
    let shares = cairn_crypto::split(&keys(), 2, 3).unwrap();
    for (name, _) in SHARES {
        let index: u8 = name["v1-share-".len()..][..1].parse().unwrap();
        let share = &shares[usize::from(index) - 1];
        std::fs::write(
            format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR")),
            share.to_text().as_bytes(),
        )
        .unwrap();
    }
}
