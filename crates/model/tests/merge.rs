//! Concurrent edits on two devices: they converge, nothing is lost, conflicts show until
//! someone resolves them.
#![allow(clippy::unwrap_used)]

mod common;

use cairn_model::{CaseDoc, Edit, FieldChange};
use common::{at, fork_for_b, hex, millis, new_case, A, B};

fn note(text: &str) -> Edit {
    Edit::Note { text: text.into() }
}

fn assert_same(x: &CaseDoc, y: &CaseDoc) {
    assert_eq!(x.heads(), y.heads());
    assert_eq!(x.to_json().unwrap(), y.to_json().unwrap());
    assert_eq!(x.conflicts(), y.conflicts());
    assert_eq!(x.history(), y.history());
}

#[test]
fn concurrent_edits_merge_in_either_order_and_conflicts_resolve() {
    let (mut a, _) = new_case(&[Edit::set("incident.narrative", "Found near the road.")]);
    let mut b = fork_for_b(&a);

    let from_a = a
        .edit(
            &[
                Edit::set("incident.cause", "targeted_strike"),
                note("Shrapnel wounds seen by A."),
                Edit::set("incident.narrative", "Found near the old road."),
            ],
            "device-a",
            at(5),
        )
        .unwrap()
        .unwrap();
    let from_b = b
        .edit(
            &[
                Edit::set("incident.cause", "captivity"),
                note("Witness statement taken by B."),
                Edit::set(
                    "incident.narrative",
                    "Found near the road. Hands were tied.",
                ),
            ],
            "device-b",
            at(7),
        )
        .unwrap()
        .unwrap();

    // A <- B and B <- A; applying twice changes nothing.
    a.apply_changes(std::slice::from_ref(&from_b)).unwrap();
    b.apply_changes(std::slice::from_ref(&from_a)).unwrap();
    b.apply_changes(&[from_a.clone(), from_b.clone()]).unwrap();
    assert_same(&a, &b);

    let json = a.to_json().unwrap();
    assert_eq!(
        json["incident"]["narrative"],
        "Found near the old road. Hands were tied."
    );
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(notes.contains(&"Shrapnel wounds seen by A."));
    assert!(notes.contains(&"Witness statement taken by B."));

    let conflicts = a.conflicts();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].key, "incident.cause");
    let values: Vec<(String, String, i64)> = conflicts[0]
        .values
        .iter()
        .map(|v| {
            (
                v.value.as_str().unwrap().to_string(),
                v.actor.clone(),
                v.time_ms,
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            ("targeted_strike".to_string(), hex(&A), millis(at(5))),
            ("captivity".to_string(), hex(&B), millis(at(7))),
        ]
    );
    // The view shows the same winner on both devices, and it is one of the two.
    let winner = json["incident"]["cause"].as_str().unwrap().to_string();
    assert!(winner == "targeted_strike" || winner == "captivity");

    // Setting the winning value again is still a decision: it settles the conflict.
    let resolve = a
        .edit(&[Edit::set("incident.cause", &winner)], "device-a", at(20))
        .unwrap()
        .expect("settling a conflict is a change");
    b.apply_changes(&[resolve]).unwrap();
    assert!(a.conflicts().is_empty());
    assert_same(&a, &b);
    assert_eq!(a.to_json().unwrap()["incident"]["cause"], winner.as_str());

    let last = a.history().pop().unwrap();
    assert_eq!(last.fields, ["incident.cause"]);
    assert_eq!(last.actor, hex(&A));
    assert_eq!(last.time_ms, millis(at(20)));
}

#[test]
fn editing_another_field_keeps_an_open_conflict() {
    let (mut a, _) = new_case(&[]);
    let mut b = fork_for_b(&a);
    let ca = a
        .edit(&[Edit::set("incident.cause", "unknown")], "device-a", at(1))
        .unwrap()
        .unwrap();
    let cb = b
        .edit(
            &[Edit::set("incident.cause", "captivity")],
            "device-b",
            at(2),
        )
        .unwrap()
        .unwrap();
    a.apply_changes(&[cb]).unwrap();
    b.apply_changes(&[ca]).unwrap();
    assert_eq!(a.conflicts().len(), 1);

    let name = a
        .edit(
            &[Edit::set("person.name", "Unknown man")],
            "device-a",
            at(3),
        )
        .unwrap()
        .unwrap();
    b.apply_changes(&[name]).unwrap();
    for doc in [&a, &b] {
        let conflicts = doc.conflicts();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].key, "incident.cause");
        assert_eq!(conflicts[0].values.len(), 2);
    }
    assert_same(&a, &b);
}

#[test]
fn clearing_a_field_settles_its_conflict() {
    let (mut a, _) = new_case(&[]);
    let mut b = fork_for_b(&a);
    let ca = a
        .edit(&[Edit::set("person.name", "Ali")], "device-a", at(1))
        .unwrap()
        .unwrap();
    let cb = b
        .edit(&[Edit::set("person.name", "Aly")], "device-b", at(1))
        .unwrap()
        .unwrap();
    a.apply_changes(&[cb]).unwrap();
    b.apply_changes(&[ca]).unwrap();
    assert_eq!(a.conflicts().len(), 1);
    let clear = b
        .edit(&[Edit::set("person.name", "")], "device-b", at(2))
        .unwrap()
        .unwrap();
    a.apply_changes(&[clear]).unwrap();
    assert!(a.conflicts().is_empty());
    assert!(a.to_json().unwrap().get("person").is_none());
    assert_same(&a, &b);
}

