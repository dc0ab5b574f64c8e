//! Frozen formats: bytes written by protocol version 2 must parse, verify and re-encode
//! identically forever. If one of these fails after a refactor, the refactor changed the
//! wire format or the bytes that are signed, and existing device lines, admissions, rosters,
//! receipts or clients would break.
//!
//! The files in `golden/` were written once by `bless` (run with `--ignored`). The office's
//! and the two devices' keys are kept as key files (passphrase `golden passphrase`, cheap
//! scrypt) so that the granted team keys, frozen as bytes (age encryption is randomized), are
//! checked to still open, and so that Ed25519 signatures, which are deterministic, are
//! checked to come out identical when made again. The team keys are the constants below.
//! `push.bin`, `pull.bin` and `office.txt` did not change from version 1 and were kept.
//! `places.json` (a places statement after the frozen chain) was written by `bless_places`.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cairn_crypto::{lock_keys, unlock_keys, DeviceKeys, KeyFileCost, SecretString, TeamKey};
use cairn_protocol::{
    decode_push, encode_frame, encode_push, request_signed_bytes, sign_request, verify_request,
    Act, Admission, Admit, BlobStatus, DeviceLine, DevicePublic, FrameReader, Grant, Held,
    OfficeKeys, ProtocolError, PullPage, Receipt, Revoke, Roster, Statement,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
const NOW: u64 = 1_750_000_000;
const EXPIRES: u64 = 4_102_444_800;
const FINGERPRINT: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SERVER: &str = "https://127.0.0.1:8443";
const PASSPHRASE: &str = "golden passphrase";
/// Team T03's key at epoch 1 (A and B admitted) and at epoch 2 (after A's revocation).
const T03_EPOCH_1: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
const T03_EPOCH_2: &str = "a0b1c2d3e4f5061728394a5b6c7d8e9ffedcba98765432100123456789abcdef";
const LAST_SEQ: u64 = 12;

fn team_key(epoch: u32) -> TeamKey {
    let hex_key = if epoch == 1 { T03_EPOCH_1 } else { T03_EPOCH_2 };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut bytes).unwrap();
    TeamKey::from_bytes("T03", epoch, bytes)
}

fn unlock(file: &[u8]) -> DeviceKeys {
    unlock_keys(file, &SecretString::from(PASSPHRASE.to_owned())).unwrap()
}

