//! A single case document: creation, edits, views, history, saving and damaged input.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use cairn_model::{CaseDoc, Edit, Kind, ModelError, Status, SCHEMA};
use common::{at, fork_for_b, hex, millis, new_case, reference, A, B};
use serde_json::json;
use uuid::Uuid;

#[test]
fn create_writes_header_and_edits_in_one_change() {
    let (doc, change) = new_case(&[
        Edit::set("person.name", "Unknown woman"),
        Edit::set("found.lat", "31.5"),
        Edit::set("incident.narrative", "Found near the road."),
    ]);
    assert!(!change.is_empty());
    assert_eq!(doc.changes(), [change]);
    assert_eq!(doc.reference(), &reference());

    let case = doc.case().unwrap();
    assert_eq!(case.schema, SCHEMA);
    assert_eq!(case.id, doc.id());
    assert_eq!(case.kind, Kind::Remains);
    assert_eq!(case.status, Status::Alleged);
    assert_eq!(case.created_at, "2024-05-01T10:00:00Z");
    assert_eq!(case.created_by, "device-a");
    assert_eq!(case.person.name.as_deref(), Some("Unknown woman"));
    assert_eq!(case.found.lat, Some(31.5));
    assert_eq!(case.found.lon, None);
    assert_eq!(case.incident.narrative.as_str(), "Found near the road.");
    assert_eq!(case.incident.place, None);
    assert!(case.notes.is_empty());

    assert_eq!(
        doc.to_json().unwrap(),
        json!({
            "schema": 1,
            "id": "12345678-9abc-def0-1234-56789abcdef0",
            "reference": "KHR-T03-7KQ2-0017",
            "created_at": "2024-05-01T10:00:00Z",
            "created_by": "device-a",
            "kind": "remains",
            "status": "alleged",
            "incident": { "narrative": "Found near the road." },
            "found": { "lat": 31.5 },
            "person": { "name": "Unknown woman" },
            "notes": [],
            "custody": [],
            "sources": [],
        })
    );

    let history = doc.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].time_ms, millis(at(0)));
    assert_eq!(history[0].actor, hex(&A));
    // In the order of the change's operations: a new case is written as one tree, its
    // scalars before its text.
    assert_eq!(
        history[0].fields,
        ["created", "found.lat", "person.name", "incident.narrative"]
    );
}

#[test]
fn every_field_shows_in_json_and_the_typed_case() {
    let values = [
        ("kind", "killed"),
        ("status", "under_investigation"),
        ("source_id", "MoH-2024-00017"),
        ("place", "GZA"),
        ("incident.date", "2024-01-01/2024-01-03"),
        ("incident.place", "Road 4"),
        ("incident.cause", "captivity"),
        ("incident.narrative", "n"),
        ("found.at", "2024-05-01T14:30:00+03:00"),
        ("found.lat", "1.5"),
        ("found.lon", "-2.5"),
        ("found.alt", "-10"),
        ("found.accuracy_m", "4"),
        ("found.scene", "rubble"),
        ("found.description", "d"),
        ("person.name", "X"),
        ("person.sex", "female"),
        ("person.age_group", "adult"),
        ("person.age_years", "33"),
        ("person.civilian", "yes"),
        ("person.height_cm", "172.5"),
        ("person.clothing", "blue jacket"),
        ("person.effects", "silver ring"),
        ("person.marks", "scar on the left hand"),
        ("last_seen.at", "2024-04-30"),
        ("last_seen.place", "checkpoint 3"),
        ("last_seen.lat", "1.25"),
        ("last_seen.lon", "-2.75"),
        ("remains.completeness", "commingled"),
        ("remains.condition", "burned"),
        ("remains.height_cm", "170"),
        ("remains.clothing", "c"),
        ("remains.marks", "m"),
        ("remains.effects", "e"),
        ("injuries", "i"),
        ("torture_signs", "no"),
        ("forensic.examiner", "Dr Y"),
        ("forensic.date", "2024-05-02"),
        ("forensic.report_ref", "FR-1"),
        ("forensic.conclusions", "fc"),
        ("identification.status", "preliminary"),
        ("identification.basis", "b"),
    ];
    assert_eq!(values.len(), cairn_model::fields().len());
    let edits: Vec<Edit> = values.iter().map(|(k, v)| Edit::set(*k, *v)).collect();
    let (mut doc, _) = new_case(&edits);
    // Only the office's status is read: here the office made the case.
    doc.set_office(&[A]);
    let json = doc.to_json().unwrap();
    for (key, raw) in values {
        let shown = key.split('.').fold(&json, |v, k| &v[k]);
        let expected = cairn_model::validate(key, raw).unwrap().to_json();
        assert_eq!(shown, &expected, "{key}");
    }
    let case = doc.case().unwrap();
    assert_eq!(case.kind, Kind::Killed);
    assert_eq!(case.status, Status::UnderInvestigation);
    assert_eq!(case.person.age_years, Some(33));
    assert_eq!(case.found.alt, Some(-10.0));
    assert_eq!(case.remains.effects.as_str(), "e");
    assert_eq!(case.injuries.as_str(), "i");
    assert_eq!(case.torture_signs.as_deref(), Some("no"));
    assert_eq!(case.source_id.as_deref(), Some("MoH-2024-00017"));
    assert_eq!(case.forensic.conclusions.as_str(), "fc");
    assert_eq!(case.identification.status.as_deref(), Some("preliminary"));
    assert_eq!(case.last_seen.at.as_deref(), Some("2024-04-30"));
    assert_eq!(case.last_seen.lon, Some(-2.75));
    assert_eq!(case.person.height_cm, Some(172.5));
    assert_eq!(case.remains.height_cm, Some(170.0));
    assert!(doc.conflicts().is_empty());
}

