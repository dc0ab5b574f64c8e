//! Published editions as office records, on real SQLite files: publishing writes the edition
//! and its record together (or neither, whatever instant it is killed at), nothing that walks
//! the log takes a record for a case change, and another office device keeps a received
//! edition once, refusing any record that is not the office's.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use cairn_crypto::{DeviceKeys, KeyFileCost, SealedChange, SealedKind, SecretString, TeamKey};
use cairn_model::edition::Edition;
use cairn_model::report::{Options, Period, Taken};
use cairn_model::{Edit, Kind};
use cairn_protocol::OFFICE_TEAM;
use cairn_vault::{Home, NewVault, Role, SignedEdition, Vault};

fn pass() -> SecretString {
    SecretString::from("pass".to_owned())
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn new_vault(team: &str, role: Role) -> NewVault {
    NewVault {
        team: team.into(),
        name: None,
        role,
    }
}

fn vault(dir: &std::path::Path, name: &str, team: &str, role: Role) -> Vault {
    Home::new(dir.join(name))
        .create(&pass(), KeyFileCost::LogN(4), new_vault(team, role), now())
        .unwrap()
}

/// T03's key, as the roster grants it to its devices and the office.
fn t03() -> TeamKey {
    TeamKey::from_bytes("T03", 1, [3; 32])
}

/// An edition of every case the vault holds, counted over 2020.
fn edition_of(v: &Vault, title: &str) -> Edition {
    let cases: Vec<_> = v
        .list()
        .unwrap()
        .into_iter()
        .map(|mut s| {
            let heads = std::mem::take(&mut s.heads);
            (s.report_case(), heads)
        })
        .collect();
    let day = |d| cairn_model::report::parse_day(d).unwrap();
    let period = Period::new(day("2020-01-01"), day("2020-12-31")).unwrap();
    let options = Options {
        include_alleged: true,
        by: None,
    };
    let taken = Taken {
        made_at: now(),
        data_as_of: None,
    };
    let id = uuid::Uuid::new_v4().to_string();
    Edition::freeze(id, title.into(), &cases, period, options, &taken).unwrap()
}

/// An office with two cases of 2020, one of them edited.
fn office_with_cases(dir: &std::path::Path) -> Vault {
    let mut office = vault(dir, "office", OFFICE_TEAM, Role::Office);
    for place in ["KHR", "MYK"] {
        let edits = [
            Edit::set("incident.date", "2020-03-04"),
            Edit::set("incident.cause", "targeted_strike"),
        ];
        office
            .create_case(Kind::Killed, place, &edits, now())
            .unwrap();
    }
    let first = office.list().unwrap()[0].reference.clone();
    office
        .edit_case(&first, &[Edit::Note { text: "n".into() }], now())
        .unwrap();
    office
}

/// The own change `seq` of `v`, parsed.
fn own_change(v: &Vault, seq: u64) -> SealedChange {
    let (n, bytes) = v.outbox(seq - 1, 1).unwrap().remove(0);
    assert_eq!(n, seq);
    SealedChange::from_bytes(&bytes).unwrap()
}

/// The roster of `office` alone: it writes to every team's cases.
fn office_roster(office: &Vault) -> cairn_protocol::Roster {
    cairn_testkit::roster(office.keys(), &[])
}

#[test]
fn publishing_writes_the_edition_and_its_office_record_and_nothing_takes_it_for_a_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = office_with_cases(dir.path());
    assert_eq!(office.own_log_len().unwrap(), 3);
    let signed = office.publish(edition_of(&office, "First")).unwrap();
    assert_eq!(office.editions().unwrap(), vec![signed.clone()]);

    // Change 4 is the record: the edition's id, the office's key, sealed for team office
    // under what the office's own cases use.
    assert_eq!(office.own_log_len().unwrap(), 4);
    let record = own_change(&office, 4);
    assert_eq!(record.kind, SealedKind::OfficeRecord);
    assert_eq!(
        record.case_id,
        *uuid::Uuid::parse_str(&signed.edition.id)
            .unwrap()
            .as_bytes()
    );
    assert_eq!(record.author, office.keys().id());
    let case_key = own_change(&office, 1);
    assert_eq!(
        (record.team.as_str(), record.epoch),
        (case_key.team.as_str(), case_key.epoch)
    );
    assert_eq!(record.team, OFFICE_TEAM);
    let plain = record.open(office.keyring()).unwrap();
    assert_eq!(SignedEdition::from_record(&plain).unwrap(), signed);

    // Numbering goes on past it; every walk of the log sees two cases and four changes.
    let second = office.list().unwrap()[1].reference.clone();
    let seq = office
        .edit_case(
            &second,
            &[Edit::Note {
                text: "after".into(),
            }],
            now(),
        )
        .unwrap();
    assert_eq!(seq, Some(5));
    let check = office.check().unwrap();
    assert_eq!((check.changes, check.cases, check.waiting), (5, 2, 0));
    assert_eq!(office.list().unwrap().len(), 2);
    for s in office.list().unwrap() {
        assert!(!office.history(&s.reference).unwrap().is_empty());
        let doc = office.case_by_id(&s.id).unwrap();
        office.history_of(&doc).unwrap();
    }
    assert_eq!(office.delivery().unwrap(), vec![(office.keys().id(), 5, 5)]);
    assert_eq!(office.reseal_unsent().unwrap(), 0);
    assert_eq!(own_change(&office, 4), record);

    // The same edition again is refused, and writes nothing.
    let err = office.publish(signed.edition.clone()).unwrap_err();
    assert!(err.to_string().contains("already kept"), "{err}");
    assert_eq!(office.own_log_len().unwrap(), 5);
    office.check().unwrap();

    // Opened again from disk, the same.
    let home = office.home().clone();
    drop(office);
    let office = home.open(&pass()).unwrap();
    assert_eq!(office.editions().unwrap(), vec![signed]);
    office.check().unwrap();
}

