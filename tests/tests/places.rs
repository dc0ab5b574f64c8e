//! Places from the office: the office's list reaches a field device with the roster (real
//! server on 127.0.0.1, real processes), sealed so the server cannot read it; `--place` takes a
//! code, name or alias; a removed place no longer resolves; a server that alters, drops or
//! replays a places statement is refused and reported; a field device cannot issue places; the
//! office corrects a case's place, and `case show`, `case list` and the report say so.

use cairn_e2e::{Device, Server};

fn places_of(device: &Device) -> Vec<(String, String, String)> {
    let list = device.json(&["places"]);
    list.as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (text("code"), text("name"), text("from"))
        })
        .collect()
}

fn roster_warnings(device: &Device) -> String {
    device.json(&["status"])["roster_warnings"].to_string()
}

/// The office with its list, a server, and a device of T03 that joined and synced.
fn world() -> (Device, Server, Device) {
    let office = Device::office();
    office.ok(&[
        "office",
        "places",
        "add",
        "khr",
        "--name",
        "Khan Younis",
        "--alias",
        "Khān Yūnis",
        "--alias",
        "خان يونس",
        "--lat",
        "31.34",
        "--lon",
        "34.30",
    ]);
    office.ok(&["office", "places", "add", "GZA", "--name", "Gaza City"]);
    let server = Server::start(&office);
    let a = Device::init("T03");
    server.join(&office, &a, "T03", &server.url());
    a.ok(&["sync"]);
    (office, server, a)
}

