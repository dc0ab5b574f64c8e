//! Friendlier output with the real binaries: roster names beside short ids and accepted for
//! ids, old and new values in a history, a case's own last change in the list, list filters,
//! no colour codes in piped logs, and a dead server failed in seconds.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_e2e::{bin, Device, Server, PASSPHRASE};

/// A field vault of `team` with a name people know it by.
fn named(team: &str, name: &str) -> Device {
    let device = Device::empty();
    device.ok(&["init", "--team", team, "--name", name, "--kdf-cost", "4"]);
    device
}

fn short_id(device: &Device) -> String {
    device.json(&["id"])["device"].as_str().unwrap()[..12].to_string()
}

#[test]
fn names_beside_ids_everywhere_and_names_accepted_for_ids() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let a = named("T03", "tablet 2");
    let b = named("T03", "tablet 3");
    // Another device its holder also called tablet 3 (in another letter case).
    let c = named("T03", "Tablet 3");
    for device in [&a, &b, &c] {
        server.join(&office, device, "T03", &url);
    }
    let (a_id, b_id, c_id) = (short_id(&a), short_id(&b), short_id(&c));
    let reference = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "person.sex=male",
        "--set",
        "incident.narrative=Found near the road.",
    ]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    // Both change one field at the same time.
    a.ok(&["case", "edit", &reference, "--set", "person.sex=female"]);
    b.ok(&["case", "edit", &reference, "--set", "person.sex=unknown"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);

    let a_label = format!("tablet 2 ({a_id})");
    let b_label = format!("tablet 3 ({b_id})");
    let conflicts = a.ok(&["case", "conflicts", &reference]);
    assert!(
        conflicts.contains(&format!("by {a_label} at")),
        "{conflicts}"
    );
    assert!(
        conflicts.contains(&format!("by {b_label} at")),
        "{conflicts}"
    );
    let values = &a.json(&["case", "conflicts", &reference])[0]["values"];
    let names: Vec<&str> = values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["author_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tablet 2", "tablet 3"], "{values}");

    // The history names each author and gives each field's old and new value.
    let history = office.ok(&["case", "history", &reference]);
    assert!(
        history.contains(&a_label) && history.contains(&b_label),
        "{history}"
    );
    assert!(
        history.contains(r#"person.sex: (none) -> "male""#),
        "{history}"
    );
    assert!(
        history.contains(r#"incident.narrative: (none) -> "Found near the road.""#),
        "{history}"
    );
    assert!(
        history.contains(r#"person.sex: "male" -> "female""#),
        "{history}"
    );
    assert!(
        history.contains(r#"person.sex: "male" -> "unknown""#),
        "{history}"
    );
    let steps = office.json(&["case", "history", &reference]);
    let last = steps.as_array().unwrap().last().unwrap();
    assert_eq!(
        last["changes"][0],
        serde_json::json!({"field": "person.sex", "old": "male", "new": last["changes"][0]["new"]})
    );
    assert!(last["author_name"].is_string(), "{last}");

    let shown = b.ok(&["case", "show", &reference]);
    assert!(shown.contains(&format!("created_by: {a_label}")), "{shown}");

    // The office's inbox says who changed each case last.
    let inbox = office.ok(&["office", "inbox"]);
    let newest = last["author_name"].as_str().unwrap();
    assert!(inbox.contains(&format!("{newest} (")), "{inbox}");

    // Its list shows the case's own last change, not the time its sync stored it.
    let listed = office.json(&["case", "list"]);
    let newest_time = last["time"].as_str().unwrap();
    assert_eq!(listed[0]["changed_at"], newest_time, "{listed}");
    assert_ne!(listed[0]["updated_at"], newest_time, "{listed}");
    let list = office.ok(&["case", "list"]);
    assert!(list.contains(newest_time), "{list}");
    assert!(
        !list.contains(listed[0]["updated_at"].as_str().unwrap()),
        "{list}"
    );
    let conflicted = office.json(&["case", "list", "--conflicts"]);
    assert_eq!(conflicted.as_array().unwrap().len(), 1, "{conflicted}");

    // Revoking by name: two devices answer to "tablet 3", and both are listed.
    let run = office.run(&["office", "revoke", "tablet 3"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&b_label), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("Tablet 3 ({c_id})")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    office.ok(&["office", "revoke", &c_id]);
    // The revoked one no longer counts: the name now means one device.
    let revoked = office.ok(&["office", "revoke", "TABLET 3"]);
    assert!(revoked.contains(&b_id), "{revoked}");
    let status = office.json(&["status"]);
    let revoked_ids: Vec<&str> = status["roster"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["revoked_after"].is_null())
        .map(|m| &m["device"].as_str().unwrap()[..12])
        .collect();
    assert_eq!(revoked_ids.len(), 2);
    assert!(revoked_ids.contains(&b_id.as_str()) && revoked_ids.contains(&c_id.as_str()));
    let run = office.run(&["office", "revoke", "tablet 9"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run
        .stderr
        .contains("no admitted device is named `tablet 9`"));
}

/// The references `case list` prints with `args`, sorted.
fn listed(device: &Device, args: &[&str]) -> Vec<String> {
    let mut all = vec!["case", "list"];
    all.extend_from_slice(args);
    let json = device.json(&all);
    let mut refs: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reference"].as_str().unwrap().to_string())
        .collect();
    refs.sort();
    // The table lists the same cases.
    let text = device.ok(&all);
    let rows = text.lines().filter(|l| l.contains("-T03-")).count();
    assert_eq!(rows, refs.len(), "{text}");
    refs
}

#[test]
fn case_list_filters_by_cause_incident_date_place_team_and_conflicts() {
    let device = Device::init("T03");
    let config = device.home().parent().unwrap().join("xdg-config/cairn");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[places]\nRFH = \"Rafah\"\n").unwrap();
    let new = |place: &str, sets: &[&str]| {
        let mut args = vec!["--kind", "killed", "--place", place];
        for set in sets {
            args.extend(["--set", set]);
        }
        device.new_case(&args)
    };
    let strike = new(
        "KHR",
        &["incident.cause=targeted_strike", "incident.date=2026-01-10"],
    );
    let captivity = new(
        "KHR",
        &[
            "incident.cause=captivity",
            "incident.date=2026-02-10/2026-02-12",
        ],
    );
    let rafah = new(
        "RFH",
        &["incident.cause=targeted_strike", "incident.date=2026-03-01"],
    );
    let undated = new("KHR", &[]);
    let sorted = |mut refs: Vec<&String>| {
        refs.sort();
        refs.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(listed(&device, &[]).len(), 4);
    assert_eq!(
        listed(&device, &["--cause", "targeted_strike"]),
        sorted(vec![&strike, &rafah])
    );
    assert_eq!(
        listed(&device, &["--from", "2026-02-01"]),
        sorted(vec![&captivity, &rafah])
    );
    assert_eq!(
        listed(&device, &["--from", "2026-02-10", "--to", "2026-02-28"]),
        sorted(vec![&captivity])
    );
    assert_eq!(
        listed(&device, &["--to", "2026-01-10"]),
        sorted(vec![&strike])
    );
    assert_eq!(listed(&device, &["--place", "Rafah"]), sorted(vec![&rafah]));
    assert_eq!(listed(&device, &["--place", "khr"]).len(), 3);
    assert!(listed(&device, &["--place", "KHR", "--from", "2020-01-01"])
        .iter()
        .all(|r| r != &undated && r != &rafah));
    assert_eq!(listed(&device, &["--team", "t03"]).len(), 4);
    assert!(listed(&device, &["--team", "T04"]).is_empty());
    assert!(listed(&device, &["--conflicts"]).is_empty());

    for (args, message) in [
        (&["--cause", "meteor"][..], "incident.cause"),
        (
            &["--from", "2026-13-01"][..],
            "--from `2026-13-01` is not a date",
        ),
        (&["--to", "yesterday"][..], "--to `yesterday` is not a date"),
        (&["--place", "Atlantis"][..], "cairn places"),
    ] {
        let mut all = vec!["case", "list"];
        all.extend_from_slice(args);
        let run = device.run(&all);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

#[test]
fn piped_logs_carry_no_colour_codes_and_no_color_is_honoured_on_a_terminal() {
    let device = Device::empty();
    let run = device.run(&["-v", "fields"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("INFO"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);

    // On a terminal (a pseudo-terminal from script(1)) colour is on, unless NO_COLOR is set.
    let on_terminal = |no_color: bool| -> Option<String> {
        let mut cmd = Command::new("script");
        cmd.args([
            "-qec",
            &format!("'{}' -v fields", bin("cairn").display()),
            "/dev/null",
        ])
        .env("CAIRN_HOME", device.home())
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(coloured) = on_terminal(false) else {
        eprintln!("skipped: script(1) is not installed to give cairn a terminal");
        return;
    };
    assert!(coloured.contains("INFO"), "{coloured:?}");
    assert!(
        coloured.contains('\u{1b}'),
        "colour on a terminal: {coloured:?}"
    );
    let plain = on_terminal(true).unwrap();
    assert!(plain.contains("INFO"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
}

#[test]
fn a_server_that_takes_the_connection_and_never_answers_fails_in_seconds() {
    // Accepts every connection and holds it open without a byte in answer.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64).flatten() {
            held.push(stream);
        }
        // Read nothing back; keep them until the test process ends.
        let mut sink = [0u8; 1];
        for mut s in held {
            let _ = s.read(&mut sink);
        }
    });
    let office = Device::office();
    let device = Device::init("T03");
    let line = device.json(&["id"])["line"].as_str().unwrap().to_string();
    let fingerprint = "ab".repeat(32);
    let admission = office
        .ok(&[
            "office",
            "admit",
            &line,
            "--team",
            "T03",
            "--server",
            &url,
            "--fingerprint",
            &fingerprint,
        ])
        .trim()
        .to_string();
    let expected = format!("the server at {url} did not answer within 1 s");
    let timed = |device: &Device, args: &[&str]| {
        let started = Instant::now();
        let out = device
            .command(args)
            .env("CAIRN_CONNECT_TIMEOUT", "1")
            .output()
            .unwrap();
        (cairn_e2e::Run::from(out), started.elapsed())
    };
    for (who, args) in [
        (&office, &["sync"][..]),
        (&device, &["join", &admission][..]),
    ] {
        let (run, took) = timed(who, args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains(&expected), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        // A guard only: without the timeout this took over a minute.
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
    }

    // A timeout must be a number of seconds, from the environment or the configuration.
    let run = office
        .command(&["sync"])
        .env("CAIRN_CONNECT_TIMEOUT", "soon")
        .output()
        .unwrap();
    let run = cairn_e2e::Run::from(run);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("CAIRN_CONNECT_TIMEOUT"),
        "{}",
        run.stderr
    );
    let config = office.home().parent().unwrap().join("xdg-config/cairn");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "read_timeout = 0\n").unwrap();
    let run = office.run(&["sync"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("whole number of seconds"),
        "{}",
        run.stderr
    );
}

/// Whether `text` holds a character a terminal would act on: a control character other
/// than a line break (ESC, C1's CSI...), or a bidirectional override.
fn acts_on_a_terminal(text: &str) -> Option<char> {
    text.chars().find(|c| {
        (c.is_control() && *c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

/// A teammate's case whose fields hold ANSI escapes (clear the screen, retitle the window,
/// an 8-bit CSI), a forged line and a right-to-left override reaches the office: every
/// command that shows it prints the characters escaped, never raw, and `--json` keeps the
/// exact values.
#[test]
fn control_characters_in_case_fields_never_reach_the_terminal() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let a = named("T03", "tablet 2");
    let b = named("T03", "tablet 3");
    for device in [&a, &b] {
        server.join(&office, device, "T03", &url);
    }
    let narrative = "\u{1b}]0;owned\u{7}\u{1b}[2J cleared\nstatus: confirmed";
    let name = "\u{9b}31mRed \u{202e}txet desrever";
    let reference = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        &format!("incident.narrative={narrative}"),
        "--set",
        &format!("person.name={name}"),
        "--note",
        "\u{1b}[31mred note\u{1b}[0m",
    ]);
    a.ok(&["case", "custody", &reference, "--to", "\u{1b}[1mmorgue"]);
    let photo = a.home().with_file_name("photo\u{1b}[5m.txt");
    std::fs::write(&photo, b"not a photo").unwrap();
    a.ok(&["case", "attach", &reference, &photo.to_string_lossy()]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    // Concurrent values of one field, each with escapes: `case conflicts` shows both.
    a.ok(&[
        "case",
        "edit",
        &reference,
        "--set",
        "incident.place=\u{1b}[8mhidden",
    ]);
    b.ok(&[
        "case",
        "edit",
        &reference,
        "--set",
        "incident.place=\u{9b}2Jgone",
    ]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    office.ok(&["sync"]);

    let commands: Vec<Vec<&str>> = vec![
        vec!["case", "show", &reference],
        vec!["case", "list"],
        vec!["case", "history", &reference],
        vec!["case", "conflicts", &reference],
        vec!["case", "attachments", &reference],
        vec!["office", "inbox"],
        vec![
            "report",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--include-alleged",
            "--by",
            "place",
        ],
        // An error that quotes what was typed.
        vec!["case", "show", "\u{1b}[2JKHR"],
    ];
    for args in &commands {
        let run = office.run(args);
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert_eq!(
                acts_on_a_terminal(text),
                None,
                "cairn {args:?} wrote a raw control character to {stream}: {text:?}"
            );
        }
    }
    let show = office.ok(&["case", "show", &reference]);
    assert!(
        show.contains("\\u{1b}[2J cleared\\nstatus: confirmed"),
        "{show}"
    );
    assert_eq!(
        show.lines().filter(|l| l.starts_with("status:")).count(),
        1,
        "a value forged a line: {show}"
    );
    assert!(show.contains("\\u{9b}31mRed \\u{202e}txet"), "{show}");

    // JSON keeps every value exactly, with nothing raw in the text.
    let raw = office.ok(&["case", "show", &reference, "--json"]);
    assert_eq!(acts_on_a_terminal(&raw), None, "{raw:?}");
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["incident"]["narrative"], narrative);
    assert_eq!(json["person"]["name"], name);
}
