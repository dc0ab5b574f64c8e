//! What each fuzz target does with its input, one function per target.
//!
//! This file is the only copy of that logic. The cargo-fuzz targets in `fuzz/fuzz_targets/`
//! call it through the `cairn_fuzz` library, and the stable regression test
//! `tests/tests/fuzz_regressions.rs` includes it with `#[path]` and runs it on every file in
//! `fuzz/regressions/<target>/`. So it may use only crates both have: `cairn-crypto`,
//! `cairn-protocol`, `cairn-model`, `serde_json`, `serde_urlencoded`, `time`, `uuid`.
//!
//! Each function takes arbitrary bytes and must return without panicking, whatever they are.
//! Besides "no panic", a few functions assert properties the decoders promise (an accepted
//! encoding re-encodes to the same bytes; a roster does not depend on statement order): a
//! failed assertion is a bug to fix like a crash.

use std::sync::OnceLock;

use time::OffsetDateTime;
use uuid::Uuid;

use cairn_crypto::{unlock_keys, DeviceKeys, Keyring, SealedChange, SecretString, TeamKey};
use cairn_model::{screen_change, CaseDoc, Edit, Kind, Reference};
use cairn_protocol::{
    decode_push, encode_push, paths, reconcile, validate_team, verify_request, Act, Admission,
    Admit, DeviceLine, DevicePublic, ErrorBody, ErrorCode, JoinResponse, OfficeKeys, PullPage,
    PullQuery, PushResponse, Receipt, Roster, Statement,
};

/// What every target does: take any bytes, return without panicking.
pub type Target = fn(&[u8]);

/// Every target: its name (the folder under `fuzz/regressions/`) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("sealed_change", sealed_change),
    ("pull_page", pull_page),
    ("push_body", push_body),
    ("admission", admission),
    ("roster", roster),
    ("server_json", server_json),
    ("request_auth", request_auth),
    ("case_changes", case_changes),
];

/// The passphrase of the fixture key files in `fuzz/fixtures/` (made with the lowest scrypt
/// cost, so unlocking them is instant). They are test keys, not secrets.
pub const FIXTURE_PASSPHRASE: &str = "cairn fuzz fixture, not a secret";

/// The request time every `request_auth` seed is signed at (and the target checks against);
/// also the time admissions are opened at.
pub const REQUEST_TIME: u64 = 1_790_000_000;
/// The method and path every `request_auth` input is checked as.
pub const REQUEST_METHOD: &str = "POST";
/// See [`REQUEST_METHOD`].
pub const REQUEST_PATH: &str = paths::PUSH;

/// The team of the fixed device (and of [`held`]).
pub const TEAM: &str = "T03";
/// The server every fixed admission names.
pub const SERVER: &str = "https://127.0.0.1:8443";
/// The certificate fingerprint every fixed admission names.
pub const FINGERPRINT: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// Far in the future, so fixed admissions are unexpired at [`REQUEST_TIME`].
pub const EXPIRES: u64 = 4_000_000_000;

/// The signature domain of sealed changes as [`DeviceKeys::sign`] spells it: it signs
/// `domain || 0 || message`, which is exactly what a sealed change's signature covers
/// (`"cairn sealed change v2\0" || header || ciphertext`). The `sealed_change` target uses it to
/// re-sign mutated changes the way an admitted attacker would sign his own, so that the
/// fuzzer reaches the team-key decryption behind the signature check.
const SEALED_DOMAIN: &str = "cairn sealed change v2";
const SIGNATURE: usize = 64;

/// The receiving device of every target: a fixed key, so that seeds admitting it open.
pub fn device() -> &'static DeviceKeys {
    static KEYS: OnceLock<DeviceKeys> = OnceLock::new();
    KEYS.get_or_init(|| fixture(include_bytes!("../fixtures/device.key")))
}

/// The office every roster statement, admission and receipt is checked against: a fixed key.
pub fn office() -> &'static DeviceKeys {
    static KEYS: OnceLock<DeviceKeys> = OnceLock::new();
    KEYS.get_or_init(|| fixture(include_bytes!("../fixtures/office.key")))
}

