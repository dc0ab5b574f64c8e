//! The office's confirmation binds the values it confirmed: a later edit of a counted field
//! is kept and shown, and leaves the case "changed since confirmed", counted with the
//! confirmed values until the office confirms again. What a confirmation records is judged
//! as strictly as any field.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT};
use cairn_model::{CaseDoc, Counted, Edit, FieldChange, ModelError};
use common::{at, forge, new_case, B};

/// The office's actor.
const O: [u8; 32] = [0x0F; 32];

/// A killing recorded on device A, as A, the office and B hold it.
fn setup() -> (CaseDoc, CaseDoc, CaseDoc) {
    let (mut a, created) = new_case(&[
        Edit::set("kind", "killed"),
        Edit::set("incident.cause", "captivity"),
        Edit::set("person.civilian", "yes"),
        Edit::set("incident.date", "2024-03-02"),
    ]);
    a.set_office(&[O]);
    let office = CaseDoc::from_changes(std::slice::from_ref(&created), &O, &[O]).unwrap();
    let b = CaseDoc::from_changes(&[created], &B, &[O]).unwrap();
    (a, office, b)
}

fn confirm(office: &mut CaseDoc, minute: i64) -> Vec<u8> {
    office
        .edit(
            &[Edit::Verify {
                status: "confirmed".into(),
                basis: Some("death certificate".into()),
            }],
            "office",
            at(minute),
        )
        .unwrap()
        .unwrap()
}

fn change(field: &str, old: Option<&str>, new: Option<&str>) -> FieldChange {
    FieldChange {
        field: field.into(),
        old: old.map(str::to_string),
        new: new.map(str::to_string),
    }
}

#[test]
fn a_confirmation_binds_what_it_confirmed_until_the_office_confirms_again() {
    let (mut a, mut office, mut b) = setup();
    let confirmed = confirm(&mut office, 5);
    a.apply_changes(std::slice::from_ref(&confirmed)).unwrap();
    b.apply_changes(std::slice::from_ref(&confirmed)).unwrap();
    let bound = Counted {
        kind: "killed".into(),
        cause: Some("captivity".into()),
        incident_date: Some("2024-03-02".into()),
        civilian: Some("yes".into()),
        ..Counted::default()
    };
    for doc in [&a, &b, &office] {
        assert_eq!(doc.confirmed().unwrap().as_ref(), Some(&bound));
        assert!(doc.changed_since_confirmed().unwrap().is_empty());
        let json = doc.to_json().unwrap();
        assert_eq!(
            json["verifications"][0]["counted"]["incident.cause"],
            "captivity"
        );
        assert_eq!(
            json["verifications"][0]["counted"]["person.sex"],
            serde_json::Value::Null
        );
        assert!(json.get("changed_since_confirmed").is_none());
    }

    // A teammate edits what was confirmed: the edit is kept and shown, the case is changed
    // since confirmed, and it is counted with what the office confirmed.
    let edit = a
        .edit(
            &[
                Edit::set("kind", "injured"),
                Edit::set("incident.cause", "targeted_strike"),
                Edit::Unset {
                    key: "person.civilian".into(),
                },
                Edit::set("person.name", "not counted"),
            ],
            "device-a",
            at(6),
        )
        .unwrap()
        .unwrap();
    office.apply_changes(std::slice::from_ref(&edit)).unwrap();
    b.apply_changes(&[edit]).unwrap();
    let expected = vec![
        change("kind", Some("killed"), Some("injured")),
        change("incident.cause", Some("captivity"), Some("targeted_strike")),
        change("person.civilian", Some("yes"), None),
    ];
    for doc in [&a, &b, &office] {
        let overview = doc.overview().unwrap();
        assert_eq!(overview.status, "confirmed");
        assert_eq!(overview.kind, "injured");
        assert_eq!(overview.confirmed.as_ref(), Some(&bound));
        assert_eq!(overview.changed_since_confirmed, expected);
        let json = doc.to_json().unwrap();
        assert_eq!(json["kind"], "injured");
        assert_eq!(
            json["changed_since_confirmed"],
            serde_json::to_value(&expected).unwrap()
        );
    }

    // The office confirms again: what it binds now is the case as it stands.
    let again = confirm(&mut office, 7);
    b.apply_changes(&[again]).unwrap();
    for doc in [&b, &office] {
        let overview = doc.overview().unwrap();
        assert!(overview.changed_since_confirmed.is_empty());
        let now = overview.confirmed.unwrap();
        assert_eq!(
            (
                now.kind.as_str(),
                now.cause.as_deref(),
                now.civilian.as_deref()
            ),
            ("injured", Some("targeted_strike"), None)
        );
    }
}

