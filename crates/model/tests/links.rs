//! Links between cases are the office's: its decisions are recorded as entries every replica
//! takes, and no replica accepts a link written by anyone else. Cases recorded before the
//! last-seen fields existed take them.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ScalarValue, ROOT};
use cairn_model::{CaseDoc, Edit};
use common::{at, forge, new_case, refused, B};

/// The office's actor.
const O: [u8; 32] = [0x0F; 32];
const OTHER: &str = "6b3d6f7e-8a41-4f0e-9d55-0c5b1a2e7f10";

fn link(relation: &str, remains: Option<&str>) -> Edit {
    Edit::Link {
        relation: relation.into(),
        other_id: OTHER.into(),
        other: "KY-T01-AAAA-0001".into(),
        basis: "same name, date and place in two lists".into(),
        remains: remains.map(str::to_string),
    }
}

/// The case as the office and as field device B hold it.
fn setup() -> (CaseDoc, CaseDoc) {
    let (_, created) = new_case(&[Edit::set("person.name", "Aram")]);
    let office = CaseDoc::from_changes(std::slice::from_ref(&created), &O, &[O]).unwrap();
    let b = CaseDoc::from_changes(&[created], &B, &[O]).unwrap();
    (office, b)
}

#[test]
fn the_office_links_and_a_later_decision_supersedes_an_earlier_one() {
    let (mut office, mut b) = setup();
    let first = office
        .edit(&[link("same_person", None)], "office", at(5))
        .unwrap()
        .unwrap();
    let second = office
        .edit(&[link("distinct", None)], "office", at(6))
        .unwrap()
        .unwrap();
    b.apply_changes(&[first, second]).unwrap();
    let case = b.case().unwrap();
    assert_eq!(case.links.len(), 2);
    let current = case.current_links();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].relation, "distinct");
    assert_eq!(current[0].other, "KY-T01-AAAA-0001");
}

#[test]
fn a_link_needs_a_known_relation_a_basis_and_for_identifies_the_remains() {
    let (mut office, _) = setup();
    for (edit, why) in [
        (link("cousin", None), "same_person, identifies, distinct"),
        (link("identifies", None), "remains"),
        (
            Edit::Link {
                relation: "same_person".into(),
                other_id: "not-an-id".into(),
                other: "X".into(),
                basis: "b".into(),
                remains: None,
            },
            "case id",
        ),
        (
            Edit::Link {
                relation: "same_person".into(),
                other_id: OTHER.into(),
                other: "X".into(),
                basis: " ".into(),
                remains: None,
            },
            "some text",
        ),
    ] {
        let err = office.edit(&[edit], "office", at(5)).unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
    }
    office
        .edit(&[link("identifies", Some(OTHER))], "office", at(5))
        .unwrap()
        .unwrap();
}

fn write_link(tx: &mut automerge::transaction::Transaction<'_>, list: &automerge::ObjId) {
    let entry = tx.insert_object(list, 0, ObjType::Map).unwrap();
    for (key, value) in [
        ("at", "2024-05-01T10:00:00Z"),
        ("author", "field"),
        ("relation", "same_person"),
        ("other_id", OTHER),
        ("other", "KY-T01-AAAA-0001"),
        ("basis", "I say so"),
    ] {
        tx.put(&entry, key, ScalarValue::Str(value.into())).unwrap();
    }
}

#[test]
fn no_replica_takes_a_link_from_a_field_device() {
    let (mut office, mut b) = setup();
    // A field device makes the list itself...
    let made = forge(&b, &B, |tx| {
        let list = tx.put_object(ROOT, "links", ObjType::List).unwrap();
        write_link(tx, &list);
    });
    refused(&mut office, made.clone(), "only the office");
    refused(&mut b, made, "only the office");
    // ...or appends to the office's list.
    let change = office
        .edit(&[link("distinct", None)], "office", at(5))
        .unwrap()
        .unwrap();
    b.apply_changes(&[change]).unwrap();
    let appended = forge(&b, &B, |tx| {
        let (_, list) = tx.get(ROOT, "links").unwrap().unwrap();
        write_link(tx, &list);
    });
    refused(&mut office, appended, "links");
}

#[test]
fn a_case_made_before_last_seen_existed_takes_it_and_cannot_lose_it() {
    // A case as cairn wrote it before: no `last_seen` group.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/case-v1.automerge"
    );
    let old = Automerge::load(&std::fs::read(fixture).unwrap()).unwrap();
    assert!(old.get(ROOT, "last_seen").unwrap().is_none());
    let changes: Vec<Vec<u8>> = old
        .get_changes(&[])
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let mut office = CaseDoc::from_changes(&changes, &O, &[O]).unwrap();
    assert!(office.case().unwrap().last_seen.at.is_none());
    let change = office
        .edit(&[Edit::set("last_seen.at", "2024-04-30")], "office", at(5))
        .unwrap()
        .unwrap();
    let mut b = CaseDoc::from_changes(&changes, &B, &[O]).unwrap();
    b.apply_changes(&[change]).unwrap();
    assert_eq!(
        b.case().unwrap().last_seen.at.as_deref(),
        Some("2024-04-30")
    );
    let removed = forge(&b, &B, |tx| tx.delete(ROOT, "last_seen").unwrap());
    refused(&mut office, removed, "removes the case's `last_seen`");
}
