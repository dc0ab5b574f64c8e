//! Writes genuine encodings, made with Cairn's own constructors, as the starting corpus of
//! every fuzz target: `fuzz/corpus/<target>/seed-*`. Existing seeds are overwritten; other
//! corpus files are left alone.
//!
//! `seeds --fixtures` instead writes the fixed test keys `fuzz/fixtures/{device,office}.key`
//! (only if they are missing: every seed and regression input depends on them).

use std::path::PathBuf;

use cairn_crypto::{lock_keys, DeviceKeys, KeyFileCost, SealedChange, SealedKind, SecretString};
use cairn_fuzz::targets::{
    case_fixture, case_input, device, office, CASE_MUTATE, CASE_NEW, CASE_WITH_CREATION,
    FIXTURE_PASSPHRASE, REQUEST_METHOD, REQUEST_PATH, REQUEST_TIME,
};
use cairn_model::{CaseDoc, Edit, Kind, Reference};
use cairn_protocol::{
    encode_push, sign_request, EnrollResponse, Enrollment, ErrorBody, ErrorCode, Invite,
    OfficeKeys, Outcome, PullPage, PushResponse, PushResult, Revocation, Statement,
};
use time::OffsetDateTime;
use uuid::Uuid;

const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const SERVER: &str = "https://127.0.0.1:8443";
/// Far in the future, so seeded invites are unexpired whatever the fuzz target's clock.
const EXPIRES: u64 = 4_000_000_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    if std::env::args().any(|a| a == "--fixtures") {
        fixtures();
        return;
    }
    let sealed = sealed_changes();
    write(
        "sealed_change",
        sealed.iter().map(|s| s.to_bytes()).collect(),
    );
    pulls(&sealed);
    pushes(&sealed);
    invites();
    rosters();
    server_json();
    requests();
    case_changes();
}

fn fixtures() {
    let dir = root().join("fixtures");
    std::fs::create_dir_all(&dir).expect("create fuzz/fixtures");
    let passphrase = SecretString::from(FIXTURE_PASSPHRASE.to_owned());
    for name in ["device.key", "office.key"] {
        let path = dir.join(name);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            println!("{} exists: kept", path.display());
            continue;
        }
        let file = lock_keys(&DeviceKeys::generate(), &passphrase, KeyFileCost::LogN(1))
            .expect("lock fixture keys");
        std::fs::write(&path, file).expect("write fixture");
        println!("wrote {}", path.display());
    }
}

fn write(target: &str, inputs: Vec<Vec<u8>>) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus folder");
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), input).expect("write seed");
    }
    println!("{target}: {} seeds in {}", inputs.len(), dir.display());
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("a valid time")
}

/// Genuine Automerge changes of one case by `author`: its creation, then edits.
fn case_history(author: &DeviceKeys, number: u32) -> (Uuid, Vec<Vec<u8>>) {
    let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0000_0000_0000_0000 + u128::from(number));
    let reference =
        Reference::new("KHR", "T03", &author.id().tag(), number).expect("a valid reference");
    let actor = author.id().0;
    let (mut doc, created) = CaseDoc::create(
        &actor,
        id,
        &reference,
        Kind::Injured,
        "fuzz seeds",
        now(),
        &[Edit::set("person.name", "Amina K.")],
    )
    .expect("create a case");
    let mut changes = vec![created];
    let edits = [
        vec![Edit::set("status", "confirmed")],
        vec![Edit::Note {
            text: "Seen at the clinic; family informed.".into(),
        }],
        vec![Edit::Custody {
            from: Some("field team".into()),
            to: "office".into(),
            place: Some("KHR".into()),
            purpose: Some("archive".into()),
            seal: Some("S-17".into()),
        }],
        vec![Edit::Source {
            kind: "witness".into(),
            contact: None,
            consent: "yes".into(),
        }],
    ];
    for edit in edits {
        if let Ok(Some(change)) = doc.edit(&edit, "fuzz seeds", now()) {
            changes.push(change);
        }
    }
    (id, changes)
}

