//! `cairn check --deep` with real processes: a device that loaded its team's cases from the
//! office's checkpoint fetches every signed change of them from the server and verifies that
//! they make the documents the office sent. A change the checkpoint holds that the server no
//! longer has, or one whose bytes the server changed, is named with its case.

use cairn_e2e::{Device, Server};

fn killing(device: &Device, note: &str) -> String {
    device.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-03-02",
        "--set",
        "person.civilian=yes",
        "--note",
        note,
    ])
}

#[test]
fn a_late_joiner_verifies_its_checkpointed_cases_and_names_a_change_the_server_lost_or_changed() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let (a, b, t) = (
        Device::init("T01"),
        Device::init("T01"),
        Device::init("T02"),
    );
    server.join(&office, &a, "T01", &url);
    server.join(&office, &b, "T01", &url);
    server.join(&office, &t, "T02", &url);
    let mut references: Vec<String> = (0..3).map(|i| killing(&a, &format!("seen {i}"))).collect();
    references.push(killing(&b, "b's own"));
    killing(&t, "another team's");
    a.ok(&["case", "edit", &references[0], "--set", "person.sex=female"]);
    for d in [&a, &b, &t] {
        d.ok(&["sync"]);
    }
    office.ok(&["sync"]);
    // An office change of a T01 case, in the next checkpoint too.
    office.ok(&[
        "case",
        "verify",
        &references[1],
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
    office.ok(&["sync"]);

    let late = Device::init("T01");
    server.join(&office, &late, "T01", &url);
    let synced = late.ok(&["sync"]);
    assert!(
        synced.contains("4 cases loaded from the office's checkpoints"),
        "{synced}"
    );
    let t01_changes: i64 = server
        .dir()
        .db()
        .query_row("SELECT COUNT(*) FROM changes WHERE team = 'T01'", [], |r| {
            r.get(0)
        })
        .expect("count");
    let passed = late.ok(&["check", "--deep"]);
    assert!(
        passed.contains(&format!(
            "{t01_changes} signed changes of 4 cases loaded from office checkpoints"
        )),
        "{passed}"
    );
    let report = late.json(&["check", "--deep"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["deep"]["cases"].as_array().map(Vec::len), Some(4));

    // The server loses a's first change (the creation of its first case).
    server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{}' AND seq = 1;",
        a.keys().id()
    ));
    let lost = late.run(&["check", "--deep"]);
    assert_eq!(lost.code, 1, "{}", lost.stdout);
    let named = format!("change 1 of device {}", a.keys().id().short());
    assert!(
        lost.stderr.contains(&named) && lost.stderr.contains("not on the server"),
        "{}",
        lost.stderr
    );
    assert!(lost.stderr.contains(&references[0]), "{}", lost.stderr);
    assert!(
        lost.stderr.contains("failed for 1 case(s)"),
        "{}",
        lost.stderr
    );

    // The server changes the bytes of b's first change (the creation of b's case).
    let db = server.dir().db();
    let author = b.keys().id().0.to_vec();
    let mut bytes: Vec<u8> = db
        .query_row(
            "SELECT bytes FROM changes WHERE author = ?1 AND seq = 1",
            [&author],
            |r| r.get(0),
        )
        .expect("b's first change");
    if let Some(last) = bytes.last_mut() {
        *last ^= 1;
    }
    db.execute(
        "UPDATE changes SET bytes = ?1 WHERE author = ?2 AND seq = 1",
        rusqlite::params![bytes, author],
    )
    .expect("change b's bytes");
    let changed = late.run(&["check", "--deep"]);
    assert_eq!(changed.code, 1, "{}", changed.stdout);
    let named = format!(
        "change 1 of device {} does not verify",
        b.keys().id().short()
    );
    assert!(changed.stderr.contains(&named), "{}", changed.stderr);
    assert!(
        changed.stderr.contains(&references[3]) && changed.stderr.contains("failed for 2 case(s)"),
        "{}",
        changed.stderr
    );
    let report = late.run(&["check", "--deep", "--json"]);
    assert_eq!(report.code, 1, "{}", report.stderr);
    let value: serde_json::Value = serde_json::from_str(&report.stdout).expect("JSON");
    assert_eq!(value["ok"], false, "{value}");
}

#[test]
fn deep_without_a_server_says_so() {
    let lone = Device::init("T01");
    let run = lone.run(&["check", "--deep"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("has not joined") && run.stderr.contains("--deep"),
        "{}",
        run.stderr
    );
}
