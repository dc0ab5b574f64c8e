//! `cairn case import`: CSV and JSON Lines give the same cases, one bad row refuses the whole
//! file and leaves the vault byte for byte as it was, and a mapping file brings in another
//! tool's export (ODK Central's column names and labels) unedited.

mod dataset;

use cairn_e2e::{Device, Run};
use serde_json::Value;

fn write(device: &Device, name: &str, bytes: &[u8]) -> String {
    let path = device.home().with_file_name(name);
    std::fs::write(&path, bytes).expect("write input");
    path.to_string_lossy().into_owned()
}

/// Every case of the vault, in reference order: all of them from one `cairn export --format
/// json`, and every 25th checked against `case show --json`.
fn cases(device: &Device) -> Vec<Value> {
    let out = device.home().with_file_name("export-for-comparison");
    device.ok(&[
        "export",
        "--format",
        "json",
        "--out",
        &out.to_string_lossy(),
        "--force",
    ]);
    let text = std::fs::read_to_string(out.join("cases.jsonl")).expect("cases.jsonl");
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["case"].clone())
        .collect();
    for case in all.iter().step_by(25) {
        let reference = case["reference"].as_str().expect("reference");
        assert_eq!(&device.json(&["case", "show", reference]), case);
    }
    all
}

fn assert_refused(device: &Device, args: &[&str], code: i32, message: &str) -> Run {
    let before = device.files();
    let run = device.run(args);
    assert_eq!(run.code, code, "cairn {args:?}: {}", run.stderr);
    assert!(
        run.stderr.contains(message),
        "cairn {args:?}: expected `{message}` in: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "one sentence: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(before, device.files(), "cairn {args:?} changed the vault");
    run
}

#[test]
fn csv_and_json_lines_give_the_same_cases() {
    let rows = dataset::generate(7, 300, true);
    let from_csv = Device::office();
    let from_jsonl = Device::office();
    let (csv, _) = dataset::to_csv(&rows);
    let csv = write(&from_csv, "cases.csv", &csv);
    // No extension: JSON Lines is recognised by its first byte.
    let jsonl = write(&from_jsonl, "cases-export", &dataset::to_jsonl(&rows));

    let out = from_csv.json(&["case", "import", &csv]);
    assert_eq!(out["imported"], 300, "{out}");
    assert_eq!(out["cases"][0]["line"], 2);
    let out = from_jsonl.ok(&["case", "import", &jsonl]);
    assert!(out.starts_with("imported 300 case(s)"), "{out}");

    let a = cases(&from_csv);
    let b = cases(&from_jsonl);
    assert_eq!(a.len(), 300);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            dataset::comparable(x.clone()),
            dataset::comparable(y.clone())
        );
    }
    let summary = |d: &Device| -> Vec<(String, String)> {
        d.json(&["case", "list"])
            .as_array()
            .expect("list")
            .iter()
            .map(|c| (c["kind"].to_string(), c["status"].to_string()))
            .collect()
    };
    assert_eq!(summary(&from_csv), summary(&from_jsonl));

    // And the cases hold what was generated: rows were created in order, so the line the
    // import printed for each case leads back to its row.
    let imported = from_jsonl.json(&["case", "list"]);
    assert_eq!(imported.as_array().map(Vec::len), Some(300));
    let by_reference: std::collections::HashMap<String, Value> = b
        .iter()
        .map(|c| (c["reference"].as_str().expect("ref").to_string(), c.clone()))
        .collect();
    let mut numbered: Vec<&Value> = by_reference.values().collect();
    numbered.sort_by_key(|c| {
        c["reference"]
            .as_str()
            .and_then(|r| r.rsplit('-').next())
            .and_then(|n| n.parse::<u32>().ok())
    });
    for (row, case) in rows.iter().zip(numbered) {
        for key in dataset::COLUMNS {
            let value = row.get(key);
            match *key {
                "place" => assert!(case["reference"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&format!("{value}-")))),
                "status" => {
                    let status = if value.is_empty() { "alleged" } else { value };
                    assert_eq!(case["status"], status, "{case}");
                }
                "status_basis" => {
                    let basis = case["verifications"]
                        .as_array()
                        .and_then(|v| v.last())
                        .and_then(|v| v.get("basis"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    assert_eq!(basis, value, "{case}");
                }
                _ if value.is_empty() => {
                    assert_eq!(dataset::field(case, key), None, "{key} in {case}")
                }
                _ => assert_eq!(
                    dataset::field(case, key),
                    Some(&dataset::expected_json(key, value)),
                    "{key} in {case}"
                ),
            }
        }
    }
}

