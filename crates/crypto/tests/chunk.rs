//! Hostile inputs to sealed chunks: whatever a server, a link or a damaged vault does to a
//! chunk's bytes, it is refused (malformed, a bad signature or unreadable), never opened
//! into other bytes and never a panic.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use cairn_crypto::{
    BlobId, CryptoError, DeviceKeys, Keyring, SealedChunk, TeamKey, CHUNK_SIZE, MAX_SEALED_CHUNK,
};

const SIZE: u64 = CHUNK_SIZE as u64 + 40;

fn ring(key: &TeamKey) -> Keyring {
    let mut ring = Keyring::default();
    ring.insert(TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes()));
    ring
}

/// The two chunks of a blob of `SIZE` bytes: a full one of 1s and a last one of 40 2s.
fn blob(author: &DeviceKeys, key: &TeamKey) -> [SealedChunk; 2] {
    let id = BlobId::random();
    [
        SealedChunk::seal(author, key, [3; 16], id, 0, 2, SIZE, &[1; CHUNK_SIZE]).unwrap(),
        SealedChunk::seal(author, key, [3; 16], id, 1, 2, SIZE, &[2; 40]).unwrap(),
    ]
}

fn refused(bytes: &[u8], keyring: &Keyring) -> bool {
    match SealedChunk::from_bytes(bytes) {
        Err(CryptoError::Malformed(_)) => true,
        Err(other) => panic!("parsing fails only as malformed, not {other}"),
        Ok(chunk) => matches!(
            chunk.open(keyring),
            Err(CryptoError::BadChunkSignature { .. } | CryptoError::ChunkUnreadable { .. })
        ),
    }
}

#[test]
fn a_flipped_bit_in_any_byte_is_refused() {
    let author = DeviceKeys::generate();
    let key = TeamKey::generate("T03", 1);
    let [_, last] = blob(&author, &key);
    let bytes = last.to_bytes();
    let keyring = ring(&key);
    assert!(!refused(&bytes, &keyring), "the untouched chunk opens");
    for at in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut tampered = bytes.clone();
            tampered[at] ^= bit;
            assert!(refused(&tampered, &keyring), "byte {at} bit {bit:#x}");
        }
    }
}

#[test]
fn every_truncation_and_every_extension_is_malformed() {
    let author = DeviceKeys::generate();
    let key = TeamKey::generate("T03", 1);
    for chunk in blob(&author, &key) {
        let bytes = chunk.to_bytes();
        for cut in 0..bytes.len() {
            assert!(matches!(
                SealedChunk::from_bytes(&bytes[..cut]),
                Err(CryptoError::Malformed(_))
            ));
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SealedChunk::from_bytes(&longer).is_err());
    }
}

#[test]
fn oversized_input_is_refused_before_it_is_read() {
    let author = DeviceKeys::generate();
    let key = TeamKey::generate("T03", 1);
    let [full, _] = blob(&author, &key);
    let mut bytes = full.to_bytes();
    bytes.resize(MAX_SEALED_CHUNK + 1, 0);
    let Err(CryptoError::Malformed(why)) = SealedChunk::from_bytes(&bytes) else {
        panic!("an oversized chunk parsed");
    };
    assert!(why.contains("longer than any sealed chunk"), "{why}");
    // A header that claims a chunk bigger than CHUNK_SIZE (a consistent length field) too.
    let mut huge = full.clone();
    huge.size = 10 * CHUNK_SIZE as u64;
    huge.count = 10;
    huge.ciphertext = vec![0; CHUNK_SIZE + 1000];
    assert!(SealedChunk::from_bytes(&huge.to_bytes()).is_err());
}

#[test]
fn a_moved_or_relabelled_chunk_breaks_its_signature() {
    let author = DeviceKeys::generate();
    let key = TeamKey::generate("T03", 1);
    let [first, last] = blob(&author, &key);
    let keyring = ring(&key);
    let other_blob = blob(&author, &key)[0].clone();
    let mut moved = first.clone();
    moved.index = 1; // and the same ciphertext under another index
    let mut to_other_blob = first.clone();
    to_other_blob.blob = other_blob.blob;
    let mut to_other_case = first.clone();
    to_other_case.case_id = [4; 16];
    let mut resized = last.clone();
    resized.size += 1;
    let mut swapped = first.clone();
    swapped.ciphertext = other_blob.ciphertext.clone(); // same length, same index, other blob
    let mut reteamed = first.clone();
    reteamed.team = "T04".into();
    let mut re_epoched = first.clone();
    re_epoched.epoch = 2;
    let mut reauthored = first.clone();
    reauthored.author = DeviceKeys::generate().id();
    for forged in [
        moved,
        to_other_blob,
        to_other_case,
        resized,
        swapped,
        reteamed,
        re_epoched,
        reauthored,
    ] {
        assert!(
            matches!(forged.verify(), Err(CryptoError::BadChunkSignature { .. })),
            "{forged:?}"
        );
        assert!(forged.open(&keyring).is_err());
    }
}

#[test]
fn a_wrong_key_opens_nothing() {
    let author = DeviceKeys::generate();
    let key = TeamKey::generate("T03", 1);
    let [first, _] = blob(&author, &key);
    for keyring in [
        Keyring::default(),
        ring(&TeamKey::generate("T03", 1)),
        ring(&TeamKey::from_bytes("T03", 2, *key.bytes())),
        ring(&TeamKey::from_bytes("T05", 1, *key.bytes())),
    ] {
        assert!(matches!(
            first.open(&keyring),
            Err(CryptoError::ChunkUnreadable { index: 0, .. })
        ));
    }
    assert_eq!(first.open(&ring(&key)).unwrap(), vec![1; CHUNK_SIZE]);
}

#[test]
fn blob_ids_are_random_and_hex() {
    let a = BlobId::random();
    assert_ne!(a, BlobId::random());
    assert_eq!(a.to_string().len(), 32);
    assert_eq!(BlobId::from_hex(&a.to_string()).unwrap(), a);
    for bad in ["", "00", &"g".repeat(32), &"0".repeat(34)] {
        assert!(BlobId::from_hex(bad).is_err(), "{bad}");
    }
}