/// The office, device A (admitted, then revoked) and device B (admitted).
fn frozen_keys() -> (DeviceKeys, DeviceKeys, DeviceKeys) {
    (
        unlock(include_bytes!("golden/office.keyfile")),
        unlock(include_bytes!("golden/device-a.keyfile")),
        unlock(include_bytes!("golden/device-b.keyfile")),
    )
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn push_frames() -> Vec<Vec<u8>> {
    vec![b"first sealed change".to_vec(), vec![0xab; 5]]
}

fn pull_page() -> PullPage {
    PullPage {
        acked: 7,
        next: 42,
        more: true,
        changes: vec![(41, b"alpha".to_vec()), (42, b"beta".to_vec())],
    }
}

fn held(a: &DeviceKeys, b: &DeviceKeys) -> Vec<Held> {
    vec![
        Held {
            device: a.id(),
            upto: LAST_SEQ,
        },
        Held {
            device: b.id(),
            upto: 5,
        },
    ]
}

#[test]
fn push_body_layout() {
    let frozen = include_bytes!("golden/push.bin");
    assert_eq!(encode_push(&push_frames()), frozen);
    assert_eq!(
        frozen[..8],
        [0, 0, 0, 19, b'f', b'i', b'r', b's'],
        "u32 big-endian length, then the bytes"
    );
    let frames = decode_push(frozen).unwrap();
    assert_eq!(frames, vec![&push_frames()[0][..], &push_frames()[1][..]]);
}

#[test]
fn blob_chunk_stream_and_status() {
    // The same framing as a push body (u32 big-endian length, then the bytes); the bytes are
    // `CBK1` sealed chunks, frozen by crates/crypto's golden test.
    let stream = [encode_frame(b"CBK1 first"), encode_frame(b"CBK1 2nd")].concat();
    assert_eq!(
        hex::encode(&stream),
        "0000000a43424b31206669727374000000084342 4b3120326e64".replace(' ', "")
    );
    let mut reader = FrameReader::new();
    reader.push(&stream);
    assert_eq!(reader.next_frame().unwrap().unwrap(), b"CBK1 first");
    assert_eq!(reader.next_frame().unwrap().unwrap(), b"CBK1 2nd");
    assert_eq!(reader.next_frame().unwrap(), None);
    reader.finish().unwrap();
    let status: BlobStatus = serde_json::from_str(r#"{"held":3,"count":5,"stored":2}"#).unwrap();
    assert_eq!(
        serde_json::to_string(&status).unwrap(),
        r#"{"held":3,"count":5,"stored":2}"#
    );
}

#[test]
fn pull_page_layout() {
    let frozen = include_bytes!("golden/pull.bin");
    assert_eq!(pull_page().encode(), frozen);
    assert_eq!(&frozen[..4], b"CPL1");
    assert_eq!(PullPage::decode(frozen).unwrap(), pull_page());
}

#[test]
fn office_keys_text() {
    let text = include_str!("golden/office.txt");
    let keys: OfficeKeys = text.parse().unwrap();
    assert_eq!(keys.to_string(), text);
}

#[test]
fn device_line_and_its_code() {
    let (_, a, _) = frozen_keys();
    let text = include_str!("golden/device.txt").trim_end();
    assert!(text.starts_with("cairn-id-v2."));
    let line = DeviceLine::parse(text).unwrap();
    assert_eq!(line.to_text(), text, "re-encoding must be byte-identical");
    assert_eq!(line.keys, DevicePublic::from_keys(&a));
    assert_eq!(line.name.as_deref(), Some("tablet 2"));
    assert_eq!(
        DeviceLine::new(&a, Some("tablet 2".into()))
            .unwrap()
            .to_text(),
        text
    );
    assert_eq!(
        line.keys.short_code(),
        include_str!("golden/device.code").trim_end()
    );
}

#[test]
fn roster_chain_json_signed_bytes_and_hashes() {
    let (office, a, b) = frozen_keys();
    let office_keys = OfficeKeys::from_keys(&office);
    let json = include_str!("golden/roster.json").trim_end();
    let chain: Vec<Statement> = serde_json::from_str(json).unwrap();
    assert_eq!(
        serde_json::to_string(&chain).unwrap(),
        json,
        "re-encoding must be byte-identical"
    );
    let signed = lines(include_str!("golden/roster.signed"));
    let hashes = lines(include_str!("golden/roster.hashes"));
    assert_eq!((chain.len(), signed.len(), hashes.len()), (3, 3, 3));
    let mut prev = [0u8; 32];
    for (i, s) in chain.iter().enumerate() {
        assert_eq!(s.counter, i as u64 + 1);
        assert_eq!(
            s.prev, prev,
            "statement {} links to the one before",
            s.counter
        );
        assert_eq!(String::from_utf8(s.signed_bytes()).unwrap(), signed[i]);
        assert_eq!(hex::encode(s.hash()), hashes[i]);
        s.verify(&office.id()).unwrap();
        // Ed25519 is deterministic: the office signs the same bytes the same way.
        let again = Statement::issue(&office, s.counter, s.prev, s.at, s.act.clone()).unwrap();
        assert_eq!(&again, s);
        prev = s.hash();
    }
    match (&chain[0].act, &chain[1].act, &chain[2].act) {
        (Act::Admit(first), Act::Admit(second), Act::Revoke(revoke)) => {
            assert_eq!(first.device, DevicePublic::from_keys(&a));
            assert_eq!(second.device, DevicePublic::from_keys(&b));
            assert_eq!((first.epoch, second.epoch, revoke.epoch), (1, 1, 2));
            assert_eq!(revoke.device, a.id());
            assert_eq!(revoke.last_seq, LAST_SEQ);
            let earlier = team_key(2)
                .unwrap_earlier(&STANDARD.decode(&revoke.earlier).unwrap())
                .unwrap();
            assert_eq!(earlier.epoch(), 1);
            assert_eq!(earlier.bytes(), team_key(1).bytes());
        }
        acts => panic!("unexpected acts {acts:?}"),
    }

    let roster = Roster::build(&office_keys, &chain);
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    assert_eq!(roster.head(), 3);
    assert_eq!(roster.epoch("T03"), 2);
    assert_eq!(roster.member(&a.id()).unwrap().revoked, Some(LAST_SEQ));
    assert_eq!(roster.member(&b.id()).unwrap().revoked, None);
    assert_eq!(
        roster.member(&a.id()).unwrap().name.as_deref(),
        Some("tablet 2")
    );
    // The frozen grants still open with the frozen device keys.
    for (keys, epochs) in [(&a, vec![1]), (&b, vec![1, 2]), (&office, vec![1, 2])] {
        let ring = roster.keyring(keys);
        assert_eq!(ring.len(), epochs.len());
        for epoch in epochs {
            assert_eq!(
                ring.get("T03", epoch).unwrap().bytes(),
                team_key(epoch).bytes()
            );
        }
    }
}

#[test]
fn admission_line() {
    let (office, a, b) = frozen_keys();
    let text = include_str!("golden/admission.txt").trim_end();
    let admission = Admission::parse(text).unwrap();
    assert_eq!(
        admission.to_text(),
        text,
        "re-encoding must be byte-identical"
    );
    assert_eq!(admission.office, OfficeKeys::from_keys(&office));
    let chain: Vec<Statement> =
        serde_json::from_str(include_str!("golden/roster.json").trim_end()).unwrap();
    assert_eq!(admission.statement, chain[0]);
    let admit = admission.admit().unwrap();
    assert_eq!(
        (admit.team.as_str(), admit.server.as_str()),
        ("T03", SERVER)
    );
    assert_eq!(admit.fingerprint, FINGERPRINT);
    assert_eq!(admit.expires_at, EXPIRES);
    let key = admission.open(&a, NOW).unwrap();
    assert_eq!((key.team(), key.epoch()), ("T03", 1));
    assert_eq!(key.bytes(), team_key(1).bytes());
    assert!(matches!(
        admission.open(&b, NOW),
        Err(ProtocolError::NotForThisDevice { .. })
    ));
}

#[test]
fn receipt_json_and_signed_bytes() {
    let (office, a, b) = frozen_keys();
    let json = include_str!("golden/receipt.json").trim_end();
    let receipt: Receipt = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&receipt).unwrap(), json);
    assert_eq!(
        String::from_utf8(receipt.signed_bytes()).unwrap(),
        include_str!("golden/receipt.signed").trim_end()
    );
    receipt.verify(&office.id()).unwrap();
    assert_eq!(
        (receipt.upto(&a.id()), receipt.upto(&b.id())),
        (LAST_SEQ, 5)
    );
    assert_eq!(Receipt::issue(&office, 3, NOW, held(&a, &b)), receipt);
}

