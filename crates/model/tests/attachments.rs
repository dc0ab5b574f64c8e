//! The append-only attachment list: what attaching records, how concurrent first attaches
//! merge, and what a hostile teammate's change to the list is refused.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ScalarValue, ROOT};
use cairn_model::{Attachment, CaseDoc, Edit, ModelError};
use common::{at, fork_for_b, new_case, A, B};

fn file(name: &str, fill: char) -> Attachment {
    Attachment {
        at: String::new(),
        author: String::new(),
        blob: fill.to_string().repeat(32),
        sha256: fill.to_string().repeat(64),
        name: name.into(),
        media_type: "image/jpeg".into(),
        size: 40_000,
        chunks: 3,
        team: "T03".into(),
        caption: Some("reference number in frame".into()),
        exif_time: Some("2024-05-01T09:58:00".into()),
        lat: Some(31.5),
        lon: Some(34.4),
    }
}

fn attach(doc: &mut CaseDoc, file: Attachment, author: &str, minute: i64) -> Vec<u8> {
    doc.edit(&[Edit::Attach(Box::new(file))], author, at(minute))
        .unwrap()
        .unwrap()
}

#[test]
fn attaching_records_the_capture_and_shows_in_json_and_history() {
    let (mut doc, _) = new_case(&[]);
    assert!(doc.attachments().unwrap().is_empty());
    assert!(doc.to_json().unwrap().get("attachments").is_none());
    attach(&mut doc, file("IMG_0001.jpg", 'a'), "device-a", 1);
    let listed = doc.attachments().unwrap();
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_eq!(entry.at, "2024-05-01T10:01:00Z");
    assert_eq!(entry.author, "device-a");
    assert_eq!((entry.size, entry.chunks), (40_000, 3));
    assert_eq!((entry.lat, entry.lon), (Some(31.5), Some(34.4)));
    let json = doc.to_json().unwrap();
    assert_eq!(json["attachments"][0]["sha256"], "a".repeat(64));
    assert_eq!(json["attachments"][0]["size"], 40_000);
    let last = doc.history().pop().unwrap();
    assert_eq!(last.fields, ["attachment"]);
    // The case reloads from its changes alone, as another device builds it.
    let copy = fork_for_b(&doc);
    assert_eq!(copy.attachments().unwrap(), listed);
}

#[test]
fn concurrent_first_attaches_both_stay() {
    let (mut a, _) = new_case(&[]);
    let mut b = fork_for_b(&a);
    let from_a = attach(&mut a, file("a.jpg", 'a'), "device-a", 1);
    let from_b = attach(&mut b, file("b.jpg", 'b'), "device-b", 2);
    a.apply_changes(&[from_b]).unwrap();
    b.apply_changes(&[from_a]).unwrap();
    let names = |doc: &CaseDoc| {
        let mut names: Vec<String> = doc
            .attachments()
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&a), ["a.jpg", "b.jpg"]);
    assert_eq!(a.attachments().unwrap(), b.attachments().unwrap());
    // And a later attach on either side lands next to both.
    let more = attach(&mut b, file("c.jpg", 'c'), "device-b", 3);
    a.apply_changes(&[more]).unwrap();
    assert_eq!(names(&a), ["a.jpg", "b.jpg", "c.jpg"]);
    assert_eq!(a.heads(), b.heads());
}

#[test]
fn an_attachment_that_is_not_one_is_refused_at_the_edit() {
    let (mut doc, _) = new_case(&[]);
    let mut bad_blob = file("x", 'a');
    bad_blob.blob = "not hex".into();
    let mut bad_hash = file("x", 'a');
    bad_hash.sha256 = "A".repeat(64);
    let mut no_chunks = file("x", 'a');
    no_chunks.chunks = 0;
    let mut half_position = file("x", 'a');
    half_position.lon = None;
    let mut off_earth = file("x", 'a');
    off_earth.lat = Some(91.0);
    let mut no_name = file(" ", 'a');
    no_name.caption = None;
    for bad in [
        bad_blob,
        bad_hash,
        no_chunks,
        half_position,
        off_earth,
        no_name,
    ] {
        let edit = Edit::Attach(Box::new(bad));
        assert!(matches!(edit.check(), Err(ModelError::InvalidValue { .. })));
        assert!(doc.edit(&[edit], "device-a", at(1)).is_err());
    }
    assert!(doc.attachments().unwrap().is_empty());
}

