//! Small vaults: with a handful of records there is next to nothing to estimate from, so the
//! documented priors must carry the linkage.

use cairn_link::generate::generate;
use cairn_link::{candidates, clusters, eval, Candidate, Kind, Options, Record, Relation, Sex};
use time::macros::date;

fn all() -> Options {
    Options {
        min_probability: 0.0,
        only: None,
    }
}

/// The five records of /work/wt/prompts/small_lists.csv, as an office imports them.
fn five() -> Vec<Record> {
    let killed = |id: &str, name: &str, age: u32, day: time::Date| {
        let mut r = Record::new(id, Kind::Killed);
        r.name = Some(name.to_string());
        r.sex = Some(Sex::Male);
        r.age_years = Some(age);
        r.incident_day = Some(day);
        r.place = Some("Martuni".to_string());
        r
    };
    let mut missing = Record::new("FAM-9", Kind::Missing);
    missing.name = Some("Gayane Sargsyan".to_string());
    missing.sex = Some(Sex::Female);
    missing.age_years = Some(29);
    missing.incident_day = Some(date!(2020 - 10 - 05));
    missing.last_seen_day = Some(date!(2020 - 10 - 05));
    // A case's `incident.place` comes before `last_seen.place`.
    missing.place = Some("Hadrut".to_string());
    missing.lat = Some(39.52);
    missing.lon = Some(47.03);
    missing.height_cm = Some(163.0);
    missing.clothing = Some("red coat".to_string());
    missing.effects = Some("silver ring".to_string());
    let mut remains = Record::new("SR-44", Kind::Remains);
    remains.sex = Some(Sex::Female);
    remains.age_group = Some(cairn_link::AgeGroup::Adult);
    remains.found_day = Some(date!(2020 - 12 - 06));
    remains.lat = Some(39.53);
    remains.lon = Some(47.05);
    remains.height_cm = Some(160.0);
    remains.clothing = Some("red coat".to_string());
    remains.effects = Some("ring".to_string());
    vec![
        killed("MoH-17", "Aram Hovhannisyan", 34, date!(2020 - 10 - 02)),
        killed(
            "OMB-311",
            "Հովհաննիսյան Արամ Գևորգի",
            35,
            date!(2020 - 10 - 03),
        ),
        missing,
        remains,
        killed("MoH-18", "Armen Hovhannisyan", 12, date!(2020 - 10 - 02)),
    ]
}

fn pair(c: &[Candidate], a: usize, b: usize) -> Option<&Candidate> {
    c.iter()
        .find(|x| (x.a, x.b) == (a, b) || (x.a, x.b) == (b, a))
}

fn show(c: &Candidate) -> String {
    let why: Vec<String> = c
        .why
        .iter()
        .map(|e| format!("{} {} {:+.2}", e.field, e.level, e.weight))
        .collect();
    format!(
        "{}–{} {:?} {:.3}: {}",
        c.a,
        c.b,
        c.relation,
        c.probability,
        why.join(", ")
    )
}

#[test]
fn five_records_link_on_the_priors() {
    let records = five();
    let c = candidates(&records, &[], &all());
    for x in &c {
        eprintln!("{}", show(x));
    }
    let aram = pair(&c, 0, 1).expect("the two Aram records are compared");
    assert!(aram.probability >= 0.9, "{}", show(aram));
    assert_eq!(aram.relation, Relation::SamePerson);
    // The evidence itself: an exact name and a day apart speak for the match.
    let weight = |c: &Candidate, field: &str| {
        c.why
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.weight)
            .unwrap_or(f64::NAN)
    };
    assert!(weight(aram, "name") >= 3.0, "{}", show(aram));
    assert!(weight(aram, "date") > 0.0, "{}", show(aram));
    let id = pair(&c, 3, 2).expect("the remains and the missing woman are compared");
    assert_eq!((id.a, id.b), (3, 2), "{}", show(id));
    assert_eq!(id.relation, Relation::Identifies);
    assert!(id.probability >= 0.5, "{}", show(id));
    for field in ["clothing", "effects", "distance"] {
        assert!(weight(id, field) > 0.0, "{field}: {}", show(id));
    }
    // Proposed as the office sees it, at the default 0.5.
    let proposed = candidates(&records, &[], &Options::default());
    assert!(proposed
        .iter()
        .any(|x| (x.a, x.b, x.relation) == (3, 2, Relation::Identifies)));
    for other in [0, 1] {
        if let Some(x) = pair(&c, 4, other) {
            assert!(x.probability < 0.5, "the boy Armen: {}", show(x));
        }
    }
}

/// Small generated lists: F1 and top-1 reported (there are too few pairs for a target).
#[test]
fn small_generated_lists_link_without_panicking() {
    for n in [20, 60] {
        let g = generate(n, 3);
        let c = candidates(&g.records, &[], &all());
        assert!(c.iter().all(|x| x.probability.is_finite()));
        let cl = clusters(&g.records, &[], &c, 0.5);
        let pw = eval::pairwise(&cl, &g.truth);
        let ranks = eval::remains_ranks(&g.records, &g.truth, &c);
        eprintln!(
            "{n} records: F1 {:.4} precision {:.4} recall {:.4} ({} true pairs); remains {} top1 {:.3}",
            pw.f1(),
            pw.precision(),
            pw.recall(),
            pw.actual,
            ranks.len(),
            eval::top(&ranks, 1)
        );
    }
}

/// Two records of one man and nothing else: the least an office can hold with a pair in it.
#[test]
fn two_records_alone_are_proposed() {
    let records: Vec<Record> = five().into_iter().take(2).collect();
    let c = candidates(&records, &[], &all());
    let aram = pair(&c, 0, 1).expect("the two records are compared");
    assert!(aram.probability >= 0.9, "{}", show(aram));
}

/// The end-to-end tests' lists (240 records, seeds 7 and 21): the pairs proposed at 0.5 or
/// more are mostly true.
#[test]
fn an_office_list_of_240_records_is_proposed_precisely() {
    for seed in [7, 21] {
        let g = generate(240, seed);
        let c = candidates(&g.records, &[], &Options::default());
        let good = c.iter().filter(|x| g.truth[x.a] == g.truth[x.b]).count();
        let precision = good as f64 / c.len().max(1) as f64;
        eprintln!(
            "240 records, seed {seed}: {good} of {} proposed pairs true",
            c.len()
        );
        assert!(!c.is_empty());
        assert!(precision >= 0.9, "seed {seed}: {good} of {} true", c.len());
    }
}