fn fixture(file: &[u8]) -> DeviceKeys {
    let passphrase = SecretString::from(FIXTURE_PASSPHRASE.to_owned());
    match unlock_keys(file, &passphrase) {
        Ok(keys) => keys,
        Err(e) => {
            panic!("fuzz/fixtures key file does not open ({e}); run the seeds tool with --fixtures")
        }
    }
}

/// A fixed team key: its bytes follow from the team and epoch alone (test keys, not secrets),
/// so seeds sealed under it open with [`keyring`] in any process.
pub fn team_key(team: &str, epoch: u32) -> TeamKey {
    let mut bytes = [0u8; 32];
    let label = team.as_bytes();
    for (i, b) in bytes.iter_mut().enumerate() {
        let from_team = label.get(i % label.len().max(1)).copied().unwrap_or(0);
        *b = from_team ^ (i as u8).wrapping_mul(37) ^ epoch.to_be_bytes()[i % 4];
    }
    TeamKey::from_bytes(team, epoch, bytes)
}

/// The teams and epochs of [`keyring`].
pub const KEYRING: &[(&str, u32)] = &[(TEAM, 1), (TEAM, 2), ("T04", 1), ("office", 1)];

/// The keys every sealed change is opened with: [`team_key`] of each of [`KEYRING`].
pub fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = Keyring::default();
        for (team, epoch) in KEYRING {
            ring.insert(team_key(team, *epoch));
        }
        ring
    })
}

/// The act admitting the fixed device into [`TEAM`] at epoch 1, granting nothing (a grant is
/// an age file, random: without one the statement is the same in every process).
fn held_act() -> Act {
    Act::Admit(Admit {
        device: DevicePublic::from_keys(device()),
        name: Some("fixture device".into()),
        sealed_name: None,
        team: TEAM.into(),
        epoch: 1,
        grants: Vec::new(),
        server: SERVER.into(),
        fingerprint: FINGERPRINT.into(),
        expires_at: EXPIRES,
    })
}

/// What the fixed device holds before it syncs: statement 1, the office admitting it
/// ([`held_act`], signed by [`office`]; Ed25519 signatures are deterministic).
pub fn held() -> &'static [Statement] {
    static HELD: OnceLock<Vec<Statement>> = OnceLock::new();
    HELD.get_or_init(
        || match Statement::issue(office(), 1, [0; 32], 1_000, held_act()) {
            Ok(s) => vec![s],
            Err(e) => panic!("the fixed held statement does not issue: {e}"),
        },
    )
}

/// The roster [`held`] builds: the one a server holds when statements reach it.
pub fn held_roster() -> &'static Roster {
    static ROSTER: OnceLock<Roster> = OnceLock::new();
    ROSTER.get_or_init(|| Roster::build(&OfficeKeys::from_keys(office()), held()))
}

/// A sealed change as a device receives it in a pull page or a server in a push:
/// parse, verify, decrypt with the fixed keyring.
/// Then the same bytes re-signed by the fixed device, so that mutated ciphertexts (and
/// mutated teams and epochs) reach the team-key decryption, and mutated plaintexts
/// Automerge's decoder.
pub fn sealed_change(data: &[u8]) {
    let Ok(sealed) = SealedChange::from_bytes(data) else {
        return;
    };
    assert_eq!(
        sealed.to_bytes(),
        data,
        "a parsed sealed change re-encodes differently"
    );
    open_and_read(&sealed);

    let me = device();
    let mut forged = sealed;
    forged.author = me.id();
    let bytes = forged.to_bytes();
    let Some(body) = bytes.len().checked_sub(SIGNATURE).map(|n| &bytes[..n]) else {
        return;
    };
    forged.signature = me.sign(SEALED_DOMAIN, body);
    assert!(
        forged.verify().is_ok(),
        "re-signing no longer matches SealedChange::verify: did the sealed-change signature \
         domain or layout change? Update SEALED_DOMAIN in fuzz/src/targets.rs"
    );
    open_and_read(&forged);
}

