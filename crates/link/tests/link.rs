//! Linkage quality on generated lists, the hard cases by hand, decisions, determinism.

use cairn_link::generate::generate;
use cairn_link::{
    candidates, clusters, eval, AgeGroup, Decision, Kind, Options, Record, Relation, Sex,
};
use time::macros::date;

fn all() -> Options {
    Options {
        min_probability: 0.0,
        only: None,
    }
}

#[test]
fn generated_lists_are_linked_and_remains_ranked() {
    let g = generate(4000, 11);
    let c = candidates(&g.records, &[], &all());
    let cl = clusters(&g.records, &[], &c, 0.5);
    let pw = eval::pairwise(&cl, &g.truth);
    let ranks = eval::remains_ranks(&g.records, &g.truth, &c);
    let (top1, top5) = (eval::top(&ranks, 1), eval::top(&ranks, 5));
    eprintln!(
        "F1 {:.4} precision {:.4} recall {:.4}; remains {} top1 {top1:.3} top5 {top5:.3}",
        pw.f1(),
        pw.precision(),
        pw.recall(),
        ranks.len()
    );
    assert!(pw.actual > 2000, "{pw:?}");
    assert!(pw.f1() >= 0.95, "duplicates F1 {:.4}", pw.f1());
    assert!(ranks.len() >= 80, "{} remains", ranks.len());
    assert!(top1 >= 0.80, "true missing person first for {top1:.3}");
    assert!(
        top5 >= 0.95,
        "true missing person in the top 5 for {top5:.3}"
    );
}

/// A record killed on `day` at `place` with a name, sex and age.
fn killed(id: &str, name: &str, sex: Sex, age: u32, day: time::Date, place: &str) -> Record {
    let mut r = Record::new(id, Kind::Killed);
    r.name = Some(name.to_string());
    r.sex = Some(sex);
    r.age_years = Some(age);
    r.incident_day = Some(day);
    r.place = Some(place.to_string());
    r
}

/// A generated background (so the weights are estimated from a realistic list) with the
/// hand-built records appended; returns the records and the index of the first appended one.
fn with_background(extra: Vec<Record>) -> (Vec<Record>, usize) {
    let mut records = generate(2500, 5).records;
    let first = records.len();
    records.extend(extra);
    (records, first)
}

#[test]
fn a_family_killed_together_stays_apart_while_its_duplicates_join() {
    let day = date!(2021 - 03 - 14);
    let (records, f) = with_background(vec![
        // Father, mother, two sons and a daughter: one surname, day and place.
        killed("f0", "Gevorg Hovhannisyan", Sex::Male, 46, day, "Taghavard"),
        killed(
            "f1",
            "Anahit Hovhannisyan",
            Sex::Female,
            43,
            day,
            "Taghavard",
        ),
        killed(
            "f2",
            "Aram Gevorgi Hovhannisyan",
            Sex::Male,
            17,
            day,
            "Taghavard",
        ),
        killed(
            "f3",
            "Tigran Gevorgi Hovhannisyan",
            Sex::Male,
            14,
            day,
            "Taghavard",
        ),
        killed(
            "f4",
            "Mariam Gevorgi Hovhannisyan",
            Sex::Female,
            9,
            day,
            "Taghavard",
        ),
        // A second list: the father and the elder son again, in Armenian and Russian.
        killed("g0", "Հովհաննիսյան Գևորգ", Sex::Male, 47, day, "Taghavard"),
        killed(
            "g2",
            "Оганесян Арам Геворгович",
            Sex::Male,
            17,
            day + time::Duration::days(1),
            "Taghavard",
        ),
    ]);
    let c = candidates(&records, &[], &all());
    let cl = clusters(&records, &[], &c, 0.5);
    let family: Vec<usize> = (f..f + 5).map(|i| cl[i]).collect();
    let mut distinct = family.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "family members merged: {family:?}");
    assert_eq!(cl[f + 5], cl[f], "the father's two records");
    assert_eq!(cl[f + 6], cl[f + 2], "the elder son's two records");
    let p = |a: usize, b: usize| {
        c.iter()
            .find(|x| (x.a, x.b) == (a.min(b), a.max(b)) || (x.a, x.b) == (a.max(b), a.min(b)))
            .map_or(0.0, |x| x.probability)
    };
    for (a, b) in [(f + 2, f + 3), (f, f + 2), (f + 3, f + 4), (f + 5, f + 2)] {
        assert!(
            p(a, b) < 0.5,
            "{} / {}: {}",
            records[a].id,
            records[b].id,
            p(a, b)
        );
    }
    let father = c
        .iter()
        .find(|x| (x.a, x.b) == (f, f + 5))
        .expect("the father's two records are a candidate");
    assert!(father.probability > 0.9, "{}", father.probability);
    let why = father.explain();
    assert!(
        why.contains("Jaro–Winkler after transliteration") && why.contains("ages 46/47"),
        "{why}"
    );
}