/// A team's receipt (issue #19, item 12): the whole one cut to one team's devices, its team
/// signed between `at` and `held`.
#[test]
fn team_receipt_json_and_signed_bytes() {
    let (office, a, b) = frozen_keys();
    let json = include_str!("golden/team_receipt.json").trim_end();
    let receipt: Receipt = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&receipt).unwrap(), json);
    assert_eq!(
        String::from_utf8(receipt.signed_bytes()).unwrap(),
        include_str!("golden/team_receipt.signed").trim_end()
    );
    receipt.verify(&office.id()).unwrap();
    assert_eq!((receipt.upto(&a.id()), receipt.upto(&b.id())), (0, 5));
    let whole = Receipt::issue(&office, 3, NOW, held(&a, &b));
    assert_eq!(whole.for_team(&office, "T03", |d| *d == b.id()), receipt);
}

#[test]
fn request_signature() {
    let (_, _, b) = frozen_keys();
    let header = include_str!("golden/request.txt").trim_end();
    let signed = request_signed_bytes("POST", "/v2/push", NOW, b"golden body");
    assert_eq!(
        String::from_utf8(signed).unwrap(),
        include_str!("golden/request.signed").trim_end()
    );
    assert_eq!(
        verify_request(header, "POST", "/v2/push", b"golden body", NOW, 0).unwrap(),
        b.id()
    );
    assert_eq!(
        sign_request(&b, "POST", "/v2/push", b"golden body", NOW),
        header
    );
}

