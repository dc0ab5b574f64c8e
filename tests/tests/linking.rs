//! Linking records of one person (issue #21): the office's decisions, recorded in both cases,
//! all or none; refused from anyone else; seen by a field device as the other reference only;
//! and the report counting persons.

use std::os::unix::process::ExitStatusExt;

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use cairn_e2e::{forge, Device, Server};

fn links(d: &Device, reference: &str) -> Vec<serde_json::Value> {
    d.json(&["case", "links", reference])
        .as_array()
        .expect("links")
        .clone()
}

fn persons(d: &Device) -> (u64, u64) {
    let f = d.json(&[
        "report",
        "--from",
        "2020-01-01",
        "--to",
        "2021-12-31",
        "--include-alleged",
    ]);
    (
        f["records"].as_u64().expect("records"),
        f["persons"].as_u64().expect("persons"),
    )
}

#[test]
fn the_office_links_two_teams_cases_and_each_field_device_sees_only_the_other_reference() {
    let office = Device::office();
    let server = Server::start(&office);
    let join = |team: &str| {
        let d = Device::init(team);
        server.join(&office, &d, team, &server.url());
        d
    };
    let a = join("T03");
    let evil = join("T03");
    let c = join("T04");
    for d in [&a, &evil, &c, &office] {
        d.ok(&["sync"]);
    }
    let missing = a.new_case(&[
        "--kind",
        "missing",
        "--place",
        "KHR",
        "--set",
        "person.name=Aram Hovhannisyan",
        "--set",
        "last_seen.at=2020-10-01",
        "--set",
        "incident.date=2020-10-01",
    ]);
    let remains = c.new_case(&[
        "--kind",
        "remains",
        "--place",
        "KHR",
        "--set",
        "found.at=2020-12-01T10:00:00Z",
        "--set",
        "remains.clothing=blue jacket",
    ]);
    for d in [&a, &c, &evil, &office] {
        d.ok(&["sync"]);
    }
    assert_eq!(persons(&office), (2, 2));

    // A field device cannot link, by command...
    let run = a.run(&[
        "case",
        "link",
        &missing,
        &remains,
        "--as",
        "identifies",
        "--basis",
        "mine",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("only the office links cases"),
        "{}",
        run.stderr
    );

    // ...and the office records it in both cases.
    office.ok(&[
        "case",
        "link",
        &remains,
        &missing,
        "--as",
        "identifies",
        "--basis",
        "clothing and ring described by the family",
    ]);
    assert_eq!(persons(&office), (2, 1));
    for d in [&office, &a, &c] {
        d.ok(&["sync"]);
    }
    let seen = links(&a, &missing);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["relation"], "identifies");
    assert_eq!(seen[0]["other"], remains.as_str());
    assert_eq!(seen[0]["in_force"], true);
    // The other case's content never reaches team T03.
    assert_ne!(a.run(&["case", "show", &remains]).code, 0);
    assert!(!a
        .ok(&["case", "show", &missing, "--json"])
        .contains("blue jacket"));
    assert_eq!(links(&c, &remains)[0]["other"], missing.as_str());

    // A hostile teammate writes a link of its own: refused everywhere, nobody blocked.
    evil.ok(&["sync"]);
    let id = evil.case_id(&missing);
    let base = evil.raw_doc(id);
    let (_, list) = base
        .get(ROOT, "links")
        .expect("get")
        .expect("the office's list");
    let forged = forge(&base, |tx| {
        let entry = tx.insert_object(&list, 1, ObjType::Map).expect("insert");
        for (key, value) in [
            ("at", "2024-05-01T10:00:00Z"),
            ("author", "evil"),
            ("relation", "distinct"),
            ("other_id", &id.to_string()),
            ("other", "KHR-T03-AAAA-0001"),
            ("basis", "I say so"),
        ] {
            tx.put(&entry, key, value).expect("put");
        }
    });
    evil.smuggle(id, &forged, "T03");
    let made = forge(&base, |tx| {
        tx.put_object(ROOT, "links", ObjType::List).expect("put");
    });
    evil.smuggle(id, &made, "T03");
    evil.ok(&["sync"]);
    for d in [&a, &office] {
        let summary = d.json(&["sync"]);
        let reasons: Vec<&str> = summary["refused"]
            .as_array()
            .expect("refused")
            .iter()
            .filter_map(|r| r["reason"].as_str())
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons.iter().all(|r| r.contains("links")), "{reasons:?}");
        assert_eq!(links(d, &missing).len(), 1);
    }
    assert_eq!(persons(&office), (2, 1));

    // A later decision supersedes: two people after all.
    office.ok(&[
        "case",
        "link",
        &missing,
        &remains,
        "--as",
        "distinct",
        "--basis",
        "DNA excluded",
    ]);
    assert_eq!(persons(&office), (2, 2));
    let all = links(&office, &remains);
    assert_eq!(all.len(), 2);
    assert_eq!(
        (&all[0]["relation"], &all[0]["in_force"]),
        (&"distinct".into(), &true.into())
    );
    assert_eq!(all[1]["in_force"], false);
}