#[test]
fn one_bad_row_at_line_731_refuses_the_file_and_stores_nothing() {
    let device = Device::office();
    device.new_case(&["--kind", "killed", "--place", "KHR"]);
    let mut rows = dataset::generate(11, 900, true);
    let (_, lines) = dataset::to_csv(&rows);
    // The row that starts on line 731 (multi-line cells make rows and lines differ).
    let bad = lines
        .iter()
        .position(|l| *l == 731)
        .or_else(|| lines.iter().position(|l| *l > 731).map(|i| i - 1))
        .expect("a row near line 731");
    rows[bad].set("found.lat", "ninety-one");
    let (csv, lines) = dataset::to_csv(&rows);
    let line = lines[bad];
    let path = write(&device, "bad.csv", &csv);
    let run = assert_refused(
        &device,
        &["case", "import", &path],
        1,
        &format!("line {line}, column found.lat: invalid value `ninety-one`"),
    );
    assert!(
        run.stderr.contains("Nothing was imported"),
        "{}",
        run.stderr
    );
    assert_eq!(device.case_count(), 1);

    // Exactly line 731: a file without multi-line cells.
    let mut rows = dataset::generate(12, 800, true);
    for row in &mut rows {
        row.set("incident.narrative", "one line");
    }
    rows[729].set("person.age_years", "200");
    let (csv, lines) = dataset::to_csv(&rows);
    assert_eq!(lines[729], 731);
    let path = write(&device, "bad2.csv", &csv);
    assert_refused(
        &device,
        &["case", "import", &path],
        1,
        "line 731, column person.age_years: invalid value `200`",
    );

    // The same in JSON Lines: line 731 is the 731st object.
    let mut rows = dataset::generate(13, 800, true);
    rows[730].set("kind", "dead");
    let path = write(&device, "bad.jsonl", &dataset::to_jsonl(&rows));
    assert_refused(
        &device,
        &["case", "import", &path],
        1,
        "line 731, column kind: invalid value `dead`",
    );
    assert_eq!(device.case_count(), 1);
}

#[test]
fn an_odk_central_export_comes_in_through_a_map_file() {
    let device = Device::office();
    let csv = "\
SubmissionDate,KEY,meta-instanceID,case_type,incident-cause,incident-date,found-location-Latitude,found-location-Longitude,found-location-Accuracy,person-civilian,person-full_name,ReviewState
2024-03-01T10:00:00.000Z,uuid:1,uuid:1,Killed,Targeted strike,2024-02-28,31.52,34.45,4.5,1,Odk Person One,approved
2024-03-02T11:00:00.000Z,uuid:2,uuid:2,Remains,In captivity,,,,,0,,
2024-03-03T12:00:00.000Z,uuid:3,uuid:3,Injured,Unknown,2024-03-01,31.6,34.5,,n/a,Odk Person Three,
";
    let map = r#"
[columns]
"case_type" = "kind"
"incident-cause" = "incident.cause"
"incident-date" = "incident.date"
"found-location-Latitude" = "found.lat"
"found-location-Longitude" = "found.lon"
"found-location-Accuracy" = "found.accuracy_m"
"person-civilian" = "person.civilian"
"person-full_name" = "person.name"

[values.kind]
"Killed" = "killed"
"Remains" = "remains"
"Injured" = "injured"

[values."incident.cause"]
"Targeted strike" = "targeted_strike"
"In captivity" = "captivity"
"Unknown" = "unknown"

[values."person.civilian"]
"1" = "yes"
"0" = "no"
"n/a" = ""

[ignore]
columns = ["SubmissionDate", "KEY", "meta-instanceID", "ReviewState"]

[defaults]
place = "KHR"
"#;
    let csv = write(&device, "odk.csv", csv.as_bytes());
    let map = write(&device, "odk.toml", map.as_bytes());
    let out = device.ok(&["case", "import", &csv, "--map", &map]);
    assert!(out.starts_with("imported 3 case(s)"), "{out}");
    let all = cases(&device);
    let first = &all[0];
    assert_eq!(first["kind"], "killed");
    assert_eq!(first["incident"]["cause"], "targeted_strike");
    assert_eq!(first["incident"]["date"], "2024-02-28");
    assert_eq!(first["found"]["lat"], 31.52);
    assert_eq!(first["found"]["lon"], 34.45);
    assert_eq!(first["found"]["accuracy_m"], 4.5);
    assert_eq!(first["person"]["civilian"], "yes");
    assert_eq!(first["person"]["name"], "Odk Person One");
    assert!(first["reference"]
        .as_str()
        .is_some_and(|r| r.starts_with("KHR-")));
    assert_eq!(all[1]["kind"], "remains");
    assert_eq!(all[1]["incident"]["cause"], "captivity");
    assert_eq!(all[1]["person"]["civilian"], "no");
    assert_eq!(
        all[2]["person"].get("civilian"),
        None,
        "n/a maps to not set"
    );

    // Without the map, the foreign columns are named, not dropped.
    let run = assert_refused(
        &device,
        &["case", "import", &csv],
        1,
        "unknown columns `SubmissionDate`, `KEY`",
    );
    assert!(run.stderr.contains("--map"), "{}", run.stderr);
}

