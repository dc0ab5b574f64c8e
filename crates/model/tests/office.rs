//! Verification and review are the office's: whatever a field device writes by hand, no
//! replica accepts a case confirmed or rejected by anyone else, an entry in the office's lists
//! from anyone else, or a field change to a status the office set. Honest proposals and
//! concurrent edits still merge, and the office's word counts where they conflict.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ROOT};
use cairn_model::{CaseDoc, Edit, ModelError};
use common::{at, new_case, B};

/// The office's actor.
const O: [u8; 32] = [0x0F; 32];

/// A case made on field device A, as the office and as device B hold it (both told who the
/// office is).
fn setup() -> (CaseDoc, CaseDoc, CaseDoc) {
    let (mut a, created) = new_case(&[Edit::set("incident.cause", "captivity")]);
    a.set_office(Some(&O));
    let office = CaseDoc::from_changes(std::slice::from_ref(&created), &O, Some(&O)).unwrap();
    let b = CaseDoc::from_changes(&[created], &B, Some(&O)).unwrap();
    (a, office, b)
}

fn verify(status: &str, basis: Option<&str>) -> Edit {
    Edit::Verify {
        status: status.into(),
        basis: basis.map(str::to_string),
    }
}

/// A change written by hand on a raw copy of `doc`, as `actor`.
fn forge(
    doc: &CaseDoc,
    actor: &[u8],
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    let mut raw = Automerge::load(&doc.save())
        .unwrap()
        .with_actor(ActorId::from(actor));
    let mut tx = raw.transaction();
    f(&mut tx);
    let (hash, _) = tx.commit();
    raw.get_change_by_hash(&hash.unwrap())
        .unwrap()
        .raw_bytes()
        .to_vec()
}

fn refused(doc: &mut CaseDoc, change: Vec<u8>, reason: &str) {
    let heads = doc.heads();
    match doc.apply_changes(&[change]) {
        Err(ModelError::RefusedChange { reason: why, .. }) => {
            assert!(why.contains(reason), "{why}")
        }
        other => panic!("expected a refusal naming {reason:?}, got {other:?}"),
    }
    assert_eq!(doc.heads(), heads);
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
    let mut blind = CaseDoc::from_changes(&[created], &B, None).unwrap();
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

#[test]
fn a_field_proposal_merges_and_the_office_word_counts_in_a_conflict() {
    let (mut a, mut office, mut b) = setup();
    // Concurrently: A proposes an investigation, the office confirms.
    let proposal = a
        .edit(
            &[Edit::set("status", "under_investigation")],
            "device-a",
            at(4),
        )
        .unwrap()
        .unwrap();
    let confirmed = office
        .edit(&[verify("confirmed", Some("autopsy"))], "office", at(5))
        .unwrap()
        .unwrap();
    a.apply_changes(std::slice::from_ref(&confirmed)).unwrap();
    office
        .apply_changes(std::slice::from_ref(&proposal))
        .unwrap();
    b.apply_changes(&[confirmed, proposal]).unwrap();
    for doc in [&a, &b, &office] {
        let overview = doc.overview().unwrap();
        assert_eq!(overview.status, "confirmed");
        assert!(overview.conflicts);
        assert_eq!(doc.heads(), office.heads());
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