fn office_with(n: usize) -> (Device, Vec<String>) {
    let office = Device::office();
    let refs = (0..n)
        .map(|i| {
            office.new_case(&[
                "--kind",
                "killed",
                "--place",
                "KHR",
                "--set",
                "incident.date=2020-10-01",
                "--set",
                &format!("person.name=Person {i}"),
            ])
        })
        .collect();
    (office, refs)
}

#[test]
fn decisions_from_a_file_are_recorded_all_or_none() {
    let (office, r) = office_with(4);
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("decisions.csv");
    let write =
        |rows: &str| std::fs::write(&file, format!("a,b,relation,basis\n{rows}")).expect("write");
    let path = file.to_str().expect("path");

    write(&format!(
        "{},{},same_person,two lists\n{},KHR-NOPE-0000-0001,same_person,typo\n",
        r[0], r[1], r[2]
    ));
    let run = office.run(&["case", "link", "--from", path]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("KHR-NOPE-0000-0001"), "{}", run.stderr);
    assert!(links(&office, &r[0]).is_empty(), "nothing recorded");

    write(&format!("{},{},cousin,x\n", r[0], r[1]));
    let run = office.run(&["case", "link", "--from", path]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);

    write(&format!(
        "{},{},same_person,two lists\n{},{},same_person,hospital list\n{},{},distinct,different fathers\n",
        r[0], r[1], r[1], r[2], r[3], r[0]
    ));
    office.ok(&["case", "link", "--from", path]);
    assert_eq!(persons(&office), (4, 2));
    assert_eq!(links(&office, &r[1]).len(), 2);
    // Run again: already so, nothing doubles.
    let again = office.ok(&["case", "link", "--from", path]);
    assert!(again.contains("recorded 0 of 3"), "{again}");
    assert_eq!(persons(&office), (4, 2));
    assert_eq!(links(&office, &r[1]).len(), 2);
}

#[test]
fn a_link_killed_between_its_two_cases_leaves_neither_and_the_vault_works_on() {
    let (office, r) = office_with(2);
    let out = office
        .command(&[
            "case",
            "link",
            &r[0],
            &r[1],
            "--as",
            "same_person",
            "--basis",
            "b",
        ])
        .env("CAIRN_FAILPOINT", "link:one-case")
        .output()
        .expect("run cairn");
    assert_eq!(out.status.signal(), Some(9), "killed at the failpoint");
    assert!(links(&office, &r[0]).is_empty());
    assert!(links(&office, &r[1]).is_empty());
    office.ok(&["check"]);
    office.ok(&[
        "case",
        "link",
        &r[0],
        &r[1],
        "--as",
        "same_person",
        "--basis",
        "b",
    ]);
    assert_eq!(links(&office, &r[0]).len(), 1);
    assert_eq!(links(&office, &r[1]).len(), 1);
    assert_eq!(persons(&office), (2, 1));
}

#[test]
fn the_export_names_each_records_person_and_the_inbox_flags_a_contradiction() {
    let (office, r) = office_with(4);
    let link = |a: &str, b: &str, relation: &str| {
        office.ok(&["case", "link", a, b, "--as", relation, "--basis", "test"]);
    };
    link(&r[0], &r[1], "same_person");
    link(&r[1], &r[2], "same_person");
    let out = tempfile::tempdir().expect("dir");
    let dir = out.path().join("export");
    office.ok(&[
        "export",
        "--format",
        "csv",
        "--hxl",
        "--out",
        dir.to_str().expect("path"),
    ]);
    let mut csv = csv::Reader::from_path(dir.join("cases.csv")).expect("cases.csv");
    let header = csv.headers().expect("header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (reference, id, person) = (column("reference"), column("id"), column("person"));
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for (n, row) in csv.records().enumerate() {
        let row = row.expect("row");
        if n == 0 {
            assert_eq!(&row[person], "#x_person +code");
            continue;
        }
        rows.push((row[reference].into(), row[id].into(), row[person].into()));
    }
    let of = |r: &str| {
        rows.iter()
            .find(|(x, ..)| x == r)
            .expect("exported")
            .clone()
    };
    let smallest = [&r[0], &r[1], &r[2]]
        .map(|r| of(r).1)
        .into_iter()
        .min()
        .expect("ids");
    for r in &r[..3] {
        assert_eq!(of(r).2, smallest);
    }
    assert_eq!(
        of(&r[3]).2,
        of(&r[3]).1,
        "a case linked to none is its own person"
    );

    // The office then decides 0 and 2 are two people: the person holding both is flagged.
    link(&r[0], &r[2], "distinct");
    let inbox = office.json(&["office", "inbox"]);
    let flagged: Vec<&str> = inbox
        .as_array()
        .expect("inbox")
        .iter()
        .filter(|c| c.get("contradicts").is_some())
        .filter_map(|c| c["reference"].as_str())
        .collect();
    assert_eq!(flagged.len(), 2, "{inbox}");
    assert!(flagged.contains(&r[0].as_str()) && flagged.contains(&r[2].as_str()));
    let text = office.ok(&["office", "inbox"]);
    assert!(
        text.contains("which the office decided is distinct"),
        "{text}"
    );
}
