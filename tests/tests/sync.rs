//! Sync end to end: a real `cairn-server` over TLS on 127.0.0.1, an office and field devices,
//! each a real `cairn` home.

use cairn_e2e::{contains_any_encoding, Device, Server};
use cairn_testkit::Relay;

struct World {
    office: Device,
    server: Server,
}

impl World {
    fn new() -> World {
        World::with_config(&[])
    }

    /// A world whose server runs with these `server.toml` settings.
    fn with_config(settings: &[(&str, &str)]) -> World {
        let office = Device::office();
        let mut server = Server::start(&office);
        if !settings.is_empty() {
            server.dir().configure(settings);
            server.restart();
        }
        World { office, server }
    }

    fn device(&self, team: &str) -> Device {
        self.device_via(team, &self.server.url())
    }

    fn device_via(&self, team: &str, url: &str) -> Device {
        let device = Device::init(team);
        self.server.join(&self.office, &device, team, url);
        device
    }
}

fn sync_line(device: &Device) -> String {
    device.ok(&["sync"]).trim().to_string()
}

#[test]
fn concurrent_edits_converge_in_any_order_with_conflicts_shown() {
    let world = World::new();
    let a = world.device("T03");
    let b = world.device("T03");
    // Each learns the other from the roster at its first sync, and encrypts to it from then on.
    sync_line(&a);
    sync_line(&b);
    let reference = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.narrative=Found near the road.",
    ]);
    assert!(sync_line(&a).starts_with("sent 1, received 0"));
    let line = sync_line(&b);
    assert!(line.contains("received 1"), "{line}");

    // Offline, both edit the same case.
    a.ok(&[
        "case",
        "edit",
        &reference,
        "--set",
        "incident.cause=targeted_strike",
        "--set",
        "incident.narrative=Found near the old road.",
        "--note",
        "note from A",
    ]);
    b.ok(&[
        "case",
        "edit",
        &reference,
        "--set",
        "incident.cause=captivity",
        "--set",
        "incident.narrative=Found near the road. Hands were tied.",
        "--note",
        "note from B",
    ]);

    // Different orders: B first, then A, then B again; the office last.
    sync_line(&b);
    sync_line(&a);
    sync_line(&b);
    sync_line(&world.office);

    let shows: Vec<String> = [&a, &b, &world.office]
        .iter()
        .map(|d| d.ok(&["case", "show", &reference, "--json"]))
        .collect();
    assert_eq!(shows[0], shows[1], "A and B differ");
    assert_eq!(shows[0], shows[2], "devices and office differ");
    let case: serde_json::Value = serde_json::from_str(&shows[0]).expect("json");
    assert_eq!(
        case["incident"]["narrative"],
        "Found near the old road. Hands were tied."
    );
    let notes: Vec<&str> = case["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert!(
        notes.contains(&"note from A") && notes.contains(&"note from B"),
        "{notes:?}"
    );

    for device in [&a, &b, &world.office] {
        let conflicts = device.json(&["case", "conflicts", &reference]);
        let cause = conflicts
            .as_array()
            .expect("conflicts")
            .iter()
            .find(|c| c["field"] == "incident.cause")
            .expect("incident.cause conflict");
        let values: Vec<&str> = cause["values"]
            .as_array()
            .expect("values")
            .iter()
            .filter_map(|v| v["value"].as_str())
            .collect();
        assert!(values.contains(&"targeted_strike") && values.contains(&"captivity"));
    }

    // The office resolves it; everyone sees the resolution and its history.
    world.office.ok(&[
        "case",
        "edit",
        &reference,
        "--set",
        "incident.cause=captivity",
    ]);
    sync_line(&world.office);
    sync_line(&a);
    sync_line(&b);
    for device in [&a, &b, &world.office] {
        let conflicts = device.json(&["case", "conflicts", &reference]);
        assert_eq!(conflicts.as_array().map(Vec::len), Some(0));
    }
    let history = a.json(&["case", "history", &reference]);
    let last = history.as_array().and_then(|h| h.last()).expect("history");
    assert_eq!(last["fields"][0], "incident.cause");
    assert_eq!(
        a.ok(&["case", "show", &reference, "--json"]),
        world.office.ok(&["case", "show", &reference, "--json"])
    );

    // Nothing readable reached the server: database, WAL, logs.
    for (path, bytes) in cairn_e2e::files_under(world.server.dir().root()) {
        for marker in [
            "Hands were tied",
            "note from A",
            "targeted_strike",
            "incident",
        ] {
            assert!(
                !contains_any_encoding(&bytes, marker),
                "{marker} in {}",
                path.display()
            );
        }
    }
    assert!(!world.server.log().contains("Hands were tied"));
}