/// Sealed changes to the fixed device: by another member, by the device itself, by the
/// office; one sealed to the office alone (unreadable here); one tiny.
fn sealed_changes() -> Vec<SealedChange> {
    let me = device();
    let other = DeviceKeys::generate();
    let to_me = [me.public().recipient, office().public().recipient];
    let mut out = Vec::new();
    for (author, number) in [(&other, 1), (me, 2), (office(), 3)] {
        let (id, changes) = case_history(author, number);
        for (seq, plain) in changes.iter().enumerate().take(3) {
            let sealed = SealedChange::seal(
                author,
                &to_me,
                SealedKind::CaseChange,
                *id.as_bytes(),
                seq as u64 + 1,
                plain,
            )
            .expect("seal");
            out.push(sealed);
        }
    }
    let (id, changes) = case_history(&other, 4);
    out.push(
        SealedChange::seal(
            &other,
            &[office().public().recipient],
            SealedKind::CaseChange,
            *id.as_bytes(),
            9,
            &changes[0],
        )
        .expect("seal"),
    );
    out.push(
        SealedChange::seal(&other, &[], SealedKind::CaseChange, [7; 16], 1, b"x").expect("seal"),
    );
    out
}

fn pulls(sealed: &[SealedChange]) {
    let page = |acked, next, more, from: usize, n: usize| PullPage {
        acked,
        next,
        more,
        changes: sealed
            .iter()
            .skip(from)
            .take(n)
            .enumerate()
            .map(|(i, s)| (next - (n - i) as u64 + 1, s.to_bytes()))
            .collect(),
    };
    let pages = vec![
        PullPage::default(),
        page(0, 1, false, 0, 1),
        page(3, 12, true, 0, 3),
        page(1, 40, false, 3, 4),
        PullPage {
            acked: 2,
            next: 9,
            more: false,
            changes: vec![(5, b"not a change".to_vec()), (9, vec![0; 80])],
        },
    ];
    write("pull_page", pages.iter().map(PullPage::encode).collect());
}

fn pushes(sealed: &[SealedChange]) {
    let bytes: Vec<Vec<u8>> = sealed.iter().map(SealedChange::to_bytes).collect();
    write(
        "push_body",
        vec![
            Vec::new(),
            encode_push(&bytes[..1]),
            encode_push(&bytes[..3]),
            encode_push(&bytes[3..]),
            encode_push(&[b"x".to_vec(), vec![0; 70]]),
        ],
    );
}

fn invite_for(team: &str) -> Invite {
    Invite::issue(office(), team, SERVER, FP, EXPIRES).expect("issue an invite")
}

fn invites() {
    let other_office = DeviceKeys::generate();
    let inputs = vec![
        invite_for("T03").to_text(),
        format!("  {}\n", invite_for("field_team-2").to_text()),
        Invite::issue(&other_office, "T03", "https://cairn.example.org", FP, 1)
            .expect("issue")
            .to_text(),
        OfficeKeys::from_keys(office()).to_string(),
        format!(
            "\n  {}\n",
            OfficeKeys::from_keys(office())
                .to_string()
                .replace(' ', "   ")
        ),
        "T03".into(),
    ];
    write(
        "invite",
        inputs.into_iter().map(String::into_bytes).collect(),
    );
}

fn enroll(device: &DeviceKeys, team: &str, name: Option<&str>) -> Enrollment {
    Enrollment::create(device, invite_for(team), name.map(str::to_owned)).expect("enroll")
}

fn rosters() {
    let (a, b, c) = (
        DeviceKeys::generate(),
        DeviceKeys::generate(),
        DeviceKeys::generate(),
    );
    let ea = enroll(&a, "T03", Some("tablet 1"));
    let eb = enroll(&b, "T03", None);
    let ec = enroll(&c, "T04", Some("phone"));
    let revoke_b = Revocation::issue(office(), b.id(), 5, 1_790_000_000);
    let revoke_b_lower = Revocation::issue(office(), b.id(), 2, 1_790_000_100);
    let revoke_office = Revocation::issue(office(), office().id(), 0, 0);
    // One invite used by two devices; one device in two teams.
    let shared = invite_for("T03");
    let twice_a = Enrollment::create(&a, shared.clone(), None).expect("enroll");
    let twice_c = Enrollment::create(&c, shared, None).expect("enroll");
    let other_team = enroll(&a, "T05", None);
    // The same device and invite under two names (both signed by the device).
    let invite = invite_for("T03");
    let named_1 = Enrollment::create(&b, invite.clone(), Some("first".into())).expect("enroll");
    let named_2 = Enrollment::create(&b, invite, Some("second".into())).expect("enroll");
    let e = Statement::Enrollment;
    let r = Statement::Revocation;
    let sets: Vec<Vec<Statement>> = vec![
        vec![],
        vec![e(ea.clone())],
        vec![
            e(ea.clone()),
            e(eb.clone()),
            e(ec.clone()),
            r(revoke_b.clone()),
        ],
        vec![
            r(revoke_b.clone()),
            e(eb.clone()),
            r(revoke_b_lower),
            r(revoke_office),
            e(ea.clone()),
        ],
        vec![e(twice_a), e(twice_c), e(eb.clone())],
        vec![e(ea), e(other_team), e(ec)],
        vec![e(named_1), e(named_2)],
    ];
    write(
        "roster",
        sets.iter()
            .map(|s| serde_json::to_vec(s).expect("json"))
            .collect(),
    );
}