/// A field edit made concurrently with the confirmation: the office confirmed what it saw,
/// so on every replica, whatever the order, the case is changed since confirmed.
#[test]
fn an_edit_concurrent_with_the_confirmation_is_a_change_since_it() {
    let (mut a, mut office, mut b) = setup();
    let edit = a
        .edit(&[Edit::set("person.civilian", "no")], "device-a", at(5))
        .unwrap()
        .unwrap();
    let confirmed = confirm(&mut office, 6);
    office.apply_changes(std::slice::from_ref(&edit)).unwrap();
    a.apply_changes(std::slice::from_ref(&confirmed)).unwrap();
    b.apply_changes(&[confirmed, edit]).unwrap();
    for doc in [&a, &b, &office] {
        assert_eq!(
            doc.changed_since_confirmed().unwrap(),
            [change("person.civilian", Some("yes"), Some("no"))]
        );
    }
}

#[test]
fn the_office_confirms_one_value_of_each_counted_field() {
    let (mut a, mut office, b) = setup();
    let mut b = b;
    let one = a
        .edit(&[Edit::set("incident.cause", "unknown")], "device-a", at(5))
        .unwrap()
        .unwrap();
    let other = b
        .edit(
            &[Edit::set("incident.cause", "other_violence")],
            "device-b",
            at(5),
        )
        .unwrap()
        .unwrap();
    office.apply_changes(&[one, other]).unwrap();
    let heads = office.heads();
    let verify = Edit::Verify {
        status: "confirmed".into(),
        basis: Some("autopsy".into()),
    };
    match office.edit(std::slice::from_ref(&verify), "office", at(6)) {
        Err(ModelError::UnsettledConfirmation(key)) => assert_eq!(key, "incident.cause"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(office.heads(), heads);
    office
        .edit(
            &[Edit::set("incident.cause", "unknown"), verify],
            "office",
            at(7),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        office.confirmed().unwrap().unwrap().cause.as_deref(),
        Some("unknown")
    );
}

/// A confirmation recorded before confirmations carried their values binds what the case
/// held when the office confirmed it.
#[test]
fn an_older_confirmation_binds_what_the_case_held_then() {
    let (mut a, office, mut b) = setup();
    let older = forge(&office, &O, |tx| {
        tx.put(ROOT, "status", "confirmed").unwrap();
        let list = tx.put_object(ROOT, "verifications", ObjType::List).unwrap();
        let entry = tx.insert_object(&list, 0, ObjType::Map).unwrap();
        for (k, v) in [
            ("at", "2024-05-01T10:05:00Z"),
            ("author", "office"),
            ("status", "confirmed"),
            ("basis", "autopsy"),
        ] {
            tx.put(&entry, k, v).unwrap();
        }
    });
    b.apply_changes(std::slice::from_ref(&older)).unwrap();
    a.apply_changes(&[older]).unwrap();
    assert_eq!(b.confirmed().unwrap().unwrap().kind, "killed");
    let edit = a
        .edit(&[Edit::set("kind", "missing")], "device-a", at(6))
        .unwrap()
        .unwrap();
    b.apply_changes(&[edit]).unwrap();
    assert_eq!(
        b.changed_since_confirmed().unwrap(),
        [change("kind", Some("killed"), Some("missing"))]
    );
}

/// What a confirmation records is judged: only the counted fields, written as Cairn writes
/// them, each a value the command line accepts, and only on a confirmation.
#[test]
fn a_confirmation_records_only_what_cairn_would() {
    let (_, office, b) = setup();
    let good = Counted {
        kind: "killed".into(),
        ..Counted::default()
    };
    let record = serde_json::to_string(&good).unwrap();
    let entry_with = |status: &'static str, counted: String| {
        move |tx: &mut automerge::transaction::Transaction<'_>| {
            tx.put(ROOT, "status", status).unwrap();
            let list = tx.put_object(ROOT, "verifications", ObjType::List).unwrap();
            let entry = tx.insert_object(&list, 0, ObjType::Map).unwrap();
            for (k, v) in [
                ("at", "2024-05-01T10:05:00Z"),
                ("author", "office"),
                ("status", status),
                ("basis", "autopsy"),
                ("counted", counted.as_str()),
            ] {
                tx.put(&entry, k, v).unwrap();
            }
        }
    };
    let bad = [
        (
            "confirmed",
            record.replace("\"kind\":\"killed\"", "\"kind\":\"dead\""),
            "`kind`",
        ),
        (
            "confirmed",
            record.replace("}", ",\"person.name\":\"X\"}"),
            "as Cairn writes them",
        ),
        ("confirmed", "{}".into(), "as Cairn writes them"),
        ("rejected", record.clone(), "does not confirm"),
    ];
    for (status, counted, reason) in bad {
        let change = forge(&office, &O, entry_with(status, counted));
        let mut replica = b.clone();
        match replica.apply_changes(&[change]) {
            Err(ModelError::RefusedChange { reason: why, .. }) => {
                assert!(why.contains(reason), "{why}")
            }
            other => panic!("expected a refusal naming {reason:?}, got {other:?}"),
        }
    }
    let change = forge(&office, &O, entry_with("confirmed", record));
    let mut replica = b.clone();
    replica.apply_changes(&[change]).unwrap();
    assert_eq!(replica.confirmed().unwrap(), Some(good));
}