#[test]
fn a_faulty_link_reaches_the_same_state_with_nothing_twice() {
    let world = World::new();
    // (Never below 3 KB: the TLS handshake and the join must get through, within its retries.)
    let link = Relay::faulty(world.server.addr(), Some(3000..9000), 2);
    let a = world.device("T03");
    let b = world.device_via("T03", &link.url());
    sync_line(&a); // A learns B from the roster before recording.
    let mut references = Vec::new();
    for i in 0..12 {
        references.push(a.new_case(&[
            "--kind",
            "injured",
            "--place",
            "KHR",
            "--note",
            &format!("case {i} {}", "x".repeat(300)),
        ]));
    }
    for i in 0..6 {
        b.new_case(&[
            "--kind",
            "missing",
            "--place",
            "RFH",
            "--note",
            &format!("b {i}"),
        ]);
    }
    sync_line(&a);
    // Through the link that cuts every connection after a few kilobytes: repeat until done.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let run = b.run(&["sync"]);
        if run.code == 0 && run.stdout.contains("still pending 0") {
            let status = b.json(&["status"]);
            if status["pending"] == 0 && b.case_count() == 18 {
                break;
            }
        }
        assert!(
            attempts < 40,
            "sync never completed through the faulty link: {} {}",
            run.stdout,
            run.stderr
        );
    }
    sync_line(&a);
    sync_line(&world.office);
    assert_eq!(b.case_count(), 18);
    for r in &references {
        assert_eq!(
            a.ok(&["case", "show", r, "--json"]),
            b.ok(&["case", "show", r, "--json"])
        );
    }
    assert_eq!(a.case_count(), world.office.case_count());
    // Every device's vault passes its own check: no change stored twice or out of order.
    for d in [&a, &b, &world.office] {
        d.ok(&["check"]);
    }
}

#[test]
fn bad_admissions_and_links_say_what_went_wrong() {
    let world = World::new();
    let device = Device::init("T03");
    let admission = world
        .server
        .admit(&world.office, &device, "T03", &world.server.url());

    let malformed = device.run(&["join", "cairn-admission-v2.bm90IGFuIGludml0ZQ"]);
    assert_eq!(malformed.code, 1, "{}", malformed.stderr);
    assert!(
        malformed.stderr.contains("admission"),
        "{}",
        malformed.stderr
    );

    // For another device: its keys are not this device's.
    let second = Device::init("T03");
    let run = second.run(&["join", &admission]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("another device"), "{}", run.stderr);

    // Forged: signed by another office, which the server does not trust.
    let rogue = Device::office();
    let forged = cairn_e2e::admit(
        &rogue,
        &second,
        "T03",
        &world.server.url(),
        world.server.fingerprint(),
        &[],
    );
    let run = second.run(&["join", &forged]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.to_lowercase().contains("office"),
        "{}",
        run.stderr
    );

    // Wrong fingerprint: another server's certificate.
    let other = Server::start(&world.office);
    let pinned_elsewhere = cairn_e2e::admit(
        &world.office,
        &device,
        "T03",
        &world.server.url(),
        other.fingerprint(),
        &[],
    );
    let run = device.run(&["join", &pinned_elsewhere]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("fingerprint"), "{}", run.stderr);

    // Unreachable: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("https://{}", l.local_addr().expect("addr"))
    };
    let nowhere = world.server.admit(&world.office, &device, "T03", &closed);
    let run = device.run(&["join", &nowhere]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);

    // Expired.
    let expired = cairn_e2e::admit(
        &world.office,
        &device,
        "T03",
        &world.server.url(),
        world.server.fingerprint(),
        &["--expires", "1s"],
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let run = device.run(&["join", &expired]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);

    // The genuine one joins, and joining again changes nothing.
    device.ok(&["join", &admission]);
    device.ok(&["join", &admission]);
    assert!(sync_line(&device).starts_with("sent 0"));
}

