//! The vault's apply path on real SQLite files: what a pulled page does to a vault, whatever
//! order, repetition or forgery it arrives in.
#![allow(clippy::unwrap_used)]

use cairn_crypto::{KeyFileCost, SecretString};
use cairn_model::{Edit, Kind};
use cairn_protocol::Roster;
use cairn_vault::{Home, NewVault, Role, Vault};

struct Pair {
    _dir: tempfile::TempDir,
    a: Vault,
    b: Vault,
    /// The roster that admitted both into T03.
    roster: Roster,
}

fn vault(dir: &std::path::Path, name: &str) -> Vault {
    Home::new(dir.join(name))
        .create(
            &SecretString::from("pass".to_owned()),
            KeyFileCost::LogN(4),
            NewVault {
                team: "T03".into(),
                name: None,
                role: Role::Field,
            },
            time::OffsetDateTime::now_utc(),
        )
        .unwrap()
}

/// Two teammates holding their team's key, as the roster would have granted it.
fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vault(dir.path(), "a");
    let mut b = vault(dir.path(), "b");
    let key = team_key();
    for v in [&mut a, &mut b] {
        v.add_keys([&key]).unwrap();
    }
    let roster = roster(&[(&a, "T03"), (&b, "T03")]);
    Pair {
        _dir: dir,
        a,
        b,
        roster,
    }
}

/// The same T03 key every time, so a test can seal as the pair's teammates do.
fn team_key() -> cairn_crypto::TeamKey {
    cairn_crypto::TeamKey::from_bytes("T03", 1, [3; 32])
}

