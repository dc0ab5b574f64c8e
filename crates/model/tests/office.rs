//! Verification and review are the office's: whatever a field device writes by hand, no
//! replica accepts a case confirmed or rejected by anyone else, an entry in the office's lists
//! from anyone else, or a field change to a status the office set. Honest proposals and
//! concurrent edits still merge, and the office's word counts where they conflict.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use cairn_model::{CaseDoc, Edit, ModelError};
use common::{at, forge, new_case, refused, B};

/// The office's actor.
const O: [u8; 32] = [0x0F; 32];

/// A case made on field device A, as the office and as device B hold it (both told who the
/// office is).
fn setup() -> (CaseDoc, CaseDoc, CaseDoc) {
    let (mut a, created) = new_case(&[Edit::set("incident.cause", "captivity")]);
    a.set_office(&[O]);
    let office = CaseDoc::from_changes(std::slice::from_ref(&created), &O, &[O]).unwrap();
    let b = CaseDoc::from_changes(&[created], &B, &[O]).unwrap();
    (a, office, b)
}

fn verify(status: &str, basis: Option<&str>) -> Edit {
    Edit::Verify {
        status: status.into(),
        basis: basis.map(str::to_string),
    }
}

#[test]
fn the_office_confirms_with_a_basis_and_every_replica_takes_it() {
    let (mut a, mut office, mut b) = setup();
    let change = office
        .edit(
            &[verify(
                "confirmed",
                Some("death certificate and two witnesses"),
            )],
            "office",
            at(5),
        )
        .unwrap()
        .unwrap();
    a.apply_changes(std::slice::from_ref(&change)).unwrap();
    b.apply_changes(&[change]).unwrap();
    for doc in [&a, &b, &office] {
        let json = doc.to_json().unwrap();
        assert_eq!(json["status"], "confirmed");
        assert_eq!(json["verifications"][0]["status"], "confirmed");
        assert_eq!(
            json["verifications"][0]["basis"],
            "death certificate and two witnesses"
        );
        assert_eq!(doc.overview().unwrap().status, "confirmed");
    }
    let history = b.history();
    let last = history.last().unwrap();
    assert!(
        last.fields.contains(&"verification".to_string()),
        "{last:?}"
    );
    assert!(last.fields.contains(&"status".to_string()), "{last:?}");
}

#[test]
fn confirming_or_rejecting_needs_a_basis() {
    for status in ["confirmed", "rejected"] {
        for basis in [None, Some("  ")] {
            assert!(matches!(
                verify(status, basis).check(),
                Err(ModelError::NeedsVerification(_))
            ));
        }
        assert!(matches!(
            Edit::set("status", status).check(),
            Err(ModelError::NeedsVerification(_))
        ));
    }
    verify("under_investigation", None).check().unwrap();
    Edit::set("status", "under_investigation").check().unwrap();
}

#[test]
fn a_field_device_cannot_confirm_or_reject_by_hand() {
    for status in ["confirmed", "rejected"] {
        let (_, mut office, mut b) = setup();
        let change = forge(&b, &B, |tx| {
            tx.put(ROOT, "status", status).unwrap();
        });
        refused(&mut b, change.clone(), "only the office does");
        refused(&mut office, change, "only the office does");
    }
}

#[test]
fn without_an_office_named_nobody_confirms() {
    let (_, mut office, _) = setup();
    let change = office
        .edit(&[verify("confirmed", Some("autopsy"))], "office", at(5))
        .unwrap()
        .unwrap();
    let (_, created) = new_case(&[Edit::set("incident.cause", "captivity")]);
    let mut blind = CaseDoc::from_changes(&[created], &B, &[]).unwrap();
    refused(&mut blind, change, "only the office does");
}