#[test]
fn list_entries_record_time_and_author() {
    let (mut doc, _) = new_case(&[]);
    doc.edit(
        &[
            Edit::Note {
                text: "Seen from the road.".into(),
            },
            Edit::Custody {
                from: Some("scene".into()),
                to: "Morgue 2".into(),
                place: Some(" ".into()),
                purpose: Some("autopsy".into()),
                seal: Some("S-0042".into()),
                at: None,
            },
            Edit::Source {
                kind: "witness".into(),
                contact: None,
                consent: "Yes".into(),
                at: None,
            },
        ],
        "device-b",
        at(3),
    )
    .unwrap()
    .unwrap();
    let json = doc.to_json().unwrap();
    assert_eq!(
        json["notes"],
        json!([{ "at": "2024-05-01T10:03:00Z", "author": "device-b", "text": "Seen from the road." }])
    );
    assert_eq!(
        json["custody"],
        json!([{
            "at": "2024-05-01T10:03:00Z", "author": "device-b", "from": "scene",
            "to": "Morgue 2", "purpose": "autopsy", "seal": "S-0042"
        }])
    );
    assert_eq!(
        json["sources"],
        json!([{ "at": "2024-05-01T10:03:00Z", "author": "device-b", "type": "witness", "consent": "yes" }])
    );
    assert_eq!(doc.history()[1].fields, ["note", "custody", "source"]);
}

#[test]
fn edits_that_change_nothing_make_no_change() {
    let (mut doc, _) = new_case(&[Edit::set("person.name", "Ali")]);
    let heads = doc.heads();
    let unchanged = [
        Edit::set("person.name", " Ali "),
        Edit::set("kind", "remains"),
        Edit::set("injuries", ""),
        Edit::set("incident.place", ""),
    ];
    assert_eq!(doc.edit(&unchanged, "device-a", at(1)).unwrap(), None);
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.history().len(), 1);
}

#[test]
fn an_invalid_edit_writes_nothing() {
    let (mut doc, _) = new_case(&[]);
    let before = doc.to_json().unwrap();
    let heads = doc.heads();
    let err = doc
        .edit(
            &[
                Edit::set("person.name", "Ali"),
                Edit::set("found.lat", "95"),
            ],
            "device-a",
            at(1),
        )
        .unwrap_err();
    assert!(matches!(err, ModelError::InvalidValue { ref key, .. } if key == "found.lat"));
    assert!(matches!(
        doc.edit(&[Edit::set("id", "x")], "device-a", at(1)),
        Err(ModelError::NotSettable(_))
    ));
    assert!(matches!(
        doc.edit(&[Edit::set("found.scene", "")], "device-a", at(1)),
        Err(ModelError::InvalidValue { .. })
    ));
    assert!(matches!(
        doc.edit(&[Edit::Note { text: "  ".into() }], "device-a", at(1)),
        Err(ModelError::InvalidValue { .. })
    ));
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.to_json().unwrap(), before);
    // The document is still usable after the refused edits.
    assert!(doc
        .edit(&[Edit::set("person.name", "Ali")], "device-a", at(2))
        .unwrap()
        .is_some());
}