#[test]
fn remains_point_to_the_missing_person_and_identifies_names_the_remains_first() {
    let mut missing = Record::new("m", Kind::Missing);
    missing.name = Some("Armen Petrosyan".into());
    missing.sex = Some(Sex::Male);
    missing.age_years = Some(34);
    missing.last_seen_day = Some(date!(2021 - 05 - 02));
    missing.place = Some("Chartar".into());
    missing.lat = Some(39.851);
    missing.lon = Some(47.032);
    missing.height_cm = Some(178.0);
    missing.clothing = Some("khaki jacket, blue jeans, black boots".into());
    missing.effects = Some("wristwatch, silver cross pendant".into());
    missing.marks = Some("scar on forehead".into());
    let mut remains = Record::new("r", Kind::Remains);
    remains.sex = Some(Sex::Male);
    remains.age_group = Some(AgeGroup::Adult);
    remains.found_day = Some(date!(2021 - 09 - 20));
    remains.lat = Some(39.862);
    remains.lon = Some(47.041);
    remains.height_cm = Some(176.0);
    remains.clothing = Some("blue jeans, black boots".into());
    remains.effects = Some("silver cross pendant".into());
    // The same remains, but found before the person was last seen: strong evidence against.
    let mut early = remains.clone();
    early.id = "early".into();
    early.found_day = Some(date!(2021 - 03 - 01));
    let (records, f) = with_background(vec![remains, missing, early]);
    let c = candidates(&records, &[], &all());
    let found = c
        .iter()
        .find(|x| x.a == f && x.b == f + 1)
        .expect("remains → missing is a candidate, remains first");
    assert_eq!(found.relation, Relation::Identifies);
    assert!(found.probability > 0.9, "{}", found.probability);
    let best = c.iter().filter(|x| x.a == f).map(|x| x.b).next();
    assert_eq!(
        best,
        Some(f + 1),
        "the missing person ranks first for the remains"
    );
    let early = c
        .iter()
        .find(|x| x.a == f + 2 && x.b == f + 1)
        .map_or(0.0, |x| x.probability);
    assert!(early < 0.5, "found before last seen: {early}");
}

#[test]
fn decisions_are_honoured() {
    let day = date!(2022 - 01 - 10);
    let (records, f) = with_background(vec![
        killed("a", "Karen Sargsyan", Sex::Male, 30, day, "Shosh"),
        killed("b", "Karen Sargsyan", Sex::Male, 30, day, "Shosh"),
        killed("c", "Կարեն Սարգսյան", Sex::Male, 31, day, "Shosh"),
    ]);
    let (a, b, c3) = (f, f + 1, f + 2);
    let before = candidates(&records, &[], &all());
    assert!(before
        .iter()
        .any(|x| (x.a, x.b) == (a, b) && x.probability > 0.9));
    let cl = clusters(&records, &[], &before, 0.5);
    assert!(cl[a] == cl[b] && cl[b] == cl[c3]);

    // The office says a and b are two people: neither that pair nor any pair that would put
    // them in one cluster (c with both) may be proposed as one, and clusters keep them apart.
    let distinct = [Decision {
        a,
        b,
        relation: Relation::Distinct,
    }];
    let after = candidates(&records, &distinct, &all());
    assert!(!after.iter().any(|x| (x.a, x.b) == (a, b)));
    let cl = clusters(&records, &distinct, &after, 0.5);
    assert_ne!(cl[a], cl[b]);

    // A decided pair is never proposed again, and a pair joined through decisions neither.
    let same = [
        Decision {
            a,
            b: c3,
            relation: Relation::SamePerson,
        },
        Decision {
            a: b,
            b: c3,
            relation: Relation::SamePerson,
        },
    ];
    let after = candidates(&records, &same, &all());
    assert!(!after
        .iter()
        .any(|x| [a, b, c3].contains(&x.a) && [a, b, c3].contains(&x.b)));
    let cl = clusters(&records, &same, &after, 0.5);
    assert!(cl[a] == cl[c3] && cl[b] == cl[c3]);
    assert_eq!(
        cl[c3],
        a.min(b).min(c3),
        "a cluster's id is its smallest index"
    );
}

