//! Published editions (issue #25), with the real binary: an edition printed again after cases
//! were edited, confirmed, rejected and linked is byte for byte what was published, in every
//! format; `--since` names each change by reference and its sentence counts them as this
//! test's own data says; an export of the edition holds the cases as counted; and an edition
//! altered on disk fails `report verify`.

use std::collections::BTreeSet;
use std::path::Path;

use cairn_e2e::Device;
use serde_json::Value;

const FROM: &str = "2020-09-27";
const TO: &str = "2020-12-22";
const LATER: &str = "2021-01-28";
const FORMATS: [&str; 5] = ["text", "markdown", "json", "html", "signed"];

fn killed(office: &Device, date: &str, cause: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--kind".to_owned(),
        "killed".into(),
        "--place".into(),
        "KHR".into(),
        "--set".into(),
        format!("incident.date={date}"),
        "--set".into(),
        format!("incident.cause={cause}"),
        "--set".into(),
        "person.civilian=yes".into(),
    ];
    for e in extra {
        args.extend(["--set".to_owned(), (*e).to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    office.new_case(&args)
}

fn verify(office: &Device, reference: &str, status: &str) {
    office.ok(&[
        "case",
        "verify",
        reference,
        "--status",
        status,
        "--basis",
        "death certificate and two witnesses",
    ]);
}

fn link(office: &Device, a: &str, b: &str, relation: &str) {
    office.ok(&[
        "case",
        "link",
        a,
        b,
        "--as",
        relation,
        "--basis",
        "same name, father and day",
    ]);
}

/// Every format of `edition` as `report show` prints it.
fn shown(office: &Device, edition: &str) -> Vec<String> {
    FORMATS
        .iter()
        .map(|f| office.ok(&["report", "show", edition, "--format", f]))
        .collect()
}

fn references(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| v[key].as_str().expect("a reference").to_owned())
        .collect()
}

fn set(refs: &[&String]) -> BTreeSet<String> {
    refs.iter().map(|r| (*r).clone()).collect()
}

#[test]
fn an_edition_reproduces_exactly_and_an_update_says_what_changed() {
    let office = Device::office();
    let strike = killed(&office, "2020-10-01", "targeted_strike", &[]);
    let captivity = killed(&office, "2020-11-01", "captivity", &[]);
    let unknown = killed(&office, "2020-10-20", "unknown", &[]);
    let again = killed(&office, "2020-12-01", "targeted_strike", &[]);
    let alleged = killed(&office, "2020-10-25", "other_violence", &[]);
    let missing = office.new_case(&[
        "--kind",
        "missing",
        "--place",
        "KHR",
        "--set",
        "incident.date=2020-10-10",
        "--set",
        "person.civilian=yes",
    ]);
    for r in [&strike, &captivity, &unknown, &again, &missing] {
        verify(&office, r, "confirmed");
    }

    // Publish: what it prints is the edition as `show` prints it, in every format.
    let published = office.run(&[
        "report",
        "publish",
        "--from",
        FROM,
        "--to",
        TO,
        "--title",
        "Interim report",
    ]);
    assert_eq!(published.code, 0, "{}", published.stderr);
    assert!(
        published.stderr.contains("Published edition"),
        "{}",
        published.stderr
    );
    let editions = office.json(&["report", "editions"]);
    let first = editions[0]["id"].as_str().expect("an id").to_owned();
    let hash = editions[0]["hash"].as_str().expect("a hash").to_owned();
    assert!(published.stdout.contains(&first) && published.stdout.contains(&hash[..12]));
    let before = shown(&office, &first);
    assert_eq!(published.stdout, before[0]);
    assert!(
        before[0].contains("the killings of 4 civilians have been recorded"),
        "{}",
        before[0]
    );
    let published_at = editions[0]["published_at"]
        .as_str()
        .expect("a time")
        .to_owned();

    // The office keeps working: a confirmed cause changed and confirmed again, an alleged
    // killing confirmed, a killing rejected, two records of one person linked, the remains
    // of the missing person identified, and killings found by search operations after the
    // edition.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let found_now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    office.ok(&[
        "case",
        "edit",
        &unknown,
        "--set",
        "incident.cause=captivity",
    ]);
    verify(&office, &unknown, "confirmed");
    verify(&office, &alleged, "confirmed");
    verify(&office, &captivity, "rejected");
    link(&office, &strike, &again, "same_person");
    let remains = office.new_case(&[
        "--kind",
        "remains",
        "--place",
        "KHR",
        "--set",
        "found.at=2020-12-15T09:00:00Z",
    ]);
    verify(&office, &remains, "confirmed");
    link(&office, &remains, &missing, "identifies");
    let found = killed(
        &office,
        "2020-12-10",
        "targeted_strike",
        &[&format!("found.at={found_now}")],
    );
    verify(&office, &found, "confirmed");
    let january = killed(&office, "2021-01-05", "captivity", &[]);
    verify(&office, &january, "confirmed");
    // An edit since confirmation counts for nothing until confirmed again.
    office.ok(&["case", "edit", &found, "--set", "incident.cause=unknown"]);

    // The first edition, shown again, is what was published, byte for byte.
    assert_eq!(shown(&office, &first), before);

    // What changed, by reference, against this test's own account of it.
    let changes = office.json(&["report", "--from", FROM, "--to", LATER, "--since", &first]);
    assert_eq!(
        references(&changes["newly_counted"], "reference"),
        set(&[&alleged, &found, &january])
    );
    let by_search: Vec<&str> = changes["newly_counted"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|n| n["found_by_search"] == true)
        .map(|n| n["reference"].as_str().expect("a reference"))
        .collect();
    assert_eq!(by_search, [found.as_str()]);
    assert_eq!(
        references(&changes["reclassified"], "reference"),
        set(&[&unknown, &remains])
    );
    let moved = |reference: &str| -> Vec<(String, String)> {
        changes["reclassified"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|r| r["reference"] == reference)
            .expect("reclassified")["moved"]
            .as_array()
            .expect("moved")
            .iter()
            .map(|m| {
                (
                    m["field"].as_str().expect("a field").to_owned(),
                    m["now"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        moved(&unknown),
        [("cause".to_owned(), "captivity".to_owned())]
    );
    assert_eq!(
        moved(&remains),
        [
            ("kind".to_owned(), "remains".to_owned()),
            ("identification".to_owned(), "confirmed".to_owned())
        ]
    );
    let dropped = &changes["no_longer_counted"];
    assert_eq!(references(dropped, "reference"), set(&[&captivity]));
    assert_eq!(dropped[0]["reason"], "rejected");
    assert_eq!(changes["merged"][0]["into"], strike.as_str());
    let were: BTreeSet<String> = changes["merged"][0]["were"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r.as_str().expect("a reference").to_owned())
        .collect();
    assert_eq!(were, set(&[&strike, &again]));
    // The sentence counts them: three further killings of civilians (the alleged one now
    // confirmed, the one found, January's), one found by search operations.
    let day = time::OffsetDateTime::parse(
        &published_at,
        &time::format_description::well_known::Rfc3339,
    )
    .expect("a time")
    .date();
    let month = format!("{:?}", day.month());
    let expected = format!(
        "Since the report of {month} {}, {}, the killings of 3 further civilians have been recorded, \
         1 of them found as a result of search operations. 1 person counted then is no longer \
         counted, 1 of them because the office rejected the case. 1 record counted then as a \
         person of its own has since been linked to a person already counted. 2 persons counted \
         then have been reclassified.",
        day.day(),
        day.year()
    );
    assert_eq!(changes["sentence"], expected.as_str());
    let text = office.ok(&["report", "--from", FROM, "--to", LATER, "--since", &first]);
    assert!(text.contains(&expected), "{text}");
    for r in [
        &alleged, &found, &january, &unknown, &remains, &captivity, &strike,
    ] {
        assert!(text.contains(r.as_str()), "{r} in {text}");
    }

    // A second edition, and the difference between the two is the same.
    office.ok(&[
        "report",
        "publish",
        "--from",
        FROM,
        "--to",
        LATER,
        "--title",
        "Interim report, updated",
    ]);
    let between = office.json(&["report", "show", "latest", "--since", &first]);
    for key in [
        "newly_counted",
        "reclassified",
        "no_longer_counted",
        "merged",
        "sentence",
    ] {
        assert_eq!(between[key], changes[key], "{key}");
    }
    assert_eq!(
        office
            .json(&["report", "editions"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // The export of the first edition holds the cases as counted then.
    let out = office.home().join("export");
    let out_s = out.to_str().expect("a path");
    office.ok(&[
        "export",
        "--edition",
        &first,
        "--format",
        "csv",
        "--out",
        out_s,
    ]);
    let mut csv = csv::Reader::from_path(out.join("cases.csv")).expect("cases.csv");
    let headers = csv.headers().expect("headers").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (reference, cause) = (column("reference"), column("incident.cause"));
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("a row")).collect();
    let exported: BTreeSet<String> = rows.iter().map(|r| r[reference].to_owned()).collect();
    assert_eq!(
        exported,
        set(&[&strike, &captivity, &unknown, &again, &missing])
    );
    let unknown_row = rows
        .iter()
        .find(|r| r[reference] == *unknown)
        .expect("a row");
    assert_eq!(&unknown_row[cause], "unknown");
    let manifest = std::fs::read_to_string(out.join("manifest.csv")).expect("manifest");
    assert!(manifest.contains("edition.json"), "{manifest}");

    // `report verify` on any machine with the office's public key: the exported edition and
    // the one `show --format signed` prints verify; altered on disk, neither does.
    let key = office.home().join("office.pub");
    std::fs::write(&key, office.ok(&["office", "pubkey"])).expect("write the key");
    let key_s = key.to_str().expect("a path");
    let stranger = Device::empty();
    let signed = out.join("edition.json");
    assert_eq!(
        std::fs::read_to_string(&signed).expect("edition.json"),
        before[4]
    );
    let verified = stranger.json(&[
        "report",
        "verify",
        signed.to_str().expect("a path"),
        "--office-key",
        key_s,
    ]);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["hash"], hash.as_str());
    let altered = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(&before[4]).expect("a signed edition");
        edit(&mut v);
        let path = office.home().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&v).expect("json")).expect("write");
        let run = stranger.run(&[
            "report",
            "verify",
            path.to_str().expect("a path"),
            "--office-key",
            key_s,
        ]);
        assert_eq!(run.code, 1, "{name}: {}", run.stdout);
        assert!(
            run.stderr.contains("does not verify"),
            "{name}: {}",
            run.stderr
        );
    };
    altered("sentence.json", &|v| {
        v["edition"]["sentence"] = "From September 27, 2020, to December 22, 2020, the killings of 9 civilians have been recorded.".into();
    });
    altered("case.json", &|v| {
        v["edition"]["cases"][0]["case"]["status"] = "rejected".into();
    });
    altered("signer.json", &|v| {
        v["signer"] = hex::encode([7u8; 32]).into();
    });
    // On the office's own vault the key is its own; a device that never joined knows none.
    office.ok(&["report", "verify", signed.to_str().expect("a path")]);
    let lone = Device::init("T03");
    let run = lone.run(&["report", "verify", signed.to_str().expect("a path")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--office-key"), "{}", run.stderr);
    // Reformatted (whitespace only), it still verifies.
    let compact: Value = serde_json::from_str(&before[4]).expect("a signed edition");
    let compact_path = office.home().join("compact.json");
    std::fs::write(&compact_path, compact.to_string()).expect("write");
    stranger.ok(&[
        "report",
        "verify",
        compact_path.to_str().expect("a path"),
        "--office-key",
        key_s,
    ]);
    assert_no_trace(&office.home().join("vault.db"), "Interim report");
}

/// The title, like every case value, never reaches the database in clear.
fn assert_no_trace(db: &Path, needle: &str) {
    let bytes = std::fs::read(db).expect("the database");
    assert!(!cairn_e2e::contains_any_encoding(&bytes, needle));
}

#[test]
fn editions_are_the_offices_and_bad_names_are_said_plainly() {
    let field = Device::init("T03");
    let run = field.run(&[
        "report", "publish", "--from", FROM, "--to", TO, "--title", "Mine",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("only the office publishes"),
        "{}",
        run.stderr
    );

    let office = Device::office();
    let run = office.run(&["report", "show", "latest"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no edition has been published"),
        "{}",
        run.stderr
    );
    office.ok(&[
        "report", "publish", "--from", FROM, "--to", TO, "--title", "Empty",
    ]);
    for (name, code, says) in [("ab", 2, "too short"), ("ffffffff", 1, "no edition here")] {
        let run = office.run(&["report", "show", name]);
        assert_eq!(run.code, code, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{name}: {}", run.stderr);
    }
    let run = office.run(&[
        "report", "publish", "--from", FROM, "--to", TO, "--title", " ",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = office.run(&["report", "verify", "/nonexistent/edition.json"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
    let junk = office.home().join("junk.json");
    std::fs::write(&junk, b"{\"edition\": 1}").expect("write");
    let run = office.run(&["report", "verify", junk.to_str().expect("a path")]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not a signed edition"),
        "{}",
        run.stderr
    );
}