#[test]
fn revoked_devices_are_refused_and_others_stop_trusting_them() {
    let world = World::new();
    let a = world.device("T03");
    let lost = world.device("T03");
    lost.new_case(&["--kind", "killed", "--place", "KHR"]);
    sync_line(&lost);
    sync_line(&world.office);
    let id = lost.json(&["status"])["device"]
        .as_str()
        .expect("device id")
        .to_string();
    world.office.ok(&["office", "revoke", &id[..16]]);

    lost.new_case(&["--kind", "killed", "--place", "KHR"]);
    let run = lost.run(&["sync"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);

    // A sees the first case (made before revocation) and the roster marks the device revoked.
    sync_line(&a);
    assert_eq!(a.case_count(), 1);
    let status = a.json(&["status"]);
    let revoked = status["roster"]
        .as_array()
        .expect("roster")
        .iter()
        .find(|m| m["device"] == id.as_str())
        .expect("lost device in roster");
    assert_eq!(revoked["revoked_after"], 1);
}

#[test]
fn the_server_restarted_mid_sync_loses_nothing() {
    let mut world = World::new();
    // A slow link stretches the sync so that the restart lands in the middle of it.
    let link = Relay::faulty(world.server.addr(), None, 100);
    let a = world.device_via("T03", &link.url());
    for i in 0..30 {
        a.new_case(&[
            "--kind",
            "remains",
            "--place",
            "KHR",
            "--note",
            &format!("{i} {}", "y".repeat(2000)),
        ]);
    }
    let child = a
        .command(&["-v", "sync"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sync");
    // Restart once the push is under way (it takes seconds through this link).
    let start = link.bytes();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while link.bytes() < start + 8_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sync never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    world.server.restart();
    let first = child.wait_with_output().expect("first sync");
    let log = String::from_utf8_lossy(&first.stderr);
    assert!(
        log.contains("retrying"),
        "the restart did not interrupt the sync: {log}"
    );
    let mut attempts = 0;
    while !sync_line(&a).contains("still pending 0") {
        attempts += 1;
        assert!(attempts < 10, "{first:?}");
    }
    sync_line(&world.office);
    assert_eq!(world.office.case_count(), 30);
    world.office.ok(&["check"]);
    a.ok(&["check"]);
}

#[test]
fn a_compromised_server_cannot_slip_in_forged_replayed_foreign_or_revoked_changes() {
    let world = World::new();
    let a = world.device("T03");
    let b = world.device("T03");
    let lost = world.device("T03");
    for d in [&a, &b, &lost] {
        sync_line(d);
    }
    let first = a.new_case(&["--kind", "killed", "--place", "KHR"]);
    sync_line(&a);
    sync_line(&b);
    sync_line(&world.office);
    let lost_id = lost.json(&["status"])["device"]
        .as_str()
        .expect("id")
        .to_string();
    world.office.ok(&["office", "revoke", &lost_id]);

    let t03 = a.team_key("T03");
    let a_keys = a.keys();
    // 1. A change claiming A as author, but not signed by A (its ciphertext altered).
    let mut forged = cairn_e2e::sealed_case(&a_keys, &t03, 2, "forged");
    forged.ciphertext[50] ^= 1;
    world.server.inject(&forged);
    // 2. A change from a device nobody enrolled.
    let stranger = cairn_crypto::DeviceKeys::generate();
    world
        .server
        .inject(&cairn_e2e::sealed_case(&stranger, &t03, 1, "stranger"));
    // 3. The revoked device's change made after its revocation (its key is on the lost device).
    world.server.inject(&cairn_e2e::sealed_case(
        &lost.keys(),
        &t03,
        2,
        "after revocation",
    ));
    // 4. A's first change served again.
    world.server.replay(&a_keys.id(), 1);

    let before = b.ok(&["case", "list", "--json"]);
    let line = sync_line(&b);
    // The server routes by the team a change names, so the stranger's change reaches B too.
    assert!(line.contains("refused 3"), "{line}");
    assert!(line.contains("does not verify"), "{line}");
    assert!(line.contains("not admitted"), "{line}");
    assert!(line.contains("revoked"), "{line}");
    assert!(
        line.contains("received 0"),
        "the replay must not count as new: {line}"
    );
    assert_eq!(
        before,
        b.ok(&["case", "list", "--json"]),
        "nothing of theirs applied"
    );
    assert_eq!(
        b.json(&["case", "show", &first])["notes"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    b.ok(&["check"]);

    let office_line = sync_line(&world.office);
    assert!(office_line.contains("refused 3"), "{office_line}");
    assert!(office_line.contains("not admitted"), "{office_line}");
    world.office.ok(&["check"]);
}

#[test]
fn paging_at_the_page_size_minus_one_exactly_and_plus_one() {
    for count in [4usize, 5, 6] {
        let world = World::with_config(&[("max_page", "5")]);
        let a = world.device("T03");
        for i in 0..count {
            a.new_case(&[
                "--kind",
                "missing",
                "--place",
                "KHR",
                "--note",
                &format!("{i}"),
            ]);
        }
        sync_line(&a);
        let line = sync_line(&world.office);
        assert!(
            line.contains(&format!("received {count}")),
            "{count}: {line}"
        );
        assert_eq!(world.office.case_count(), count);
        let again = sync_line(&world.office);
        assert!(again.contains("received 0"), "{again}");
    }
}

#[test]
fn a_change_over_the_size_limit_is_reported_and_kept() {
    let world = World::with_config(&[("max_request_bytes", "4096")]);
    let a = world.device("T03");
    a.new_case(&["--kind", "killed", "--place", "KHR"]);
    let big = "x".repeat(20_000);
    a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        &format!("incident.narrative={big}"),
    ]);
    let run = a.run(&["sync"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("too large") || run.stderr.contains("limit"),
        "{}",
        run.stderr
    );
    // No summary that reads as a success: the error says what was done.
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("1 sent, 1 still pending"),
        "{}",
        run.stderr
    );
    assert_eq!(a.json(&["status"])["pending"], 1);
}

#[test]
fn status_reports_pending_and_watch_keeps_syncing() {
    let world = World::new();
    let a = world.device("T03");
    let before = a.json(&["status"]);
    assert_eq!(before["pending"], 0);
    assert!(before["last_sync_at"].is_null());
    assert_eq!(before["server"], world.server.url().as_str());
    assert_eq!(before["team"], "T03");
    a.new_case(&["--kind", "killed", "--place", "KHR"]);
    a.new_case(&["--kind", "killed", "--place", "KHR"]);
    assert_eq!(a.json(&["status"])["pending"], 2);
    let human = a.ok(&["status"]);
    assert!(
        human.contains("2 change(s) not yet on the server"),
        "{human}"
    );

    let mut watch = a
        .command(&["sync", "--watch", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sync --watch");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut recorded = false;
    loop {
        let status = a.json(&["status"]);
        if status["pending"] == 0 && !status["last_sync_at"].is_null() {
            if recorded {
                break;
            }
            // A case recorded while --watch runs goes out on a later round.
            a.new_case(&["--kind", "injured", "--place", "KHR"]);
            recorded = true;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "--watch did not sync: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    sync_line(&world.office);
    assert_eq!(world.office.case_count(), 3);
    let roster = a.json(&["status"])["roster"].as_array().map(Vec::len);
    assert_eq!(roster, Some(2), "office and the device");
}

#[test]
fn cases_recorded_before_joining_reach_the_office() {
    let world = World::new();
    let device = Device::init("T03");
    let reference = device.new_case(&[
        "--kind",
        "missing",
        "--place",
        "KHR",
        "--note",
        "before joining",
    ]);
    world
        .server
        .join(&world.office, &device, "T03", &world.server.url());
    assert!(sync_line(&device).starts_with("sent 1"));
    let line = sync_line(&world.office);
    assert!(
        line.contains("received 1") && !line.contains("does not hold"),
        "{line}"
    );
    let case = world.office.json(&["case", "show", &reference]);
    assert_eq!(case["notes"][0]["text"], "before joining");
    device.ok(&["check"]);
}

#[test]
fn a_member_cannot_write_into_another_teams_case_and_blocks_nobody() {
    let world = World::new();
    let a = world.device("T03");
    let evil = world.device("T04");
    sync_line(&a);
    let reference = a.new_case(&["--kind", "killed", "--place", "KHR"]);
    sync_line(&a);
    let id: uuid::Uuid = a.json(&["case", "show", &reference])["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("case id");
    // A T04 device files a "creation" under T03's case id, claiming it for team T04.
    let forged =
        cairn_e2e::sealed_case_as(&evil.keys(), &evil.team_key("T04"), 1, "hijack", id, "T04");
    world.server.inject(&forged);
    // A later, honest change must still get through.
    a.ok(&["case", "edit", &reference, "--note", "after the attempt"]);
    sync_line(&a);

    let line = sync_line(&world.office);
    assert!(line.contains("refused 1"), "{line}");
    assert!(line.contains("received 2"), "{line}");
    let case = world.office.json(&["case", "show", &reference]);
    assert_eq!(case["reference"], reference.as_str());
    let notes: Vec<&str> = case["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert_eq!(notes, ["after the attempt"]);
    world.office.ok(&["check"]);
}

#[test]
fn the_demo_runs_the_whole_job() {
    // The demo starts the cairn-server that sits beside cairn.
    cairn_e2e::bin("cairn-server");
    let run: cairn_e2e::Run = std::process::Command::new(cairn_e2e::bin("cairn"))
        .arg("demo")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cairn demo")
        .into();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("identical on tablet-1, tablet-2 and the office: yes"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("incident.cause: \"targeted_strike\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("incident.cause: \"captivity\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("north stairwell. Wrists bound."),
        "{}",
        run.stdout
    );
}

/// `status` says in plain words what the office's receipt confirms, also when it confirms
/// none of this device's changes (it said "1..0").
#[test]
fn status_says_plainly_what_the_office_confirmed() {
    let world = World::new();
    let a = world.device("T03");
    sync_line(&a);
    let status = a.json(&["status"]);
    assert_eq!(status["office_confirmed"]["upto"], 0, "{status}");
    let text = a.ok(&["status"]);
    assert!(
        text.contains("has confirmed none of this device's changes yet"),
        "{text}"
    );
    assert!(!text.contains("1..0"), "{text}");

    a.new_case(&["--kind", "killed", "--place", "KHR"]);
    sync_line(&a);
    sync_line(&world.office);
    sync_line(&a);
    let text = a.ok(&["status"]);
    assert!(text.contains("confirmed holding changes 1..1"), "{text}");
    assert!(!text.contains("confirmed none"), "{text}");
}

/// The office's sync after `office admit` says it sent the admission (a roster statement),
/// not a bare "sent 0".
#[test]
fn the_offices_sync_says_it_sent_the_admission() {
    let world = World::new();
    let _a = world.device("T03");
    let b = Device::init("T03");
    let id = b.json(&["id"]);
    let line = id["line"].as_str().expect("an id line");
    let url = world.server.url();
    world.office.ok(&[
        "office",
        "admit",
        line,
        "--team",
        "T03",
        "--server",
        &url,
        "--fingerprint",
        world.server.fingerprint(),
    ]);
    let said = sync_line(&world.office);
    assert!(
        said.starts_with("sent 0 changes and 1 roster statement, received 0"),
        "{said}"
    );
    let again = sync_line(&world.office);
    assert!(again.starts_with("sent 0, received 0"), "{again}");
    assert!(!again.contains("roster"), "{again}");
}

#[test]
fn an_admission_read_from_its_qr_code_joins_the_device() {
    let world = World::new();
    let device = Device::init("T03");
    let png = device.home().with_file_name("admission.png");
    let admission = cairn_e2e::admit(
        &world.office,
        &device,
        "T03",
        &world.server.url(),
        world.server.fingerprint(),
        &["--qr", &png.to_string_lossy()],
    );
    // What a camera reads off the PNG is the line, byte for byte.
    let read = cairn_e2e::read_qr(&png);
    assert_eq!(read, admission);
    device.ok(&["join", &read]);
    device.new_case(&["--kind", "killed", "--place", "KHR"]);
    assert!(sync_line(&device).starts_with("sent 1"));
    // A path that cannot be written fails the command after the line was printed, so the
    // admission is not lost.
    let other = Device::init("T03");
    let run = world.office.run(&[
        "office",
        "admit",
        other.json(&["id"])["line"].as_str().expect("a line"),
        "--team",
        "T03",
        "--server",
        &world.server.url(),
        "--fingerprint",
        world.server.fingerprint(),
        "--qr",
        "/nonexistent/dir/admission.png",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.starts_with("cairn-admission"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("cannot write /nonexistent/dir/admission.png"),
        "{}",
        run.stderr
    );
}

/// A note on the wrong case is withdrawn by its writer or the office, and every replica then
/// shows it withdrawn without its text; a teammate cannot withdraw another's note, not even
/// with a hand-made change its own client would refuse to write.
#[test]
fn a_note_is_withdrawn_by_its_writer_or_the_office_and_no_one_else() {
    let world = World::new();
    let a = world.device("T03");
    let b = world.device("T03");
    let reference = a.new_case(&["--kind", "killed", "--place", "KHR"]);
    a.ok(&[
        "case",
        "edit",
        &reference,
        "--note",
        "Qsecret about another family",
    ]);
    a.ok(&["case", "edit", &reference, "--note", "Second note by A"]);
    for d in [&a, &b, &world.office] {
        d.ok(&["sync"]);
    }
    // B's own client refuses.
    let run = b.run(&[
        "case",
        "withdraw-note",
        &reference,
        "1",
        "--reason",
        "not mine",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("only its writer or the office"),
        "{}",
        run.stderr
    );
    // B forges the withdrawal by hand: it travels, and changes nothing anywhere.
    let id = b.case_id(&reference);
    let base = b.raw_doc(id);
    let target = a.json(&["case", "show", &reference]);
    assert!(target["notes"][0].get("withdrawn").is_none());
    let note_id = {
        let vault = a.vault();
        let doc = vault.case(&reference).expect("case");
        doc.note_ids().expect("ids")[0].clone()
    };
    let notes = automerge::ReadDoc::get(&base, automerge::ROOT, "notes")
        .expect("get")
        .expect("notes")
        .1;
    let change = cairn_e2e::forge(&base, |tx| {
        use automerge::transaction::Transactable;
        let end = automerge::ReadDoc::length(tx, &notes);
        let entry = tx
            .insert_object(&notes, end, automerge::ObjType::Map)
            .expect("insert");
        for (k, v) in [
            ("at", "2026-12-07T09:00:00Z"),
            ("author", "b"),
            ("text", "forged withdrawal"),
            ("withdraws", note_id.as_str()),
        ] {
            tx.put(&entry, k, v).expect("put");
        }
    });
    b.smuggle(id, &change, "T03");
    for d in [&b, &a, &world.office] {
        d.ok(&["sync"]);
    }
    // (B's own vault keeps its forgery in its log only, as a forging client would, so B's
    // replica is left out from here on.)
    for d in [&a, &world.office] {
        let case = d.json(&["case", "show", &reference]);
        assert_eq!(case["notes"][0]["text"], "Qsecret about another family");
        assert!(case["notes"][0].get("withdrawn").is_none(), "{case}");
        assert_eq!(
            case["notes"][2]["ignored"], "only the note's writer or the office withdraws a note",
            "{case}"
        );
    }
    // The office withdraws it: every replica shows it withdrawn, without its text.
    world.office.ok(&[
        "case",
        "withdraw-note",
        &reference,
        "1",
        "--reason",
        "wrong case",
    ]);
    // A withdraws its own second note.
    a.ok(&[
        "case",
        "withdraw-note",
        &reference,
        "2",
        "--reason",
        "duplicate",
    ]);
    for d in [&world.office, &a, &b, &world.office, &a] {
        d.ok(&["sync"]);
    }
    let shown: Vec<String> = [&a, &world.office]
        .iter()
        .map(|d| d.ok(&["case", "show", &reference, "--json"]))
        .collect();
    assert!(shown.iter().all(|s| s == &shown[0]), "replicas differ");
    let case: serde_json::Value = serde_json::from_str(&shown[0]).expect("json");
    assert_eq!(case["notes"][0]["withdrawn"]["reason"], "wrong case");
    assert_eq!(case["notes"][1]["withdrawn"]["reason"], "duplicate");
    assert!(!shown[0].contains("Qsecret"), "{}", shown[0]);
    let text = a.ok(&["case", "show", &reference]);
    assert!(text.contains("WITHDRAWN by"), "{text}");
    assert!(!text.contains("Qsecret"), "{text}");
}