#[test]
fn a_field_device_cannot_write_the_office_lists() {
    let (_, mut office, mut b) = setup();
    // Making the list itself.
    let change = forge(&b, &B, |tx| {
        let list = tx.put_object(ROOT, "reviews", ObjType::List).unwrap();
        let entry = tx.insert_object(&list, 0, ObjType::Map).unwrap();
        for (k, v) in [
            ("at", "2024-05-01T10:00:00Z"),
            ("author", "x"),
            ("state", "approved"),
        ] {
            tx.put(&entry, k, v).unwrap();
        }
    });
    refused(&mut b, change.clone(), "only the office does");
    refused(&mut office, change, "only the office does");

    // Adding to a list the office made.
    let verified = office
        .edit(&[verify("under_investigation", None)], "office", at(5))
        .unwrap()
        .unwrap();
    b.apply_changes(&[verified]).unwrap();
    let change = forge(&b, &B, |tx| {
        let (_, list) = tx.get(ROOT, "verifications").unwrap().unwrap();
        let entry = tx.insert_object(&list, 1, ObjType::Map).unwrap();
        for (k, v) in [
            ("at", "2024-05-01T10:00:00Z"),
            ("author", "x"),
            ("status", "alleged"),
        ] {
            tx.put(&entry, k, v).unwrap();
        }
    });
    refused(&mut b, change.clone(), "only the office does");
    refused(&mut office, change, "only the office does");

    // Deleting or replacing a list the office made (its whole history).
    for (i, replace) in [false, true].into_iter().enumerate() {
        let change = forge(&b, &B, |tx| {
            if replace {
                tx.put_object(ROOT, "verifications", ObjType::List).unwrap();
            } else {
                tx.delete(ROOT, "verifications").unwrap();
            }
        });
        let reason = [
            "removes the case's `verifications`",
            "replaces the case's `verifications`",
        ][i];
        refused(&mut b, change.clone(), reason);
        refused(&mut office, change, reason);
    }
}

#[test]
fn the_office_cannot_confirm_without_a_basis_either() {
    let (_, office, mut b) = setup();
    let change = forge(&office, &O, |tx| {
        tx.put(ROOT, "status", "confirmed").unwrap();
        let list = tx.put_object(ROOT, "verifications", ObjType::List).unwrap();
        let entry = tx.insert_object(&list, 0, ObjType::Map).unwrap();
        for (k, v) in [
            ("at", "2024-05-01T10:00:00Z"),
            ("author", "office"),
            ("status", "confirmed"),
        ] {
            tx.put(&entry, k, v).unwrap();
        }
    });
    refused(&mut b, change, "without a basis");
}