#[test]
fn edits_can_be_checked_before_any_document_is_opened() {
    assert!(Edit::set("found.lat", "45").check().is_ok());
    assert!(Edit::set("found.lat", "95").check().is_err());
    assert!(matches!(
        Edit::Source { kind: "witness".into(), contact: None, consent: "maybe".into(), at: None }.check(),
        Err(ModelError::InvalidValue { ref key, .. }) if key == "source.consent"
    ));
    assert!(matches!(
        Edit::Custody { from: None, to: " ".into(), place: None, purpose: None, seal: None, at: None }.check(),
        Err(ModelError::InvalidValue { ref key, .. }) if key == "custody.to"
    ));
}

#[test]
fn save_and_load_round_trip() {
    let (mut doc, _) = new_case(&[Edit::set("incident.cause", "unknown")]);
    doc.edit(&[Edit::Note { text: "n".into() }], "device-a", at(1))
        .unwrap();
    let loaded = CaseDoc::load(&doc.save(), &B).unwrap();
    assert_eq!(loaded.heads(), doc.heads());
    assert_eq!(loaded.to_json().unwrap(), doc.to_json().unwrap());
    assert_eq!(loaded.history(), doc.history());
    assert_eq!(loaded.id(), doc.id());
    assert_eq!(loaded.reference(), doc.reference());
    assert_eq!(loaded.actor(), hex(&B));
    let rebuilt = CaseDoc::from_changes(&doc.changes(), &B, &[]).unwrap();
    assert_eq!(rebuilt.heads(), doc.heads());
}

#[test]
fn damaged_input_is_an_error_not_a_panic() {
    let (doc, change) = new_case(&[]);
    let saved = doc.save();
    let garbage: [&[u8]; 4] = [
        b"",
        b"not an automerge document",
        &saved[..saved.len() / 2],
        &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0],
    ];
    for bytes in garbage {
        assert!(
            matches!(CaseDoc::load(bytes, &A), Err(ModelError::Corrupt(_))),
            "{bytes:?}"
        );
    }
    let mut flipped = saved.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xFF;
    assert!(CaseDoc::load(&flipped, &A).is_err());

    let mut copy = CaseDoc::load(&saved, &B).unwrap();
    let heads = copy.heads();
    let err = copy
        .apply_changes(&[change.clone(), b"junk".to_vec()])
        .unwrap_err();
    assert_eq!(
        err,
        ModelError::Refused("its content is not an Automerge change".into())
    );
    assert_eq!(copy.heads(), heads);
    assert!(matches!(
        CaseDoc::from_changes(&[b"junk".to_vec()], &B, &[]),
        Err(ModelError::Refused(_))
    ));
    assert!(matches!(
        CaseDoc::load(&saved, &[]),
        Err(ModelError::InvalidActor)
    ));
}

#[test]
fn documents_that_are_not_cases_are_refused() {
    let mut other = automerge::AutoCommit::new();
    other
        .put(automerge::ROOT, "title", "a shopping list")
        .unwrap();
    assert!(matches!(
        CaseDoc::load(&other.save(), &A),
        Err(ModelError::Corrupt(_))
    ));

    let (doc, _) = new_case(&[]);
    let mut newer = automerge::AutoCommit::load(&doc.save()).unwrap();
    newer.put(automerge::ROOT, "schema", 2_u64).unwrap();
    let err = CaseDoc::load(&newer.save(), &A).unwrap_err();
    assert_eq!(err, ModelError::UnsupportedSchema(2));
    assert!(err.to_string().contains("update Cairn"));
}

#[test]
fn creation_refuses_bad_edits_and_actors() {
    let id = Uuid::nil();
    let err = CaseDoc::create(
        &A,
        id,
        &reference(),
        Kind::Missing,
        "device-a",
        at(0),
        &[Edit::set("persn.name", "x")],
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::UnknownField { .. }));
    assert!(matches!(
        CaseDoc::create(&[], id, &reference(), Kind::Missing, "device-a", at(0), &[]),
        Err(ModelError::InvalidActor)
    ));
}

#[test]
fn own_change_ops_counts_what_screening_counts() {
    let (mut doc, created) = new_case(&[Edit::set("incident.cause", "captivity")]);
    let edit = doc
        .edit(
            &[Edit::set("incident.narrative", "Found near the road.")],
            "device-a",
            at(1),
        )
        .unwrap()
        .unwrap();
    for change in [created, edit] {
        assert_eq!(
            cairn_model::own_change_ops(&change).unwrap(),
            cairn_model::screen_change(&change).unwrap().ops
        );
    }
    assert!(cairn_model::own_change_ops(b"junk").is_err());
}