#[test]
fn a_device_that_only_synced_with_its_office_records_at_a_place_by_name() {
    let (office, server, a) = world();
    // Neither the device nor the office has a configuration: the names came with the roster.
    let reference = a.new_case(&["--kind", "killed", "--place", "Khan Younis"]);
    assert!(reference.starts_with("KHR-T03-"), "{reference}");
    for typed in ["khan yunis", "KHAN-YOUNIS", "Khān Yūnis", "خان يونس", "khr"] {
        let r = a.new_case(&["--kind", "missing", "--place", typed]);
        assert!(r.starts_with("KHR-"), "{typed}: {r}");
    }
    assert!(a
        .new_case(&["--kind", "injured", "--place", "gaza city"])
        .starts_with("GZA-"));
    // A code the office does not list is refused while it has a list: exit 2, a sentence.
    let run = a.run(&["case", "new", "--kind", "killed", "--place", "ZZZ"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("not a place in the office's list"),
        "{}",
        run.stderr
    );
    assert_eq!(
        places_of(&a),
        [
            ("GZA".into(), "Gaza City".into(), "office".into()),
            ("KHR".into(), "Khan Younis".into(), "office".into())
        ]
    );
    let listed = a.ok(&["places"]);
    assert!(listed.contains("Khan Younis (also Khān Yūnis"), "{listed}");
    // `case list` names the place where it shows one, and filters by name too.
    let list = a.ok(&["case", "list", "--place", "Gaza City"]);
    assert!(list.contains("GZA Gaza City"), "{list}");
    assert_eq!(list.lines().count(), 2, "{list}");

    // The server holds the list sealed: no name, code or alias in its database.
    let files = cairn_e2e::files_under(&server.dir().path());
    let bodies: Vec<String> = {
        let conn = server.dir().db();
        let mut stmt = conn.prepare("SELECT body FROM statements").expect("sql");
        let rows = stmt.query_map([], |r| r.get(0)).expect("rows");
        rows.map(|r| r.expect("row")).collect()
    };
    assert!(bodies.iter().any(|b| b.contains("\"type\":\"places\"")));
    // (Whole names: three letters may turn up in any base64 by chance.)
    for secret in ["Khan Younis", "Gaza City", "Khān Yūnis"] {
        assert!(!bodies.iter().any(|b| b.contains(secret)), "{secret}");
        for (path, bytes) in &files {
            assert!(
                !cairn_e2e::contains_any_encoding(bytes, secret),
                "{secret} in {}",
                path.display()
            );
        }
    }

    // A team whose first member comes after the list: the office seals it again for it.
    let b = Device::init("T04");
    server.join(&office, &b, "T04", &server.url());
    b.ok(&["sync"]);
    assert!(b
        .new_case(&["--kind", "killed", "--place", "Gaza City"])
        .starts_with("GZA-T04-"));

    // Removed at the office, then synced: the device no longer resolves it.
    let removed = office.ok(&["office", "places", "remove", "KHR"]);
    assert!(removed.contains("Removed KHR Khan Younis"), "{removed}");
    office.ok(&["sync"]);
    a.ok(&["sync"]);
    for typed in ["Khan Younis", "KHR"] {
        let run = a.run(&["case", "new", "--kind", "killed", "--place", typed]);
        assert_eq!(run.code, 2, "{typed}: {run:?}");
    }
    assert_eq!(places_of(&a).len(), 1);
    // Cases recorded there are still found by their code.
    let json = a.json(&["case", "list", "--place", "KHR"]);
    assert_eq!(json.as_array().map(Vec::len), Some(6), "{json}");

    // A field device issues no places.
    let run = a.run(&["office", "places", "add", "RAF", "--name", "Rafah"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("field vault"), "{}", run.stderr);
    // Bad input is refused before anything is asked or written.
    for bad in [
        &["office", "places", "add", "K H", "--name", "x"][..],
        &["office", "places", "add", "KHR", "--name", " "],
        &[
            "office", "places", "add", "KHR", "--name", "x", "--lat", "95", "--lon", "1",
        ],
        &["office", "places", "remove", "NOPE"],
    ] {
        let run = office.run(bad);
        assert_eq!(run.code, 2, "{bad:?}: {run:?}");
    }
    // Two places of one name would make it ambiguous: refused.
    let run = office.run(&["office", "places", "add", "GZB", "--name", "gaza city"]);
    assert_eq!(run.code, 2, "{run:?}");
}

/// The newest places statement of the server's database, and the one before it.
fn newest_statements(server: &Server) -> Vec<(i64, String)> {
    let conn = server.dir().db();
    let mut stmt = conn
        .prepare("SELECT counter, body FROM statements ORDER BY counter DESC LIMIT 2")
        .expect("sql");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows");
    rows.map(|r| r.expect("row")).collect()
}

#[test]
fn a_server_that_alters_drops_or_replays_a_places_statement_is_refused() {
    let (office, mut server, a) = world();
    office.ok(&["office", "places", "add", "RAF", "--name", "Rafah"]);
    office.ok(&["sync"]);
    a.ok(&["sync"]);
    assert!(a
        .new_case(&["--kind", "killed", "--place", "Rafah"])
        .starts_with("RAF-"));
    let newest = newest_statements(&server);
    let (counter, body) = newest[0].clone();
    assert!(body.contains("\"type\":\"places\""), "{body}");

    // Dropped: the server forgets the newest list (an older head). The device keeps its own.
    server.edit_db(&format!(
        "DELETE FROM statements WHERE counter = {counter};"
    ));
    server.restart();
    a.ok(&["sync"]);
    assert!(
        roster_warnings(&a).contains("older than statement"),
        "{}",
        roster_warnings(&a)
    );
    assert!(a
        .new_case(&["--kind", "killed", "--place", "Rafah"])
        .starts_with("RAF-"));

    // Altered: the list swapped for the one before it (still the office's bytes, under
    // another statement's signature). The signature no longer verifies: refused.
    let mut altered: cairn_protocol::Statement = serde_json::from_str(&body).expect("statement");
    let older: cairn_protocol::Statement = {
        let conn = server.dir().db();
        let body: String = conn
            .query_row(
                "SELECT body FROM statements WHERE body LIKE '%\"type\":\"places\"%' ORDER BY counter DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("an older list");
        serde_json::from_str(&body).expect("statement")
    };
    altered.act = older.act.clone();
    let put = |s: &cairn_protocol::Statement| {
        let json = serde_json::to_string(s).expect("json").replace('\'', "''");
        format!(
            "DELETE FROM statements WHERE counter = {c}; INSERT INTO statements (counter, body) VALUES ({c}, '{json}');",
            c = s.counter
        )
    };
    server.edit_db(&put(&altered));
    server.restart();
    a.ok(&["sync"]);
    let warned = roster_warnings(&a);
    assert!(warned.contains("were ignored"), "{warned}");
    assert!(a
        .new_case(&["--kind", "killed", "--place", "Rafah"])
        .starts_with("RAF-"));

    // Replayed: the older list served again at the newest number. Its number and link are
    // signed: refused the same way.
    let mut replayed = older.clone();
    replayed.counter = counter as u64;
    server.edit_db(&put(&replayed));
    server.restart();
    a.ok(&["sync"]);
    let warned = roster_warnings(&a);
    assert!(warned.contains("were ignored"), "{warned}");
    assert!(a
        .new_case(&["--kind", "killed", "--place", "Rafah"])
        .starts_with("RAF-"));
}

#[test]
fn the_office_corrects_a_place_and_every_table_shows_both() {
    let (office, _server, a) = world();
    let reference = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "Khan Younis",
        "--set",
        "incident.date=2026-11-02",
    ]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);
    // Only the office corrects a place.
    let run = a.run(&["case", "edit", &reference, "--set", "place=GZA"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("office"), "{}", run.stderr);
    // By name, as --place takes it; a place not in the list is refused.
    let run = office.run(&["case", "edit", &reference, "--set", "place=Atlantis"]);
    assert_eq!(run.code, 2, "{run:?}");
    office.ok(&["case", "edit", &reference, "--set", "place=Gaza City"]);
    let shown = office.ok(&["case", "show", &reference]);
    assert!(
        shown.contains(&format!(
            "reference: {reference}\nplace: GZA Gaza City, corrected by the office (recorded at KHR Khan Younis)\n"
        )),
        "{shown}"
    );
    let json = office.json(&["case", "show", &reference]);
    assert_eq!(json["place"], "GZA");
    assert!(json["reference"]
        .as_str()
        .unwrap_or_default()
        .starts_with("KHR-"));
    let list = office.ok(&["case", "list"]);
    assert!(list.contains("GZA Gaza City (recorded at KHR)"), "{list}");
    let listed = office.json(&["case", "list", "--place", "gaza city"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["recorded_place"], "KHR");
    // The report groups by the corrected place, named.
    let report = office.ok(&[
        "report",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--count",
        "alleged",
        "--by",
        "place",
    ]);
    assert!(report.contains("GZA Gaza City"), "{report}");
    assert!(!report.contains("KHR"), "{report}");
    let md = office.ok(&[
        "report",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--count",
        "alleged",
        "--by",
        "place",
        "--format",
        "markdown",
    ]);
    assert!(md.contains("| GZA Gaza City |"), "{md}");
    // The field device reads the correction too.
    office.ok(&["sync"]);
    a.ok(&["sync"]);
    let shown = a.ok(&["case", "show", &reference]);
    assert!(
        shown.contains("place: GZA Gaza City, corrected by the office"),
        "{shown}"
    );
}