/// A case with one attachment, and a raw Automerge copy of it writing as device B.
fn setup() -> (CaseDoc, Automerge, automerge::ObjId) {
    let (mut doc, _) = new_case(&[]);
    attach(&mut doc, file("IMG_0001.jpg", 'a'), "device-a", 1);
    let raw = Automerge::load(&doc.save())
        .unwrap()
        .with_actor(ActorId::from(B.as_slice()));
    let list = raw.get(ROOT, "attachments").unwrap().unwrap().1;
    (doc, raw, list)
}

fn forge(
    raw: &mut Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
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
    let before = doc.attachments().unwrap();
    match doc.apply_changes(&[change]) {
        Err(ModelError::Refused(why) | ModelError::RefusedChange { reason: why, .. }) => {
            assert!(why.contains(reason), "{why}")
        }
        other => panic!("expected a refusal naming {reason:?}, got {other:?}"),
    }
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.attachments().unwrap(), before);
}

/// Writes an entry with every required key as the command line does, then `tweak`.
fn forged_entry(
    raw: &mut Automerge,
    list: &automerge::ObjId,
    tweak: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId),
) -> Vec<u8> {
    let list = list.clone();
    forge(raw, move |tx| {
        let e = append_entry(tx, &list, &"b".repeat(32));
        tweak(tx, &e);
    })
}

/// Appends to `list` an entry for blob `blob` with every required key.
fn append_entry(
    tx: &mut automerge::transaction::Transaction<'_>,
    list: &automerge::ObjId,
    blob: &str,
) -> automerge::ObjId {
    let end = tx.length(list);
    let e = tx.insert_object(list, end, ObjType::Map).unwrap();
    for (key, value) in [
        ("at", "2024-05-01T10:02:00Z"),
        ("author", "device-b"),
        ("blob", blob),
        ("sha256", &"b".repeat(64)),
        ("name", "b.jpg"),
        ("media_type", "image/jpeg"),
        ("team", "T03"),
    ] {
        tx.put(&e, key, value).unwrap();
    }
    tx.put(&e, "size", 10u64).unwrap();
    tx.put(&e, "chunks", 1u64).unwrap();
    e
}

#[test]
fn a_blob_id_is_never_listed_again_by_a_change_that_could_see_it() {
    // A teammate lists its own file under the blob id of A's photo, which it read in the
    // case: refused.
    let (mut doc, mut raw, list) = setup();
    let change = forged_entry(&mut raw, &list, |tx, e| {
        tx.put(e, "blob", "a".repeat(32)).unwrap()
    });
    refused(&mut doc, change, "already uses");
    // One change listing two files under one new blob id: refused.
    let (mut doc, mut raw, list) = setup();
    let l = list.clone();
    let change = forged_entry(&mut raw, &list, move |tx, _| {
        append_entry(tx, &l, &"b".repeat(32));
    });
    refused(&mut doc, change, "already uses");
    // A fresh blob id is taken (the rule does not refuse honest entries).
    let (mut doc, mut raw, list) = setup();
    let change = forged_entry(&mut raw, &list, |_, _| {});
    doc.apply_changes(&[change]).unwrap();
    assert_eq!(doc.attachments().unwrap().len(), 2);
}

#[test]
fn a_blob_id_listed_without_seeing_the_other_entry_is_judged_alike_in_either_order() {
    // B lists a file under the blob id A lists, without having seen A's entry: each replica
    // keeps both, in whichever order they arrive (the vault keeps their bytes apart).
    let (mut a, _) = new_case(&[]);
    let mut b = fork_for_b(&a);
    let from_a = attach(&mut a, file("a.jpg", 'a'), "device-a", 1);
    let mut squat = file("b.jpg", 'b');
    squat.blob = "a".repeat(32);
    let from_b = attach(&mut b, squat, "device-b", 2);
    a.apply_changes(&[from_b]).unwrap();
    b.apply_changes(&[from_a]).unwrap();
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.attachments().unwrap().len(), 2);
    // Once both are seen, nobody lists that id again.
    let mut raw = Automerge::load(&a.save())
        .unwrap()
        .with_actor(ActorId::from(B.as_slice()));
    let lists: Vec<automerge::ObjId> = raw
        .get_all(ROOT, "attachments")
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let again = forge(&mut raw, |tx| {
        append_entry(tx, &lists[0], &"a".repeat(32));
    });
    refused(&mut a, again, "already uses");
}

