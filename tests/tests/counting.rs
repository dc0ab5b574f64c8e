//! What the office publishes moves only with the office, with real processes: its
//! confirmation binds the values it confirmed (a teammate's later edit, honest or forged by
//! hand, is kept and shown first in the inbox, and counts for nothing until the office
//! confirms again); only the office's status exists (a status a hostile teammate seals beside
//! the office's word is refused everywhere); and the report dates remains by when they were
//! found, counts a day in the future apart, and says when its data was taken.

use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};
use cairn_e2e::{forge, Device, Server};
use serde_json::Value;

const FROM: &str = "2026-01-01";
const TO: &str = "2026-12-31";

/// `cairn report --json` over 2026, without when it was made and when its data was taken
/// (which a sync moves): the figures alone.
fn figures(d: &Device) -> Value {
    let mut r = d.json(&["report", "--from", FROM, "--to", TO]);
    let object = r.as_object_mut().expect("a report");
    assert!(object.remove("made_at").is_some_and(|m| m.is_string()));
    assert!(object.remove("data_as_of").is_some());
    r
}

fn sentence(d: &Device) -> String {
    let text = d.ok(&["report", "--from", FROM, "--to", TO]);
    text.trim_end()
        .lines()
        .last()
        .expect("a sentence")
        .to_owned()
}

fn confirm(office: &Device, reference: &str) {
    office.ok(&[
        "case",
        "verify",
        reference,
        "--status",
        "confirmed",
        "--basis",
        "death certificate and two witnesses",
    ]);
}

/// The office, a server, and teammates of T03 joined to it.
fn team(n: usize) -> (Device, Server, Vec<Device>) {
    let office = Device::office();
    let server = Server::start(&office);
    let devices = (0..n)
        .map(|_| {
            let d = Device::init("T03");
            server.join(&office, &d, "T03", &server.url());
            d
        })
        .collect();
    (office, server, devices)
}

/// Two killings of civilians recorded on `a` and confirmed by the office, synced everywhere.
fn two_confirmed_killings(office: &Device, a: &Device) -> (String, String) {
    let first = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-03-02",
        "--set",
        "incident.cause=captivity",
        "--set",
        "person.civilian=yes",
    ]);
    let second = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-03-04",
        "--set",
        "incident.cause=targeted_strike",
        "--set",
        "person.civilian=yes",
    ]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);
    confirm(office, &first);
    confirm(office, &second);
    office.ok(&["sync"]);
    a.ok(&["sync"]);
    (first, second)
}

