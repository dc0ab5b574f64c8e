//! What judging a received change costs, beside Automerge merging the same change unchecked.
//!
//! Run: `cargo bench -p cairn-model --bench receive`. Results go in docs/BENCHMARKS.md.

use automerge::{Automerge, Change};
use cairn_model::{screen_change, CaseDoc, Edit, Kind, Reference};
use criterion::{criterion_group, criterion_main, Criterion};

/// A case with some history (fields, narrative, notes), and one more edit from another device.
fn case_and_edit() -> (CaseDoc, Vec<u8>) {
    let now = time::OffsetDateTime::now_utc();
    let reference: Reference = "KHR-T03-7KQ2-0017".parse().expect("reference");
    let id = uuid::Uuid::new_v4();
    let (mut a, _) =
        CaseDoc::create(&[0xAA; 32], id, &reference, Kind::Killed, "a", now, &[]).expect("create");
    for i in 0..20 {
        a.edit(
            &[
                Edit::set("incident.cause", "targeted_strike"),
                Edit::set(
                    "incident.narrative",
                    format!("Found near the road, visit {i}."),
                ),
                Edit::Note {
                    text: format!("note {i}"),
                },
            ],
            "a",
            now,
        )
        .expect("edit");
    }
    let mut b = CaseDoc::from_changes(&a.changes(), &[0xBB; 32], &[]).expect("fork");
    let edit = b
        .edit(
            &[
                Edit::set("person.sex", "male"),
                Edit::Note {
                    text: "from b".into(),
                },
            ],
            "b",
            now,
        )
        .expect("edit")
        .expect("a change");
    (a, edit)
}

fn receive(c: &mut Criterion) {
    let (case, edit) = case_and_edit();
    let saved = case.save();
    let mut group = c.benchmark_group("receive one edit into a case of 61 changes");
    group.bench_function("automerge: load, apply (unchecked)", |b| {
        b.iter(|| {
            let mut doc = Automerge::load(&saved).expect("load");
            let change = Change::try_from(edit.as_slice()).expect("change");
            doc.apply_changes([change]).expect("apply");
            doc
        })
    });
    group.bench_function("cairn: load, screen, apply, judge", |b| {
        b.iter(|| {
            let mut doc = CaseDoc::load(&saved, &[0xCC; 32]).expect("load");
            doc.apply_changes(std::slice::from_ref(&edit))
                .expect("apply");
            doc
        })
    });
    group.bench_function("cairn: screen alone", |b| {
        b.iter(|| screen_change(&edit).expect("screen"))
    });
    group.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);