/// A revoked device's late changes taken out of the office's vault: the cases they touched are
/// rebuilt from the log, and the record beside them stays as it was.
#[test]
fn cutting_off_a_revoked_device_rebuilds_its_cases_and_leaves_records_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = office_with_cases(dir.path());
    office.add_keys([&t03()]).unwrap();
    let mut field = vault(dir.path(), "field", "T03", Role::Field);
    field.add_keys([&t03()]).unwrap();
    let created = field.create_case(Kind::Missing, "KHR", &[], now()).unwrap();
    field
        .edit_case(
            &created.reference,
            &[Edit::Note {
                text: "late".into(),
            }],
            now(),
        )
        .unwrap();
    let page: Vec<Vec<u8>> = field
        .outbox(0, 10)
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let report = office
        .apply_pulled(
            &page,
            2,
            &cairn_testkit::roster(office.keys(), &[(field.keys(), "T03")]),
        )
        .unwrap();
    assert_eq!(report.applied, 2);
    let signed = office.publish(edition_of(&office, "With T03")).unwrap();
    let before = own_change(&office, 4);

    let cut = office.cut_off(&field.keys().id(), 1).unwrap();
    assert_eq!((cut.changes, cut.cases), (1, 1));
    assert_eq!(own_change(&office, 4), before);
    assert_eq!(office.editions().unwrap(), vec![signed]);
    let check = office.check().unwrap();
    assert_eq!((check.changes, check.cases), (5, 3));
}

/// A vault of the same office (its keys and team keys): a second office device, or one
/// restored.
fn replica(dir: &std::path::Path, office: &Vault) -> Vault {
    let keys = office.home().unlock(&pass()).unwrap();
    Home::new(dir.join("replica"))
        .create_replica(
            &pass(),
            KeyFileCost::LogN(4),
            new_vault(OFFICE_TEAM, Role::Office),
            now(),
            keys,
            office.keyring().clone(),
        )
        .unwrap()
}

#[test]
fn another_office_device_keeps_a_received_edition_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = office_with_cases(dir.path());
    let signed = office.publish(edition_of(&office, "First")).unwrap();
    let page: Vec<Vec<u8>> = office
        .outbox(0, 10)
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let mut other = replica(dir.path(), &office);
    let report = other
        .apply_pulled(&page, 4, &office_roster(&office))
        .unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!((report.applied, report.editions), (4, 1));
    let held = other.editions().unwrap();
    assert_eq!(held, vec![signed.clone()]);
    assert_eq!(held[0].hash().unwrap(), signed.hash().unwrap());
    // It numbers its next change after the record, as the server expects.
    assert_eq!(other.own_log_len().unwrap(), 4);
    other.check().unwrap();

    // Its own record coming back, or the page again, changes nothing.
    let again = other
        .apply_pulled(&page, 4, &office_roster(&office))
        .unwrap();
    assert_eq!((again.applied, again.duplicates, again.editions), (0, 4, 0));
    let back = office
        .apply_pulled(&page, 4, &office_roster(&office))
        .unwrap();
    assert_eq!((back.applied, back.duplicates, back.editions), (0, 4, 0));
    assert_eq!(office.editions().unwrap(), vec![signed]);
    assert_eq!(office.own_log_len().unwrap(), 4);
    office.check().unwrap();
}

