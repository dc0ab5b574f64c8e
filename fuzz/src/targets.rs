//! What each fuzz target does with its input, one function per target.
//!
//! This file is the only copy of that logic. The cargo-fuzz targets in `fuzz/fuzz_targets/`
//! call it through the `cairn_fuzz` library, and the stable regression test
//! `tests/tests/fuzz_regressions.rs` includes it with `#[path]` and runs it on every file in
//! `fuzz/regressions/<target>/`. So it may use only crates both have: `cairn-crypto`,
//! `cairn-protocol`, `cairn-model`, `cairn-vault`, `serde_json`, `serde_urlencoded`, `sha2`,
//! `time`, `uuid`.
//!
//! Each function takes arbitrary bytes and must return without panicking, whatever they are.
//! Besides "no panic", a few functions assert properties the decoders promise (an accepted
//! encoding re-encodes to the same bytes; a roster does not depend on statement order): a
//! failed assertion is a bug to fix like a crash.

use std::sync::OnceLock;

use time::OffsetDateTime;
use uuid::Uuid;

use sha2::{Digest, Sha256};

use cairn_crypto::{
    chunk_count, chunk_len, unlock_keys, BlobId, DeviceKeys, KeyShare, Keyring, SealedChange,
    SealedChunk, SecretString, TeamKey,
};
use cairn_model::{screen_change, CaseDoc, Edit, Kind, Reference};
use cairn_protocol::{
    decode_push, encode_frame, encode_push, paths, reconcile, validate_team, verify_request, Act,
    Admission, Admit, DeviceLine, DevicePublic, ErrorBody, ErrorCode, FrameReader, JoinResponse,
    OfficeKeys, PullPage, PullQuery, PushResponse, Receipt, Roster, Statement, MAX_CHUNK_FRAME,
};
use cairn_vault::import_file::{
    formula, read as read_rows, sniff, Converter, Format, LineError, Mapping, Parsed, Rows,
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
    ("blob_chunk", blob_chunk),
    ("import", import),
    ("office_key_share", office_key_share),
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
        let _ = (
            statement.device().map(|d| d.tag()),
            statement.team(),
            statement.hash(),
        );
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
            CaseDoc::from_changes(std::slice::from_ref(&created), &office().id().0, &[])
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
        if let Ok(doc) = CaseDoc::from_changes(&offered, &me, &[]) {
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

/// The signature domain of sealed chunks as [`DeviceKeys::sign`] spells it (see
/// [`SEALED_DOMAIN`]): `blob_chunk` re-signs mutated chunks with it.
const CHUNK_DOMAIN: &str = "cairn sealed chunk v1";

/// An attachment a `blob_chunk` input is the download or the upload of: what the device's case
/// lists (blob, author, case, size, count, team, SHA-256) and the server's roster knows.
pub struct BlobFixture {
    /// Its blob id.
    pub blob: BlobId,
    /// The case listing it.
    pub case_id: [u8; 16],
    /// Its plaintext size.
    pub size: u64,
    /// Its plaintext (deterministic; the seeds seal it under [`team_key`]).
    pub plaintext: Vec<u8>,
    /// The SHA-256 of the plaintext, as the case records it at capture.
    pub sha256: [u8; 32],
}

/// The two attachments of `blob_chunk`, sealed by [`device`] for [`TEAM`]: 0 is one chunk of
/// 100 bytes (small inputs), 1 is two chunks, 16 KiB and 50 bytes (order, count and the hash
/// of the whole file).
pub fn blob_fixtures() -> &'static [BlobFixture; 2] {
    static FIXTURES: OnceLock<[BlobFixture; 2]> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let make = |n: u8, size: usize| {
            let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8 ^ n).collect();
            BlobFixture {
                blob: BlobId([0xb0 | n; 16]),
                case_id: *Uuid::from_u128(0x0c0f_fee0_0000_4000_8000_0000_0000_0001).as_bytes(),
                size: size as u64,
                sha256: Sha256::digest(&plaintext).into(),
                plaintext,
            }
        };
        [make(0, 100), make(1, cairn_crypto::CHUNK_SIZE + 50)]
    })
}

/// `blob_chunk` input flag: the stream is an upload the server receives (else a download the
/// device receives).
pub const BLOB_UPLOAD: u8 = 0b0000_0001;
/// `blob_chunk` input flag: the attachment is [`blob_fixtures`]`[1]` (else `[0]`).
pub const BLOB_LARGE: u8 = 0b0000_0010;
/// `blob_chunk` input flag: each chunk is re-signed by [`device`] before it is checked, as its
/// author (or any admitted attacker, for his own blobs) can sign what he likes, so mutated
/// headers and ciphertexts get past the signature.
pub const BLOB_RESIGN: u8 = 0b0000_0100;
/// The sizes of the pieces a `blob_chunk` stream arrives in, picked by bits 3 to 5 of the flags.
const BLOB_PIECES: [usize; 8] = [1, 3, 4, 5, 64, 4096, 20_000, usize::MAX];

