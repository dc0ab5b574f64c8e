//! Writes genuine encodings, made with Cairn's own constructors, as the starting corpus of
//! every fuzz target: `fuzz/corpus/<target>/seed-*`. Existing seeds are overwritten; other
//! corpus files are left alone.
//!
//! `seeds --regressions` writes the same seeds as regression inputs instead:
//! `fuzz/regressions/<target>/v2-seed-*` (the v1 `seed-*` there stay, as inputs that must
//! simply be refused without a panic).
//!
//! `seeds --fixtures` instead writes the fixed test keys `fuzz/fixtures/{device,office}.key`
//! (only if they are missing: every seed and regression input depends on them).

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cairn_crypto::{
    chunk_count, lock_keys, BlobId, DeviceId, DeviceKeys, KeyFileCost, SealedChange, SealedChunk,
    SealedKind, SecretString, TeamKey, CHUNK_SIZE,
};
use cairn_fuzz::targets::{
    blob_fixtures, blob_input, case_fixture, case_input, device, held, office, team_key,
    BlobFixture, BLOB_LARGE, BLOB_RESIGN, BLOB_UPLOAD, CASE_MUTATE, CASE_NEW, CASE_WITH_CREATION,
    EXPIRES, FINGERPRINT, FIXTURE_PASSPHRASE, IMPORT_CSV, IMPORT_JSON_LINES, IMPORT_MAPPED,
    KEYRING, REQUEST_METHOD, REQUEST_PATH, REQUEST_TIME, SERVER, TEAM,
};
use cairn_model::{CaseDoc, Edit, Kind, Reference};
use cairn_protocol::{
    encode_push, paths, sign_request, Act, Admission, Admit, DeviceLine, DevicePublic, ErrorBody,
    ErrorCode, Grant, Held, JoinResponse, OfficeKeys, Outcome, PullPage, PushResponse, PushResult,
    Receipt, Revoke, Statement,
};
use time::OffsetDateTime;
use uuid::Uuid;

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
    admissions();
    rosters();
    server_json();
    requests();
    case_changes();
    blob_chunks();
    imports();
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
    let (dir, prefix) = if std::env::args().any(|a| a == "--regressions") {
        (root().join("regressions").join(target), "v2-seed")
    } else {
        (root().join("corpus").join(target), "seed")
    };
    std::fs::create_dir_all(&dir).expect("create corpus folder");
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("{prefix}-{i:02}")), input).expect("write seed");
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
        vec![Edit::set("torture_signs", "no")],
        vec![Edit::Note {
            text: "Seen at the clinic; family informed.".into(),
        }],
        vec![Edit::Custody {
            from: Some("field team".into()),
            to: "office".into(),
            place: Some("KHR".into()),
            purpose: Some("archive".into()),
            seal: Some("S-17".into()),
            at: None,
        }],
        vec![Edit::Source {
            kind: "witness".into(),
            contact: None,
            consent: "yes".into(),
            at: None,
        }],
    ];
    for edit in edits {
        if let Ok(Some(change)) = doc.edit(&edit, "fuzz seeds", now()) {
            changes.push(change);
        }
    }
    (id, changes)
}

