//! `cairn office match` and the report counting persons (issue #21), on casualty lists the
//! generator writes as several sources would, with the truth beside them.

use std::collections::{BTreeMap, HashMap};

use cairn_e2e::pty::spawn;
use cairn_e2e::Device;
use cairn_link::generate::{generate, Generated};

const FROM: &str = "2019-01-01";
const TO: &str = "2025-12-31";

/// An office vault holding `g`'s rows, imported; the reference of each row, in order.
fn imported(g: &Generated) -> (Device, tempfile::TempDir, Vec<String>) {
    let office = Device::office();
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("lists.csv");
    g.write_csv(std::fs::File::create(&csv).expect("csv"))
        .expect("write");
    let csv = csv.to_str().expect("path");
    let created = office.json(&["case", "import", csv]);
    let mut refs: Vec<(u64, String)> = created["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            (
                c["line"].as_u64().expect("line"),
                c["reference"].as_str().expect("reference").to_string(),
            )
        })
        .collect();
    refs.sort();
    assert_eq!(refs.len(), g.rows.len());
    // Importing the same lists again creates nothing: no count doubles.
    let again = office.ok(&["case", "import", csv]);
    assert!(again.contains("imported nothing"), "{again}");
    (office, dir, refs.into_iter().map(|(_, r)| r).collect())
}

/// The day a record is counted on, as the report dates it.
fn day(g: &Generated, i: usize) -> Option<time::Date> {
    let row = &g.rows[i];
    match row.kind.as_str() {
        "remains" => row.found_at.or(row.incident_date),
        _ => row.incident_date,
    }
}

#[test]
fn the_report_counts_each_person_once_when_the_true_decisions_are_recorded() {
    let g = generate(240, 21);
    let (office, dir, refs) = imported(&g);
    let report =
        |office: &Device| office.json(&["report", "--from", FROM, "--to", TO, "--include-alleged"]);
    let dated: Vec<usize> = (0..g.rows.len())
        .filter(|i| day(&g, *i).is_some())
        .collect();
    let before = report(&office);
    assert_eq!(before["records"], dated.len());
    assert_eq!(before["persons"], dated.len());

    // The truth as the office's decisions: each record linked to the first of its person.
    let mut by_person: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, person) in g.truth.iter().enumerate() {
        by_person.entry(*person).or_default().push(i);
    }
    let mut decisions = String::from("a,b,relation,basis\n");
    for records in by_person.values() {
        for &other in &records[1..] {
            let kinds = (
                g.rows[records[0]].kind.as_str(),
                g.rows[other].kind.as_str(),
            );
            let relation = match kinds {
                ("remains", "missing") | ("missing", "remains") => "identifies",
                _ => "same_person",
            };
            decisions.push_str(&format!(
                "{},{},{relation},the generator's truth\n",
                refs[records[0]], refs[other]
            ));
        }
    }
    let file = dir.path().join("decisions.csv");
    std::fs::write(&file, decisions).expect("write");
    office.ok(&["case", "link", "--from", file.to_str().expect("path")]);

    // The oracle, from the test's own data: each person once, as the first of killed,
    // remains, injured, missing among its dated records.
    let mut kind_of: HashMap<u64, usize> = HashMap::new();
    let order = ["killed", "remains", "injured", "missing"];
    for &i in &dated {
        let rank = order
            .iter()
            .position(|k| *k == g.rows[i].kind)
            .expect("a known kind");
        let best = kind_of.entry(g.truth[i]).or_insert(rank);
        *best = (*best).min(rank);
    }
    let count = |kind: &str| {
        let rank = order.iter().position(|k| *k == kind).expect("kind");
        kind_of.values().filter(|r| **r == rank).count()
    };
    let after = report(&office);
    assert_eq!(after["records"], dated.len());
    assert_eq!(after["persons"], kind_of.len());
    assert!(
        kind_of.len() < dated.len(),
        "the lists record some persons twice"
    );
    assert_eq!(after["killed"]["total"], count("killed"));
    assert_eq!(after["remains"], count("remains"));
    assert_eq!(after["injured"], count("injured"));
    assert_eq!(after["missing"], count("missing"));
    // The generated lists say nothing of civilian status: every killed person is "not known".
    let sentence = after["sentence"].as_str().expect("sentence");
    assert!(
        sentence.contains(&format!("{} further killings", count("killed"))),
        "{sentence}"
    );
    let text = office.ok(&["report", "--from", FROM, "--to", TO, "--include-alleged"]);
    assert!(
        text.contains(&format!(
            "{} records of {} persons",
            dated.len(),
            kind_of.len()
        )),
        "{text}"
    );

    // Decided pairs are never proposed again.
    let left = office.json(&["office", "match", "--min", "0.5"]);
    let same = |a: &str, b: &str| {
        let at = |r: &str| refs.iter().position(|x| x == r).expect("reference");
        g.truth[at(a)] == g.truth[at(b)]
    };
    for pair in left.as_array().expect("pairs") {
        let (a, b) = (
            pair["a"].as_str().expect("a"),
            pair["b"].as_str().expect("b"),
        );
        assert!(!same(a, b), "{a} and {b} are decided, yet proposed: {pair}");
    }
}