fn outbox(v: &Vault) -> Vec<Vec<u8>> {
    v.outbox(0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect()
}

/// The roster of an office that admitted each vault's device into its team.
fn roster(members: &[(&Vault, &str)]) -> Roster {
    let members: Vec<_> = members.iter().map(|(v, t)| (v.keys(), *t)).collect();
    cairn_testkit::roster(&cairn_crypto::DeviceKeys::generate(), &members)
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[test]
fn a_page_applies_once_and_its_cursor_comes_with_it() {
    let mut p = pair();
    let created = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    p.a.edit_case(
        &created.reference,
        &[Edit::Note { text: "n".into() }],
        now(),
    )
    .unwrap();
    let page = outbox(&p.a);
    let report = p.b.apply_pulled(&page, 7, &p.roster).unwrap();
    assert_eq!((report.applied, report.duplicates), (2, 0));
    assert_eq!(p.b.pull_cursor().unwrap(), 7);
    // The same page again (an interrupted sync resumed): nothing new.
    let again = p.b.apply_pulled(&page, 7, &p.roster).unwrap();
    assert_eq!((again.applied, again.duplicates), (0, 2));
    assert_eq!(
        p.b.case(&created.reference).unwrap().heads(),
        p.a.case(&created.reference).unwrap().heads()
    );
    p.b.check().unwrap();
}

#[test]
fn a_change_waits_for_its_dependency_then_both_apply() {
    let mut p = pair();
    let created = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    p.a.edit_case(
        &created.reference,
        &[Edit::set("person.sex", "male")],
        now(),
    )
    .unwrap();
    let page = outbox(&p.a);
    let late = p.b.apply_pulled(&page[1..], 1, &p.roster).unwrap();
    assert_eq!(late.applied, 1);
    assert_eq!(p.b.list().unwrap().len(), 0, "no case without its creation");
    let first = p.b.apply_pulled(&page[..1], 2, &p.roster).unwrap();
    assert_eq!(first.applied, 1);
    let case = p.b.case(&created.reference).unwrap().case().unwrap();
    assert_eq!(case.person.sex.as_deref(), Some("male"));
    p.b.check().unwrap();
}

/// Change 1 of `p.a`'s log sealed again: the same content, other bytes, validly signed.
fn twin_of_first(p: &Pair) -> Vec<u8> {
    let sealed = cairn_crypto::SealedChange::from_bytes(&outbox(&p.a)[0]).unwrap();
    let plain = sealed.open(p.b.keyring()).unwrap();
    cairn_crypto::SealedChange::seal(
        p.a.keys(),
        &team_key(),
        sealed.kind,
        sealed.case_id,
        sealed.seq,
        &plain,
    )
    .unwrap()
    .to_bytes()
}

/// The roster places A in T04 while its change is sealed for T03: refused, and the cursor
/// moves on. The roster's refusals are not remembered as a case's are (an author unknown
/// today may be admitted tomorrow): the same bytes are judged again each time.
#[test]
fn another_teams_device_is_refused_and_the_cursor_moves_on() {
    let mut p = pair();
    p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    let page = outbox(&p.a);
    let t04 = roster(&[(&p.a, "T04")]);
    let foreign = p.b.apply_pulled(&page, 1, &t04).unwrap();
    assert_eq!(foreign.applied, 0);
    assert!(
        foreign.refused[0].reason.contains("team T04"),
        "{:?}",
        foreign.refused
    );
    assert_eq!(
        p.b.pull_cursor().unwrap(),
        1,
        "the cursor moves past a refusal"
    );
    let again = p.b.apply_pulled(&page, 2, &t04).unwrap();
    assert_eq!(again.refused, foreign.refused);
    assert_eq!(p.b.pull_cursor().unwrap(), 2);
    assert!(p.b.list().unwrap().is_empty());
}

#[test]
fn a_second_change_under_a_held_number_is_refused_as_a_forgery() {
    let mut p = pair();
    let created = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    p.b.apply_pulled(&outbox(&p.a), 1, &p.roster).unwrap();
    let report =
        p.b.apply_pulled(&[twin_of_first(&p)], 2, &p.roster)
            .unwrap();
    assert_eq!(report.applied, 0);
    assert!(
        report.refused[0].reason.contains("different change 1"),
        "{:?}",
        report.refused
    );
    // A forged signature is refused before anything else.
    let mut forged = cairn_crypto::SealedChange::from_bytes(&outbox(&p.a)[0]).unwrap();
    forged.ciphertext[40] ^= 1;
    let report =
        p.b.apply_pulled(&[forged.to_bytes()], 3, &p.roster)
            .unwrap();
    assert!(
        report.refused[0].reason.contains("does not verify"),
        "{:?}",
        report.refused
    );
    assert!(p.b.case(&created.reference).is_ok());
    p.b.check().unwrap();
}

#[test]
fn a_change_held_back_is_judged_when_its_dependency_arrives() {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    let mut p = pair();
    let created =
        p.a.create_case(
            Kind::Killed,
            "KHR",
            &[Edit::Note {
                text: "kept".into(),
            }],
            now(),
        )
        .unwrap();
    p.a.edit_case(
        &created.reference,
        &[Edit::set("person.sex", "male")],
        now(),
    )
    .unwrap();
    let page = outbox(&p.a);
    let plain: Vec<Vec<u8>> = page
        .iter()
        .map(|b| {
            cairn_crypto::SealedChange::from_bytes(b)
                .unwrap()
                .open(p.b.keyring())
                .unwrap()
        })
        .collect();
    // A third change, made after the second, deletes the note.
    let mut doc = automerge::Automerge::new()
        .with_actor(automerge::ActorId::from(p.a.keys().id().0.as_slice()));
    for raw in &plain {
        doc.apply_changes([automerge::Change::try_from(raw.as_slice()).unwrap()])
            .unwrap();
    }
    let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
    let mut tx = doc.transaction();
    tx.delete(&notes, 0).unwrap();
    let hash = tx.commit().0.unwrap();
    let delete = doc.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec();
    let sealed = cairn_crypto::SealedChange::seal(
        p.a.keys(),
        &team_key(),
        cairn_crypto::SealedKind::CaseChange,
        *created.id.as_bytes(),
        3,
        &delete,
    )
    .unwrap()
    .to_bytes();
    // Delivered out of order (as only a server reordering could): the deletion waits for the
    // second change, and is judged when that arrives.
    p.b.apply_pulled(&page[..1], 1, &p.roster).unwrap();
    let held = p.b.apply_pulled(&[sealed], 2, &p.roster).unwrap();
    assert!(held.refused.is_empty(), "{:?}", held.refused);
    let released = p.b.apply_pulled(&page[1..], 3, &p.roster).unwrap();
    assert!(
        released.refused[0]
            .reason
            .contains("deletes or moves an entry of notes"),
        "{:?}",
        released.refused
    );
    let case = p.b.case(&created.reference).unwrap().case().unwrap();
    assert_eq!(case.notes.len(), 1);
}

/// Pretends the case already holds `ops` operations by `author` (the budget reads the log).
fn inflate(v: &mut Vault, author: &cairn_crypto::DeviceId, ops: i64) {
    // As the owner could (through the vault's head, which a bare connection would bypass).
    v.execute_as_owner(
        "UPDATE changes SET ops = ?2 WHERE author = ?1 AND seq = 1",
        rusqlite::params![author.0.as_slice(), ops],
    )
    .unwrap();
}

#[test]
fn one_device_cannot_fill_a_case_and_never_writes_what_others_refuse() {
    let mut p = pair();
    let created = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    p.b.apply_pulled(&outbox(&p.a), 1, &p.roster).unwrap();
    let a_id = p.a.keys().id();
    // On B, A's share of the case is nearly spent: A's next change is refused there...
    inflate(&mut p.b, &a_id, cairn_vault::MAX_AUTHOR_OPS - 1);
    p.a.edit_case(
        &created.reference,
        &[Edit::Note { text: "x".into() }],
        now(),
    )
    .unwrap();
    let report = p.b.apply_pulled(&outbox(&p.a)[1..], 2, &p.roster).unwrap();
    assert!(
        report.refused[0]
            .reason
            .contains("more than 500000 operations"),
        "{:?}",
        report.refused
    );
    // ... while B's own notes still get in, and A itself refuses to write past its share.
    p.b.edit_case(
        &created.reference,
        &[Edit::Note { text: "b".into() }],
        now(),
    )
    .unwrap();
    inflate(&mut p.a, &a_id, cairn_vault::MAX_AUTHOR_OPS - 1);
    let full =
        p.a.edit_case(
            &created.reference,
            &[Edit::Note { text: "y".into() }],
            now(),
        )
        .unwrap_err();
    assert!(full.to_string().contains("this case is full"), "{full}");
}

#[test]
fn drafts_recorded_before_joining_are_sealed_again_under_the_team_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = vault(dir.path(), "c");
    let created = c
        .create_case(
            Kind::Missing,
            "KHR",
            &[Edit::set("person.sex", "female")],
            now(),
        )
        .unwrap();
    let epoch = |v: &Vault| {
        outbox(v)
            .iter()
            .map(|b| cairn_crypto::SealedChange::from_bytes(b).unwrap().epoch)
            .collect::<Vec<_>>()
    };
    // Under the device's own draft key: nobody else could open it.
    assert_eq!(epoch(&c), [0]);
    assert_eq!(c.reseal_unsent().unwrap(), 0, "no team key yet");
    c.add_keys([&team_key()]).unwrap();
    assert_eq!(c.reseal_unsent().unwrap(), 1);
    assert_eq!(c.reseal_unsent().unwrap(), 0, "done once");
    assert_eq!(epoch(&c), [1]);
    // Still readable here, and now by a teammate.
    c.case(&created.reference).unwrap();
    c.check().unwrap();
    let mut p = pair();
    let report =
        p.b.apply_pulled(&outbox(&c), 1, &roster(&[(&c, "T03")]))
            .unwrap();
    assert_eq!(report.applied, 1);
    // A change recorded after joining is sealed under the team key at once.
    c.edit_case(
        &created.reference,
        &[Edit::set("person.sex", "male")],
        now(),
    )
    .unwrap();
    assert_eq!(epoch(&c), [1, 1]);
}

#[test]
fn delivery_shows_a_gap_in_an_authors_numbers() {
    let mut p = pair();
    let created = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    for sex in ["male", "female"] {
        p.a.edit_case(&created.reference, &[Edit::set("person.sex", sex)], now())
            .unwrap();
    }
    let page = outbox(&p.a);
    // Change 2 withheld: 3 waits for it, and the gap shows.
    p.b.apply_pulled(&[page[0].clone(), page[2].clone()], 2, &p.roster)
        .unwrap();
    assert_eq!(p.b.delivery().unwrap(), [(p.a.keys().id(), 1, 3)]);
    p.b.apply_pulled(&page[1..2], 3, &p.roster).unwrap();
    assert_eq!(p.b.delivery().unwrap(), [(p.a.keys().id(), 3, 3)]);
}

#[test]
fn a_conflict_is_settled_once_with_a_value_it_holds() {
    let mut p = pair();
    let created = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    let reference = created.reference;
    p.b.apply_pulled(&outbox(&p.a), 1, &p.roster).unwrap();
    let cause = |v| vec![Edit::set("incident.cause", v)];
    p.a.edit_case(&reference, &cause("targeted_strike"), now())
        .unwrap();
    p.b.edit_case(&reference, &cause("captivity"), now())
        .unwrap();
    p.a.apply_pulled(&outbox(&p.b), 2, &p.roster).unwrap();
    assert_eq!(p.a.case(&reference).unwrap().conflicts().len(), 1);

    // A value that is not in conflict (a stale page or a forged form) writes nothing.
    let sent = outbox(&p.a).len();
    let refused =
        p.a.settle_conflict(&reference, "incident.cause", "unknown", now())
            .unwrap_err();
    assert!(matches!(refused, cairn_vault::VaultError::NotInConflict(_)));
    assert_eq!(outbox(&p.a).len(), sent);

    // Another process settles it first; this handle, opened before, is then refused: the
    // check reads the case as the edit does, in one transaction.
    let mut other =
        p.a.home()
            .open(&SecretString::from("pass".to_owned()))
            .unwrap();
    assert!(other
        .settle_conflict(&reference, "incident.cause", "captivity", now())
        .unwrap()
        .is_some());
    let late =
        p.a.settle_conflict(&reference, "incident.cause", "targeted_strike", now())
            .unwrap_err();
    assert!(matches!(late, cairn_vault::VaultError::NotInConflict(_)));
    let case = p.a.case(&reference).unwrap();
    assert!(case.conflicts().is_empty());
    assert_eq!(
        case.case().unwrap().incident.cause.as_deref(),
        Some("captivity")
    );
    assert_eq!(outbox(&p.a).len(), sent + 1);
}

/// One page holding a case to merge, a case whose author the roster places in another team
/// and an edit whose creation has not arrived: each case gets the verdict it gets alone, so
/// the cases merged ahead on the cores and those merged in the transaction never mix.
#[test]
fn each_case_of_a_mixed_page_is_judged_as_if_it_came_alone() {
    let mut p = pair();
    let good = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    p.a.edit_case(&good.reference, &[Edit::set("person.sex", "male")], now())
        .unwrap();
    let late = p.a.create_case(Kind::Missing, "KHR", &[], now()).unwrap();
    p.a.edit_case(&late.reference, &[Edit::Note { text: "n".into() }], now())
        .unwrap();
    // C's device holds T03's key, but the roster places it in T04.
    let mut c = vault(p._dir.path(), "c");
    c.add_keys([&team_key()]).unwrap();
    c.create_case(Kind::Injured, "KHR", &[], now()).unwrap();
    let admit = roster(&[(&p.a, "T03"), (&c, "T04")]);
    let page = outbox(&p.a);
    let case_of = |bytes: &[u8]| {
        cairn_crypto::SealedChange::from_bytes(bytes)
            .unwrap()
            .case_id
    };
    let late_id = *p.a.case(&late.reference).unwrap().id().as_bytes();
    // In the order recorded: good (created, edited), late (created, edited); the foreign
    // case goes between them.
    assert_eq!(case_of(&page[2]), late_id);
    let creation = [page[2].clone()];
    let rest: Vec<Vec<u8>> = [&page[..2], &outbox(&c), &page[3..]].concat();
    let report = p.b.apply_pulled(&rest, 1, &admit).unwrap();
    assert_eq!(
        report.applied, 3,
        "two of the good case, the late edit held"
    );
    assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
    assert!(
        report.refused[0].reason.contains("team T04"),
        "{:?}",
        report.refused
    );
    let listed: Vec<String> =
        p.b.list()
            .unwrap()
            .into_iter()
            .map(|s| s.reference)
            .collect();
    assert_eq!(listed, std::slice::from_ref(&good.reference));
    assert_eq!(p.b.pull_cursor().unwrap(), 1);
    assert_eq!(
        p.b.case(&good.reference).unwrap().heads(),
        p.a.case(&good.reference).unwrap().heads()
    );

    // The creation arrives: the held edit is released with it.
    let released = p.b.apply_pulled(&creation, 2, &admit).unwrap();
    assert_eq!((released.applied, released.refused.len()), (1, 0));
    assert_eq!(
        p.b.case(&late.reference).unwrap().heads(),
        p.a.case(&late.reference).unwrap().heads()
    );
    assert_eq!(p.b.list().unwrap().len(), 2);
    p.b.check().unwrap();
}

/// In one page, a case its author's budget refuses and a new case of the same author: the
/// refused one is never merged ahead (the budget bounds what a case costs in memory), the
/// other is.
#[test]
fn a_case_over_budget_is_refused_beside_a_case_that_fits() {
    let mut p = pair();
    let full = p.a.create_case(Kind::Killed, "KHR", &[], now()).unwrap();
    p.b.apply_pulled(&outbox(&p.a), 1, &p.roster).unwrap();
    inflate(&mut p.b, &p.a.keys().id(), cairn_vault::MAX_AUTHOR_OPS - 1);
    p.a.edit_case(&full.reference, &[Edit::Note { text: "x".into() }], now())
        .unwrap();
    let fits = p.a.create_case(Kind::Missing, "KHR", &[], now()).unwrap();
    let report = p.b.apply_pulled(&outbox(&p.a)[1..], 2, &p.roster).unwrap();
    assert_eq!(report.applied, 1);
    assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
    assert!(
        report.refused[0]
            .reason
            .contains("more than 500000 operations"),
        "{:?}",
        report.refused
    );
    assert_eq!(
        p.b.case(&fits.reference).unwrap().heads(),
        p.a.case(&fits.reference).unwrap().heads()
    );
    let held = p.b.case(&full.reference).unwrap().case().unwrap();
    assert!(held.notes.is_empty());
    p.b.check().unwrap();
}

/// A teammate's change whose operation names a predecessor at another key (Automerge 0.12
/// takes it wherever it finds it, and panicked rebuilding such a change) is refused alone,
/// in the page that brings the case as in a later one: the cursor moves past it and the case
/// keeps its values.
#[test]
fn a_change_hiding_another_key_is_refused_and_the_sync_goes_on() {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    for same_page in [true, false] {
        let mut p = pair();
        let created =
            p.a.create_case(
                Kind::Killed,
                "KHR",
                &[Edit::set("person.name", "A. N. Other")],
                now(),
            )
            .unwrap();
        let page = outbox(&p.a);
        let plain = cairn_crypto::SealedChange::from_bytes(&page[0])
            .unwrap()
            .open(p.b.keyring())
            .unwrap();
        let mut doc = automerge::Automerge::new()
            .with_actor(automerge::ActorId::from(p.a.keys().id().0.as_slice()));
        doc.apply_changes([automerge::Change::try_from(plain.as_slice()).unwrap()])
            .unwrap();
        let person = doc.get(automerge::ROOT, "person").unwrap().unwrap().1;
        let name = match doc.get(&person, "name").unwrap().unwrap().1 {
            automerge::ObjId::Id(counter, actor, _) => automerge::legacy::OpId(counter, actor),
            automerge::ObjId::Root => unreachable!(),
        };
        let mut tx = doc.transaction();
        tx.put(&person, "sex", "male").unwrap();
        let hash = tx.commit().0.unwrap();
        let mut forged = doc.get_change_by_hash(&hash).unwrap().decode();
        forged.operations[0].pred = vec![name].into();
        forged.hash = None;
        let forged = automerge::Change::from(forged).raw_bytes().to_vec();
        let sealed = cairn_crypto::SealedChange::seal(
            p.a.keys(),
            &team_key(),
            cairn_crypto::SealedKind::CaseChange,
            *created.id.as_bytes(),
            2,
            &forged,
        )
        .unwrap()
        .to_bytes();
        let report = if same_page {
            p.b.apply_pulled(&[page[0].clone(), sealed], 2, &p.roster)
                .unwrap()
        } else {
            p.b.apply_pulled(&page, 1, &p.roster).unwrap();
            p.b.apply_pulled(&[sealed], 2, &p.roster).unwrap()
        };
        assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
        assert!(
            report.refused[0].reason.contains("another form"),
            "{:?}",
            report.refused
        );
        assert_eq!(p.b.pull_cursor().unwrap(), 2);
        let case = p.b.case(&created.reference).unwrap().case().unwrap();
        assert_eq!(case.person.name.as_deref(), Some("A. N. Other"));
        assert_eq!(case.person.sex, None);
    }
}