fn server_json() {
    let device = DeviceKeys::generate();
    let json = |v: &dyn erased::Json| v.json();
    let inputs = vec![
        json(&enroll(&device, "T03", Some("tablet 2"))),
        json(&enroll(&device, "T03", None)),
        json(&Revocation::issue(office(), device.id(), 41, 1_790_000_000)),
        b"after=5&limit=10".to_vec(),
        b"after=0".to_vec(),
        json(&PushResponse {
            results: vec![
                PushResult {
                    seq: 1,
                    outcome: Outcome::Stored,
                    reason: None,
                },
                PushResult {
                    seq: 2,
                    outcome: Outcome::Refused,
                    reason: Some("no".into()),
                },
            ],
            acked: 1,
        }),
        json(&EnrollResponse {
            team: "T03".into(),
            device: device.id().to_string(),
        }),
        json(&ErrorBody {
            code: ErrorCode::TagTaken.as_str().into(),
            message: "another device of the team has this tag".into(),
        }),
    ];
    write("server_json", inputs);
}

/// `serde_json::to_vec` behind a trait object, so one closure serializes every type.
mod erased {
    pub trait Json {
        fn json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("json")
        }
    }
}

fn requests() {
    let me = device();
    let signed = |body: &[u8]| {
        let mut input =
            sign_request(me, REQUEST_METHOD, REQUEST_PATH, body, REQUEST_TIME).into_bytes();
        input.push(b'\n');
        input.extend_from_slice(body);
        input
    };
    let push = encode_push(&[b"frame".to_vec()]);
    write(
        "request_auth",
        vec![
            signed(b""),
            signed(&push),
            sign_request(me, "GET", "/v1/roster", b"", REQUEST_TIME).into_bytes(),
        ],
    );
}

fn case_changes() {
    let fx = case_fixture();
    let edits = &fx.edits;
    let mut reversed = edits.clone();
    reversed.reverse();
    // A concurrent edit of the same field by a third device: a conflict to keep.
    let third = DeviceKeys::generate();
    let mut other = CaseDoc::from_changes(std::slice::from_ref(&fx.created), &third.id().0)
        .expect("the fixture case as a third device receives it");
    let concurrent = other
        .edit(
            &[Edit::set("status", "under_investigation")],
            "third",
            now(),
        )
        .expect("edit")
        .expect("a change");
    // Another case's changes, offered to this one.
    let (_, foreign) = case_history(&third, 5);
    let first = edits.first().cloned().unwrap_or_default();
    let inputs = vec![
        case_input(0, [0; 3], edits),
        case_input(0, [0; 3], &reversed),
        case_input(
            CASE_MUTATE | 1,
            [0, 0x40, 0x01],
            std::slice::from_ref(&first),
        ),
        case_input(
            CASE_MUTATE | 3,
            [0, 0x90, 0x20],
            &edits[..edits.len().min(3)],
        ),
        case_input(0, [0; 3], &[first.clone(), concurrent.clone()]),
        case_input(CASE_NEW | CASE_WITH_CREATION, [0; 3], edits),
        case_input(CASE_NEW, [0; 3], &[concurrent, fx.created.clone(), first]),
        case_input(CASE_NEW, [0; 3], edits),
        case_input(0, [0; 3], &foreign[..foreign.len().min(3)]),
        case_input(0, [0; 3], std::slice::from_ref(&fx.created)),
    ];
    write("case_changes", inputs);
}
