//! Changes a hostile teammate could write by hand: each is refused and leaves the case as it
//! was, while honest concurrent edits still merge.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{legacy, ActorId, Automerge, ObjType, ReadDoc, ROOT};
use cairn_model::{
    screen_change, CaseDoc, Edit, ModelError, MAX_CHANGE_BYTES, MAX_CHANGE_OPS, MAX_TEXT_CHARS,
};
use common::{at, new_case, B};

/// A case with one note, and a raw Automerge copy of it writing as device B.
fn setup() -> (CaseDoc, Automerge) {
    let (doc, _) = new_case(&[Edit::Note {
        text: "first note".into(),
    }]);
    let raw = Automerge::load(&doc.save())
        .unwrap()
        .with_actor(ActorId::from(B.as_slice()));
    (doc, raw)
}

/// Makes one change with `f` on the raw copy and returns its bytes.
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

/// Applies `change` and expects a refusal naming `reason`, with the case unchanged: alone,
/// and after an honest change of the same batch, which leaves the judge what it found in the
/// case (one honest change writes to a group only, the other to the root and the notes).
fn refused(doc: &mut CaseDoc, change: Vec<u8>, reason: &str) {
    let heads = doc.heads();
    let case = doc.case().unwrap();
    let honest = [
        vec![Edit::set("person.sex", "male")],
        vec![
            Edit::set("torture_signs", "no"),
            Edit::Note {
                text: "an honest note".into(),
            },
        ],
    ]
    .map(|edits| doc.clone().edit(&edits, "a", at(5)).unwrap().unwrap());
    let batches = [
        vec![change.clone()],
        vec![honest[0].clone(), change.clone()],
        vec![honest[1].clone(), change],
    ];
    for batch in batches {
        match doc.apply_changes(&batch) {
            Err(ModelError::Refused(why) | ModelError::RefusedChange { reason: why, .. }) => {
                assert!(why.contains(reason), "{why}")
            }
            other => panic!("expected a refusal naming {reason:?}, got {other:?}"),
        }
        assert_eq!(doc.heads(), heads);
        assert_eq!(doc.case().unwrap(), case);
    }
}

fn notes(raw: &Automerge) -> automerge::ObjId {
    raw.get(ROOT, "notes").unwrap().unwrap().1
}

/// The id of the operation that wrote `obj[key]`, as a change names it.
fn op_at(raw: &Automerge, obj: &automerge::ObjId, key: &str) -> legacy::OpId {
    match raw.get(obj, key).unwrap().unwrap().1 {
        automerge::ObjId::Id(counter, actor, _) => legacy::OpId(counter, actor),
        automerge::ObjId::Root => panic!("`{key}` holds the root"),
    }
}

/// `change` with the predecessors of its operation number `op` set to `preds`, encoded as
/// Automerge encodes it (a transaction never names the wrong ones).
fn with_preds(change: &[u8], op: usize, preds: Vec<legacy::OpId>) -> Vec<u8> {
    let mut expanded = automerge::Change::try_from(change).unwrap().decode();
    expanded.operations[op].pred = preds.into();
    expanded.hash = None;
    automerge::Change::from(expanded).raw_bytes().to_vec()
}

#[test]
fn identity_cannot_be_rewritten() {
    for (key, value) in [
        (
            "reference",
            automerge::ScalarValue::from("KHR-T04-7KQ2-0017"),
        ),
        ("schema", automerge::ScalarValue::Uint(2)),
        ("created_by", automerge::ScalarValue::from("someone else")),
        (
            "created_at",
            automerge::ScalarValue::from("1970-01-01T00:00:00Z"),
        ),
    ] {
        let (mut doc, mut raw) = setup();
        let change = forge(&mut raw, |tx| tx.put(ROOT, key, value.clone()).unwrap());
        refused(&mut doc, change, key);
    }
    let (mut doc, mut raw) = setup();
    let change = forge(&mut raw, |tx| tx.delete(ROOT, "id").unwrap());
    refused(&mut doc, change, "id");
}

#[test]
fn a_second_creation_of_the_same_case_is_refused() {
    let (mut doc, _) = setup();
    // Device B "creates" the same case id concurrently: no dependencies on A's creation.
    let mut rival = Automerge::new().with_actor(ActorId::from(B.as_slice()));
    let change = forge(&mut rival, |tx| {
        tx.put(ROOT, "schema", 1u64).unwrap();
        tx.put(ROOT, "reference", "KHR-T03-ZZZZ-0001").unwrap();
    });
    refused(&mut doc, change, "second value");
}

