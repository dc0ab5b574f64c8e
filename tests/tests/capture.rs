//! Offline capture, end to end: the real `cairn` binary in temporary homes.

use cairn_e2e::{contains_any_encoding, Device};

#[test]
fn walk_through_init_new_edit_list_show_history_notes_custody_fields_wipe() {
    let device = Device::init("T03");
    let reference = device.new_case(&[
        "--kind",
        "killed",
        "--place",
        "khr",
        "--set",
        "incident.cause=targeted_strike",
        "--set",
        "found.lat=31.5",
        "--set",
        "person.age_years=34",
        "--note",
        "Recovered with the civil defence.",
    ]);
    assert!(
        reference.starts_with("KHR-T03-") && reference.len() == "KHR-T03-XXXX-0001".len(),
        "reference {reference}"
    );
    assert!(reference.ends_with("-0001"));
    let second = device.new_case(&["--kind", "remains", "--place", "KHR"]);
    assert!(second.ends_with("-0002"), "{second}");

    // The status is the office's: a field device's edit that sets it writes nothing.
    let before = device.files();
    let run = device.run(&[
        "case",
        "edit",
        &reference,
        "--set",
        "incident.narrative=Found by the road.",
        "--set",
        "status=under_investigation",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("only the office"), "{}", run.stderr);
    assert_eq!(device.files(), before);
    device.ok(&[
        "case",
        "edit",
        &reference,
        "--set",
        "incident.narrative=Found by the road.",
        "--note",
        "Family informed.",
    ]);
    device.ok(&[
        "case",
        "custody",
        &reference,
        "--from",
        "Team T03",
        "--to",
        "Forensic unit",
        "--place",
        "Khan Younis",
        "--purpose",
        "examination",
        "--seal",
        "S-114",
    ]);
    device.ok(&[
        "case",
        "source",
        &reference,
        "--type",
        "witness",
        "--contact",
        "via imam",
        "--consent",
        "yes",
    ]);

    let case = device.json(&["case", "show", &reference]);
    assert_eq!(case["reference"], reference.as_str());
    assert_eq!(case["kind"], "killed");
    assert_eq!(case["status"], "alleged");
    assert_eq!(case["incident"]["cause"], "targeted_strike");
    assert_eq!(case["incident"]["narrative"], "Found by the road.");
    assert_eq!(case["found"]["lat"], 31.5);
    assert_eq!(case["person"]["age_years"], 34);
    assert!(case["id"].as_str().is_some_and(|id| id.len() == 36));
    let notes = case["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[1]["text"], "Family informed.");
    assert!(notes[0]["at"].as_str().is_some() && notes[0]["author"].as_str().is_some());
    assert_eq!(case["custody"][0]["seal"], "S-114");
    assert_eq!(case["sources"][0]["consent"], "yes");

    let human = device.ok(&["case", "show", &reference]);
    assert!(human.contains("incident.cause: targeted_strike"), "{human}");

    let list = device.json(&["case", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let killed = device.json(&["case", "list", "--kind", "killed"]);
    assert_eq!(killed.as_array().map(Vec::len), Some(1));
    assert_eq!(killed[0]["reference"], reference.as_str());
    let confirmed = device.json(&["case", "list", "--status", "confirmed"]);
    assert_eq!(confirmed.as_array().map(Vec::len), Some(0));

    let history = device.json(&["case", "history", &reference]);
    let history = history.as_array().expect("history");
    assert_eq!(history.len(), 4, "{history:?}");
    let touched: Vec<String> = history[1]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        touched.contains(&"incident.narrative".to_string()),
        "{touched:?}"
    );
    assert!(touched.contains(&"note".to_string()), "{touched:?}");
    assert!(history.iter().all(|h| h["author"] == history[0]["author"]));

    let fields = device.ok(&["fields"]);
    assert!(fields.contains("found.scene") && fields.contains("mass_grave"));
    let fields = device.json(&["fields"]);
    assert!(fields
        .as_array()
        .expect("fields")
        .iter()
        .any(|f| f["key"] == "incident.cause"));

    let check = device.ok(&["check"]);
    assert!(check.contains("5 changes"), "{check}");

    device.ok(&["wipe", "--yes"]);
    assert!(!device.home().join("keys.age").exists());
    assert!(!device.home().join("vault.db").exists());
    let after = device.run(&["case", "list"]);
    assert_eq!(after.code, 1);
    assert!(after.stderr.contains("cairn init"), "{}", after.stderr);
}

#[test]
fn marker_strings_never_reach_the_disk() {
    let device = Device::init("T03");
    // A second connection held open keeps SQLite from checkpointing and deleting the WAL when
    // each command exits, so the WAL's frames are checked too.
    let keep_wal = rusqlite::Connection::open(device.home().join("vault.db")).expect("open");
    let _: i64 = keep_wal
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("attach to the WAL");
    let marker = "Zqxmarkerwv7731";
    let reference = device.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        &format!("incident.narrative=The {marker} narrative"),
        "--set",
        &format!("person.name={marker} Name"),
        "--note",
        &format!("note {marker}"),
    ]);
    device.ok(&[
        "case",
        "edit",
        &reference,
        "--note",
        &format!("second {marker}"),
    ]);
    let files = device.files();
    assert!(
        files
            .iter()
            .any(|(p, b)| p.ends_with("vault.db-wal") && !b.is_empty()),
        "the WAL should hold this session's frames"
    );
    assert!(files.keys().any(|p| p.ends_with("vault.db")));
    assert!(files.keys().any(|p| p.ends_with("keys.age")));
    for (path, bytes) in &files {
        for needle in [
            marker,
            "person.name",
            "narrative",
            "incident",
            "targeted_strike",
        ] {
            assert!(
                !contains_any_encoding(bytes, needle),
                "{needle} found in {}",
                path.display()
            );
        }
    }
    drop(keep_wal);
}