/// Builds a `blob_chunk` input: `flags`, then each sealed chunk framed as on the wire.
pub fn blob_input(flags: u8, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![flags];
    for chunk in chunks {
        out.extend_from_slice(&encode_frame(chunk));
    }
    out
}

/// Attachment chunks as they arrive: an upload body at the server (`POST /v2/blobs/…`,
/// crates/server/src/blob.rs) or a download answer at the device (`GET /v2/blobs/…`,
/// crates/sync/src/blob.rs), split by [`FrameReader`] from pieces of the size the flags pick;
/// each frame parsed ([`SealedChunk::from_bytes`], which must re-encode to the same bytes),
/// optionally re-signed by the fixed device, then checked as the receiving side checks it: the
/// server's `check` (blob, signature, author is the sender, no draft epoch, a valid team, the
/// sender's own team in the roster of [`held`]), or the sync client's and the vault's
/// (`store_fetched_chunk`: next index, blob, author, signature, case, size, count, team, a chunk
/// that exists), and once every chunk is here the vault's `finish_blob`: each opens with the
/// fixed keyring and the plaintexts hash to the SHA-256 the case recorded. The vault's own
/// functions need its database, so their checks are restated here. Input: see [`blob_input`].
pub fn blob_chunk(data: &[u8]) {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let wanted = &blob_fixtures()[usize::from(flags & BLOB_LARGE != 0)];
    let piece = BLOB_PIECES[usize::from((flags >> 3) & 0b111)];
    let upload = flags & BLOB_UPLOAD != 0;
    let resign = flags & BLOB_RESIGN != 0;
    let mut reader = FrameReader::new();
    let mut framed = Vec::new();
    let mut broken = false;
    let mut received = Received::default();
    'stream: for p in stream.chunks(piece.min(stream.len()).max(1)) {
        reader.push(p);
        // Bounded: one frame not yet whole plus the piece just pushed.
        assert!(
            reader.pending() <= 4 + MAX_CHUNK_FRAME + p.len(),
            "the frame reader holds {} bytes",
            reader.pending()
        );
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    framed.extend_from_slice(&encode_frame(&frame));
                    if !received.take(wanted, &frame, upload, resign) {
                        // The receiving side stops at the first refused chunk.
                        broken = true;
                        break 'stream;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    broken = true;
                    break 'stream;
                }
            }
        }
    }
    if !broken && reader.finish().is_ok() {
        assert_eq!(
            framed, stream,
            "a chunk stream read whole does not re-frame to its bytes"
        );
    }
    if !upload && received.plain.len() == chunk_count(wanted.size).map_or(0, |c| c as usize) {
        // The vault's `finish_blob`: the whole file must hash to what the case recorded.
        let mut hash = Sha256::new();
        for plain in &received.plain {
            hash.update(plain);
        }
        let whole: [u8; 32] = hash.finalize().into();
        if whole == wanted.sha256 {
            assert_eq!(
                received.plain.concat(),
                wanted.plaintext,
                "a blob whose SHA-256 matches holds other bytes"
            );
        }
    }
}

/// What a `blob_chunk` stream delivered so far: each accepted chunk's plaintext, in order.
#[derive(Default)]
struct Received {
    plain: Vec<Vec<u8>>,
}

