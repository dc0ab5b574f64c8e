//! Editions (issue #25): what an edition keeps is enough to count it again, exactly; a change
//! to any case it keeps is caught; and the changes between two editions are named by
//! reference.
#![allow(clippy::unwrap_used)]

use cairn_model::edition::{changes, Edition, EditionError};
use cairn_model::report::{parse_day, Options, Period, ReportCase, Taken};
use cairn_model::CaseLink;
use time::OffsetDateTime;

fn case(id: &str, kind: &str, status: &str, date: &str, cause: Option<&str>) -> ReportCase {
    ReportCase {
        kind: kind.into(),
        status: status.into(),
        cause: cause.map(Into::into),
        incident_date: (!date.is_empty()).then(|| date.into()),
        civilian: Some("yes".into()),
        place: "KHR".into(),
        reference: format!("KHR-T03-7KQ2-{id}"),
        id: format!("00000000-0000-0000-0000-00000000{id}"),
        ..ReportCase::default()
    }
}

fn linked(mut c: ReportCase, other: &ReportCase) -> ReportCase {
    c.links.push(CaseLink {
        other_id: other.id.clone(),
        relation: "same_person".into(),
    });
    c
}

fn taken(unix: i64) -> Taken {
    Taken {
        made_at: OffsetDateTime::from_unix_timestamp(unix).unwrap(),
        data_as_of: None,
    }
}

fn freeze(cases: &[ReportCase], at: i64, to: &str) -> Edition {
    let with_heads: Vec<(ReportCase, Vec<String>)> = cases
        .iter()
        .map(|c| (c.clone(), vec!["ab".repeat(32)]))
        .collect();
    let period = Period::new(parse_day("2020-09-27").unwrap(), parse_day(to).unwrap()).unwrap();
    Edition::freeze(
        "e".into(),
        "Interim".into(),
        &with_heads,
        period,
        Options::default(),
        &taken(at),
    )
    .unwrap()
}

#[test]
fn an_edition_keeps_what_its_figures_need_and_nothing_else() {
    let inside = case(
        "0001",
        "killed",
        "confirmed",
        "2020-10-01",
        Some("captivity"),
    );
    // Outside the period, but linked to a case inside: the person is kept whole.
    let outside_linked = linked(
        case("0002", "killed", "confirmed", "2021-03-01", None),
        &inside,
    );
    let inside = linked(inside, &outside_linked);
    let outside = case("0003", "killed", "confirmed", "2021-03-02", None);
    let undated = case("0004", "killed", "confirmed", "", None);
    let rejected = case("0005", "killed", "rejected", "2020-11-01", None);
    let e = freeze(
        &[inside, outside_linked, outside, undated, rejected],
        1_700_000_000,
        "2020-12-22",
    );
    let kept: Vec<&str> = e.cases.iter().map(|c| &c.case.reference[13..]).collect();
    assert_eq!(kept, ["0001", "0002", "0004", "0005"]);
    let counted: Vec<bool> = e.cases.iter().map(|c| c.counted).collect();
    assert_eq!(counted, [true, false, false, false]);
    let f = e.figures().unwrap();
    assert_eq!((f.killed.total, f.undated), (1, 1));
    assert_eq!(
        f.sentence,
        "From September 27, 2020, to December 22, 2020, the killing of 1 civilian has been recorded: 1 in captivity."
    );
    // Through JSON and back, it counts the same.
    let back: Edition = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
    assert_eq!(back.figures().unwrap(), f);
}

#[test]
fn a_case_changed_inside_an_edition_no_longer_gives_its_figures() {
    let cases = [
        case(
            "0001",
            "killed",
            "confirmed",
            "2020-10-01",
            Some("captivity"),
        ),
        case("0002", "injured", "confirmed", "2020-10-02", None),
    ];
    let e = freeze(&cases, 1_700_000_000, "2020-12-22");
    let tampered: [&dyn Fn(&mut Edition); 5] = [
        &|e| e.cases[0].case.cause = Some("targeted_strike".into()),
        &|e| e.cases[1].case.status = "rejected".into(),
        &|e| e.cases[1].counted = false,
        &|e| e.sentence.push_str(" And 9 more."),
        &|e| e.to = "2020-10-01".into(),
    ];
    for (i, tamper) in tampered.iter().enumerate() {
        let mut t = e.clone();
        tamper(&mut t);
        assert!(
            matches!(t.figures(), Err(EditionError::Figures { .. })),
            "tamper {i}"
        );
    }
    let mut later = e.clone();
    later.format = 2;
    assert!(matches!(later.figures(), Err(EditionError::Format { .. })));
    let mut broken = e;
    broken.published_at = "yesterday".into();
    assert!(matches!(
        broken.figures(),
        Err(EditionError::Damaged { .. })
    ));
}