fn open_and_read(sealed: &SealedChange) {
    // What the plaintext holds is the `case_changes` target's business.
    let _ = sealed.open(keyring());
}

/// A pull page as the sync client decodes it, then each change in it as the vault parses
/// and verifies it before anything else.
pub fn pull_page(data: &[u8]) {
    let Ok(page) = PullPage::decode(data) else {
        return;
    };
    assert_eq!(
        page.encode(),
        data,
        "a decoded pull page re-encodes differently"
    );
    for (_, bytes) in &page.changes {
        if let Ok(sealed) = SealedChange::from_bytes(bytes) {
            let _ = sealed.verify();
        }
    }
}

/// A push body as the server decodes it, then each frame as the server checks it
/// (parse and verify; the roster decides the rest).
pub fn push_body(data: &[u8]) {
    let Ok(frames) = decode_push(data) else {
        return;
    };
    assert_eq!(
        encode_push(&frames),
        data,
        "a decoded push body re-encodes differently"
    );
    for frame in frames {
        if let Ok(sealed) = SealedChange::from_bytes(frame) {
            let _ = sealed.verify();
        }
    }
}

/// The texts people paste between the office and devices: an admission line (from the office
/// into `cairn join`), opened as the fixed device; a device line (`cairn id`, from a device
/// into `cairn office admit`); the office key file (`cairn-server init --office-key`); and the
/// team name check. Anything parsed must parse back from its own text.
pub fn admission(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(admission) = Admission::parse(text) {
        let again = Admission::parse(&admission.to_text());
        assert_eq!(
            again.as_ref(),
            Ok(&admission),
            "a parsed admission does not parse back"
        );
        if let Ok(admit) = admission.admit() {
            let _ = admit.device.short_code();
        }
        let _ = admission.open(device(), REQUEST_TIME);
        // Its statement is what `cairn join` posts: its JSON goes through the server's parser.
        let json = serde_json::to_vec(&admission.statement).unwrap_or_default();
        let back = serde_json::from_slice::<Statement>(&json).ok();
        assert_eq!(
            back.as_ref(),
            Some(&admission.statement),
            "an admission's statement does not parse back from its JSON"
        );
        // The same statement as if the fixed office had signed it, so that mutated grants get
        // past the signature into age's decoder.
        let s = &admission.statement;
        if let Ok(statement) = Statement::issue(office(), s.counter, s.prev, s.at, s.act.clone()) {
            let resigned = Admission {
                office: OfficeKeys::from_keys(office()),
                statement,
            };
            let _ = resigned.open(device(), REQUEST_TIME);
        }
    }
    if let Ok(line) = DeviceLine::parse(text) {
        let again = DeviceLine::parse(&line.to_text());
        assert_eq!(
            again.as_ref(),
            Ok(&line),
            "a parsed device line does not parse back"
        );
        let _ = line.keys.short_code();
        let _ = line.keys.age_recipient();
    }
    if let Ok(keys) = text.parse::<OfficeKeys>() {
        let again = keys.to_string().parse::<OfficeKeys>();
        assert_eq!(
            again.as_ref(),
            Ok(&keys),
            "parsed office keys do not parse back"
        );
    }
    let _ = validate_team(text);
}