impl Received {
    /// One frame as the receiving side handles it; false when it is refused.
    fn take(&mut self, wanted: &BlobFixture, frame: &[u8], upload: bool, resign: bool) -> bool {
        let Ok(mut chunk) = SealedChunk::from_bytes(frame) else {
            return false;
        };
        assert_eq!(
            chunk.to_bytes(),
            frame,
            "a parsed sealed chunk re-encodes differently"
        );
        let me = device();
        if resign {
            chunk.author = me.id();
            let bytes = chunk.to_bytes();
            let Some(body) = bytes.len().checked_sub(SIGNATURE).map(|n| &bytes[..n]) else {
                return false;
            };
            chunk.signature = me.sign(CHUNK_DOMAIN, body);
            assert!(
                chunk.verify().is_ok(),
                "re-signing no longer matches SealedChunk::verify: did the chunk signature \
                 domain or layout change? Update CHUNK_DOMAIN in fuzz/src/targets.rs"
            );
        }
        // Whatever the checks say, the team key opens or refuses it without a panic, and what
        // it opens is exactly the chunk's share of the blob its header states.
        let opened = chunk.open(keyring());
        if let Ok(plain) = &opened {
            assert_eq!(
                Some(plain.len()),
                chunk_len(chunk.size, chunk.index),
                "an opened chunk's length is not what its header states"
            );
        }
        if upload {
            // The server's `check`, for an upload by the fixed device to its own blob.
            let roster = held_roster();
            let fine = chunk.blob == wanted.blob
                && chunk.verify().is_ok()
                && chunk.author == me.id()
                && chunk.epoch != 0
                && validate_team(&chunk.team).is_ok()
                && (roster.is_office(&me.id())
                    || roster.member(&me.id()).map(|m| m.team.as_str())
                        == Some(chunk.team.as_str()));
            return fine;
        }
        // The sync client's checks of a download, then the vault's `store_fetched_chunk`.
        let index = self.plain.len();
        let count = chunk_count(wanted.size).unwrap_or(0);
        let fine = chunk.blob == wanted.blob
            && usize::try_from(chunk.index).is_ok_and(|i| i == index)
            && chunk.index < count
            && chunk.author == me.id()
            && chunk.verify().is_ok()
            && chunk.case_id == wanted.case_id
            && (chunk.count, chunk.size, chunk.team.as_str()) == (count, wanted.size, TEAM)
            && chunk_len(chunk.size, chunk.index).is_some();
        if !fine {
            return false;
        }
        // The vault's `finish_blob` opens each stored chunk; one that does not open fails it.
        match opened {
            Ok(plain) => {
                self.plain.push(plain);
                true
            }
            Err(_) => false,
        }
    }
}

/// The file name every `import` input is read as (a row without a source id is identified by
/// it and its content).
pub const IMPORT_FILE: &str = "list.csv";
/// `import` input flags, bits 0 and 1: read as CSV (1), as JSON Lines (2), else by its first
/// byte as `cairn case import` does for a file without a known extension.
pub const IMPORT_CSV: u8 = 1;
/// See [`IMPORT_CSV`].
pub const IMPORT_JSON_LINES: u8 = 2;
/// `import` input flag: read with [`import_mapping`] (else with no mapping file).
pub const IMPORT_MAPPED: u8 = 0b0000_0100;

/// The `--map` file of `import` inputs with [`IMPORT_MAPPED`]: an ODK Central export's
/// (as in tests/tests/import.rs), its instance id as the source id: mapped columns, mapped
/// values (one to "not set"), ignored columns and a default.
pub fn import_mapping() -> &'static Mapping {
    static MAPPING: OnceLock<Mapping> = OnceLock::new();
    MAPPING.get_or_init(|| {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let mapped = Mapping::new(
            pairs(&[
                ("case_type", "kind"),
                ("incident-cause", "incident.cause"),
                ("incident-date", "incident.date"),
                ("found-location-Latitude", "found.lat"),
                ("found-location-Longitude", "found.lon"),
                ("found-location-Accuracy", "found.accuracy_m"),
                ("person-civilian", "person.civilian"),
                ("person-full_name", "person.name"),
                ("meta-instanceID", "source_id"),
            ]),
            [
                (
                    "kind",
                    pairs(&[
                        ("Killed", "killed"),
                        ("Remains", "remains"),
                        ("Injured", "injured"),
                    ]),
                ),
                (
                    "incident.cause",
                    pairs(&[
                        ("Targeted strike", "targeted_strike"),
                        ("In captivity", "captivity"),
                        ("Unknown", "unknown"),
                    ]),
                ),
                (
                    "person.civilian",
                    pairs(&[("1", "yes"), ("0", "no"), ("n/a", "")]),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            vec!["SubmissionDate".into(), "KEY".into(), "ReviewState".into()],
            pairs(&[("place", "KHR")]),
        );
        match mapped {
            Ok(mapping) => mapping,
            Err(e) => panic!("the fixed import mapping names no cairn key: {e:?}"),
        }
    })
}

/// Every row an import file gave, as the reader handed it over, on its way to a [`Converter`].
struct Recorded<'m> {
    converter: Converter<'m>,
    header: Vec<String>,
    rows: Vec<Vec<(String, String)>>,
}

impl Rows for Recorded<'_> {
    fn header(&mut self, names: &[&str]) -> Result<(), LineError> {
        self.header = names.iter().map(|n| n.to_string()).collect();
        self.converter.header(names)
    }

    fn row(&mut self, line: u64, cells: &[(&str, &str)]) -> Result<(), LineError> {
        self.rows.push(
            cells
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        );
        self.converter.row(line, cells)
    }
}