#[test]
fn nothing_changed_says_so_and_a_withdrawn_date_is_named() {
    let a = case(
        "0001",
        "killed",
        "confirmed",
        "2020-10-01",
        Some("captivity"),
    );
    let b = case("0002", "killed", "confirmed", "2020-10-05", None);
    let old = freeze(&[a.clone(), b.clone()], 1_700_000_000, "2020-12-22");
    let same = changes(
        &old,
        &freeze(&[a.clone(), b.clone()], 1_700_000_100, "2020-12-22"),
        true,
    )
    .unwrap();
    assert!(same.newly_counted.is_empty() && same.no_longer_counted.is_empty());
    assert!(same.reclassified.is_empty() && same.merged.is_empty());
    assert_eq!(
        same.sentence,
        "Since the report of November 14, 2023, no further killings of civilians have been recorded."
    );
    // b's date moved out of the period, and a new injury came in.
    let moved = ReportCase {
        incident_date: Some("2021-02-01".into()),
        ..b
    };
    let injured = case("0003", "injured", "confirmed", "2020-11-01", None);
    let held = case("0004", "detained", "confirmed", "2020-11-02", None);
    let now = freeze(&[a, moved, injured, held], 1_700_000_100, "2020-12-22");
    let c = changes(&old, &now, false).unwrap();
    assert_eq!(c.no_longer_counted.len(), 1);
    // An edition keeps the cases its period looked at: one dated out of it is not kept.
    assert_eq!(c.no_longer_counted[0].reason, "absent");
    assert_eq!(c.further_civilian_injuries, 1);
    assert_eq!(c.further_civilians_detained, 1);
    assert!(c.until.is_none());
    assert_eq!(
        c.sentence,
        "Since the report of November 14, 2023, no further killings of civilians have been recorded. \
         1 further civilian injury was recorded. 1 further civilian was recorded as detained. \
         1 person counted then is no longer counted."
    );
}

#[test]
fn a_link_superseded_splits_a_person_and_a_new_link_merges_two() {
    let a = case(
        "0001",
        "killed",
        "confirmed",
        "2020-10-01",
        Some("captivity"),
    );
    let b = case(
        "0002",
        "killed",
        "confirmed",
        "2020-10-02",
        Some("captivity"),
    );
    let c = case("0003", "killed", "confirmed", "2020-10-03", None);
    let d = case("0004", "killed", "confirmed", "2020-10-04", None);
    let old = freeze(
        &[
            linked(a.clone(), &b),
            linked(b.clone(), &a),
            c.clone(),
            d.clone(),
        ],
        1_700_000_000,
        "2020-12-22",
    );
    assert_eq!(old.figures().unwrap().persons, 3);
    // The office decides a and b are two people (their link superseded), c and d one.
    let new = freeze(
        &[a, b, linked(c.clone(), &d), linked(d, &c)],
        1_700_000_100,
        "2020-12-22",
    );
    let changes = changes(&old, &new, true).unwrap();
    assert_eq!(changes.split.len(), 1);
    assert_eq!(changes.split[0].was, "KHR-T03-7KQ2-0001");
    assert_eq!(
        changes.split[0].now,
        ["KHR-T03-7KQ2-0001", "KHR-T03-7KQ2-0002"]
    );
    assert_eq!(changes.merged.len(), 1);
    assert_eq!(changes.merged[0].into, "KHR-T03-7KQ2-0003");
    assert!(changes.newly_counted.is_empty() && changes.reclassified.is_empty());
    assert!(changes.sentence.ends_with(
        "1 record counted then as a person of its own has since been linked to a person already counted. \
         1 person counted then is now counted as 2 persons, its records found to be of different people."
    ), "{}", changes.sentence);
}