/// The roster as a device fetches it from `GET /v2/roster` (and as the server rebuilds it):
/// a JSON list of statements, each checked against the fixed office key, then every query
/// a device or the server asks of the result, the keys it grants the fixed device and the
/// office, and [`reconcile`] as the fixed device holding [`held`]. The result must not depend
/// on the order of the statements, the chain it keeps must rebuild to itself, and reconciling
/// must never give the device a roster older than the one it holds.
pub fn roster(data: &[u8]) {
    let Ok(mut statements) = serde_json::from_slice::<Vec<Statement>>(data) else {
        return;
    };
    let keys = OfficeKeys::from_keys(office());
    let roster = Roster::build(&keys, &statements);
    for member in roster.members() {
        let _ = roster.may_write(&member.id, u64::MAX);
        let _ = roster.may_connect(&member.id);
        let _ = roster.epoch(&member.team);
        let _ = roster.is_office(&member.id);
    }
    let _ = roster.may_write(&device().id(), 1);
    for s in &statements {
        let _ = roster.place(s);
    }
    let _ = roster.keyring(device());
    let _ = roster.keyring(office());

    let rebuilt = Roster::build(&keys, roster.chain());
    assert!(
        rebuilt.chain() == roster.chain() && rebuilt.members().eq(roster.members()),
        "the chain a roster keeps does not rebuild to the same roster"
    );

    let held_head = held_roster().head();
    let kept = reconcile(&keys, held(), &statements);
    let kept = Roster::build(&keys, &kept.statements);
    assert!(
        kept.head() >= held_head && kept.chain().starts_with(held_roster().chain()),
        "reconcile gave up statements the device held"
    );
    // Arbitrary statements as the ones held: nothing to assert but no panic.
    let _ = reconcile(&keys, &statements, held());

    statements.reverse();
    let reversed = Roster::build(&keys, &statements);
    assert_eq!(
        (reversed.head(), reversed.head_hash()),
        (roster.head(), roster.head_hash()),
        "the roster's chain depends on the order of its statements"
    );
    assert!(
        roster.members().eq(reversed.members()),
        "the roster depends on the order of its statements"
    );
}

/// The JSON bodies a server takes from clients (`POST /v2/join`: a [`Statement`] admitting
/// the requester; `POST /v2/roster`: a list of statements to append; `POST /v2/receipt`: a
/// list of team [`Receipt`]s; the pull query string), each checked as the server checks it, placed against
/// the roster of [`held`]; and the JSON answers a device takes from the server
/// ([`PushResponse`], [`JoinResponse`], [`ErrorBody`]; a [`Receipt`] from `GET /v2/receipt`).
/// Every input is tried as each of them; what parses must parse back from its own JSON.
pub fn server_json(data: &[u8]) {
    let office = office().id();
    let roster = held_roster();
    if let Ok(statement) = serde_json::from_slice::<Statement>(data) {
        let _ = statement.verify(&office);
        let _ = (statement.device().tag(), statement.team(), statement.hash());
        if let Act::Admit(admit) = &statement.act {
            let _ = admit.device.short_code();
            let _ = admit.open_name(None);
        }
        let _ = roster.place(&statement);
        let json = serde_json::to_vec(&statement).unwrap_or_default();
        let back = serde_json::from_slice::<Statement>(&json).ok();
        assert_eq!(
            back.as_ref(),
            Some(&statement),
            "a statement does not parse back"
        );
    }
    if let Ok(statements) = serde_json::from_slice::<Vec<Statement>>(data) {
        for s in &statements {
            let _ = roster.place(s);
        }
        let json = serde_json::to_vec(&statements).unwrap_or_default();
        let back = serde_json::from_slice::<Vec<Statement>>(&json).ok();
        assert_eq!(
            back.as_ref(),
            Some(&statements),
            "a list of statements does not parse back"
        );
    }
    if let Ok(receipt) = serde_json::from_slice::<Receipt>(data) {
        let _ = receipt.verify(&office);
        let _ = receipt.upto(&device().id());
        let json = serde_json::to_vec(&receipt).unwrap_or_default();
        let back = serde_json::from_slice::<Receipt>(&json).ok();
        assert_eq!(
            back.as_ref(),
            Some(&receipt),
            "a receipt does not parse back"
        );
    }
    if let Ok(receipts) = serde_json::from_slice::<Vec<Receipt>>(data) {
        for r in &receipts {
            let _ = r.verify(&office);
        }
        let json = serde_json::to_vec(&receipts).unwrap_or_default();
        let back = serde_json::from_slice::<Vec<Receipt>>(&json).ok();
        assert_eq!(
            back.as_ref(),
            Some(&receipts),
            "a list of receipts does not parse back"
        );
    }
    if let Ok(query) = std::str::from_utf8(data) {
        // What axum's `Query` extractor does with the query string of `GET /v2/pull`.
        let _ = serde_urlencoded::from_str::<PullQuery>(query);
    }
    let _ = serde_json::from_slice::<PushResponse>(data);
    if let Ok(joined) = serde_json::from_slice::<JoinResponse>(data) {
        let json = serde_json::to_vec(&joined).unwrap_or_default();
        let back = serde_json::from_slice::<JoinResponse>(&json).ok();
        assert_eq!(
            back.as_ref(),
            Some(&joined),
            "a join answer does not parse back"
        );
    }
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(data) {
        let _ = ErrorCode::parse(&error.code).map(ErrorCode::http_status);
    }
}

