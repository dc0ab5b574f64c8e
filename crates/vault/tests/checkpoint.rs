//! Office checkpoints on real SQLite files: the office seals the documents of what changed,
//! team by team; a fresh vault loads them and reads every case as the author's own vault
//! does, counts what they hold as delivered (and takes those changes for duplicates when they
//! come again), and refuses a part that does not hold together, storing none of it.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use cairn_crypto::{KeyFileCost, SealedChange, SecretString, TeamKey};
use cairn_model::{Edit, Kind};
use cairn_protocol::checkpoint::{follows, Entry, Loaded, Part, PartBody, PartHeader};
use cairn_protocol::OFFICE_TEAM;
use cairn_vault::{Home, NewVault, Role, Vault};

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn vault(dir: &std::path::Path, name: &str, team: &str, role: Role) -> Vault {
    let mut v = Home::new(dir.join(name))
        .create(
            &SecretString::from("pass".to_owned()),
            KeyFileCost::LogN(4),
            NewVault {
                team: team.into(),
                name: None,
                role,
            },
            now(),
        )
        .unwrap();
    v.add_keys([&TeamKey::from_bytes("T03", 1, [3; 32])])
        .unwrap();
    v
}

/// The roster that admits `a` into T03: every replica's verdicts on its changes.
fn t03(office: &Vault, a: &Vault) -> cairn_protocol::Roster {
    cairn_testkit::roster(office.keys(), &[(a.keys(), "T03")])
}

fn sent(v: &Vault) -> Vec<Vec<u8>> {
    v.outbox(0, 1000)
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect()
}

/// Opens `bytes` as `reader` would: the sealed part, its header and its body.
fn open(reader: &Vault, bytes: &[u8]) -> Part {
    let sealed = SealedChange::from_bytes(bytes).unwrap();
    let plain = sealed.open(reader.keyring()).unwrap();
    Part {
        header: PartHeader::of(&sealed).unwrap(),
        body: PartBody::decode(&plain).unwrap(),
    }
}

fn load_all(reader: &mut Vault, parts: &[Vec<u8>], held: &mut Option<Loaded>) {
    for bytes in parts {
        if SealedChange::from_bytes(bytes).unwrap().team != "T03" {
            continue;
        }
        let part = open(reader, bytes);
        *held = Some(follows(*held, &part).unwrap());
        reader.load_checkpoint(&part).unwrap();
    }
}