/// Writes the golden files: `cargo test -p cairn-protocol --test golden -- --ignored`. Reuses
/// the key files if present (new ones otherwise); the grants and the `earlier` wrap come out
/// different each time, so run it only to create a new format version.
#[test]
#[ignore = "writes the golden files; run only to create a new format version"]
fn bless() {
    let write = |name: &str, bytes: &[u8]| std::fs::write(format!("{DIR}/{name}"), bytes).unwrap();
    let line = |s: String| format!("{s}\n").into_bytes();
    let passphrase = SecretString::from(PASSPHRASE.to_owned());
    let keys = |name: &str| match std::fs::read(format!("{DIR}/{name}")) {
        Ok(file) if !file.is_empty() => unlock(&file),
        _ => {
            let keys = DeviceKeys::generate();
            write(
                name,
                &lock_keys(&keys, &passphrase, KeyFileCost::LogN(10)).unwrap(),
            );
            keys
        }
    };
    let office = keys("office.keyfile");
    let a = keys("device-a.keyfile");
    let b = keys("device-b.keyfile");
    write("push.bin", &encode_push(&push_frames()));
    write("pull.bin", &pull_page().encode());

    let device = DeviceLine::new(&a, Some("tablet 2".into())).unwrap();
    write("device.txt", &line(device.to_text()));
    write("device.code", &line(device.keys.short_code()));

    let office_public = DevicePublic::from_keys(&office);
    let admit = |device: &DeviceKeys, name: &str| {
        let public = DevicePublic::from_keys(device);
        Act::Admit(Admit {
            grants: vec![
                Grant::new(&team_key(1), &public).unwrap(),
                Grant::new(&team_key(1), &office_public).unwrap(),
            ],
            device: public,
            name: Some(name.into()),
            sealed_name: None,
            team: "T03".into(),
            epoch: 1,
            server: SERVER.into(),
            fingerprint: FINGERPRINT.into(),
            expires_at: EXPIRES,
        })
    };
    let revoke = Act::Revoke(Revoke {
        device: a.id(),
        last_seq: LAST_SEQ,
        team: "T03".into(),
        epoch: 2,
        grants: vec![
            Grant::new(&team_key(2), &DevicePublic::from_keys(&b)).unwrap(),
            Grant::new(&team_key(2), &office_public).unwrap(),
        ],
        earlier: STANDARD.encode(team_key(2).wrap_earlier(&team_key(1)).unwrap()),
    });
    let mut chain: Vec<Statement> = Vec::new();
    for act in [admit(&a, "tablet 2"), admit(&b, "phone"), revoke] {
        let prev = chain.last().map_or([0; 32], Statement::hash);
        let counter = chain.len() as u64 + 1;
        chain.push(Statement::issue(&office, counter, prev, NOW + counter, act).unwrap());
    }
    write("roster.json", &line(serde_json::to_string(&chain).unwrap()));
    let signed: Vec<String> = chain
        .iter()
        .map(|s| String::from_utf8(s.signed_bytes()).unwrap())
        .collect();
    write("roster.signed", &line(signed.join("\n")));
    let hashes: Vec<String> = chain.iter().map(|s| hex::encode(s.hash())).collect();
    write("roster.hashes", &line(hashes.join("\n")));

    let admission = Admission {
        office: OfficeKeys::from_keys(&office),
        statement: chain[0].clone(),
    };
    write("admission.txt", &line(admission.to_text()));

    let receipt = Receipt::issue(&office, 3, NOW, held(&a, &b));
    write(
        "receipt.json",
        &line(serde_json::to_string(&receipt).unwrap()),
    );
    write(
        "receipt.signed",
        &line(String::from_utf8(receipt.signed_bytes()).unwrap()),
    );
    let team = receipt.for_team(&office, "T03", |d| *d == b.id());
    write(
        "team_receipt.json",
        &line(serde_json::to_string(&team).unwrap()),
    );
    write(
        "team_receipt.signed",
        &line(String::from_utf8(team.signed_bytes()).unwrap()),
    );

    write(
        "request.txt",
        &line(sign_request(&b, "POST", "/v2/push", b"golden body", NOW)),
    );
    write(
        "request.signed",
        &line(
            String::from_utf8(request_signed_bytes(
                "POST",
                "/v2/push",
                NOW,
                b"golden body",
            ))
            .unwrap(),
        ),
    );
}