/// The `authorization` header the server checks on every request: the input's first line
/// is the header, the rest the body, checked as a push at [`REQUEST_TIME`].
pub fn request_auth(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // HTTP header values reach the server as text (axum's `to_str`).
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let _ = verify_request(
        header,
        REQUEST_METHOD,
        REQUEST_PATH,
        body,
        REQUEST_TIME,
        300,
    );
}

/// The case every `case_changes` input is applied to, and genuine changes of it.
pub struct CaseFixture {
    /// The case's snapshot as the receiving vault stores it ([`CaseDoc::save`]).
    pub saved: Vec<u8>,
    /// The case's id.
    pub id: Uuid,
    /// The raw change that created it (by the fixed device, [`device`]).
    pub created: Vec<u8>,
    /// Genuine edits of it by a teammate (the fixed office key's actor), in order, each
    /// depending on the one before.
    pub edits: Vec<Vec<u8>>,
}

/// The fixed case: created by [`device`] at a fixed time with a fixed id, then edited by
/// [`office`]; everything deterministic but the keys' fixture files.
pub fn case_fixture() -> &'static CaseFixture {
    static FIXTURE: OnceLock<CaseFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("a valid time");
        let creator = device().id();
        let id = Uuid::from_u128(0x0c0f_fee0_0000_4000_8000_0000_0000_0001);
        let reference =
            Reference::new("KHR", "T03", &creator.tag(), 17).expect("a valid reference");
        let (doc, created) = CaseDoc::create(
            &creator.0,
            id,
            &reference,
            Kind::Injured,
            "creator",
            now,
            &[Edit::set("person.name", "Amina K.")],
        )
        .expect("create the fixture case");
        let mut teammate =
            CaseDoc::from_changes(std::slice::from_ref(&created), &office().id().0, None)
                .expect("the fixture case as a teammate receives it");
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
            vec![
                Edit::Source {
                    kind: "witness".into(),
                    contact: None,
                    consent: "yes".into(),
                    at: None,
                },
                Edit::set("person.name", "Amina Karimi"),
            ],
        ];
        let edits = edits
            .iter()
            .filter_map(|e| teammate.edit(e, "teammate", now).expect("a fixture edit"))
            .collect();
        CaseFixture {
            saved: doc.save(),
            id,
            created,
            edits,
        }
    })
}

/// `case_changes` input flag: add the genuine edit chosen by the two low bits, with one byte
/// changed as the three mutation bytes say.
pub const CASE_MUTATE: u8 = 0b0000_0100;
/// `case_changes` input flag: apply to a case first seen here (as the vault does for a case it
/// has no snapshot of) instead of the stored case.
pub const CASE_NEW: u8 = 0b0000_1000;
/// `case_changes` input flag, with [`CASE_NEW`]: the case's creation comes first.
pub const CASE_WITH_CREATION: u8 = 0b0001_0000;
const CASE_MAX_CHANGES: usize = 8;