#[test]
fn the_same_input_gives_the_same_output_and_only_filters() {
    let g = generate(1500, 9);
    let one = candidates(&g.records, &[], &Options::default());
    let two = candidates(&g.records, &[], &Options::default());
    assert_eq!(one, two);
    assert!(one.windows(2).all(|w| w[0].probability >= w[1].probability));
    assert!(one.iter().all(|c| c.probability >= 0.5));
    assert_eq!(
        clusters(&g.records, &[], &one, 0.5),
        clusters(&g.records, &[], &two, 0.5)
    );
    let who = one[0].a;
    let only = candidates(
        &g.records,
        &[],
        &Options {
            min_probability: 0.5,
            only: Some(who),
        },
    );
    assert!(!only.is_empty());
    assert!(only.iter().all(|c| c.a == who || c.b == who));
    let json = serde_json::to_string(&one[0].why).unwrap();
    assert!(
        json.contains("\"field\":") && json.contains("\"weight\":"),
        "{json}"
    );
}

#[test]
fn nothing_to_link_is_not_an_error() {
    assert!(candidates(&[], &[], &Options::default()).is_empty());
    let lone = vec![Record::new("x", Kind::Other)];
    assert!(candidates(&lone, &[], &Options::default()).is_empty());
    assert_eq!(clusters(&lone, &[], &[], 0.5), vec![0]);
    // Decisions naming records that do not exist are ignored, never a panic.
    let bad = [Decision {
        a: 0,
        b: 7,
        relation: Relation::SamePerson,
    }];
    assert_eq!(clusters(&lone, &bad, &[], 0.5), vec![0]);
}

#[test]
fn kinds_sexes_and_groups_parse_as_cases_write_them() {
    assert_eq!(Kind::parse("Remains"), Kind::Remains);
    assert_eq!(Kind::parse("displaced"), Kind::Other);
    assert_eq!(Sex::parse("unknown"), None);
    assert_eq!(Sex::parse("F"), Some(Sex::Female));
    assert_eq!(AgeGroup::parse("elderly"), Some(AgeGroup::Elderly));
    assert_eq!(AgeGroup::of_age(13), AgeGroup::Adolescent);
    assert_eq!(
        serde_json::to_string(&Relation::SamePerson).unwrap(),
        "\"same_person\""
    );
}

#[test]
fn hostile_values_are_compared_without_panicking() {
    let mut records = generate(300, 2).records;
    let mut odd = Record::new("odd", Kind::Remains);
    odd.name = Some("ا ب ت ".repeat(400) + &"x".repeat(500));
    odd.age_years = Some(u32::MAX);
    odd.lat = Some(f64::NAN);
    odd.lon = Some(f64::INFINITY);
    odd.height_cm = Some(-1.0);
    odd.found_day = Some(time::Date::MIN);
    odd.place = Some(String::new());
    odd.clothing = Some(",,,;;;".into());
    records.push(odd);
    let mut far = Record::new("far", Kind::Missing);
    far.name = Some("\u{0000}\u{FFFF} 🙂".into());
    far.age_years = Some(0);
    far.last_seen_day = Some(time::Date::MAX);
    far.lat = Some(1e300);
    far.lon = Some(-1e300);
    records.push(far);
    let c = candidates(&records, &[], &all());
    let cl = clusters(&records, &[], &c, 0.5);
    assert_eq!(cl.len(), records.len());
    assert!(c
        .iter()
        .all(|x| x.probability.is_finite() && (0.0..=1.0).contains(&x.probability)));
}
