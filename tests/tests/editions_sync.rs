//! Issue #25, "stored as an office record that syncs", with real processes: the office
//! publishes an edition and `cairn sync` sends it as a sealed office record (kind 2, team
//! `office`); the server holds it and serves it to office devices only; another vault of the
//! office pulls the very same signed edition. A field device cannot push a record, and a
//! record altered or swapped on the server is refused by the office device that pulls it.

use cairn_crypto::{DeviceKeys, KeyFileCost, SealedChange, SealedKind, SecretString, TeamKey};
use cairn_e2e::{edition_of, Device, Server, PASSPHRASE};
use cairn_protocol::{Outcome, OFFICE_TEAM};
use cairn_vault::{Home, NewVault, Role, SignedEdition, Vault};

/// A change as the server stores it: author, number, case id, bytes.
type Row = (Vec<u8>, i64, Vec<u8>, Vec<u8>);

/// The server's stored changes of team `office`.
fn office_rows(server: &Server) -> Vec<Row> {
    let conn = server.dir().db();
    let mut stmt = conn
        .prepare(
            "SELECT author, seq, case_id, bytes FROM changes WHERE team = ?1 ORDER BY server_seq",
        )
        .expect("query");
    stmt.query_map([OFFICE_TEAM], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Everything the server stores of changes, to tell that a refusal left it as it was.
fn server_changes(server: &Server) -> Vec<(i64, Vec<u8>)> {
    let conn = server.dir().db();
    let mut stmt = conn
        .prepare("SELECT server_seq, bytes FROM changes ORDER BY server_seq")
        .expect("query");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// A new vault of the office under `dir` (its keys, and the team keys and place on the
/// server of `source`, a vault of the office; nothing of its log: a second office device, or
/// one restored), synced once. Office devices share one receipt counter, which `source`'s
/// state carries on (restoring it is issue #23's).
fn office_replica(
    office: &Device,
    source: &Vault,
    dir: &std::path::Path,
) -> (Vault, cairn_sync::Summary) {
    let pass = SecretString::from(PASSPHRASE.to_owned());
    let new = NewVault {
        team: OFFICE_TEAM.into(),
        name: None,
        role: Role::Office,
    };
    let mut replica = Home::new(dir)
        .create_replica(
            &pass,
            KeyFileCost::LogN(4),
            new,
            time::OffsetDateTime::now_utc(),
            office.keys(),
            source.keyring().clone(),
        )
        .expect("replica");
    // The source's server, chain and receipt; nothing of its pull or push progress.
    replica
        .update()
        .endpoint(source.endpoint().expect("endpoint"))
        .roster(source.roster_chain().expect("roster"))
        .commit()
        .expect("endpoint and roster");
    if let Some(receipt) = source.receipt().expect("receipt") {
        replica.keep_receipt(&receipt).expect("receipt");
    }
    let summary = runtime()
        .block_on(cairn_sync::sync(
            &mut replica,
            // Every change pulled one by one, the records among them: the office's checkpoint
            // would bring them whole (tests/tests/checkpoints.rs).
            &cairn_sync::Options {
                checkpoints: false,
                ..cairn_sync::Options::default()
            },
            &(),
        ))
        .map_err(|(e, _)| e)
        .expect("the replica syncs");
    (replica, summary)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Replaces the stored bytes of the record (author, seq) on the server, as a compromised
/// server could.
fn swap_on_server(server: &Server, author: &[u8], seq: i64, bytes: &[u8]) {
    let conn = server.dir().db();
    let n = conn
        .execute(
            "UPDATE changes SET bytes = ?3 WHERE author = ?1 AND seq = ?2",
            rusqlite::params![author, seq, bytes],
        )
        .expect("swap");
    assert_eq!(n, 1);
}

#[test]
fn a_published_edition_travels_sealed_to_office_devices_only() {
    let office = Device::office();
    let server = Server::start(&office);
    let field = Device::init("T01");
    server.join(&office, &field, "T01", &server.url());
    field.new_case(&["--kind", "killed", "--place", "KHR"]);
    field.ok(&["sync"]);
    office.ok(&["sync"]);
    office.new_case(&["--kind", "missing", "--place", "MYK"]);

    // Published with the library (`cairn report publish` comes on another branch).
    let signed = {
        let mut vault = office.vault();
        let edition = edition_of(&vault, "Interim report");
        assert_eq!(edition.cases.len(), 2);
        vault.publish(edition).expect("publish")
    };
    let sync = office.ok(&["sync"]);
    assert!(sync.contains("sent 2,"), "{sync}");

    // The server holds it: kind 2, team office, the edition's id, the office's own number.
    let office_id = office.keys().id();
    let rows = office_rows(&server);
    let records: Vec<_> = rows
        .iter()
        .filter_map(|(author, seq, case_id, bytes)| {
            let sealed = SealedChange::from_bytes(bytes).expect("a sealed change");
            (sealed.kind == SealedKind::OfficeRecord).then_some((author, *seq, case_id, sealed))
        })
        .collect();
    assert_eq!(records.len(), 1, "{rows:?}");
    let (author, seq, case_id, record) = &records[0];
    let edition_id = uuid::Uuid::parse_str(&signed.edition.id).expect("uuid");
    assert_eq!(author.as_slice(), office_id.0.as_slice());
    assert_eq!(case_id.as_slice(), edition_id.as_bytes().as_slice());
    assert_eq!((record.author, record.seq), (office_id, *seq as u64));
    assert_eq!(record.team, OFFICE_TEAM);
    record.verify().expect("the office's signature");
    // Sealed: the server cannot read its title or sentence.
    let genuine = record.to_bytes();
    for text in [&signed.edition.title, &signed.edition.sentence] {
        assert!(!cairn_e2e::contains_any_encoding(&genuine, text), "{text}");
    }

    // A second sync sends nothing more, and its own record coming back changes nothing.
    let before = server_changes(&server);
    let again = office.ok(&["sync"]);
    assert!(again.contains("sent 0,"), "{again}");
    assert!(again.contains("refused 0"), "{again}");
    assert_eq!(server_changes(&server), before);
    assert_eq!(
        office.vault().editions().expect("editions"),
        vec![signed.clone()]
    );
    assert!(office.ok(&["check"]).starts_with("ok"));

    // Another vault of the office pulls the identical signed edition.
    let dir = tempfile::tempdir().expect("dir");
    let (replica, summary) = office_replica(&office, &office.vault(), &dir.path().join("replica"));
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    let held = replica.editions().expect("editions");
    assert_eq!(held, vec![signed.clone()]);
    assert_eq!(held[0].hash().expect("hash"), signed.hash().expect("hash"));
    assert_eq!(
        replica.own_log_len().expect("log"),
        office.vault().own_log_len().expect("log")
    );
    replica.check().expect("the replica checks");

    // A field device never receives a change of team office: not from its sync, not when
    // it asks the server itself.
    field.ok(&["sync"]);
    let client = cairn_sync::Client::new(&server.url(), server.fingerprint()).expect("client");
    let field_keys = field.keys();
    let (page, _) = runtime()
        .block_on(client.pull(&field_keys, 0, 1000))
        .expect("pull");
    assert!(!page.changes.is_empty());
    for (_, bytes) in &page.changes {
        let sealed = SealedChange::from_bytes(bytes).expect("sealed");
        assert_ne!(sealed.team, OFFICE_TEAM);
        assert_ne!(sealed.kind, SealedKind::OfficeRecord);
    }
    let field_vault = field.vault();
    assert!(field_vault.editions().expect("editions").is_empty());
    for (_, _, bytes) in field.sealed_changes("1 = 1") {
        let sealed = SealedChange::from_bytes(&bytes).expect("sealed");
        assert_ne!(sealed.team, OFFICE_TEAM);
    }

    // Hostile: a field device seals records of its own (for its team, and for team office
    // under a key it made up, even carrying the office's genuine edition) and pushes them.
    let next = field_vault.own_log_len().expect("log") + 1;
    drop(field_vault);
    let own_edition = SignedEdition::sign(&field_keys, signed.edition.clone()).expect("sign");
    let forged = [
        (field.team_key("T01"), own_edition.record()),
        (TeamKey::generate(OFFICE_TEAM, 1), signed.record()),
    ];
    let before = server_changes(&server);
    for (key, plain) in forged {
        let plain = plain.expect("json");
        let record = SealedChange::seal(
            &field_keys,
            &key,
            SealedKind::OfficeRecord,
            *edition_id.as_bytes(),
            next,
            &plain,
        )
        .expect("seal");
        let answer = runtime()
            .block_on(client.push(&field_keys, &[record.to_bytes()]))
            .expect("push answered");
        let result = &answer.results[0];
        assert_eq!(result.outcome, Outcome::Refused, "{:?}", answer.results);
        let reason = result.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("office record"), "{reason}");
    }
    assert_eq!(server_changes(&server), before, "nothing stored");

    // A compromised server alters the record, or swaps in one of another device: the office
    // device that pulls it refuses it, keeps nothing, says so, and the sync goes on.
    let stranger = DeviceKeys::generate();
    let office_key = {
        let ring = office.keyring();
        let k = ring.newest(OFFICE_TEAM).expect("office key");
        TeamKey::from_bytes(k.team(), k.epoch(), *k.bytes())
    };
    let swapped = SealedChange::seal(
        &stranger,
        &office_key,
        SealedKind::OfficeRecord,
        *edition_id.as_bytes(),
        *seq as u64,
        &signed.record().expect("a record"),
    )
    .expect("seal");
    let mut flipped = genuine.clone();
    let at = flipped.len() - 80;
    flipped[at] ^= 0x01;
    let mut source = replica;
    for (i, (bytes, why)) in [
        (flipped, "signature"),
        (swapped.to_bytes(), "not by the office"),
    ]
    .into_iter()
    .enumerate()
    {
        swap_on_server(&server, author, *seq, &bytes);
        let (other, summary) =
            office_replica(&office, &source, &dir.path().join(format!("tampered{i}")));
        assert!(other.editions().expect("editions").is_empty(), "{why}");
        assert_eq!(summary.refused.len(), 1, "{why}: {:?}", summary.refused);
        let reason = &summary.refused[0].reason;
        assert!(reason.contains(why), "{why}: {reason}");
        other.check().expect("the vault checks");
        source = other;
    }
    // The office that published it keeps it as it was.
    swap_on_server(&server, author, *seq, &genuine);
    assert_eq!(office.vault().editions().expect("editions"), vec![signed]);
}