/// Builds a `case_changes` input: `flags`, three mutation bytes (position in the genuine edit,
/// big-endian u16, then the byte to XOR there), then each change as `[u16 BE length][bytes]`.
pub fn case_input(flags: u8, mutation: [u8; 3], changes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&mutation);
    for change in changes {
        let len = u16::try_from(change.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&change[..usize::from(len)]);
    }
    out
}

/// Received Automerge changes applied to a case, along the vault's receive path
/// (`Vault::apply_pulled` and `merge_case` in crates/vault/src/sync.rs): each raw change is
/// screened ([`screen_change`]), refused alone if it fails; the rest are applied to the
/// stored case loaded from its snapshot ([`CaseDoc::apply_changes`], which judges the merged
/// case), all at once and, if that is refused, one at a time; or, for a case first seen here,
/// rebuilt with [`CaseDoc::from_changes`]. An accepted case is then read as the vault and the
/// command line read it, and its snapshot must load again.
///
/// Input: see [`case_input`]. Mutated changes keep their (now wrong) checksums: Automerge
/// does not check a change's checksum when it decodes one, so none need fixing.
pub fn case_changes(data: &[u8]) {
    let fixture = case_fixture();
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (mutation, mut rest) = rest.split_at(rest.len().min(3));
    let mut raw: Vec<Vec<u8>> = Vec::new();
    while raw.len() < CASE_MAX_CHANGES && rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        raw.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    if flags & CASE_MUTATE != 0 && mutation.len() == 3 && !fixture.edits.is_empty() {
        let mut edit = fixture.edits[usize::from(flags & 0b11) % fixture.edits.len()].clone();
        let at = usize::from(u16::from_be_bytes([mutation[0], mutation[1]])) % edit.len();
        edit[at] ^= mutation[2];
        raw.push(edit);
    }
    // As the vault opens each change: screened first, refused alone if it fails.
    let screened: Vec<Vec<u8>> = raw
        .into_iter()
        .filter(|change| screen_change(change).is_ok())
        .collect();
    let me = device().id().0;
    if flags & CASE_NEW == 0 {
        let Ok(stored) = CaseDoc::load(&fixture.saved, &me) else {
            panic!("the fixture case's snapshot does not load");
        };
        let merge = |batch: &[Vec<u8>]| {
            let mut doc = stored.clone();
            doc.apply_changes(batch).map(|()| accepted(doc, fixture.id))
        };
        if merge(&screened).is_err() && screened.len() > 1 {
            for one in screened.chunks(1) {
                let _ = merge(one);
            }
        }
    } else {
        let mut offered = screened;
        if flags & CASE_WITH_CREATION != 0 {
            offered.insert(0, fixture.created.clone());
        }
        if let Ok(doc) = CaseDoc::from_changes(&offered, &me, None) {
            // The vault checks the creation against its signed author's tag.
            if let Some(creator) = doc.creator() {
                if let Ok(key) = <[u8; 32]>::try_from(creator.as_slice()) {
                    std::hint::black_box(
                        cairn_crypto::device_tag(&key) == doc.reference().device_tag,
                    );
                }
            }
            accepted(doc, fixture.id);
        }
    }
}

/// What the vault and the command line do with a case once a merge is accepted.
fn accepted(mut doc: CaseDoc, id: Uuid) {
    std::hint::black_box(doc.id() == id);
    let _ = doc.reference().to_string();
    let _ = doc.missing_deps();
    let _ = doc.headline();
    let saved = doc.save();
    let _ = doc.case();
    let _ = doc.history();
    let _ = doc.conflicts();
    let _ = doc.to_json();
    let _ = doc.changes();
    let reloaded = CaseDoc::load(&saved, &device().id().0);
    assert!(
        reloaded.is_ok(),
        "an accepted case's snapshot does not load again: {:?}",
        reloaded.err()
    );
    // A local edit on top, as the next `cairn case edit` would make.
    if let Ok(now) = OffsetDateTime::from_unix_timestamp(1_790_000_600) {
        let _ = doc.edit(&[Edit::set("torture_signs", "no")], "me", now);
    }
}