/// A new case is written as one tree (the field and verification edits folded into it): what
/// it reads as must be what the same edits give when applied one by one, and the office's
/// creation must be accepted by every replica told who the office is.
#[test]
fn a_case_created_with_edits_reads_as_the_edits_applied_one_by_one() {
    let office: [u8; 32] = [0x0F; 32];
    let edits = [
        Edit::set("incident.narrative", "Found near the road."),
        Edit::set("found.lat", "31.5"),
        Edit::set("person.age_years", "40"),
        Edit::set("person.name", "Unknown woman"),
        Edit::set("person.name", ""),
        Edit::set("found.lat", "31.25"),
        Edit::set("incident.narrative", ""),
        Edit::set("status", "under_investigation"),
        Edit::Verify {
            status: "under_investigation".into(),
            basis: None,
        },
        Edit::set("incident.cause", "captivity"),
        Edit::Verify {
            status: "confirmed".into(),
            basis: Some("death certificate".into()),
        },
        Edit::Note {
            text: "after the fold".into(),
        },
        Edit::set("incident.cause", "unknown"),
    ];
    let id = Uuid::from_u128(7);
    let create = |edits: &[Edit]| {
        CaseDoc::create(
            &office,
            id,
            &reference(),
            Kind::Killed,
            "office",
            at(0),
            edits,
        )
        .unwrap()
    };
    let (mut folded, created) = create(&edits);
    folded.set_office(&[office]);
    let (mut stepwise, _) = create(&[]);
    stepwise.set_office(&[office]);
    for edit in &edits {
        stepwise
            .edit(std::slice::from_ref(edit), "office", at(0))
            .unwrap();
    }
    assert_eq!(folded.to_json().unwrap(), stepwise.to_json().unwrap());
    assert_eq!(folded.case().unwrap(), stepwise.case().unwrap());
    assert_eq!(folded.overview().unwrap(), stepwise.overview().unwrap());
    // Every replica accepts the office's creation, and reads the same.
    let replica = CaseDoc::from_changes(&[created], &B, &[office]).unwrap();
    assert_eq!(replica.to_json().unwrap(), folded.to_json().unwrap());
    let fields = &folded.history()[0].fields;
    for key in [
        "found.lat",
        "person.age_years",
        "incident.cause",
        "verification",
        "note",
    ] {
        assert!(fields.iter().any(|f| f == key), "{key} in {fields:?}");
    }
}

/// Each entry is attributed to the actor whose change wrote it, whatever `author` it
/// typed; merged lists keep the attribution in the order every replica reads them.
#[test]
fn each_entry_names_the_actor_that_wrote_it() {
    let (mut a, _) = new_case(&[]);
    let mut b = fork_for_b(&a);
    let ca = a
        .edit(
            &[Edit::Note {
                text: "by a".into(),
            }],
            "device-a",
            at(1),
        )
        .unwrap()
        .unwrap();
    let cb = b
        .edit(
            &[
                Edit::Note {
                    text: "by b, claiming a".into(),
                },
                Edit::Custody {
                    from: None,
                    to: "morgue".into(),
                    place: None,
                    purpose: None,
                    seal: None,
                    at: None,
                },
            ],
            "office",
            at(2),
        )
        .unwrap()
        .unwrap();
    a.apply_changes(&[cb]).unwrap();
    b.apply_changes(&[ca]).unwrap();
    let json = a.to_json_with_signers().unwrap();
    assert_eq!(json, b.to_json_with_signers().unwrap());
    assert_eq!(json["created_signed_by"], hex(&A));
    for note in json["notes"].as_array().unwrap() {
        let expected = if note["text"] == "by a" {
            hex(&A)
        } else {
            hex(&B)
        };
        assert_eq!(note["signed_by"], expected, "{note}");
    }
    assert_eq!(json["custody"][0]["author"], "office");
    assert_eq!(json["custody"][0]["signed_by"], hex(&B));
    assert_eq!(a.entry_signers("sources").unwrap(), Vec::<String>::new());
    // Without signers, the JSON is as it always was.
    let mut plain = json.clone();
    plain.as_object_mut().unwrap().remove("created_signed_by");
    for list in ["notes", "custody"] {
        for entry in plain[list].as_array_mut().unwrap() {
            entry.as_object_mut().unwrap().remove("signed_by");
        }
    }
    assert_eq!(plain, a.to_json().unwrap());
}
