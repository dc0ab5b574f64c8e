//! Frozen formats: bytes written by protocol version 1 must parse, verify and re-encode
//! identically forever. If one of these fails after a refactor, the refactor changed the
//! wire format or the bytes that are signed, and old invites, rosters or clients would break.
//!
//! The files in `golden/` were written once by `bless` (run with `--ignored`); the keys
//! that signed them are gone, which is the point: only the public bytes are frozen.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use cairn_crypto::DeviceKeys;
use cairn_protocol::{
    decode_push, encode_push, request_signed_bytes, sign_request, verify_request, Enrollment,
    Invite, OfficeKeys, PullPage, Revocation, Roster, Statement,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
const NOW: u64 = 1_750_000_000;
const EXPIRES: u64 = 4_102_444_800;
const FINGERPRINT: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

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
fn invite_text_and_signed_bytes() {
    let text = include_str!("golden/invite.txt").trim_end();
    let office: OfficeKeys = include_str!("golden/office.txt").parse().unwrap();
    let invite = Invite::parse(text).unwrap();
    assert_eq!(invite.to_text(), text, "re-encoding must be byte-identical");
    assert_eq!(invite.body.office, office);
    assert_eq!(invite.body.team, "T03");
    assert_eq!(invite.body.fingerprint, FINGERPRINT);
    assert_eq!(
        String::from_utf8(invite.body.signed_bytes()).unwrap(),
        include_str!("golden/invite.signed").trim_end()
    );
    invite.verify(&office.signing, NOW).unwrap();
}

#[test]
fn enrollment_and_revocation_json_and_signed_bytes() {
    let office: OfficeKeys = include_str!("golden/office.txt").parse().unwrap();
    let json = include_str!("golden/enrollment.json").trim_end();
    let enrollment: Enrollment = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&enrollment).unwrap(), json);
    assert_eq!(
        String::from_utf8(enrollment.signed_bytes()).unwrap(),
        include_str!("golden/enrollment.signed").trim_end()
    );
    enrollment.verify(&office.signing).unwrap();

    let json = include_str!("golden/revocation.json").trim_end();
    let revocation: Revocation = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&revocation).unwrap(), json);
    assert_eq!(
        String::from_utf8(revocation.signed_bytes()).unwrap(),
        include_str!("golden/revocation.signed").trim_end()
    );
    revocation.verify(&office.signing).unwrap();

    let roster_json = include_str!("golden/roster.json").trim_end();
    let statements: Vec<Statement> = serde_json::from_str(roster_json).unwrap();
    assert_eq!(serde_json::to_string(&statements).unwrap(), roster_json);
    let roster = Roster::build(&office, &statements, NOW);
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    let member = roster.member(&enrollment.device_id()).unwrap();
    assert_eq!(member.team, "T03");
    assert_eq!(member.revoked, Some(revocation.last_seq));
}

#[test]
fn request_signature() {
    let header = include_str!("golden/request.txt").trim_end();
    let signed = request_signed_bytes("POST", "/v1/push", NOW, b"golden body");
    assert_eq!(
        String::from_utf8(signed).unwrap(),
        include_str!("golden/request.signed").trim_end()
    );
    verify_request(header, "POST", "/v1/push", b"golden body", NOW, 0).unwrap();
}

/// Writes the golden files. Run once: `cargo test -p cairn-protocol --test golden -- --ignored`.
#[test]
#[ignore = "writes the golden files; run only to create a new format version"]
fn bless() {
    let write = |name: &str, bytes: &[u8]| std::fs::write(format!("{DIR}/{name}"), bytes).unwrap();
    let line = |s: String| format!("{s}\n").into_bytes();
    write("push.bin", &encode_push(&push_frames()));
    write("pull.bin", &pull_page().encode());

    let office = DeviceKeys::generate();
    let device = DeviceKeys::generate();
    write(
        "office.txt",
        OfficeKeys::from_keys(&office).to_string().as_bytes(),
    );
    let invite = Invite::issue(
        &office,
        "T03",
        "https://127.0.0.1:8443",
        FINGERPRINT,
        EXPIRES,
    )
    .unwrap();
    write("invite.txt", &line(invite.to_text()));
    write(
        "invite.signed",
        &line(String::from_utf8(invite.body.signed_bytes()).unwrap()),
    );
    let enrollment = Enrollment::create(&device, invite, Some("tablet 2".into())).unwrap();
    write(
        "enrollment.json",
        &line(serde_json::to_string(&enrollment).unwrap()),
    );
    write(
        "enrollment.signed",
        &line(String::from_utf8(enrollment.signed_bytes()).unwrap()),
    );
    let revocation = Revocation::issue(&office, device.id(), 12, NOW);
    write(
        "revocation.json",
        &line(serde_json::to_string(&revocation).unwrap()),
    );
    write(
        "revocation.signed",
        &line(String::from_utf8(revocation.signed_bytes()).unwrap()),
    );
    let statements = vec![
        Statement::Enrollment(enrollment),
        Statement::Revocation(revocation),
    ];
    write(
        "roster.json",
        &line(serde_json::to_string(&statements).unwrap()),
    );
    write(
        "request.txt",
        &line(sign_request(
            &device,
            "POST",
            "/v1/push",
            b"golden body",
            NOW,
        )),
    );
    write(
        "request.signed",
        &line(
            String::from_utf8(request_signed_bytes(
                "POST",
                "/v1/push",
                NOW,
                b"golden body",
            ))
            .unwrap(),
        ),
    );
}