#[test]
fn append_only_entries_cannot_be_deleted_or_rewritten() {
    let (mut doc, mut raw) = setup();
    let list = notes(&raw);
    let change = forge(&mut raw, |tx| tx.delete(&list, 0).unwrap());
    refused(&mut doc, change, "deletes or moves an entry of notes");

    let (mut doc, mut raw) = setup();
    let list = notes(&raw);
    let entry = raw.get(&list, 0).unwrap().unwrap().1;
    let change = forge(&mut raw, |tx| tx.put(&entry, "text", "rewritten").unwrap());
    refused(&mut doc, change, "rewrites an entry of notes");

    let (mut doc, mut raw) = setup();
    let change = forge(&mut raw, |tx| {
        tx.put_object(ROOT, "notes", ObjType::List).unwrap();
    });
    refused(&mut doc, change, "replaces the case's `notes`");

    let (mut doc, mut raw) = setup();
    let list = notes(&raw);
    let change = forge(&mut raw, |tx| {
        let e = tx.insert_object(&list, 1, ObjType::Map).unwrap();
        tx.put(&e, "at", "2024-05-01T10:00:00Z").unwrap();
        tx.put(&e, "author", "b").unwrap();
    });
    refused(&mut doc, change, "without `text`");
}

#[test]
fn values_the_command_line_refuses_are_refused() {
    let (mut doc, mut raw) = setup();
    let incident = raw.get(ROOT, "incident").unwrap().unwrap().1;
    let change = forge(&mut raw, |tx| tx.put(&incident, "cause", "banana").unwrap());
    refused(&mut doc, change, "`incident.cause`");

    let (mut doc, mut raw) = setup();
    let found = raw.get(ROOT, "found").unwrap().unwrap().1;
    let change = forge(&mut raw, |tx| tx.put(&found, "lat", 400.0).unwrap());
    refused(&mut doc, change, "`found.lat`");

    let (mut doc, mut raw) = setup();
    let change = forge(&mut raw, |tx| tx.put(ROOT, "payload", "x").unwrap());
    refused(&mut doc, change, "`payload`");

    let (mut doc, mut raw) = setup();
    let change = forge(&mut raw, |tx| tx.delete(ROOT, "kind").unwrap());
    refused(&mut doc, change, "kind");
}

#[test]
fn honest_edits_from_another_device_still_merge() {
    let (mut doc, _) = setup();
    let mut b = CaseDoc::from_changes(&doc.changes(), &B, &[]).unwrap();
    let change = b
        .edit(
            &[
                Edit::set("incident.cause", "captivity"),
                Edit::set("found.lat", "31.5"),
                Edit::Note {
                    text: "second".into(),
                },
                Edit::Custody {
                    from: None,
                    to: "forensic unit".into(),
                    place: None,
                    purpose: None,
                    seal: None,
                    at: None,
                },
            ],
            "device-b",
            at(5),
        )
        .unwrap()
        .unwrap();
    doc.apply_changes(&[change]).unwrap();
    assert_eq!(doc.case().unwrap(), b.case().unwrap());
}

#[test]
fn compressed_and_oversized_changes_are_refused_unopened() {
    // A deflate bomb: a few kilobytes that would inflate to 64 MiB.
    use std::io::Write;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(&vec![0u8; 64 << 20]).unwrap();
    let body = deflate.finish().unwrap();
    let mut bomb = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut len = body.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        bomb.push(if len == 0 { byte } else { byte | 0x80 });
        if len == 0 {
            break;
        }
    }
    bomb.extend(body);
    assert!(bomb.len() < 100_000);
    let err = screen_change(&bomb).unwrap_err();
    assert!(err.to_string().contains("compressed"), "{err}");
    let (mut doc, _) = setup();
    refused(&mut doc, bomb, "compressed");

    // Automerge's own compression of a genuine large change is refused the same way.
    let (mut doc, _) = setup();
    let mut b = CaseDoc::from_changes(&doc.changes(), &B, &[]).unwrap();
    let big = b
        .edit(
            &[Edit::set("incident.narrative", "x".repeat(2000))],
            "b",
            at(1),
        )
        .unwrap()
        .unwrap();
    let mut change = automerge::Change::try_from(big.as_slice()).unwrap();
    let compressed = change.bytes().to_vec();
    assert_eq!(compressed[8], 2, "automerge compressed it");
    refused(&mut doc, compressed, "compressed");
    doc.apply_changes(&[big]).unwrap();

    let oversized = vec![0u8; MAX_CHANGE_BYTES + 1];
    let (mut doc, _) = setup();
    refused(&mut doc, oversized, "over the limit");
}