#[test]
fn match_proposes_the_true_pairs_with_why_and_refuses_bad_input() {
    let g = generate(240, 7);
    let (office, _dir, refs) = imported(&g);
    let at = |r: &str| refs.iter().position(|x| x == r).expect("reference");
    let pairs = office.json(&["office", "match"]);
    let pairs = pairs.as_array().expect("pairs");
    assert!(!pairs.is_empty());
    let mut true_pairs = 0;
    let mut last = 1.0;
    for pair in pairs {
        let p = pair["probability"].as_f64().expect("probability");
        assert!(
            (0.5..=1.0).contains(&p) && p <= last,
            "most likely first: {pair}"
        );
        last = p;
        assert!(!pair["why"].as_str().expect("why").is_empty());
        let (a, b) = (
            at(pair["a"].as_str().expect("a")),
            at(pair["b"].as_str().expect("b")),
        );
        true_pairs += usize::from(g.truth[a] == g.truth[b]);
        if pair["relation"] == "identifies" {
            assert_eq!(
                (g.rows[a].kind.as_str(), g.rows[b].kind.as_str()),
                ("remains", "missing")
            );
        }
    }
    let precision = true_pairs as f64 / pairs.len() as f64;
    assert!(
        precision >= 0.9,
        "{true_pairs} of {} proposed pairs true",
        pairs.len()
    );

    // --case keeps the pairs of one case; text names both references and why.
    let one = pairs[0]["a"].as_str().expect("a");
    let only = office.json(&["office", "match", "--case", one]);
    assert!(only
        .as_array()
        .expect("pairs")
        .iter()
        .all(|p| p["a"] == one || p["b"] == one));
    let text = office.ok(&["office", "match", "--case", &one.to_lowercase()]);
    assert!(text.contains(one), "{text}");

    for (args, code, says) in [
        (vec!["office", "match", "--min", "1.5"], 2, "from 0 to 1"),
        (
            vec!["office", "match", "--case", "KHR-NOPE-0000-0001"],
            1,
            "KHR-NOPE-0000-0001",
        ),
        (vec!["office", "match", "--review"], 2, "terminal"),
    ] {
        let run = office.run(&args);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let field = Device::init("T03");
    let run = field.run(&["office", "match"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn review_decides_pairs_one_key_each_and_records_the_basis() {
    let office = Device::office();
    let case = |name: &str, age: &str| {
        office.new_case(&[
            "--kind",
            "killed",
            "--place",
            "KHR",
            "--set",
            &format!("person.name={name}"),
            "--set",
            "person.sex=male",
            "--set",
            &format!("person.age_years={age}"),
            "--set",
            "incident.date=2020-10-02",
            "--set",
            "incident.place=Martuni",
        ])
    };
    let a = case("Aram Hovhannisyan", "34");
    let b = case("Հովհաննիսյան Արամ", "35");
    let mut pty = spawn(
        &office,
        &["office", "match", "--review", "--min", "0.3"],
        false,
    );
    pty.expect("pair 1 of 1");
    pty.expect("[s] same person");
    pty.keys("x");
    pty.keys("s");
    pty.expect("basis:");
    pty.keys("two lists, same name in Armenian and Latin\r");
    pty.expect("recorded:");
    let (code, shown) = pty.finish();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("recorded 1 decision(s)"), "{shown}");
    let links = office.json(&["case", "links", &a]);
    assert_eq!(links[0]["relation"], "same_person");
    assert_eq!(links[0]["other"], b.as_str());
    assert_eq!(
        links[0]["basis"],
        "two lists, same name in Armenian and Latin"
    );
    let left = office.json(&["office", "match", "--min", "0.3"]);
    assert_eq!(left, serde_json::json!([]));
}
