//! The deep check's verdict on one case loaded from an office checkpoint, given the signed
//! changes a server sent for it: sound when they are exactly the case's changes, and each
//! change named when one is missing, of another case, re-signed at another size, or written
//! by a device the roster does not admit.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use cairn_crypto::{KeyFileCost, SealedChange, SealedKind, SecretString, TeamKey};
use cairn_model::{Edit, Kind};
use cairn_protocol::checkpoint::{follows, Part, PartBody, PartHeader};
use cairn_protocol::OFFICE_TEAM;
use cairn_vault::{CheckpointedCase, Home, NewVault, Role, Vault};

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn key() -> TeamKey {
    TeamKey::from_bytes("T03", 1, [3; 32])
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
    v.add_keys([&key()]).unwrap();
    v
}

/// The author's two cases, loaded into a fresh vault from the office's checkpoint; and the
/// author's sealed changes, as a server holds them.
struct World {
    _dir: tempfile::TempDir,
    office: Vault,
    a: Vault,
    fresh: Vault,
    sent: Vec<Vec<u8>>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut office = vault(dir.path(), "office", OFFICE_TEAM, Role::Office);
    let mut a = vault(dir.path(), "a", "T03", Role::Field);
    let mut fresh = vault(dir.path(), "fresh", "T03", Role::Field);
    let edits = [Edit::set("incident.date", "2020-03-04")];
    let first = a
        .create_case(Kind::Killed, "KHR", &edits, now())
        .unwrap()
        .reference;
    a.create_case(Kind::Killed, "MYK", &edits, now()).unwrap();
    a.edit_case(&first, &[Edit::set("person.sex", "male")], now())
        .unwrap();
    let sent: Vec<Vec<u8>> = a
        .outbox(0, 1000)
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let roster = cairn_testkit::roster(office.keys(), &[(a.keys(), "T03")]);
    office.apply_pulled(&sent, 3, &roster).unwrap();
    let generation = office.make_checkpoint(3, now()).unwrap().unwrap();
    let mut held = None;
    for bytes in &generation.parts {
        let sealed = SealedChange::from_bytes(bytes).unwrap();
        if sealed.team != "T03" {
            continue;
        }
        let plain = sealed.open(fresh.keyring()).unwrap();
        let part = Part {
            header: PartHeader::of(&sealed).unwrap(),
            body: PartBody::decode(&plain).unwrap(),
        };
        held = Some(follows(held, &part).unwrap());
        fresh.load_checkpoint(&part).unwrap();
    }
    World {
        _dir: dir,
        office,
        a,
        fresh,
        sent,
    }
}

impl World {
    fn roster(&self) -> cairn_protocol::Roster {
        cairn_testkit::roster(self.office.keys(), &[(self.a.keys(), "T03")])
    }

    /// The author's changes of `case`, as the server would send them.
    fn of_case(&self, case: &CheckpointedCase) -> Vec<Vec<u8>> {
        self.sent
            .iter()
            .filter(|b| SealedChange::from_bytes(b).unwrap().case_id == *case.id.as_bytes())
            .cloned()
            .collect()
    }

    /// The checkpointed case with the most changes (the one edited).
    fn edited(&self) -> CheckpointedCase {
        let mut cases = self.fresh.checkpointed_cases().unwrap();
        cases.sort_by_key(|c| c.holds.len());
        cases.pop().unwrap()
    }
}

#[test]
fn the_signed_changes_of_each_case_make_the_document_the_checkpoint_brought() {
    let w = world();
    let cases = w.fresh.checkpointed_cases().unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases.iter().map(|c| c.holds.len()).sum::<usize>(), 3);
    for case in &cases {
        assert!(!case.heads.is_empty());
        let verdict = w
            .fresh
            .deep_check_case(case, &w.of_case(case), &w.roster())
            .unwrap();
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        assert_eq!(verdict.verified, case.holds.len());
    }
}