#[test]
fn a_field_device_cannot_import_a_confirmation() {
    let device = Device::init("T03");
    let csv = "place,kind,status,status_basis\nKHR,killed,alleged,\nKHR,killed,confirmed,Autopsy report\n";
    let path = write(&device, "confirm.csv", csv.as_bytes());
    assert_refused(
        &device,
        &["case", "import", &path],
        1,
        "line 3, column status: only the office confirms or rejects a case",
    );
    assert_eq!(device.case_count(), 0);
    // What a field device may propose comes in, as a note: the status is the office's.
    let csv = "place,kind,status,status_basis\nKHR,killed,under_investigation,Family report\n";
    let path = write(&device, "propose.csv", csv.as_bytes());
    device.ok(&["case", "import", &path]);
    assert_eq!(device.case_count(), 1);
    let listed = device.json(&["case", "list"]);
    let reference = listed[0]["reference"].as_str().expect("a reference");
    let case = device.json(&["case", "show", reference]);
    assert_eq!(case["status"], "alleged");
    assert_eq!(
        case["notes"][0]["text"],
        "Proposed under_investigation: Family report"
    );
}

#[test]
fn bad_input_is_one_sentence_and_changes_nothing() {
    let device = Device::office();
    device.new_case(&["--kind", "killed", "--place", "KHR"]);
    let missing = device.home().with_file_name("missing.csv");
    assert_refused(
        &device,
        &["case", "import", &missing.to_string_lossy()],
        1,
        "cannot read",
    );
    let empty = write(&device, "empty.csv", b"");
    assert_refused(&device, &["case", "import", &empty], 1, "holds no rows");
    let header_only = write(&device, "header.csv", b"place,kind\n");
    assert_refused(
        &device,
        &["case", "import", &header_only],
        1,
        "holds no rows",
    );
    let unknown = write(
        &device,
        "unknown.csv",
        b"place,kind,colour\nKHR,killed,red\n",
    );
    assert_refused(
        &device,
        &["case", "import", &unknown],
        1,
        "line 1: unknown column `colour`",
    );
    let no_kind = write(
        &device,
        "nokind.csv",
        b"place,incident.cause\nKHR,unknown\n",
    );
    assert_refused(
        &device,
        &["case", "import", &no_kind],
        1,
        "there is no kind column",
    );
    let ragged = write(&device, "ragged.csv", b"place,kind\nKHR,killed\nKHR\n");
    assert_refused(&device, &["case", "import", &ragged], 1, "line 3");
    let basis = write(
        &device,
        "basis.csv",
        b"place,kind,status,status_basis\nKHR,killed,confirmed,\n",
    );
    assert_refused(
        &device,
        &["case", "import", &basis],
        1,
        "line 2, column status: status confirmed needs a status_basis",
    );
    let not_json = write(
        &device,
        "broken.jsonl",
        b"{\"place\": \"KHR\", \"kind\": \"killed\"}\n{\"place\": \n",
    );
    assert_refused(
        &device,
        &["case", "import", &not_json],
        1,
        "line 2: it is not a JSON object",
    );
    let good = write(&device, "good.csv", b"place,kind\nKHR,killed\n");
    let bad_map = write(&device, "bad.toml", b"[columns\n\"a\" = \"b\"\n");
    assert_refused(
        &device,
        &["case", "import", &good, "--map", &bad_map],
        1,
        "is not valid (line 1)",
    );
    let wrong_key = write(
        &device,
        "wrong.toml",
        b"[columns]\n\"a\" = \"person.nmae\"\n",
    );
    assert_refused(
        &device,
        &["case", "import", &good, "--map", &wrong_key],
        1,
        "names `person.nmae` in [columns], which is no cairn key",
    );
    let missing_map = device.home().with_file_name("nomap.toml");
    assert_refused(
        &device,
        &[
            "case",
            "import",
            &good,
            "--map",
            &missing_map.to_string_lossy(),
        ],
        1,
        "cannot read the map file",
    );
    // Usage: no file given.
    let run = device.run(&["case", "import"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(device.case_count(), 1);
}

/// An import killed before its commit stored nothing; one killed after its commit, before it
/// could say so, stored everything. Run again, either one imports each row exactly once and
/// says how many were there already; rows added to the file later come in on the next run.
/// Two rows alike are two cases, every time.
#[test]
fn an_import_killed_before_or_after_its_commit_is_run_again_without_loss_or_double() {
    let device = Device::init("T03");
    let rows = "kind,place,person.name,incident.cause\n\
                killed,KHR,,targeted_strike\n\
                killed,KHR,,targeted_strike\n\
                injured,KHR,Amal,\n\
                missing,GZA,Omar,\n\
                remains,KHR,,unknown\n";
    let file = write(&device, "list.csv", rows.as_bytes());
    let killed_at = |point: &str| -> Run {
        device
            .command(&["case", "import", &file])
            .env("CAIRN_FAILPOINT", point)
            .output()
            .expect("run")
            .into()
    };
    let run = killed_at("import-before-commit");
    assert_ne!(run.code, 0, "the failpoint did not kill the import");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(device.case_count(), 0, "a killed import stored something");
    let run = killed_at("import-after-commit");
    assert_ne!(run.code, 0, "the failpoint did not kill the import");
    assert!(
        run.stdout.is_empty(),
        "no summary after a kill: {}",
        run.stdout
    );
    assert_eq!(device.case_count(), 5, "the commit was lost");

    let again = device.ok(&["case", "import", &file]);
    assert_eq!(
        again.trim(),
        format!(
            "imported nothing from {file}: its 5 row(s) were all imported before, and are left as they are"
        )
    );
    assert_eq!(device.case_count(), 5);

    // The list grows, by a third row like the first two and one more.
    let grown = format!("{rows}killed,KHR,,targeted_strike\ninjured,GZA,Sami,\n");
    std::fs::write(&file, grown).expect("write");
    let out = device.json(&["case", "import", &file]);
    assert_eq!(out["imported"], 2, "{out}");
    assert_eq!(out["already_imported"], 5, "{out}");
    assert_eq!(out["cases"][0]["line"], 7, "{out}");
    assert_eq!(
        out["already_imported_lines"],
        serde_json::json!([2, 3, 4, 5, 6])
    );
    let all = cases(&device);
    assert_eq!(all.len(), 7);
    let strikes = all
        .iter()
        .filter(|c| c["incident"]["cause"] == "targeted_strike")
        .count();
    assert_eq!(strikes, 3, "each of the three rows alike is a case");
    device.ok(&["check"]);
    // And the vault still takes a new case.
    device.new_case(&["--kind", "killed", "--place", "KHR"]);
}

/// A row's source id is kept on its case, and a row whose source id this vault imported
/// before is not imported again, from whatever file; a file giving one source id twice is
/// refused. The vault keeps only keyed digests of what it imported: no source id is in its
/// files in the clear.
#[test]
fn rows_with_a_source_id_are_imported_once_whatever_the_file() {
    let device = Device::office();
    let ids = [
        "MoH-LIST-7731-0001",
        "MoH-LIST-7731-0002",
        "MoH-LIST-7731-0003",
    ];
    let first = format!(
        "source_id,kind,place\n{},killed,KHR\n{},injured,KHR\n{},missing,GZA\n",
        ids[0], ids[1], ids[2]
    );
    let a = write(&device, "ministry-list.csv", first.as_bytes());
    let out = device.json(&["case", "import", &a]);
    assert_eq!(out["imported"], 3, "{out}");
    let reference = out["cases"][0]["reference"].as_str().expect("reference");
    assert_eq!(
        device.json(&["case", "show", reference])["source_id"],
        ids[0]
    );

    // The same ids in another file and format, one of them with other values: only the new
    // id comes in.
    let second = format!(
        "{{\"source_id\": \"{}\", \"kind\": \"killed\", \"place\": \"GZA\"}}\n\
         {{\"source_id\": \"MoH-LIST-7731-0004\", \"kind\": \"killed\", \"place\": \"KHR\"}}\n",
        ids[1]
    );
    let b = write(&device, "update.jsonl", second.as_bytes());
    let out = device.ok(&["case", "import", &b]);
    assert_eq!(
        out.trim(),
        format!(
            "imported 1 case(s) from {b}: {}; 1 row(s) were imported before, and are left as they are",
            device.json(&["case", "list"])[3]["reference"].as_str().expect("reference")
        )
    );
    assert_eq!(device.case_count(), 4);

    let twice = write(
        &device,
        "twice.csv",
        b"source_id,kind,place\nX-1,killed,KHR\nX-1,injured,KHR\n",
    );
    assert_refused(
        &device,
        &["case", "import", &twice],
        1,
        "line 3, column source_id: the source id `X-1` is also on line 2",
    );

    for (path, bytes) in device.files() {
        for id in ids {
            assert!(
                !cairn_e2e::contains_any_encoding(&bytes, id),
                "{id} in the clear in {}",
                path.display()
            );
        }
    }
}

/// A CSV file written with `;` (Excel in locales whose decimal mark is a comma) or with tabs
/// is read by the delimiter that splits its header into known columns; a header that fits
/// none keeps its error, with the delimiters tried.
#[test]
fn a_semicolon_or_tab_csv_is_read_by_its_header() {
    let device = Device::office();
    let semicolons = "place;kind;person.name;incident.narrative\r\nKHR;killed;Sara Ali;\"Found near the road, at dawn; alone\"\r\nKHR;injured;Omar Haddad;\r\n";
    let path = write(&device, "excel.csv", semicolons.as_bytes());
    let out = device.json(&["case", "import", &path]);
    assert_eq!(out["imported"], 2, "{out}");
    let tabs = "place\tkind\tperson.name\nKHR\tmissing\tLina, daughter of Omar\n";
    let path = write(&device, "tabs.csv", tabs.as_bytes());
    let out = device.json(&["case", "import", &path]);
    assert_eq!(out["imported"], 1, "{out}");
    let all = cases(&device);
    let names: Vec<&str> = all
        .iter()
        .filter_map(|c| c["person"]["name"].as_str())
        .collect();
    assert_eq!(names, ["Sara Ali", "Omar Haddad", "Lina, daughter of Omar"]);
    assert_eq!(
        all[0]["incident"]["narrative"],
        "Found near the road, at dawn; alone"
    );
    assert_eq!(all[1]["kind"], "injured");
    assert_eq!(all[2]["kind"], "missing");

    let path = write(&device, "typo.csv", b"plaec;kind\nKHR;killed\n");
    let run = assert_refused(
        &device,
        &["case", "import", &path],
        1,
        "line 1: unknown column `plaec`",
    );
    assert!(
        run.stderr
            .contains("the header was split at `,`, at `;` and at tab in turn"),
        "{}",
        run.stderr
    );
}

/// ODK exports a `Status` column holding a submission's state (`submitted`): it is not taken
/// as the case's status unasked. Only a column named exactly `status` is; a `Status` column is
/// refused with how to rename, map or ignore it, and a status value cairn does not know is
/// refused with its line, its column and the values allowed.
#[test]
fn an_odk_status_column_is_not_taken_as_the_cases_status() {
    let device = Device::office();
    let csv = "KEY,place,kind,person.name,Status\nuuid:1,KHR,killed,Sara Ali,submitted\n";
    let path = write(&device, "odk-status.csv", csv.as_bytes());
    let run = assert_refused(
        &device,
        &["case", "import", &path],
        1,
        "line 1: column `Status` is not taken as the case's status",
    );
    for hint in [
        "rename it `status`",
        "alleged, under_investigation, confirmed, rejected",
        "--map",
        "unknown column `KEY`",
    ] {
        assert!(run.stderr.contains(hint), "{hint}: {}", run.stderr);
    }
    // In any letter case, and in JSON Lines too.
    let jsonl = "{\"place\": \"KHR\", \"kind\": \"killed\", \"STATUS\": \"submitted\"}\n";
    let path = write(&device, "odk-status.jsonl", jsonl.as_bytes());
    assert_refused(
        &device,
        &["case", "import", &path],
        1,
        "column `STATUS` is not taken as the case's status",
    );

    // Mapped to status on purpose, its values are checked.
    let map = write(
        &device,
        "status-map.toml",
        b"[columns]\n\"Status\" = \"status\"\n[ignore]\ncolumns = [\"KEY\"]\n",
    );
    let path = write(&device, "odk-status.csv", csv.as_bytes());
    let run = assert_refused(
        &device,
        &["case", "import", &path, "--map", &map],
        1,
        "line 2, column status: invalid value `submitted`",
    );
    assert!(run.stderr.contains("submitted"), "{}", run.stderr);
    assert!(run.stderr.contains("under_investigation"), "{}", run.stderr);

    // Ignored, the row comes in alleged.
    let map = write(
        &device,
        "ignore-map.toml",
        b"[ignore]\ncolumns = [\"KEY\", \"Status\"]\n",
    );
    let out = device.json(&["case", "import", &path, "--map", &map]);
    assert_eq!(out["imported"], 1, "{out}");
    assert_eq!(cases(&device)[0]["status"], "alleged");
}

#[test]
fn the_office_imports_a_list_into_a_team_whose_members_then_read_it() {
    let office = Device::office();
    let server = cairn_e2e::Server::start(&office);
    let member = Device::init("T03");
    server.join(&office, &member, "T03", &server.url());
    let csv = "place,kind,status,status_basis,person.name\nKHR,killed,confirmed,Hospital list,Sara Haddad\nKHR,missing,alleged,,Omar Said\n";
    let path = write(&office, "hospital.csv", csv.as_bytes());
    // A team the office admitted no one into has no key yet: refused, nothing stored.
    assert_refused(
        &office,
        &["case", "import", &path, "--team", "T09"],
        1,
        "holds no key of team T09",
    );
    assert_refused(
        &office,
        &["case", "import", &path, "--team", "not a team"],
        2,
        "not a team",
    );
    let made = office.json(&["case", "import", &path, "--team", "t03"]);
    assert_eq!(made["imported"], 2);
    let references: Vec<String> = made["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["reference"].as_str().expect("reference").to_owned())
        .collect();
    assert!(
        references.iter().all(|r| r.starts_with("KHR-T03-")),
        "{references:?}"
    );
    office.ok(&["sync"]);
    member.ok(&["sync"]);
    assert_eq!(member.case_count(), 2);
    let case = member.json(&["case", "show", &references[0]]);
    assert_eq!(case["person"]["name"], "Sara Haddad");
    assert_eq!(case["status"], "confirmed");
    // The member edits it as its own team's case, and the office reads the edit.
    member.ok(&[
        "case",
        "edit",
        &references[1],
        "--note",
        "Seen at the checkpoint",
    ]);
    member.ok(&["sync"]);
    office.ok(&["sync"]);
    let seen = office.json(&["case", "show", &references[1]]);
    assert_eq!(seen["notes"][0]["text"], "Seen at the checkpoint");
    // A field device imports into its own team only.
    let other = write(&member, "mine.csv", b"place,kind\nKHR,killed\n");
    assert_refused(
        &member,
        &["case", "import", &other, "--team", "T04"],
        1,
        "only the office imports cases into another team",
    );
    member.ok(&["case", "import", &other, "--team", "T03"]);
}