#[test]
fn changes_arriving_before_their_dependencies_wait_for_them() {
    let (mut a, first) = new_case(&[]);
    let second = a.edit(&[note("one")], "device-a", at(1)).unwrap().unwrap();
    let third = a.edit(&[note("two")], "device-a", at(2)).unwrap().unwrap();
    let mut b = CaseDoc::from_changes(&[third, first], &B, &[]).unwrap();
    assert_eq!(b.missing_deps().len(), 1);
    b.apply_changes(&[second]).unwrap();
    assert!(b.missing_deps().is_empty());
    assert_same(&a, &b);
}

/// A small deterministic generator, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn random_edit(rng: &mut Rng, doc: &CaseDoc) -> Edit {
    const SETS: &[(&str, &[&str])] = &[
        ("kind", &["killed", "missing", "remains"]),
        ("torture_signs", &["yes", "no", "unknown"]),
        (
            "incident.cause",
            &["captivity", "unknown", "targeted_strike"],
        ),
        ("found.lat", &["12.5", "-3", "90"]),
        ("person.name", &["Ali", "Sara", ""]),
        ("person.age_years", &["7", "40"]),
        ("incident.date", &["2024-01-02", "2024-01-01/2024-01-05"]),
    ];
    const WORDS: &[&str] = &["grey ", "two ", "near ", "é ", "🪨 "];
    match rng.next() % 6 {
        0 | 1 => {
            let (key, values) = rng.pick(SETS);
            Edit::set(*key, *rng.pick(values))
        }
        2 | 3 => {
            let key = *rng.pick(&["incident.narrative", "injuries", "remains.marks"]);
            let case = doc.to_json().unwrap();
            let current = key
                .split('.')
                .fold(&case, |v, k| &v[k])
                .as_str()
                .unwrap_or("")
                .to_string();
            let boundaries: Vec<usize> = current
                .char_indices()
                .map(|(i, _)| i)
                .chain([current.len()])
                .collect();
            let at = *rng.pick(&boundaries);
            let updated = format!("{}{}{}", &current[..at], rng.pick(WORDS), &current[at..]);
            Edit::set(key, updated)
        }
        4 => {
            const NOTES: &[&str] = &["seen", "photographed", "moved"];
            let text = *rng.pick(NOTES);
            note(text)
        }
        _ => Edit::Custody {
            from: None,
            to: (*rng.pick(&["morgue", "team"])).to_string(),
            place: Some("KHR".into()),
            purpose: None,
            seal: None,
            at: None,
        },
    }
}

#[test]
fn random_concurrent_edits_converge() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rounds_with_conflicts = 0;
    for round in 0..20 {
        let (mut a, _) = new_case(&[]);
        let mut b = fork_for_b(&a);
        let (mut sent_a, mut sent_b) = (Vec::new(), Vec::new());
        for step in 0..12 {
            let minute = round * 100 + step;
            let (doc, sent, author) = if rng.next().is_multiple_of(2) {
                (&mut a, &mut sent_a, "device-a")
            } else {
                (&mut b, &mut sent_b, "device-b")
            };
            let edits: Vec<Edit> = (0..1 + rng.next() % 3)
                .map(|_| random_edit(&mut rng, doc))
                .collect();
            if let Some(change) = doc.edit(&edits, author, at(minute)).unwrap() {
                sent.push(change);
            }
            // Now and then the devices meet and exchange everything so far.
            if rng.next().is_multiple_of(4) {
                a.apply_changes(&sent_b).unwrap();
                b.apply_changes(&sent_a).unwrap();
            }
        }
        a.apply_changes(&sent_b).unwrap();
        b.apply_changes(&sent_a).unwrap();
        assert_same(&a, &b);
        rounds_with_conflicts += usize::from(!a.conflicts().is_empty());
        assert_eq!(a.overview().unwrap().conflicts, !a.conflicts().is_empty());
        let reloaded = CaseDoc::load(&a.save(), &A).unwrap();
        assert_same(&a, &reloaded);
    }
    assert!(
        rounds_with_conflicts > 0,
        "the generator never made a conflict"
    );
}

#[test]
fn history_gives_each_field_its_old_and_new_value() {
    let change = |field: &str, old: Option<&str>, new: Option<&str>| FieldChange {
        field: field.into(),
        old: old.map(Into::into),
        new: new.map(Into::into),
    };
    let (mut a, _) = new_case(&[
        Edit::set("person.sex", "male"),
        Edit::set("incident.narrative", "Found near"),
    ]);
    let mut b = fork_for_b(&a);
    let from_a = a
        .edit(&[Edit::set("person.sex", "female")], "device-a", at(1))
        .unwrap()
        .unwrap();
    let from_b = b
        .edit(
            &[
                Edit::set("person.sex", "unknown"),
                Edit::set("incident.narrative", "Found near the road."),
            ],
            "device-b",
            at(2),
        )
        .unwrap()
        .unwrap();
    a.apply_changes(&[from_b]).unwrap();
    b.apply_changes(&[from_a]).unwrap();
    // Resolving the conflict: its old value is both that the concurrent edits left.
    a.edit(
        &[Edit::Unset {
            key: "person.sex".into(),
        }],
        "device-a",
        at(3),
    )
    .unwrap()
    .unwrap();
    let steps: Vec<Vec<FieldChange>> = a.history().iter().map(|h| a.field_changes(h)).collect();
    assert_eq!(
        steps,
        [
            vec![
                change("person.sex", None, Some("male")),
                change("incident.narrative", None, Some("Found near")),
            ],
            vec![change("person.sex", Some("male"), Some("female"))],
            vec![
                change("person.sex", Some("male"), Some("unknown")),
                change(
                    "incident.narrative",
                    Some("Found near"),
                    Some("Found near the road.")
                ),
            ],
            vec![change("person.sex", Some("female | unknown"), None)],
        ]
    );
}