#[test]
fn attachment_entries_cannot_be_deleted_rewritten_or_replaced() {
    let (mut doc, mut raw, list) = setup();
    let change = forge(&mut raw, |tx| tx.delete(&list, 0).unwrap());
    refused(&mut doc, change, "deletes or moves an entry of attachments");

    let (mut doc, mut raw, list) = setup();
    let entry = raw.get(&list, 0).unwrap().unwrap().1;
    let change = forge(&mut raw, |tx| {
        tx.put(&entry, "sha256", "c".repeat(64)).unwrap()
    });
    refused(&mut doc, change, "rewrites an entry of attachments");

    let (mut doc, mut raw, _) = setup();
    let change = forge(&mut raw, |tx| {
        tx.put_object(ROOT, "attachments", ObjType::List).unwrap();
    });
    refused(&mut doc, change, "replaces the case's `attachments`");

    let (mut doc, mut raw, _) = setup();
    let change = forge(&mut raw, |tx| tx.delete(ROOT, "attachments").unwrap());
    refused(&mut doc, change, "replaces the case's `attachments`");

    let (mut doc, mut raw, _) = setup();
    let change = forge(&mut raw, |tx| tx.put(ROOT, "attachments", "none").unwrap());
    refused(&mut doc, change, "attachments");
}

/// What a forged entry changes in an honest one.
type Tweak = fn(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId);

#[test]
fn a_forged_entry_is_refused_and_an_honest_one_merges() {
    let cases: [(&str, Tweak); 7] = [
        ("not 64 hex digits", |tx, e| {
            tx.put(e, "sha256", "zz").unwrap()
        }),
        ("not 32 hex digits", |tx, e| tx.put(e, "blob", "a").unwrap()),
        ("other than a number", |tx, e| {
            tx.put(e, "size", "10").unwrap()
        }),
        ("of 0 chunks", |tx, e| tx.put(e, "chunks", 0u64).unwrap()),
        ("not a latitude", |tx, e| tx.put(e, "lat", 12.0).unwrap()),
        ("writes `path`", |tx, e| tx.put(e, "path", "/etc").unwrap()),
        ("without `team`", |tx, e| tx.delete(e, "team").unwrap()),
    ];
    for (reason, tweak) in cases {
        let (mut doc, mut raw, list) = setup();
        let change = forged_entry(&mut raw, &list, tweak);
        refused(&mut doc, change, reason);
    }
    let (mut doc, mut raw, list) = setup();
    let change = forged_entry(&mut raw, &list, |tx, e| {
        tx.put(e, "lat", ScalarValue::F64(-1.5)).unwrap();
        tx.put(e, "lon", ScalarValue::F64(30.0)).unwrap();
    });
    doc.apply_changes(&[change]).unwrap();
    let listed = doc.attachments().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[1].lat, listed[1].lon), (Some(-1.5), Some(30.0)));
}

#[test]
fn a_case_made_before_attachments_takes_them_from_any_device() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/case-v1.automerge"
    );
    let bytes = std::fs::read(fixture).unwrap();
    for actor in [A, B] {
        let mut doc = CaseDoc::load(&bytes, &actor).unwrap();
        assert!(doc.attachments().unwrap().is_empty());
        let change = attach(&mut doc, file("late.jpg", 'd'), "device", 5);
        let mut other = CaseDoc::load(&bytes, &[0xCC; 32]).unwrap();
        other.apply_changes(&[change]).unwrap();
        assert_eq!(other.attachments().unwrap()[0].name, "late.jpg");
    }
}