fn uleb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            return;
        }
    }
}

#[test]
fn operation_counts_are_read_without_walking_them() {
    // Genuine changes: the count read from the action column is Automerge's own.
    let (mut doc, first) = new_case(&[Edit::set("incident.narrative", "y".repeat(3000))]);
    let cleared = doc
        .edit(&[Edit::set("incident.narrative", "short")], "a", at(1))
        .unwrap()
        .unwrap();
    let noted = doc
        .edit(
            &[
                Edit::Note { text: "n".into() },
                Edit::set("kind", "injured"),
            ],
            "a",
            at(2),
        )
        .unwrap()
        .unwrap();
    for raw in [first, cleared, noted] {
        let change = automerge::Change::try_from(raw.as_slice()).unwrap();
        assert_eq!(screen_change(&raw).unwrap().ops, change.len() as u64);
    }

    // Forty bytes that claim 2^40 operations: refused before Automerge walks a single one.
    let mut body = vec![0]; // no dependencies
    uleb(32, &mut body);
    body.extend([0xAA; 32]); // actor
    body.extend([1, 1, 0, 0, 0]); // seq, start op, time, message, other actors
    let mut column = Vec::new();
    uleb(1 << 40, &mut column); // a run of 2^40 (positive: fits in the signed LEB128 too)
    column.push(1); // ... "set" actions
    body.push(1); // one column
    uleb((4 << 4) | 2, &mut body);
    uleb(column.len() as u64, &mut body);
    body.extend(column);
    let mut bomb = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
    uleb(body.len() as u64, &mut bomb);
    bomb.extend(body);
    let err = screen_change(&bomb).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("over the limit of {MAX_CHANGE_OPS}")),
        "{err}"
    );
}

#[test]
fn text_is_bounded_where_it_is_typed() {
    let (mut doc, _) = setup();
    let long = "z".repeat(MAX_TEXT_CHARS + 1);
    assert!(matches!(
        doc.edit(
            &[Edit::set("incident.narrative", long.as_str())],
            "a",
            at(1)
        ),
        Err(ModelError::InvalidValue { .. })
    ));
    // Three full texts in one edit would be a change other devices refuse: refused here.
    let full = "z".repeat(MAX_TEXT_CHARS);
    let edits: Vec<Edit> = ["incident.narrative", "injuries", "remains.clothing"]
        .iter()
        .map(|k| Edit::set(*k, full.as_str()))
        .collect();
    assert_eq!(doc.edit(&edits, "a", at(1)), Err(ModelError::TooLarge));
}

#[test]
fn grouping_changes_into_pages_never_changes_what_is_accepted() {
    // A peer adds a stray key, then removes it in its next change: the second alone is
    // harmless, but the first is refused however the two arrive.
    let (doc, mut raw) = setup();
    let add = forge(&mut raw, |tx| tx.put(ROOT, "payload", "x").unwrap());
    let remove = forge(&mut raw, |tx| tx.delete(ROOT, "payload").unwrap());
    let mut together = doc.clone();
    refused(&mut together, add.clone(), "payload");
    let err = together
        .apply_changes(&[add.clone(), remove.clone()])
        .unwrap_err();
    assert!(err.to_string().contains("payload"), "{err}");
    // A case first seen with both in the same page: refused too.
    let mut all = doc.changes();
    all.extend([add, remove]);
    let err = CaseDoc::from_changes(&all, &B, &[]).unwrap_err();
    assert!(err.to_string().contains("payload"), "{err}");
}