/// An import file as `cairn case import` reads it before it opens the vault
/// (`cairn_vault::import_file`): CSV with the spreadsheet-safe un-escaping of `'` or JSON
/// Lines, the `--map` mapping, each row checked and made a new case with what identifies its
/// row (its source id, or the file and its content). Then the promises: every case has a row
/// of its own (a source id given twice is refused), a case has a source id row exactly when it
/// sets `source_id`, and the rows written back as an export writes them (each CSV cell
/// escaped against formulas; JSON Lines as text members) read back as the same cases.
pub fn import(data: &[u8]) {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let format = match flags & 0b11 {
        IMPORT_CSV => Format::Csv,
        IMPORT_JSON_LINES => Format::JsonLines,
        _ => sniff(file),
    };
    let plain = Mapping::default();
    let mapping = if flags & IMPORT_MAPPED != 0 {
        import_mapping()
    } else {
        &plain
    };
    let mut recorded = Recorded {
        converter: Converter::new(mapping, IMPORT_FILE),
        header: Vec::new(),
        rows: Vec::new(),
    };
    if read_rows(file, format, &mut recorded).is_err() {
        return;
    }
    let parsed = recorded.converter.finish();
    let mut keys = std::collections::HashSet::new();
    for (line, case) in &parsed.cases {
        let Some(row) = &case.row else {
            panic!("line {line}: an imported case has no row key");
        };
        assert!(
            keys.insert(row.clone()),
            "line {line}: two rows share a key"
        );
        let source = case
            .edits
            .iter()
            .any(|e| matches!(e, cairn_model::Edit::Set { key, .. } if key == "source_id"));
        assert_eq!(
            row.starts_with(b"source_id\0"),
            source,
            "line {line}: a row is identified by a source id it does not set"
        );
    }
    for row in &recorded.rows {
        for (_, value) in row {
            assert_eq!(
                formula::unescape(&formula::escape(value)),
                value,
                "a CSV cell does not un-escape to what was escaped"
            );
        }
    }

    // Written back as an export writes it, then read again.
    let (again, format) = match format {
        Format::Csv => (rewrite_csv(&recorded.header, &recorded.rows), Format::Csv),
        Format::JsonLines => match rewrite_json_lines(&recorded.rows) {
            Some(text) => (text, Format::JsonLines),
            // Two cells of one name (`a.b` and `a: {b}`, both ignored) have no flat form.
            None => return,
        },
    };
    let mut reread = Recorded {
        converter: Converter::new(mapping, IMPORT_FILE),
        header: Vec::new(),
        rows: Vec::new(),
    };
    let result = read_rows(again.as_slice(), format, &mut reread);
    assert!(
        result.is_ok(),
        "the rows written back do not read again: {result:?}"
    );
    assert_eq!(
        same_cases(reread.converter.finish()),
        same_cases(parsed),
        "the rows written back read as other cases"
    );
}

/// The cases of a file, without their lines (a quoted cell over two lines shifts them) and
/// with each case's edits in one order (a JSON object's members come in the order of its
/// keys, a flattened member's name can sort elsewhere).
fn same_cases(parsed: Parsed) -> (Vec<String>, bool) {
    let cases = parsed
        .cases
        .into_iter()
        .map(|(_, mut case)| {
            let mut edits: Vec<String> = case.edits.iter().map(|e| format!("{e:?}")).collect();
            edits.sort();
            case.edits.clear();
            format!("{case:?} {edits:?}")
        })
        .collect();
    (cases, parsed.office_line.is_some())
}

/// Rows as `cairn export` writes CSV: the header, then every cell escaped against formulas.
fn rewrite_csv(header: &[String], rows: &[Vec<(String, String)>]) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut fine = out.write_record(header).is_ok();
    for row in rows {
        fine &= out
            .write_record(row.iter().map(|(_, v)| formula::escape(v).into_owned()))
            .is_ok();
    }
    assert!(fine, "a CSV writer in memory failed");
    out.into_inner().unwrap_or_default()
}

/// Rows as JSON Lines of text members, or `None` when a row has two cells of one name.
fn rewrite_json_lines(rows: &[Vec<(String, String)>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for row in rows {
        let mut object = serde_json::Map::new();
        for (name, value) in row {
            if object
                .insert(name.clone(), serde_json::Value::String(value.clone()))
                .is_some()
            {
                return None;
            }
        }
        out.extend_from_slice(serde_json::Value::Object(object).to_string().as_bytes());
        out.push(b'\n');
    }
    Some(out)
}

/// A share of the office key as `cairn office key recover` reads it from a file a holder gives
/// (`KeyShare::from_bytes`, issue #23): any bytes are refused or read; a share read writes out
/// as text that reads back as the same share, byte for byte; and combined with its own copy it
/// is one share, too few for any split.
pub fn office_key_share(data: &[u8]) {
    let Ok(share) = KeyShare::from_bytes(data) else {
        return;
    };
    let text = share.to_text();
    let again = KeyShare::from_bytes(text.as_bytes()).expect("a share's own text reads");
    assert_eq!(again.to_text().as_bytes(), text.as_bytes());
    let both = [("read".to_owned(), share), ("again".to_owned(), again)];
    assert!(cairn_crypto::combine(&both).is_err());
}