/// The list of places the frozen statement 4 carries.
fn golden_places() -> cairn_protocol::PlaceList {
    let mut list = cairn_protocol::PlaceList::default();
    list.put(cairn_protocol::Place {
        code: "KHR".into(),
        name: "Khan Younis".into(),
        aliases: vec!["Khān Yūnis".into()],
        lat: Some(31.34),
        lon: Some(34.3),
    });
    list.put(cairn_protocol::Place {
        code: "GZA".into(),
        name: "Gaza City".into(),
        aliases: Vec::new(),
        lat: None,
        lon: None,
    });
    list
}

/// A places statement (statement 4, after the frozen chain): it parses, re-encodes and
/// verifies as written, and the frozen list key still opens for the office and for T03 at
/// epoch 2, not for the revoked device.
#[test]
fn places_statement_json_and_sealed_list() {
    let (office, a, b) = frozen_keys();
    let mut chain: Vec<Statement> =
        serde_json::from_str(include_str!("golden/roster.json").trim_end()).unwrap();
    let json = include_str!("golden/places.json").trim_end();
    let places: Statement = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&places).unwrap(), json);
    assert_eq!(places.prev, chain[2].hash());
    places.verify(&office.id()).unwrap();
    let again = Statement::issue(
        &office,
        places.counter,
        places.prev,
        places.at,
        places.act.clone(),
    )
    .unwrap();
    assert_eq!(again, places);
    chain.push(places);
    let roster = Roster::build(&OfficeKeys::from_keys(&office), &chain);
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    let (counter, held) = roster.places().unwrap();
    assert_eq!(counter, 4);
    for keys in [&office, &b] {
        let list = held.open(keys, &roster.keyring(keys)).unwrap();
        assert_eq!(list, Some(golden_places()));
    }
    assert_eq!(held.open(&a, &roster.keyring(&a)).unwrap(), None);
}

#[test]
#[ignore = "writes golden/places.json; run only to create a new format version"]
fn bless_places() {
    let (office, _, _) = frozen_keys();
    let chain: Vec<Statement> =
        serde_json::from_str(include_str!("golden/roster.json").trim_end()).unwrap();
    let places = cairn_protocol::Places::seal(
        &golden_places(),
        &DevicePublic::from_keys(&office),
        &[&team_key(2)],
    )
    .unwrap();
    let s = Statement::issue(&office, 4, chain[2].hash(), NOW + 4, Act::Places(places)).unwrap();
    std::fs::write(
        format!("{DIR}/places.json"),
        format!("{}\n", serde_json::to_string(&s).unwrap()),
    )
    .unwrap();
}