#[test]
fn a_missing_change_is_named_with_its_case() {
    let w = world();
    let case = w.edited();
    let mut fetched = w.of_case(&case);
    let dropped = SealedChange::from_bytes(&fetched.pop().unwrap()).unwrap();
    let verdict = w
        .fresh
        .deep_check_case(&case, &fetched, &w.roster())
        .unwrap();
    let named = format!(
        "case {}: change {} of device {}, which the office's checkpoint holds, is not on the server",
        case.reference,
        dropped.seq,
        dropped.author.short()
    );
    assert_eq!(verdict.problems, vec![named]);
}

#[test]
fn a_change_of_another_case_resigned_or_by_a_stranger_is_named() {
    let w = world();
    let case = w.edited();
    let roster = w.roster();

    // Another case's change among this case's.
    let other: Vec<u8> = w
        .sent
        .iter()
        .find(|b| SealedChange::from_bytes(b).unwrap().case_id != *case.id.as_bytes())
        .cloned()
        .unwrap();
    let mut fetched = w.of_case(&case);
    fetched.push(other);
    let verdict = w.fresh.deep_check_case(&case, &fetched, &roster).unwrap();
    assert_eq!(verdict.problems.len(), 1, "{:?}", verdict.problems);
    assert!(
        verdict.problems[0].contains("is signed for case"),
        "{:?}",
        verdict.problems
    );

    // The author signs another change under a number the checkpoint holds.
    let mut fetched = w.of_case(&case);
    let last = SealedChange::from_bytes(&fetched.pop().unwrap()).unwrap();
    let resigned = SealedChange::seal(
        w.a.keys(),
        &key(),
        SealedKind::CaseChange,
        last.case_id,
        last.seq,
        b"another change altogether",
    )
    .unwrap()
    .to_bytes();
    fetched.push(resigned);
    let verdict = w.fresh.deep_check_case(&case, &fetched, &roster).unwrap();
    assert_eq!(verdict.problems.len(), 1, "{:?}", verdict.problems);
    assert!(
        verdict.problems[0].contains(&format!("change {} of device", last.seq))
            && verdict.problems[0].contains("but the office's checkpoint held one of"),
        "{:?}",
        verdict.problems
    );

    // A roster that does not admit the author.
    let empty = cairn_testkit::roster(w.office.keys(), &[]);
    let verdict = w
        .fresh
        .deep_check_case(&case, &w.of_case(&case), &empty)
        .unwrap();
    assert_eq!(verdict.verified, 0);
    assert!(
        verdict
            .problems
            .iter()
            .all(|p| p.contains("is refused by the roster")),
        "{:?}",
        verdict.problems
    );
}

#[test]
fn a_change_the_judge_refuses_is_left_out_as_every_replica_leaves_it_out() {
    let w = world();
    let case = w.edited();
    // The author signs, for this case, the creation of its other case: the judge refuses it
    // (a second identity), as the office did, so it is in no document and fails nothing.
    let other = w
        .sent
        .iter()
        .map(|b| SealedChange::from_bytes(b).unwrap())
        .find(|s| s.case_id != *case.id.as_bytes())
        .unwrap();
    let creation = other.open(w.fresh.keyring()).unwrap();
    let stray = SealedChange::seal(
        w.a.keys(),
        &key(),
        SealedKind::CaseChange,
        *case.id.as_bytes(),
        10,
        &creation,
    )
    .unwrap()
    .to_bytes();
    let mut fetched = w.of_case(&case);
    fetched.push(stray);
    let verdict = w
        .fresh
        .deep_check_case(&case, &fetched, &w.roster())
        .unwrap();
    assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
    assert_eq!(
        (verdict.verified, verdict.refused),
        (case.holds.len() + 1, 1)
    );
}

#[test]
fn a_document_the_changes_do_not_make_is_named() {
    let w = world();
    let mut case = w.edited();
    // As if the checkpoint's document held a change no signed change makes.
    case.heads.push(cairn_model::ChangeHash([9; 32]));
    let verdict = w
        .fresh
        .deep_check_case(&case, &w.of_case(&case), &w.roster())
        .unwrap();
    assert_eq!(
        verdict.problems,
        vec![format!(
            "case {}: its signed changes do not make the document the office's checkpoint brought (it lacks change 090909090909)",
            case.reference
        )]
    );
}