/// What a server (or a device) could hand an office device as a record: altered bytes, a
/// record of another device, one of another team, an edition signed by another key, one
/// filed under another id. Each is refused and reported; nothing is kept; the page goes on.
#[test]
fn a_record_not_the_offices_is_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = office_with_cases(dir.path());
    let signed = office.publish(edition_of(&office, "First")).unwrap();
    let mut other = replica(dir.path(), &office);
    let genuine = office.outbox(0, 10).unwrap();
    let cases: Vec<Vec<u8>> = genuine[..3].iter().map(|(_, b)| b.clone()).collect();
    let report = other
        .apply_pulled(&cases, 3, &office_roster(&office))
        .unwrap();
    assert_eq!(report.applied, 3);

    let keys = office.home().unlock(&pass()).unwrap();
    let office_key = {
        let k = office.keyring().newest(OFFICE_TEAM).unwrap();
        TeamKey::from_bytes(k.team(), k.epoch(), *k.bytes())
    };
    let id = *uuid::Uuid::parse_str(&signed.edition.id)
        .unwrap()
        .as_bytes();
    let json = |s: &SignedEdition| s.record().unwrap();
    // Each under a number of its own: a signed change refused once holds its number.
    let seq = std::cell::Cell::new(10);
    let seal = |keys: &DeviceKeys, key: &TeamKey, id: [u8; 16], plain: &[u8]| {
        seq.set(seq.get() + 1);
        SealedChange::seal(keys, key, SealedKind::OfficeRecord, id, seq.get(), plain)
            .unwrap()
            .to_bytes()
    };
    let mut flipped = genuine[3].1.clone();
    let at = flipped.len() - 80;
    flipped[at] ^= 1;
    let stranger = DeviceKeys::generate();
    let by_stranger = SignedEdition::sign(&stranger, signed.edition.clone()).unwrap();
    let mut altered = signed.clone();
    altered.edition.title = "Second".into();
    let forgeries = [
        (flipped, "signature"),
        (
            seal(&stranger, &office_key, id, &json(&signed)),
            "not by the office",
        ),
        (seal(&keys, &t03(), id, &json(&signed)), "team T03"),
        (
            seal(&keys, &office_key, id, &json(&by_stranger)),
            "not by the office",
        ),
        (seal(&keys, &office_key, id, &json(&altered)), "altered"),
        (
            seal(&keys, &office_key, [9; 16], &json(&signed)),
            "another id",
        ),
        (
            seal(&keys, &office_key, id, b"not deflated"),
            "does not inflate",
        ),
    ];
    other.add_keys([&t03()]).unwrap();
    for (bytes, why) in &forgeries {
        let report = other
            .apply_pulled(std::slice::from_ref(bytes), 4, &office_roster(&office))
            .unwrap();
        assert_eq!(report.applied + report.editions, 0, "{why}");
        assert_eq!(report.refused.len(), 1, "{why}: {:?}", report.refused);
        assert!(
            report.refused[0].reason.contains(why),
            "{why}: {}",
            report.refused[0].reason
        );
        assert!(other.editions().unwrap().is_empty(), "{why}");
    }
    // The genuine record still arrives after them, and the vault checks.
    let report = other
        .apply_pulled(&[genuine[3].1.clone()], 4, &office_roster(&office))
        .unwrap();
    assert_eq!((report.applied, report.editions), (1, 1));
    assert_eq!(other.editions().unwrap(), vec![signed]);
    other.check().unwrap();
}

/// Set in the child process of the kill test: the vault it publishes in, and the edition's id.
const CHILD: &str = "CAIRN_EDITIONS_TEST_PUBLISH";
const CHILD_ID: &str = "CAIRN_EDITIONS_TEST_ID";