#[test]
fn a_field_device_cannot_change_a_status_the_office_set() {
    let (_, mut office, mut b) = setup();
    let confirmed = office
        .edit(&[verify("confirmed", Some("autopsy"))], "office", at(5))
        .unwrap()
        .unwrap();
    b.apply_changes(&[confirmed]).unwrap();
    for status in ["alleged", "under_investigation"] {
        let change = forge(&b, &B, |tx| {
            tx.put(ROOT, "status", status).unwrap();
        });
        refused(&mut b, change.clone(), "a status the office set");
        refused(&mut office, change, "a status the office set");
        // Nor makes such an edit itself: it would hold what no other replica does.
        let heads = b.heads();
        match b.edit(&[Edit::set("status", status)], "device-b", at(6)) {
            Err(ModelError::Refused(why)) => assert!(why.contains("office set"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(b.heads(), heads);
    }
}

/// A change written by hand.
type Write = fn(&mut automerge::transaction::Transaction<'_>);

/// A field device's status, in whatever form: every replica refuses it, whatever the order
/// it meets the office's confirmation in (the office's is taken either way).
#[test]
fn only_the_office_writes_a_status_in_any_form_and_any_order() {
    let forms: [(&str, Write); 3] = [
        ("a value", |tx| {
            tx.put(ROOT, "status", "under_investigation").unwrap();
        }),
        ("a deletion", |tx| {
            tx.delete(ROOT, "status").unwrap();
        }),
        ("an object", |tx| {
            tx.put_object(ROOT, "status", ObjType::Map).unwrap();
        }),
    ];
    for (form, write) in forms {
        let (_, mut office, b) = setup();
        // Written on B's copy before it saw the office's confirmation: concurrent with it.
        let forged = forge(&b, &B, write);
        let confirmed = office
            .edit(&[verify("confirmed", Some("autopsy"))], "office", at(5))
            .unwrap()
            .unwrap();
        let mut first = b.clone();
        refused(&mut first, forged.clone(), "only the office does");
        first
            .apply_changes(std::slice::from_ref(&confirmed))
            .unwrap();
        refused(&mut first, forged.clone(), "only the office does");
        refused(&mut office, forged.clone(), "only the office does");
        let mut batch = b.clone();
        let heads = batch.heads();
        assert!(
            batch
                .apply_changes(&[forged.clone(), confirmed.clone()])
                .is_err(),
            "{form}"
        );
        assert_eq!(batch.heads(), heads, "{form}");
        batch.apply_changes(&[confirmed]).unwrap();
        for doc in [&first, &office, &batch] {
            assert_eq!(doc.heads(), office.heads(), "{form}");
            assert_eq!(doc.to_json().unwrap()["status"], "confirmed", "{form}");
        }
    }
    // Without the office's word in between, and with it: the same refusal.
    let (_, _, mut b) = setup();
    let change = forge(&b, &B, |tx| {
        tx.put(ROOT, "status", "under_investigation").unwrap();
    });
    refused(&mut b, change, "only the office does");
}

/// A field device's creation starts the case `alleged`; one that gives it any other status
/// is refused (the office's own may give any).
#[test]
fn a_field_creation_is_alleged() {
    for status in ["under_investigation", "confirmed"] {
        let (doc, _) = new_case(&[]);
        // The creation change alone, its status rewritten in place by hand.
        let mut creation = automerge::Change::try_from(doc.changes()[0].as_slice())
            .unwrap()
            .decode();
        for op in creation.operations.iter_mut() {
            if matches!(&op.key, automerge::legacy::Key::Map(k) if k == "status") {
                op.action = automerge::legacy::OpType::Put(status.into());
            }
        }
        creation.hash = None;
        let forged = automerge::Change::from(creation).raw_bytes().to_vec();
        match CaseDoc::from_changes(&[forged], &B, &[O]) {
            Err(ModelError::RefusedChange { reason, .. }) => {
                assert!(reason.contains("only the office"), "{reason}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

/// A case stored before only the office wrote the status may hold a field device's value
/// beside the office's, or instead of it: every reader shows the office's word (or
/// `alleged`, where the office has given none), and the value is no conflict.
#[test]
fn a_status_stored_before_the_rule_is_never_read() {
    let (a, mut office, _) = setup();
    let confirmed = office
        .edit(&[verify("confirmed", Some("autopsy"))], "office", at(5))
        .unwrap()
        .unwrap();
    // As an older version accepted them: straight into Automerge, unjudged.
    let proposal = forge(&a, &common::A, |tx| {
        tx.put(ROOT, "status", "under_investigation").unwrap();
    });
    let mut raw = Automerge::load(&a.save()).unwrap();
    raw.apply_changes([automerge::Change::try_from(proposal.as_slice()).unwrap()])
        .unwrap();
    let proposed = raw.save();
    raw.apply_changes([automerge::Change::try_from(confirmed.as_slice()).unwrap()])
        .unwrap();
    let both = raw.save();
    for (bytes, status) in [(proposed, "alleged"), (both, "confirmed")] {
        let mut doc = CaseDoc::load(&bytes, &B).unwrap();
        doc.set_office(&[O]);
        assert_eq!(doc.to_json().unwrap()["status"], status);
        assert_eq!(doc.case().unwrap().status.to_string(), status);
        assert_eq!(doc.headline().unwrap().1.to_string(), status);
        let overview = doc.overview().unwrap();
        assert_eq!(overview.status, status);
        assert!(!overview.conflicts);
        assert!(doc.conflicts().is_empty());
        // The office's next word is taken as any other.
        let next = office
            .clone()
            .edit(&[verify("rejected", Some("same person"))], "office", at(6))
            .unwrap()
            .unwrap();
        if status == "confirmed" {
            doc.apply_changes(&[next]).unwrap();
            assert_eq!(doc.to_json().unwrap()["status"], "rejected");
        }
    }
}

#[test]
fn a_case_needs_review_until_the_office_reviewed_its_newest_change() {
    let (mut a, mut office, _) = setup();
    assert!(office.overview().unwrap().needs_review);
    let review = |state: &str| Edit::Review {
        state: state.into(),
        comment: None,
    };
    office
        .edit(&[review("received")], "office", at(5))
        .unwrap()
        .unwrap();
    let overview = office.overview().unwrap();
    assert!(!overview.needs_review);
    assert_eq!(overview.review.as_deref(), Some("received"));
    // The office's own later edit does not send it back to the inbox.
    office
        .edit(
            &[Edit::set("incident.cause", "targeted_strike")],
            "office",
            at(6),
        )
        .unwrap()
        .unwrap();
    assert!(!office.overview().unwrap().needs_review);
    // A field edit does.
    let edit = a
        .edit(&[Edit::set("person.sex", "male")], "device-a", at(7))
        .unwrap()
        .unwrap();
    office.apply_changes(&[edit]).unwrap();
    assert!(office.overview().unwrap().needs_review);
    office
        .edit(&[review("approved")], "office", at(8))
        .unwrap()
        .unwrap();
    let overview = office.overview().unwrap();
    assert!(!overview.needs_review);
    assert_eq!(overview.review.as_deref(), Some("approved"));
}

/// A case's corrected place is the office's alone: a field device writing it (a value, a
/// deletion, or at the creation) is refused everywhere; the office's correction is read by
/// every replica, and the reference keeps its place.
#[test]
fn only_the_office_corrects_a_place() {
    let (mut a, mut office, mut b) = setup();
    for forged in [
        forge(&b, &B, |tx| tx.put(ROOT, "place", "GZA").unwrap()),
        forge(&b, &B, |tx| tx.put(ROOT, "place", "").unwrap()),
    ] {
        refused(&mut b, forged.clone(), "corrects the case's place");
        refused(&mut office, forged, "corrects the case's place");
    }
    assert!(Edit::set("place", "not a code").check().is_err());
    let change = office
        .edit(&[Edit::set("place", "gza")], "office", at(5))
        .unwrap()
        .unwrap();
    a.apply_changes(std::slice::from_ref(&change)).unwrap();
    b.apply_changes(&[change]).unwrap();
    for doc in [&a, &b, &office] {
        assert_eq!(doc.corrected_place().unwrap().as_deref(), Some("GZA"));
        assert_eq!(doc.reference().place, "KHR");
        assert_eq!(doc.to_json().unwrap()["place"], "GZA");
    }
    // Changing the office's correction is the office's too.
    let forged = forge(&b, &B, |tx| tx.delete(ROOT, "place").unwrap());
    refused(&mut b, forged, "corrects the case's place");
    // Created with a place by a field device: refused on arrival.
    let (_, created) = new_case(&[Edit::set("place", "GZA")]);
    assert!(CaseDoc::from_changes(&[created], &O, &[O]).is_err());
}

/// A staff device decides as the office does, on every replica told so: its confirmation and
/// the office's later change of it are taken, and a field device still cannot touch either.
/// A replica not told of the staff device refuses its word.
#[test]
fn a_staff_device_decides_as_the_office_on_replicas_that_know_it() {
    const S: [u8; 32] = [0x5A; 32];
    let (_, created) = new_case(&[Edit::set("incident.cause", "captivity")]);
    let deciders = [O, S];
    let mut staff = CaseDoc::from_changes(std::slice::from_ref(&created), &S, &deciders).unwrap();
    let mut office = CaseDoc::from_changes(std::slice::from_ref(&created), &O, &deciders).unwrap();
    let mut b = CaseDoc::from_changes(std::slice::from_ref(&created), &B, &deciders).unwrap();
    let mut unaware = CaseDoc::from_changes(&[created], &B, &[O]).unwrap();
    let confirmed = staff
        .edit(&[verify("confirmed", Some("photograph"))], "staff", at(5))
        .unwrap()
        .unwrap();
    for doc in [&mut office, &mut b] {
        doc.apply_changes(std::slice::from_ref(&confirmed)).unwrap();
        assert_eq!(doc.to_json().unwrap()["status"], "confirmed");
        assert_eq!(doc.overview().unwrap().status, "confirmed");
    }
    refused(&mut unaware, confirmed, "only the office does");
    // The office changes the status the staff device set: taken.
    let rejected = office
        .edit(
            &[verify("rejected", Some("a second look"))],
            "office",
            at(6),
        )
        .unwrap()
        .unwrap();
    b.apply_changes(&[rejected]).unwrap();
    assert_eq!(b.to_json().unwrap()["status"], "rejected");
    // A field device changing it by hand: refused.
    let forged = forge(&b, &B, |tx| {
        tx.put(ROOT, "status", "confirmed").unwrap();
    });
    refused(&mut b, forged.clone(), "only the office does");
    refused(&mut office, forged, "only the office does");
}

/// The office and a staff device confirm a case concurrently, each making the case's first
/// verification: every replica takes both changes, in either order, and reads one status.
#[test]
fn two_office_devices_making_the_first_verification_concurrently_are_both_kept() {
    const S: [u8; 32] = [0x5A; 32];
    let (_, created) = new_case(&[Edit::set("incident.cause", "captivity")]);
    let deciders = [O, S];
    let mut staff = CaseDoc::from_changes(std::slice::from_ref(&created), &S, &deciders).unwrap();
    let mut office = CaseDoc::from_changes(std::slice::from_ref(&created), &O, &deciders).unwrap();
    let by_staff = staff
        .edit(&[verify("confirmed", Some("photograph"))], "staff", at(5))
        .unwrap()
        .unwrap();
    let by_office = office
        .edit(
            &[verify("rejected", Some("a second look"))],
            "office",
            at(6),
        )
        .unwrap()
        .unwrap();
    let mut field_one =
        CaseDoc::from_changes(std::slice::from_ref(&created), &B, &deciders).unwrap();
    let mut field_two = CaseDoc::from_changes(&[created], &B, &deciders).unwrap();
    field_one
        .apply_changes(&[by_staff.clone(), by_office.clone()])
        .unwrap();
    field_two
        .apply_changes(std::slice::from_ref(&by_office))
        .unwrap();
    field_two
        .apply_changes(std::slice::from_ref(&by_staff))
        .unwrap();
    staff.apply_changes(&[by_office]).unwrap();
    office.apply_changes(&[by_staff]).unwrap();
    let status = field_one.to_json().unwrap()["status"].clone();
    for doc in [&field_two, &staff, &office] {
        assert_eq!(doc.to_json().unwrap()["status"], status);
        assert_eq!(doc.heads(), field_one.heads());
    }
}

/// A staff device confirms while the office concurrently records another verification: two
/// `verifications` lists stand side by side. Whichever list Automerge picks (the actors'
/// order decides, so both orders are tried), every replica reads both entries, and a
/// confirmation in force is found with the values it bound: a later edit of a counted field
/// shows as changed since confirmed instead of moving the count.
#[test]
fn a_confirmation_in_the_list_that_loses_the_merge_still_binds() {
    for staff_actor in [[0x5A; 32], [0x01; 32]] {
        let (_, created) = new_case(&[Edit::set("incident.cause", "captivity")]);
        let deciders = [O, staff_actor];
        let mut staff =
            CaseDoc::from_changes(std::slice::from_ref(&created), &staff_actor, &deciders).unwrap();
        let mut office =
            CaseDoc::from_changes(std::slice::from_ref(&created), &O, &deciders).unwrap();
        let confirmed = staff
            .edit(&[verify("confirmed", Some("photograph"))], "staff", at(5))
            .unwrap()
            .unwrap();
        let other = office
            .edit(
                &[verify("rejected", Some("a second look"))],
                "office",
                at(6),
            )
            .unwrap()
            .unwrap();
        staff.apply_changes(std::slice::from_ref(&other)).unwrap();
        office
            .apply_changes(std::slice::from_ref(&confirmed))
            .unwrap();
        for doc in [&staff, &office] {
            let json = doc.to_json_with_signers().unwrap();
            let entries = json["verifications"].as_array().unwrap();
            assert_eq!(entries.len(), 2, "{json}");
            assert_eq!(entries[0]["status"], "confirmed", "ordered by time: {json}");
            assert_eq!(entries[1]["status"], "rejected", "{json}");
            assert_eq!(doc.case().unwrap().verifications.len(), 2);
        }
        assert_eq!(staff.to_json().unwrap(), office.to_json().unwrap());
        if staff.to_json().unwrap()["status"] == "confirmed" {
            let bound = office.confirmed().unwrap().expect("the confirmation binds");
            assert_eq!(bound.get("incident.cause").as_deref(), Some("captivity"));
            let edit = office
                .edit(
                    &[Edit::set("incident.cause", "targeted_strike")],
                    "office",
                    at(7),
                )
                .unwrap();
            assert!(edit.is_some());
            let changed = office.changed_since_confirmed().unwrap();
            assert_eq!(changed.len(), 1, "{changed:?}");
        }
    }
}