fn cases(v: &Vault) -> Vec<String> {
    let mut out: Vec<String> = v
        .list()
        .unwrap()
        .into_iter()
        .map(|s| format!("{:?}", v.case(&s.reference).unwrap().case().unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn a_vault_loaded_from_checkpoints_reads_as_its_author_and_counts_them_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = vault(dir.path(), "office", OFFICE_TEAM, Role::Office);
    let mut a = vault(dir.path(), "a", "T03", Role::Field);
    let mut fresh = vault(dir.path(), "fresh", "T03", Role::Field);
    let mut references = Vec::new();
    for place in ["KHR", "MYK", "KHR"] {
        let edits = [Edit::set("incident.date", "2020-03-04")];
        references.push(
            a.create_case(Kind::Killed, place, &edits, now())
                .unwrap()
                .reference,
        );
    }
    a.edit_case(&references[0], &[Edit::set("person.sex", "male")], now())
        .unwrap();
    office
        .apply_pulled(&sent(&a), 4, &t03(&office, &a))
        .unwrap();
    // The office's own case goes in team office's part, which a T03 device cannot open.
    office
        .create_case(Kind::Injured, "KHR", &[], now())
        .unwrap();

    let first = office.make_checkpoint(4, now()).unwrap().unwrap();
    assert_eq!(
        (first.generation, first.cases, first.parts.len()),
        (1, 4, 2)
    );
    assert_eq!(office.pending_checkpoint().unwrap(), first.parts);
    office.checkpoint_posted().unwrap();
    assert!(office.pending_checkpoint().unwrap().is_empty());
    // Nothing changed since: nothing to publish.
    assert!(office.make_checkpoint(4, now()).unwrap().is_none());

    let mut held = None;
    load_all(&mut fresh, &first.parts, &mut held);
    assert_eq!(cases(&fresh), cases(&a));
    let a_id = a.keys().id();
    assert_eq!(fresh.delivery().unwrap(), vec![(a_id, 4, 4)]);
    assert_eq!(fresh.contiguous_seq(&a_id).unwrap(), 4);
    // The same changes pulled again are duplicates, judged by nobody.
    let again = fresh.apply_pulled(&sent(&a), 5, &t03(&office, &a)).unwrap();
    assert_eq!((again.applied, again.duplicates), (0, 4));

    // An edit after it: the next generation holds that case alone and adds to the first.
    a.edit_case(
        &references[2],
        &[Edit::Note {
            text: "later".into(),
        }],
        now(),
    )
    .unwrap();
    office
        .apply_pulled(&sent(&a), 6, &t03(&office, &a))
        .unwrap();
    let second = office.make_checkpoint(6, now()).unwrap().unwrap();
    assert_eq!((second.generation, second.cases), (2, 1));
    let part = open(&fresh, &second.parts[0]);
    assert_eq!(part.body.prev, Some(1));
    assert_eq!(part.body.cursor, 6);
    load_all(&mut fresh, &second.parts, &mut held);
    assert_eq!(cases(&fresh), cases(&a));
    assert_eq!(fresh.delivery().unwrap(), vec![(a_id, 5, 5)]);
    let loaded = fresh.checkpoints_loaded().unwrap();
    assert_eq!(loaded["T03"].cursor, 6);
    assert_eq!(loaded["T03"].loaded.generation, 2);
    // A change after the checkpoint arrives the ordinary way; `check` replays each case's
    // log from the document it was loaded from.
    a.edit_case(
        &references[1],
        &[Edit::Note {
            text: "pulled".into(),
        }],
        now(),
    )
    .unwrap();
    let pulled = fresh.apply_pulled(&sent(&a), 7, &t03(&office, &a)).unwrap();
    assert_eq!((pulled.applied, pulled.duplicates), (1, 5));
    assert_eq!(cases(&fresh), cases(&a));
    assert_eq!(fresh.delivery().unwrap(), vec![(a_id, 6, 6)]);
    let check = fresh.check().unwrap();
    assert_eq!((check.changes, check.cases), (1, 3));
}

#[test]
fn a_part_that_does_not_hold_together_is_refused_and_nothing_of_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = vault(dir.path(), "office", OFFICE_TEAM, Role::Office);
    let mut a = vault(dir.path(), "a", "T03", Role::Field);
    let mut fresh = vault(dir.path(), "fresh", "T03", Role::Field);
    for place in ["KHR", "MYK"] {
        a.create_case(Kind::Killed, place, &[], now()).unwrap();
    }
    office
        .apply_pulled(&sent(&a), 2, &t03(&office, &a))
        .unwrap();
    let generation = office.make_checkpoint(2, now()).unwrap().unwrap();
    let honest = open(&fresh, &generation.parts[0]);

    // A document filed under another case's id, then one of another team.
    let mut swapped = honest.clone();
    if let Entry::Doc { case_id, .. } = &mut swapped.body.entries[1] {
        *case_id = [9; 16];
    }
    let err = fresh.load_checkpoint(&swapped).unwrap_err().to_string();
    assert!(err.contains("another case's"), "{err}");
    let mut relabelled = honest.clone();
    relabelled.header.team = "T04".into();
    let err = fresh.load_checkpoint(&relabelled).unwrap_err().to_string();
    assert!(err.contains("of team T03, not T04"), "{err}");
    assert!(fresh.list().unwrap().is_empty());
    assert!(fresh.delivery().unwrap().is_empty());
    assert!(fresh.checkpoints_loaded().unwrap().is_empty());

    fresh.load_checkpoint(&honest).unwrap();
    assert_eq!(cases(&fresh), cases(&a));
}