/// Publishes in `home` in a child process with `point` armed: whether it was killed there.
fn killed_publishing(home: &Home, point: &str, id: &str) -> bool {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_publish_killed_anywhere_leaves_the_edition_and_its_record_both_or_neither",
            "--nocapture",
        ])
        .env("CAIRN_FAILPOINT", point)
        .env(CHILD, home.dir())
        .env(CHILD_ID, id)
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(9) => true,
        None if status.success() => false,
        _ => panic!("{point}: {status:?}"),
    }
}

#[test]
fn a_publish_killed_anywhere_leaves_the_edition_and_its_record_both_or_neither() {
    if let (Some(dir), Ok(id)) = (std::env::var_os(CHILD), std::env::var(CHILD_ID)) {
        // The child: publish, and be killed at the failpoint on the way.
        let mut office = Home::new(std::path::PathBuf::from(dir))
            .open(&pass())
            .unwrap();
        let mut edition = edition_of(&office, "Killed");
        edition.id = id;
        office.publish(edition).unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let office = office_with_cases(dir.path());
    let home = office.home().clone();
    drop(office);
    let mut kept = Vec::new();
    for point in [
        "publish:edition",
        "publish:record",
        "head:sealed",
        "head:committed",
    ] {
        let id = uuid::Uuid::new_v4().to_string();
        let point = point.to_owned();
        assert!(
            killed_publishing(&home, &point, &id),
            "{point}: not reached"
        );
        let office = home.open(&pass()).unwrap();
        let held: Vec<String> = office
            .editions()
            .unwrap()
            .into_iter()
            .map(|e| e.edition.id)
            .collect();
        let both = held.contains(&id);
        // Before the commit nothing stays; once it is made, both do.
        match point.as_str() {
            "head:committed" => assert!(both, "{point}"),
            "head:sealed" => {}
            _ => assert!(!both, "{point}"),
        }
        if both {
            kept.push(id.clone());
        }
        assert_eq!(held, kept, "{point}");
        let logged = office.own_log_len().unwrap();
        assert_eq!(logged, 3 + kept.len() as u64, "{point}");
        if both {
            let record = own_change(&office, logged);
            assert_eq!(record.kind, SealedKind::OfficeRecord, "{point}");
            assert_eq!(
                record.case_id,
                *uuid::Uuid::parse_str(&id).unwrap().as_bytes()
            );
        }
        office.check().unwrap();
    }
    // And the vault goes on: a case, an edition, a check.
    let mut office = home.open(&pass()).unwrap();
    office
        .create_case(Kind::Injured, "KHR", &[], now())
        .unwrap();
    office.publish(edition_of(&office, "After")).unwrap();
    assert_eq!(office.editions().unwrap().len(), kept.len() + 1);
    office.check().unwrap();
}

#[test]
fn an_edition_too_large_for_one_record_is_kept_here_and_holds_up_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = office_with_cases(dir.path());
    // Many cases, each with an id and heads as random as real ones.
    let cases: Vec<_> = (0..40_000)
        .map(|i| {
            let case = cairn_model::report::ReportCase {
                kind: "killed".into(),
                status: "confirmed".into(),
                incident_date: Some("2020-03-04".into()),
                place: "KHR".into(),
                reference: format!("KHR-OFFICE-AAAA-{i:04}"),
                id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            };
            let heads = vec![hex::encode(rand_bytes())];
            (case, heads)
        })
        .collect();
    let day = |d| cairn_model::report::parse_day(d).unwrap();
    let period = Period::new(day("2020-01-01"), day("2020-12-31")).unwrap();
    let taken = Taken {
        made_at: now(),
        data_as_of: None,
    };
    let edition = Edition::freeze(
        uuid::Uuid::new_v4().to_string(),
        "Large".into(),
        &cases,
        period,
        Options::default(),
        &taken,
    )
    .unwrap();
    let before = office.own_log_len().unwrap();
    let signed = office.publish(edition).unwrap();
    assert!(!signed.travels().unwrap());
    assert!(!office.holds_record(&signed).unwrap());
    assert!(signed.record().unwrap().len() > cairn_vault::RECORD_LIMIT);
    // Kept, and shown; no record in the log for a server to refuse.
    assert_eq!(office.editions().unwrap(), vec![signed.clone()]);
    assert_eq!(office.own_log_len().unwrap(), before);
    office.check().unwrap();
    // A small one still travels.
    let small = office.publish(edition_of(&office, "Small")).unwrap();
    assert!(small.travels().unwrap() && office.holds_record(&small).unwrap());
    assert_eq!(office.own_log_len().unwrap(), before + 1);
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out
}