/// Sealed changes the fixed keyring opens (every team and epoch of it; by another member,
/// by the device itself, by the office); one under a key it lacks; one under a draft key
/// (epoch 0); one tiny.
fn sealed_changes() -> Vec<SealedChange> {
    let me = device();
    let other = DeviceKeys::generate();
    let mut out = Vec::new();
    let authors = [(&other, 1), (me, 2), (office(), 3)];
    for (i, (author, number)) in authors.into_iter().enumerate() {
        let (id, changes) = case_history(author, number);
        for (seq, plain) in changes.iter().enumerate().take(3) {
            let (team, epoch) = KEYRING[(i + seq) % KEYRING.len()];
            let sealed = SealedChange::seal(
                author,
                &team_key(team, epoch),
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
    for key in [TeamKey::generate(TEAM, 3), TeamKey::generate(TEAM, 0)] {
        out.push(
            SealedChange::seal(
                &other,
                &key,
                SealedKind::CaseChange,
                *id.as_bytes(),
                9,
                &changes[0],
            )
            .expect("seal"),
        );
    }
    out.push(
        SealedChange::seal(
            &other,
            &team_key(TEAM, 1),
            SealedKind::CaseChange,
            [7; 16],
            1,
            b"x",
        )
        .expect("seal"),
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
    let pages = [
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

/// Statements signed by `office` in a chain: each numbered and linked after the one before.
struct Chain<'a> {
    office: &'a DeviceKeys,
    statements: Vec<Statement>,
}

impl<'a> Chain<'a> {
    /// A chain by the fixed office starting with [`held`], as the fixed device holds it.
    fn held() -> Chain<'static> {
        Chain {
            office: office(),
            statements: held().to_vec(),
        }
    }

    fn empty(office: &'a DeviceKeys) -> Chain<'a> {
        Chain {
            office,
            statements: Vec::new(),
        }
    }

    fn issue(&mut self, act: Act) -> Statement {
        let prev = self.statements.last().map_or([0; 32], Statement::hash);
        let counter = self.statements.len() as u64 + 1;
        let s = Statement::issue(self.office, counter, prev, 1_000 + counter, act)
            .expect("issue a statement");
        self.statements.push(s.clone());
        s
    }
}

fn public(keys: &DeviceKeys) -> DevicePublic {
    DevicePublic::from_keys(keys)
}

/// An act admitting `device` into `team` at `epoch`, its fixed key granted to `to`.
fn admit(device: &DevicePublic, team: &str, epoch: u32, to: &[&DevicePublic]) -> Act {
    let key = team_key(team, epoch);
    Act::Admit(Admit {
        device: device.clone(),
        name: Some("tablet".into()),
        sealed_name: None,
        team: team.into(),
        epoch,
        grants: to
            .iter()
            .map(|d| Grant::new(&key, d).expect("grant"))
            .collect(),
        server: SERVER.into(),
        fingerprint: FINGERPRINT.into(),
        expires_at: EXPIRES,
    })
}

/// An act revoking `device` from `team`, which moves to `epoch`, granted to `to`.
fn revoke(device: DeviceId, team: &str, epoch: u32, last_seq: u64, to: &[&DevicePublic]) -> Act {
    let key = team_key(team, epoch);
    let earlier = key
        .wrap_earlier(&team_key(team, epoch.saturating_sub(1)))
        .expect("wrap the earlier key");
    Act::Revoke(Revoke {
        device,
        last_seq,
        team: team.into(),
        epoch,
        grants: to
            .iter()
            .map(|d| Grant::new(&key, d).expect("grant"))
            .collect(),
        earlier: STANDARD.encode(earlier),
    })
}

/// The fixed device's admission into T03 after another device's, with the office's keys.
fn admission_for(device: &DevicePublic, office: &DeviceKeys, expires_at: u64) -> Admission {
    let mut chain = Chain::empty(office);
    let other = public(&DeviceKeys::generate());
    let o = public(office);
    chain.issue(admit(&other, TEAM, 1, &[&other, &o]));
    let act = match admit(device, TEAM, 1, &[device, &o]) {
        Act::Admit(a) => Act::Admit(Admit { expires_at, ..a }),
        revoke => revoke,
    };
    Admission {
        office: OfficeKeys::from_keys(office),
        statement: chain.issue(act),
    }
}

fn admissions() {
    let d = public(device());
    let office_keys = OfficeKeys::from_keys(office());
    let inputs = vec![
        admission_for(&d, office(), EXPIRES).to_text(),
        format!("  {}\n", admission_for(&d, office(), EXPIRES).to_text()),
        admission_for(&public(&DeviceKeys::generate()), office(), EXPIRES).to_text(),
        admission_for(&d, office(), 1).to_text(),
        admission_for(&d, &DeviceKeys::generate(), EXPIRES).to_text(),
        DeviceLine::new(device(), Some("tablet 2".into()))
            .expect("device line")
            .to_text(),
        format!(
            " {}\n",
            DeviceLine::new(&DeviceKeys::generate(), None)
                .expect("device line")
                .to_text()
        ),
        office_keys.to_string(),
        format!("\n  {}\n", office_keys.to_string().replace(' ', "   ")),
        TEAM.into(),
    ];
    write(
        "admission",
        inputs.into_iter().map(String::into_bytes).collect(),
    );
}

/// The chains of statements, all by the fixed office, most after [`held`].
fn chains() -> Vec<Vec<Statement>> {
    let (a, b, c) = (
        public(&DeviceKeys::generate()),
        public(&DeviceKeys::generate()),
        public(&DeviceKeys::generate()),
    );
    let (d, o) = (public(device()), public(office()));
    // 1 held, 2 A into T03, 3 B into T04, 4 A revoked (T03 to epoch 2), 5 C into T03.
    let mut good = Chain::held();
    good.issue(admit(&a, TEAM, 1, &[&a, &d, &o]));
    good.issue(admit(&b, "T04", 1, &[&b, &o]));
    good.issue(revoke(a.signing, TEAM, 2, 5, &[&d, &o]));
    good.issue(admit(&c, TEAM, 2, &[&c, &d, &o]));
    let good = good.statements;

    // Another statement 2: two versions of one number.
    let mut twin = Chain::held();
    twin.issue(admit(&c, TEAM, 1, &[&c, &o]));
    let mut twins = good.clone();
    twins.push(twin.statements[1].clone());

    // Acts that contradict the roster: each in the chain, none taking effect.
    let mut odd = Chain::held();
    odd.issue(admit(&o, TEAM, 1, &[&o]));
    odd.issue(admit(&d, "T04", 1, &[&d, &o]));
    odd.issue(revoke(b.signing, TEAM, 2, 0, &[&o]));
    odd.issue(revoke(d.signing, TEAM, 5, 3, &[&o]));
    odd.issue(admit(&a, TEAM, 3, &[&a, &o]));
    odd.issue(revoke(d.signing, TEAM, 2, 0, &[&o]));
    odd.issue(admit(&d, TEAM, 2, &[&d, &o]));

    // A chain that does not start with what the device holds.
    let mut other = Chain::empty(office());
    other.issue(admit(&a, TEAM, 1, &[&a, &o]));
    other.issue(admit(&b, TEAM, 1, &[&b, &d, &o]));

    // A statement by another office, and one whose signature is broken.
    let intruder = DeviceKeys::generate();
    let foreign = vec![Chain::empty(&intruder).issue(admit(&public(&intruder), TEAM, 1, &[&o]))];
    let mut unsigned = good[1].clone();
    unsigned.office_signature[0] ^= 1;

    let mut reversed = good.clone();
    reversed.reverse();
    let mut doubled = good[..3].to_vec();
    doubled.extend_from_slice(&good[..3]);
    vec![
        Vec::new(),
        held().to_vec(),
        good.clone(),
        reversed,
        twins,
        vec![good[0].clone(), good[2].clone(), good[3].clone()],
        odd.statements,
        other.statements,
        foreign,
        vec![good[0].clone(), unsigned, good[2].clone()],
        doubled,
    ]
}

fn rosters() {
    write(
        "roster",
        chains()
            .iter()
            .map(|s| serde_json::to_vec(s).expect("json"))
            .collect(),
    );
}

fn server_json() {
    let json = |v: &dyn erased::Json| v.json();
    let chains = chains();
    let good = &chains[2];
    let d = device().id();
    let a = DeviceKeys::generate().id();
    let inputs = vec![
        // POST /v2/join: the statement of an admission.
        json(&admission_for(&public(device()), office(), EXPIRES).statement),
        json(&good[1]),
        json(&good[3]),
        json(&held()[0]),
        // POST /v2/roster: statements to append.
        json(&good[1..3].to_vec()),
        json(good),
        // POST and GET /v2/receipt.
        json(&Receipt::issue(
            office(),
            3,
            REQUEST_TIME,
            vec![Held { device: d, upto: 7 }, Held { device: a, upto: 2 }],
        )),
        json(&Receipt::issue(office(), 1, REQUEST_TIME, Vec::new())),
        json(&vec![Receipt::issue(
            office(),
            4,
            REQUEST_TIME,
            vec![Held { device: d, upto: 7 }],
        )
        .for_team(office(), "T03", |_| true)]),
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
        json(&JoinResponse {
            team: TEAM.into(),
            device: d.to_string(),
        }),
        json(&ErrorBody {
            code: ErrorCode::AdmissionExpired.as_str().into(),
            message: "the admission expired; ask the office to admit this device again".into(),
        }),
        json(&ErrorBody {
            code: ErrorCode::RosterBehind.as_str().into(),
            message: "the office has not yet sent this server the statements before this one"
                .into(),
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
            sign_request(me, "GET", paths::ROSTER, b"", REQUEST_TIME).into_bytes(),
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
    let mut other = CaseDoc::from_changes(std::slice::from_ref(&fx.created), &third.id().0, &[])
        .expect("the fixture case as a third device receives it");
    let concurrent = other
        .edit(&[Edit::set("torture_signs", "yes")], "third", now())
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

/// The chunks of `fx` sealed by `author` under `key`, with `plaintext` standing for its bytes
/// (the same length: another file under the same header).
fn chunks_of(
    fx: &BlobFixture,
    author: &DeviceKeys,
    key: &TeamKey,
    plaintext: &[u8],
) -> Vec<Vec<u8>> {
    let count = chunk_count(fx.size).expect("a chunk count");
    plaintext
        .chunks(CHUNK_SIZE)
        .enumerate()
        .map(|(i, part)| {
            let index = u32::try_from(i).expect("a chunk index");
            SealedChunk::seal(
                author, key, fx.case_id, fx.blob, index, count, fx.size, part,
            )
            .expect("seal a chunk")
            .to_bytes()
        })
        .collect()
}

/// The `blob_chunk` seeds: both attachments downloaded and uploaded whole, in pieces of every
/// size, re-signed; and what a receiver must refuse: chunks out of order, another file under
/// the same header (only the SHA-256 of the whole file tells), a draft key, another team,
/// another author, another blob, a cut stream, a frame of no chunk.
fn blob_chunks() {
    let [small, large] = blob_fixtures();
    let me = device();
    let key = team_key(TEAM, 1);
    let small_chunks = chunks_of(small, me, &key, &small.plaintext);
    let large_chunks = chunks_of(large, me, &key, &large.plaintext);
    let whole = 7 << 3;
    let mut inputs = vec![
        blob_input(whole, &small_chunks),
        blob_input(whole | BLOB_UPLOAD, &small_chunks),
        blob_input(BLOB_RESIGN | (2 << 3), &small_chunks),
        blob_input(BLOB_UPLOAD | BLOB_RESIGN | (4 << 3), &small_chunks),
        blob_input(BLOB_LARGE | whole, &large_chunks),
        blob_input(BLOB_LARGE | BLOB_UPLOAD | (5 << 3), &large_chunks),
        blob_input(
            BLOB_LARGE | (6 << 3),
            &[large_chunks[1].clone(), large_chunks[0].clone()],
        ),
    ];
    let other: Vec<u8> = small.plaintext.iter().map(|b| b ^ 0x55).collect();
    inputs.push(blob_input(whole, &chunks_of(small, me, &key, &other)));
    let other: Vec<u8> = large.plaintext.iter().rev().copied().collect();
    inputs.push(blob_input(
        BLOB_LARGE | whole,
        &chunks_of(large, me, &key, &other),
    ));
    for (flags, author, key) in [
        (BLOB_UPLOAD | whole, me, team_key(TEAM, 0)),
        (BLOB_UPLOAD | whole, me, team_key("T04", 1)),
        (whole, office(), team_key(TEAM, 1)),
        (BLOB_UPLOAD | whole, office(), team_key("office", 1)),
    ] {
        inputs.push(blob_input(
            flags,
            &chunks_of(small, author, &key, &small.plaintext),
        ));
    }
    let elsewhere = BlobFixture {
        blob: BlobId([0x0e; 16]),
        case_id: small.case_id,
        size: small.size,
        plaintext: small.plaintext.clone(),
        sha256: small.sha256,
    };
    inputs.push(blob_input(
        whole,
        &chunks_of(&elsewhere, me, &key, &small.plaintext),
    ));
    let mut cut = blob_input(BLOB_LARGE | (3 << 3), &large_chunks);
    cut.truncate(cut.len() - 100);
    inputs.push(cut);
    inputs.push(blob_input(whole, &[b"CBK1 not a chunk".to_vec()]));
    write("blob_chunk", inputs);
}

/// The `import` seeds: CSV and JSON Lines as people and tools write them (source ids, rows
/// alike, the spreadsheet-safe `'` escapes, a byte order mark, a quoted cell over two lines,
/// groups as nested objects, numbers, booleans and nulls, an office confirmation, an ODK
/// Central export through the map), and files an import refuses.
fn imports() {
    let csv = |flags: u8, text: &str| [&[flags][..], text.as_bytes()].concat();
    let odk = "\
SubmissionDate,KEY,meta-instanceID,case_type,incident-cause,incident-date,found-location-Latitude,found-location-Longitude,found-location-Accuracy,person-civilian,person-full_name,ReviewState
2024-03-01T10:00:00.000Z,uuid:1,uuid:1,Killed,Targeted strike,2024-02-28,31.52,34.45,4.5,1,Odk Person One,approved
2024-03-02T11:00:00.000Z,uuid:2,uuid:2,Remains,In captivity,,,,,0,,
2024-03-03T12:00:00.000Z,uuid:3,,Injured,Unknown,2024-03-01,31.6,34.5,,n/a,Odk Person Three,
";
    let inputs = vec![
        csv(
            IMPORT_CSV,
            "kind,place,person.name,source_id\nkilled,KHR,Amina K.,A-1\ninjured,KHR,'=HYPERLINK(\"http://x\"),A-2\n",
        ),
        csv(
            0,
            "place,kind,person.name,incident.cause,found.lat,found.lon\nKHR,killed,''quoted,targeted_strike,31.5,'-34.25\nKHR,killed,'tis,,,\nKHR,killed,'tis,,,\n\nKHR,remains,'@SUM(A1),unknown,,\n",
        ),
        csv(
            IMPORT_CSV,
            "\u{feff}kind,place,status,status_basis,incident.narrative\nkilled,KHR,confirmed,Autopsy report,\"two\nlines, \"\"quoted\"\"\"\ninjured,KHR,under_investigation,Family report,\n",
        ),
        csv(IMPORT_CSV | IMPORT_MAPPED, odk),
        csv(IMPORT_MAPPED, odk),
        csv(
            IMPORT_JSON_LINES,
            "{\"kind\":\"killed\",\"place\":\"KHR\",\"source_id\":\"J-1\",\"person\":{\"name\":\"Amina K.\",\"civilian\":true},\"found\":{\"lat\":31.5,\"lon\":34.25}}\n\n{\"kind\":\"injured\",\"place\":\"KHR\",\"person.name\":null,\"torture_signs\":false}\n",
        ),
        csv(
            0,
            "\u{feff}{\"kind\":\"missing\",\"place\":\"KHR\",\"status\":\"rejected\",\"status_basis\":\"Found alive\"}\n{\"kind\":\"missing\",\"place\":\"KHR\"}\n{\"kind\":\"missing\",\"place\":\"KHR\"}\n",
        ),
        csv(
            IMPORT_JSON_LINES | IMPORT_MAPPED,
            "{\"case_type\":\"Killed\",\"meta-instanceID\":\"uuid:9\",\"KEY\":\"uuid:9\",\"person-civilian\":\"n/a\"}\n",
        ),
        // Refused: a source id twice, an unknown column, a list, no place, a ragged row,
        // a basis without a status, not UTF-8.
        csv(IMPORT_CSV, "kind,place,source_id\nkilled,KHR,X\nkilled,KHR, X \n"),
        csv(IMPORT_CSV, "kind,place,colour\nkilled,KHR,red\n"),
        csv(IMPORT_JSON_LINES, "{\"kind\":\"killed\",\"place\":[\"KHR\"]}\n"),
        csv(IMPORT_CSV, "kind\nkilled\n"),
        csv(IMPORT_CSV, "kind,place\nkilled,KHR,extra\n"),
        csv(IMPORT_CSV, "kind,place,status_basis\nkilled,KHR,because\n"),
        [&[IMPORT_CSV][..], b"kind,place\nkilled,KH\xffR\n"].concat(),
    ];
    write("import", inputs);
}