fn changed_fields(case: &Value) -> Vec<String> {
    case["changed_since_confirmed"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_teammates_edit_of_a_confirmed_case_moves_no_count_until_the_office_confirms_again() {
    let (office, _server, devices) = team(1);
    let a = &devices[0];
    let (first, second) = two_confirmed_killings(&office, a);
    let before = figures(&office);
    assert_eq!(before["killed"]["total"], 2, "{before}");
    assert_eq!(before["civilian"]["killed"]["total"], 2);
    let said = sentence(&office);
    assert!(said.contains("the killings of 2 civilians"), "{said}");

    // The teammate edits the first killing's kind, cause and civilian status, honestly.
    a.ok(&[
        "case",
        "edit",
        &first,
        "--set",
        "kind=injured",
        "--set",
        "incident.cause=targeted_strike",
        "--set",
        "person.civilian=no",
    ]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);

    // Nothing the office publishes moved.
    assert_eq!(figures(&office), before);
    assert_eq!(sentence(&office), said);
    // The office's data is as of its last complete sync.
    let status = office.json(&["status"]);
    let report = office.json(&["report", "--from", FROM, "--to", TO]);
    assert_eq!(report["data_as_of"], status["last_sync_at"]);

    // The edit is kept, and shown, first in the inbox (though the other case changed before).
    let case = office.json(&["case", "show", &first]);
    assert_eq!(case["kind"], "injured");
    assert_eq!(case["status"], "confirmed");
    assert_eq!(
        changed_fields(&case),
        ["kind", "incident.cause", "person.civilian"]
    );
    assert_eq!(case["changed_since_confirmed"][0]["old"], "killed");
    assert_eq!(case["changed_since_confirmed"][0]["new"], "injured");
    let inbox = office.json(&["office", "inbox"]);
    let order: Vec<&str> = inbox
        .as_array()
        .expect("inbox")
        .iter()
        .filter_map(|c| c["reference"].as_str())
        .collect();
    assert_eq!(order, [first.as_str(), second.as_str()], "{inbox}");
    assert_eq!(
        inbox[0]["confirmed"]["kind"], "killed",
        "counted as confirmed: {inbox}"
    );
    let text = office.ok(&["office", "inbox"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with(&first) && lines[1].contains("edited"),
        "{text}"
    );
    assert!(
        lines[2].contains("changed since confirmed: kind, incident.cause, person.civilian"),
        "{text}"
    );
    let shown = office.ok(&["case", "show", &first]);
    assert!(
        shown.starts_with("CHANGED SINCE CONFIRMED")
            && shown.contains("  kind: killed → injured\n")
            && shown.contains("  person.civilian: yes → no\n"),
        "{shown}"
    );
    let listed = office.ok(&["case", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&first) && l.ends_with("(changed since confirmed)")),
        "{listed}"
    );
    let listed = office.json(&["case", "list", "--status", "confirmed"]);
    assert_eq!(changed_fields(&listed[0]).len(), 3, "{listed}");
    // The teammate's device says so too.
    a.ok(&["sync"]);
    assert_eq!(changed_fields(&a.json(&["case", "show", &first])).len(), 3);

    // The export shows and adds up what was confirmed, and what changed since.
    let out = office.home().with_file_name("export");
    office.ok(&[
        "export",
        "--out",
        out.to_str().expect("path"),
        "--format",
        "csv",
    ]);
    let mut csv = csv::Reader::from_path(out.join("cases.csv")).expect("cases.csv");
    let headers = csv.headers().expect("headers").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let row = csv
        .records()
        .map(|r| r.expect("a row"))
        .find(|r| r[column("reference")] == *first)
        .expect("the case's row");
    assert_eq!(&row[column("kind")], "killed");
    assert_eq!(&row[column("incident.cause")], "captivity");
    assert_eq!(&row[column("killed")], "1");
    assert_eq!(&row[column("injured")], "0");
    assert_eq!(
        &row[column("changed_since_confirmed")],
        "kind: killed → injured; incident.cause: captivity → targeted_strike; \
         person.civilian: yes → no"
    );

    // The office confirms again: the count moves, and the case leaves the inbox's head.
    confirm(&office, &first);
    let after = figures(&office);
    assert_eq!(after["killed"]["total"], 1, "{after}");
    assert_eq!(after["injured"], 1);
    assert_eq!(after["civilian"]["killed"]["total"], 1);
    assert_ne!(sentence(&office), said);
    assert!(changed_fields(&office.json(&["case", "show", &first])).is_empty());
    let inbox = office.json(&["office", "inbox"]);
    assert!(
        inbox
            .as_array()
            .expect("inbox")
            .iter()
            .all(|c| changed_fields(c).is_empty()),
        "{inbox}"
    );
}

/// A hostile teammate rewrites a confirmed killing with a change it writes by hand: the
/// change is a field edit like any other and is kept, but no count moves; its forged
/// confirmation of the new values is refused everywhere.
#[test]
fn a_hostile_teammate_rewrites_a_confirmed_case_and_no_count_moves() {
    let (office, _server, devices) = team(3);
    let (a, b, evil) = (&devices[0], &devices[1], &devices[2]);
    let (first, second) = two_confirmed_killings(&office, a);
    for d in [b, evil] {
        d.ok(&["sync"]);
    }
    let before = figures(&office);
    let said = sentence(&office);
    let id = evil.case_id(&first);

    let base = evil.raw_doc(id);
    let rewrite = forge(&base, |tx| {
        tx.put(ROOT, "kind", "missing").expect("put");
        let (_, incident) = tx.get(ROOT, "incident").expect("get").expect("incident");
        tx.put(&incident, "cause", "other_violence").expect("put");
        let (_, person) = tx.get(ROOT, "person").expect("get").expect("person");
        tx.delete(&person, "civilian").expect("delete");
    });
    evil.smuggle(id, &rewrite, "T03");
    // And, on top of it, a confirmation of its own values, as the office would record one.
    let mut rewritten = base.clone();
    rewritten
        .apply_changes([automerge::Change::try_from(rewrite.as_slice()).expect("change")])
        .expect("apply");
    let forged_confirmation = forge(&rewritten, |tx| {
        let (_, list) = tx
            .get(ROOT, "verifications")
            .expect("get")
            .expect("verifications");
        let entry = tx
            .insert_object(&list, 1, automerge::ObjType::Map)
            .expect("insert");
        let counted = r#"{"kind":"missing","incident.cause":"other_violence","incident.date":"2026-03-02","incident.place":null,"found.at":null,"person.civilian":null,"person.sex":null,"person.age_group":null,"person.age_years":null,"identification.status":null}"#;
        for (k, v) in [
            ("at", "2026-03-05T10:00:00Z"),
            ("author", "office"),
            ("status", "confirmed"),
            ("basis", "checked"),
            ("counted", counted),
        ] {
            tx.put(&entry, k, v).expect("put");
        }
    });
    evil.smuggle(id, &forged_confirmation, "T03");
    let pushed = evil.json(&["sync"]);
    assert_eq!(pushed["sent"], 2, "{pushed}");

    for d in [b, &office] {
        let summary = d.json(&["sync"]);
        let refused = summary["refused"].as_array().expect("refused");
        assert_eq!(refused.len(), 1, "{summary}");
        assert!(
            refused[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("only the office does")),
            "{summary}"
        );
    }
    // The rewrite is kept, shown and flagged; nothing the office publishes moved.
    assert_eq!(figures(&office), before);
    assert_eq!(sentence(&office), said);
    let case = office.json(&["case", "show", &first]);
    assert_eq!(case["kind"], "missing");
    assert_eq!(
        changed_fields(&case),
        ["kind", "incident.cause", "person.civilian"]
    );
    assert_eq!(case["verifications"].as_array().map(Vec::len), Some(1));
    let inbox = office.json(&["office", "inbox"]);
    assert_eq!(inbox[0]["reference"], first.as_str(), "{inbox}");
    assert_eq!(inbox[1]["reference"], second.as_str(), "{inbox}");
    a.ok(&["sync"]);
    let shows: Vec<String> = [a, b, &office]
        .iter()
        .map(|d| d.ok(&["case", "show", &first, "--json"]))
        .collect();
    assert_eq!(shows[0], shows[1]);
    assert_eq!(shows[0], shows[2]);
}

/// A hostile teammate seals a status beside the office's confirmation (not replacing it), and
/// one replacing a new case's `alleged`: both are refused on every device, and every reader
/// says what the office said.
#[test]
fn a_status_sealed_beside_the_office_word_is_refused_everywhere() {
    let (office, _server, devices) = team(3);
    let (a, b, evil) = (&devices[0], &devices[1], &devices[2]);
    let reference = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-03-02",
    ]);
    let other = a.new_case(&["--kind", "missing", "--place", "KHR"]);
    a.ok(&["sync"]);
    evil.ok(&["sync"]);
    // Before it learns the office's word, the hostile device holds the case as made.
    let (id, other_id) = (evil.case_id(&reference), evil.case_id(&other));
    let beside = forge(&evil.raw_doc(id), |tx| {
        tx.put(ROOT, "status", "under_investigation").expect("put")
    });
    let replacing = forge(&evil.raw_doc(other_id), |tx| {
        tx.put(ROOT, "status", "under_investigation").expect("put")
    });
    office.ok(&["sync"]);
    confirm(&office, &reference);
    office.ok(&["sync"]);
    evil.smuggle(id, &beside, "T03");
    evil.smuggle(other_id, &replacing, "T03");
    assert_eq!(evil.json(&["sync"])["sent"], 2);

    for d in [a, b, &office] {
        let summary = d.json(&["sync"]);
        let refused = summary["refused"].as_array().expect("refused");
        assert_eq!(refused.len(), 2, "{summary}");
        for r in refused {
            assert!(
                r["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("only the office does")),
                "{summary}"
            );
        }
    }
    for d in [a, b, &office] {
        assert_eq!(d.json(&["case", "show", &reference])["status"], "confirmed");
        assert_eq!(d.json(&["case", "show", &other])["status"], "alleged");
        assert_eq!(
            d.json(&["case", "conflicts", &reference]),
            Value::Array(vec![])
        );
        let confirmed = d.json(&["case", "list", "--status", "confirmed"]);
        assert_eq!(confirmed[0]["reference"], reference.as_str());
        assert_eq!(confirmed[0]["status"], "confirmed");
    }
    let out = office.home().with_file_name("export");
    office.ok(&[
        "export",
        "--out",
        out.to_str().expect("path"),
        "--format",
        "csv",
        "--status",
        "confirmed",
    ]);
    let mut csv = csv::Reader::from_path(out.join("cases.csv")).expect("cases.csv");
    let statuses: Vec<String> = csv
        .records()
        .map(|r| r.expect("a row")[3].to_owned())
        .collect();
    assert_eq!(statuses, ["confirmed"]);
    let shows: Vec<String> = [a, b, &office]
        .iter()
        .map(|d| d.ok(&["case", "show", &reference, "--json"]))
        .collect();
    assert_eq!(shows[0], shows[1]);
    assert_eq!(shows[0], shows[2]);
    // A field device cannot write a status itself, by any command: nothing is written.
    let files = b.files();
    for args in [
        &[
            "case",
            "edit",
            &reference,
            "--set",
            "status=under_investigation",
        ][..],
        &["case", "edit", &other, "--unset", "status"][..],
        &[
            "case",
            "new",
            "--kind",
            "killed",
            "--place",
            "KHR",
            "--set",
            "status=alleged",
        ][..],
    ] {
        let run = b.run(args);
        assert_ne!(run.code, 0, "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(b.files(), files);
}

/// Remains count by the day they were found, a case dated in the future is counted apart,
/// and every form says when its data was taken and when it was made.
#[test]
fn the_report_dates_remains_by_when_found_and_says_when_it_was_taken() {
    let office = Device::office();
    let file = office.home().with_file_name("cases.csv");
    std::fs::write(
        &file,
        "place,kind,status,status_basis,incident.date,found.at,person.civilian\n\
         KHR,remains,confirmed,exhumed,,2026-02-10T09:00:00+02:00,\n\
         KHR,remains,confirmed,exhumed,2025-12-01,2026-03-01T09:00:00Z,\n\
         KHR,killed,confirmed,autopsy,2126-02-01,,yes\n\
         KHR,killed,confirmed,autopsy,2026-02-05,,yes\n",
    )
    .expect("write");
    office.ok(&["case", "import", file.to_str().expect("path")]);
    let r = office.json(&["report", "--from", FROM, "--to", TO]);
    assert_eq!(
        (
            &r["remains"],
            &r["killed"]["total"],
            &r["future"],
            &r["undated"]
        ),
        (
            &Value::from(2),
            &Value::from(1),
            &Value::from(1),
            &Value::from(0)
        ),
        "{r}"
    );
    assert_eq!(r["data_as_of"], Value::Null);
    let made = r["made_at"].as_str().expect("made_at");
    assert!(made.starts_with(&time::OffsetDateTime::now_utc().year().to_string()));
    let text = office.ok(&["report", "--from", FROM, "--to", TO]);
    assert!(
        text.lines()
            .any(|l| l.contains("Dated after the report was made") && l.ends_with(" 1")),
        "{text}"
    );
    for format in ["text", "markdown", "html"] {
        let out = office.ok(&["report", "--from", FROM, "--to", TO, "--format", format]);
        let year = &made[..4];
        assert!(
            out.contains(&format!("(it has never synced); report made {year}-")),
            "{format}: {out}"
        );
    }
    // `case list --from` finds the case whose year was mistyped, as the report dates it.
    let future = office.json(&["case", "list", "--from", "2100-01-01"]);
    assert_eq!(future.as_array().map(Vec::len), Some(1), "{future}");
    assert_eq!(future[0]["incident_date"], "2126-02-01");
}