#[test]
fn history_reads_what_a_change_did_not_what_it_says() {
    let (mut doc, mut raw) = setup();
    let person = raw.get(ROOT, "person").unwrap().unwrap().1;
    let mut tx = raw.transaction();
    tx.put(&person, "sex", "male").unwrap();
    let options = automerge::transaction::CommitOptions::default()
        .with_message(r#"["status"]"#.to_string())
        .with_time(0);
    let (hash, _) = tx.commit_with(options);
    let change = raw
        .get_change_by_hash(&hash.unwrap())
        .unwrap()
        .raw_bytes()
        .to_vec();
    doc.apply_changes(&[change]).unwrap();
    let history = doc.history();
    let last = history.last().unwrap();
    assert_eq!(last.fields, ["person.sex"]);
    assert_eq!(last.time_ms, 0);
    assert_eq!(
        last.doubt.as_deref(),
        Some("dated before the case was created")
    );
    assert_eq!(history[0].fields, ["created", "note"]);
}

fn sleb(mut n: i64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let done = (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// A hand-made change chunk with `cols` as its columns (no dependencies, author B, seq 1).
fn chunk(cols: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![0];
    uleb(32, &mut body);
    body.extend(B);
    body.extend([1, 1, 0, 0, 0]); // seq, start op, time, message, other actors
    uleb(cols.len() as u64, &mut body);
    for (spec, data) in cols {
        uleb(*spec, &mut body);
        uleb(data.len() as u64, &mut body);
    }
    for (_, data) in cols {
        body.extend(data);
    }
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
    uleb(body.len() as u64, &mut out);
    out.extend(body);
    out
}

#[test]
fn columns_that_claim_more_than_their_bytes_are_refused_unparsed() {
    // One operation whose list of predecessors claims 2^34 entries, in about 90 bytes:
    // Automerge would allocate them all while parsing.
    let n = 1u64 << 34;
    let (mut group, mut actors, mut counters) = (vec![1], Vec::new(), Vec::new());
    uleb(n, &mut group);
    sleb(n as i64, &mut actors); // a run of n...
    actors.push(0); // ... of actor 0
    sleb(n as i64, &mut counters);
    counters.push(0);
    let bomb = chunk(&[
        ((1 << 4) | 5, vec![1, 1, b'x']), // key "x"
        ((3 << 4) | 4, vec![1]),          // not an insert
        ((4 << 4) | 2, vec![1, 3]),       // one delete
        ((5 << 4) | 6, vec![1, 0]),       // no value
        (7 << 4, group),
        ((7 << 4) | 1, actors),
        ((7 << 4) | 3, counters),
    ]);
    assert!(bomb.len() < 100);
    let err = screen_change(&bomb).unwrap_err();
    assert!(
        err.to_string().contains("references to earlier ones"),
        "{err}"
    );

    // A map key of 500 kB named once and used by every operation of a run.
    let (base, _) = new_case(&[]);
    let mut raw = Automerge::load(&base.save())
        .unwrap()
        .with_actor(ActorId::from(B.as_slice()));
    let key = "k".repeat(500_000);
    let change = forge(&mut raw, |tx| {
        for i in 0..100 {
            tx.put(ROOT, key.as_str(), i % 2 == 0).unwrap();
        }
        tx.delete(ROOT, key.as_str()).unwrap();
    });
    let err = screen_change(&change).unwrap_err();
    assert!(err.to_string().contains("key of 500000 bytes"), "{err}");
}

/// The change's dependencies removed, so it looks ready to apply.
fn strip_deps(raw: &[u8]) -> Vec<u8> {
    let mut i = 9;
    while raw[i] & 0x80 != 0 {
        i += 1;
    }
    let body = &raw[i + 1..];
    let deps = body[0] as usize;
    let mut new_body = vec![0u8];
    new_body.extend(&body[1 + 32 * deps..]);
    let mut out = raw[..9].to_vec();
    uleb(new_body.len() as u64, &mut out);
    out.extend(new_body);
    out
}

#[test]
fn a_change_naming_devices_the_case_never_saw_is_refused_not_a_panic() {
    // Automerge 0.12 panics on a second change of an author it has never seen.
    let (mut doc, mut raw) = setup();
    forge(&mut raw, |tx| tx.put(ROOT, "kind", "injured").unwrap());
    let second = strip_deps(&forge(&mut raw, |tx| {
        tx.put(ROOT, "kind", "missing").unwrap()
    }));
    refused(&mut doc, second, "not its author's next change");
}

#[test]
fn text_holds_characters_and_entries_hold_times() {
    let (mut doc, mut raw) = setup();
    let incident = raw.get(ROOT, "incident").unwrap().unwrap().1;
    let narrative = raw.get(&incident, "narrative").unwrap().unwrap().1;
    let change = forge(&mut raw, |tx| {
        let hidden = tx.insert_object(&narrative, 0, ObjType::Map).unwrap();
        tx.put(&hidden, "anything", "no case holds this").unwrap();
    });
    refused(
        &mut doc,
        change,
        "something other than text in `incident.narrative`",
    );

    let (mut doc, mut raw) = setup();
    let list = notes(&raw);
    let change = forge(&mut raw, |tx| {
        let e = tx.insert_object(&list, 1, ObjType::Map).unwrap();
        tx.put(&e, "at", "banana").unwrap();
        tx.put(&e, "author", "b").unwrap();
        tx.put(&e, "text", "t").unwrap();
    });
    refused(&mut doc, change, "dated `banana`");
}

#[test]
fn a_change_automerge_would_encode_otherwise_is_refused() {
    // One operation (put null at root key "x") with each column written as a run of one,
    // where Automerge writes a single value as a literal: the same change to Automerge, but
    // with another hash once Automerge saves and reloads it.
    let runs = chunk(&[
        ((1 << 4) | 5, vec![1, 1, b'x']),
        ((3 << 4) | 4, vec![1]),
        ((4 << 4) | 2, vec![1, 1]),
        ((5 << 4) | 6, vec![1, 0]),
        (7 << 4, vec![1, 0]),
    ]);
    let change = automerge::Change::try_from(runs.as_slice()).unwrap();
    assert_ne!(
        automerge::Change::from(change.decode()).hash(),
        change.hash()
    );
    let err = screen_change(&runs).unwrap_err();
    assert!(
        err.to_string().contains("not in Automerge's own encoding"),
        "{err}"
    );
}

#[test]
fn a_change_that_changes_nothing_is_refused() {
    // Automerge would accept it, and the case would then no longer load once saved.
    let (mut doc, _) = setup();
    refused(&mut doc, chunk(&[]), "changes nothing");
}

/// Automerge 0.12 takes a predecessor wherever it finds it, not only at the operation's own key:
/// a write to one key could hide another (the schema, a field, a list), and rebuilding such a
/// change panicked inside Automerge. Each is refused, and no peer's bytes stop a sync.
#[test]
fn a_change_naming_predecessors_elsewhere_is_refused_not_a_panic() {
    let (doc, _) = new_case(&[
        Edit::Note {
            text: "first note".into(),
        },
        Edit::set("person.name", "A. N. Other"),
        Edit::set("torture_signs", "no"),
    ]);
    let raw = || {
        Automerge::load(&doc.save())
            .unwrap()
            .with_actor(ActorId::from(B.as_slice()))
    };
    let person = raw().get(ROOT, "person").unwrap().unwrap().1;
    let schema = op_at(&raw(), &ROOT, "schema");
    let name = op_at(&raw(), &person, "name");
    let signs = op_at(&raw(), &ROOT, "torture_signs");
    let notes = op_at(&raw(), &ROOT, "notes");

    let put_signs = forge(&mut raw(), |tx| {
        tx.put(ROOT, "torture_signs", "yes").unwrap()
    });
    let put_sex = forge(&mut raw(), |tx| tx.put(&person, "sex", "male").unwrap());
    let both = forge(&mut raw(), |tx| {
        tx.put(ROOT, "torture_signs", "yes").unwrap();
        tx.put(&person, "sex", "male").unwrap();
    });
    let delete_signs = forge(&mut raw(), |tx| tx.delete(ROOT, "torture_signs").unwrap());
    let forged = [
        // A root key hiding the schema, or the notes list.
        with_preds(&put_signs, 0, vec![schema.clone(), signs.clone()]),
        with_preds(&put_signs, 0, vec![notes, signs.clone()]),
        // A group's key hiding another of the same group.
        with_preds(&put_sex, 0, vec![name.clone()]),
        // An operation in a group hiding a root key the same change writes beside it.
        with_preds(&both, 1, vec![schema]),
        // A value already overwritten, named from another key.
        with_preds(&put_sex, 0, vec![signs, name]),
        // A deletion that names nothing it deletes.
        with_preds(&delete_signs, 0, Vec::new()),
    ];
    for change in forged {
        let mut doc = doc.clone();
        refused(&mut doc, change, "another form");
    }
}
