//! Issue #23 part 3: the office is rebuilt from its server with its keys alone, with real
//! processes. A new office vault holding only the office's keys (what `cairn office key
//! recover` makes from 3 of its 5 shares) gets back, from a server that cannot
//! read any of it: the roster, every team key, the places, every case with its verifications,
//! reviews, links, notes and attachments, the published editions, and its own change and
//! receipt numbering. Field devices sync on before, during and after. A server that serves a
//! chain this office did not sign, or a cut one, is refused and nothing is stored.

use cairn_e2e::{Device, Server, PASSPHRASE};
use cairn_protocol::{Act, Statement, OFFICE_TEAM};
use serde_json::Value;

const FROM: &str = "2026-01-01";
const TO: &str = "2026-06-30";

/// The office's key split 3 of 5 while it is held, then its home lost; a new office vault is
/// rebuilt from three of the shares with `cairn office key recover` (two are refused). Like
/// any new office vault, it holds a key of its own team that nobody else holds.
fn lose_and_recover(office: &Device) {
    let shares = tempfile::tempdir().expect("temp dir");
    let out = shares.path().join("shares");
    let out = out.to_str().expect("a UTF-8 path");
    office.ok(&[
        "office",
        "key",
        "split",
        "--shares",
        "5",
        "--threshold",
        "3",
        "--out",
        out,
    ]);
    let mut files: Vec<String> = std::fs::read_dir(out)
        .expect("the shares")
        .map(|e| e.expect("a share").path().display().to_string())
        .filter(|p| p.ends_with(".txt"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    std::fs::remove_dir_all(office.home()).expect("the office's home is lost");
    let recover = |picked: &[&String]| {
        let mut args = vec!["office", "key", "recover"];
        args.extend(picked.iter().map(|p| p.as_str()));
        args.extend(["--kdf-cost", "4"]);
        office.run(&args)
    };
    let two = recover(&[&files[0], &files[3]]);
    assert_eq!(two.code, 1, "{}", two.stderr);
    assert!(
        two.stderr.contains("2 shares given; this split needs 3"),
        "{}",
        two.stderr
    );
    assert!(!office.home().join("vault.db").exists());
    let three = recover(&[&files[4], &files[1], &files[2]]);
    assert_eq!(three.code, 0, "{}", three.stderr);
}

/// A new office vault at `device`'s home holding `keys`.
fn recover_into(device: &Device, keys: cairn_crypto::DeviceKeys) {
    let mut ring = cairn_crypto::Keyring::default();
    ring.insert(cairn_crypto::TeamKey::generate(OFFICE_TEAM, 1));
    let new = cairn_vault::NewVault {
        team: OFFICE_TEAM.into(),
        name: None,
        role: cairn_vault::Role::Office,
    };
    cairn_vault::Home::new(device.home())
        .create_replica(
            &cairn_crypto::SecretString::from(PASSPHRASE.to_owned()),
            cairn_crypto::KeyFileCost::LogN(4),
            new,
            time::OffsetDateTime::now_utc(),
            keys,
            ring,
        )
        .expect("a new office vault");
}

fn restore(office: &Device, server: &Server) -> cairn_e2e::Run {
    office.run(&[
        "office",
        "restore",
        "--server",
        &server.url(),
        "--fingerprint",
        server.fingerprint(),
        "--json",
    ])
}

/// `report --json` without when it was made and when its data was taken.
fn figures(d: &Device) -> Value {
    let mut r = d.json(&["report", "--from", FROM, "--to", TO]);
    let object = r.as_object_mut().expect("a report");
    object.remove("made_at");
    object.remove("data_as_of");
    r
}

fn killed(d: &Device, date: &str) -> String {
    d.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        &format!("incident.date={date}"),
        "--set",
        "incident.cause=targeted_strike",
        "--set",
        "person.civilian=yes",
    ])
}

fn attach(d: &Device, reference: &str, dir: &std::path::Path, name: &str, size: usize) -> Vec<u8> {
    let bytes: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write");
    d.ok(&["case", "attach", reference, path.to_str().expect("utf-8")]);
    bytes
}

/// Every attachment of `reference` at `d`, fetched back: its bytes, by name.
fn attachments(d: &Device, reference: &str, dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let listed = d.json(&["case", "attachments", reference]);
    let mut out = Vec::new();
    for a in listed.as_array().expect("a list") {
        let entry = &a["attachment"];
        let sha = entry["sha256"].as_str().expect("sha");
        let file = dir.join(format!("back-{sha}"));
        d.ok(&[
            "case",
            "attachment",
            "get",
            reference,
            sha,
            "--out",
            file.to_str().expect("utf-8"),
        ]);
        let name = entry["name"].as_str().expect("name").to_owned();
        out.push((name, std::fs::read(&file).expect("read back")));
        std::fs::remove_file(&file).expect("remove");
    }
    out.sort();
    out
}

#[test]
fn the_office_restored_from_its_server_equals_the_lost_one_and_carries_on() {
    let work = tempfile::tempdir().expect("temp dir");
    let office = Device::office();
    let server = Server::start(&office);
    office.ok(&["office", "places", "add", "KHR", "--name", "Khan Younis"]);
    let (a, a2, b) = (
        Device::init("T03"),
        Device::init("T03"),
        Device::init("T04"),
    );
    for (d, team) in [(&a, "T03"), (&a2, "T03"), (&b, "T04")] {
        server.join(&office, d, team, &server.url());
    }

    // Field work: cases, an edit with a note, an attachment.
    let first = killed(&a, "2026-03-02");
    let second = killed(&a2, "2026-03-04");
    let third = killed(&b, "2026-03-02");
    a.ok(&[
        "case",
        "edit",
        &first,
        "--set",
        "person.sex=male",
        "--note",
        "seen by two",
    ]);
    let field_photo = attach(&a, &first, work.path(), "scene.jpg", 40_000);
    for d in [&a, &a2, &b] {
        d.ok(&["sync"]);
    }
    office.ok(&["sync"]);

    // The office's work: a confirmation (counting its values), a review, a link, a note, a
    // case and an attachment of its own, a published edition.
    office.ok(&[
        "case",
        "verify",
        &first,
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
    office.ok(&["office", "review", &third, "--state", "approved"]);
    office.ok(&[
        "case",
        "link",
        &first,
        &third,
        "--as",
        "same_person",
        "--basis",
        "same name and day",
    ]);
    office.ok(&["case", "edit", &second, "--note", "asked the family"]);
    let own = killed(&office, "2026-04-01");
    let office_photo = attach(&office, &first, work.path(), "certificate.pdf", 20_000);
    office.ok(&[
        "report", "publish", "--from", FROM, "--to", TO, "--title", "Interim",
    ]);
    office.ok(&["sync"]);
    for d in [&a, &a2, &b] {
        d.ok(&["sync"]);
    }

    let cases = [&first, &second, &third, &own];
    let shown = |d: &Device| -> Vec<String> {
        cases
            .iter()
            .map(|r| d.ok(&["case", "show", r, "--json"]))
            .collect()
    };
    let before_cases = shown(&office);
    let before_report = figures(&office);
    let before_editions = office.ok(&["report", "editions", "--json"]);
    let before_places = office.ok(&["places", "--json"]);
    let office_seq = office.vault().own_log_len().expect("own log");
    let own_reference: cairn_model::Reference = own.parse().expect("a reference");
    assert!(office_seq >= 6, "{office_seq}");

    // The office's laptop is lost; the field keeps working and syncing meanwhile (a case
    // outside the report's period, so the figures stay comparable).
    lose_and_recover(&office);
    let between = killed(&a, "2026-09-01");
    a.ok(&[
        "case",
        "edit",
        &between,
        "--note",
        "found while the office was down",
    ]);
    a.ok(&["sync"]);

    // Cut off (killed) once the first page of changes is in: run again, it goes on.
    let killed_run: cairn_e2e::Run = office
        .command(&[
            "office",
            "restore",
            "--server",
            &server.url(),
            "--fingerprint",
            server.fingerprint(),
        ])
        .env("CAIRN_FAILPOINT", "pull:page")
        .output()
        .expect("run")
        .into();
    assert_ne!(killed_run.code, 0, "{}", killed_run.stderr);
    assert!(office.vault().is_restoring().expect("state"));
    // Nothing is recorded meanwhile: its number could be one the server holds.
    let early = office.run(&["case", "edit", &first, "--note", "too early"]);
    assert_eq!(early.code, 1, "{}", early.stderr);
    assert!(
        early
            .stderr
            .contains("restore from its server has not finished"),
        "{}",
        early.stderr
    );
    let run = restore(&office, &server);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!office.vault().is_restoring().expect("state"));
    // Its cases came whole in the checkpoints the lost office published, then the changes
    // after them.
    let loaded = office.vault().checkpoints_loaded().expect("loaded");
    assert!(loaded.contains_key("T03"), "{loaded:?}");
    let restored: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(restored["own_changes"], office_seq, "{restored}");
    assert_eq!(restored["next_reference"], own_reference.number + 1);
    assert_eq!(restored["summary"]["refused"], serde_json::json!([]));
    assert_eq!(restored["summary"]["unreadable"], 0, "{restored}");
    assert_eq!(restored["summary"]["blob_failures"], serde_json::json!([]));
    assert_eq!(restored["summary"]["blobs_fetched"], 2, "{restored}");

    // It equals the lost office: every case byte for byte, the report, the editions, the
    // places, every attachment readable.
    assert_eq!(shown(&office), before_cases);
    assert_eq!(figures(&office), before_report);
    assert_eq!(
        office.ok(&["report", "editions", "--json"]),
        before_editions
    );
    assert_eq!(office.ok(&["places", "--json"]), before_places);
    let mut expected = vec![
        ("certificate.pdf".to_owned(), office_photo),
        ("scene.jpg".to_owned(), field_photo),
    ];
    expected.sort();
    assert_eq!(attachments(&office, &first, work.path()), expected);
    // What the field did meanwhile is there too.
    let shown_between = office.ok(&["case", "show", &between]);
    assert!(shown_between.contains("found while the office was down"));
    // A second restore is refused: the vault is in use now.
    let again = restore(&office, &server);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("only into a new office vault"),
        "{}",
        again.stderr
    );

    // The restored office works on: an edit, a verification, a new case, numbered after the
    // lost office's; the server stores each (none refused as a replay or a duplicate), its
    // receipt is taken, and the field receives them.
    office.ok(&["case", "edit", &first, "--note", "after the restore"]);
    office.ok(&[
        "case",
        "verify",
        &third,
        "--status",
        "confirmed",
        "--basis",
        "two witnesses",
    ]);
    let newer = killed(&office, "2026-05-01");
    let newer_ref: cairn_model::Reference = newer.parse().expect("a reference");
    assert_eq!(newer_ref.number, own_reference.number + 1);
    let summary = office.json(&["sync"]);
    assert_eq!(summary["sent"], 3, "{summary}");
    assert_eq!(summary["rejected"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["pending"], 0, "{summary}");
    assert_eq!(
        office.vault().own_log_len().expect("own log"),
        office_seq + 3
    );
    for d in [&a, &b] {
        let s = d.json(&["sync"]);
        assert_eq!(s["refused"], serde_json::json!([]), "{s}");
        assert!(
            d.json(&["status"])["delivery_warnings"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "{}",
            d.ok(&["status"])
        );
    }
    assert!(a
        .ok(&["case", "show", &first])
        .contains("after the restore"));
    assert_eq!(
        b.json(&["case", "show", &third])["status"],
        "confirmed",
        "the restored office's verification reached the field"
    );
    // The office's receipt, numbered after the lost office's, confirms the field's work.
    let status = a.json(&["status"]);
    let a_log = a.vault().own_log_len().expect("own log");
    assert_eq!(status["office_confirmed"]["upto"], a_log, "{status}");

    // It admits a new device, which joins and syncs, and revokes one.
    let d = Device::init("T03");
    server.join(&office, &d, "T03", &server.url());
    d.ok(&["sync"]);
    assert!(d
        .ok(&["case", "show", &first])
        .contains("after the restore"));
    let a2_id = a2.json(&["id"])["device"].as_str().expect("id").to_owned();
    office.ok(&["office", "revoke", &a2_id[..16]]);
    let refused = a2.run(&["sync"]);
    assert_ne!(refused.code, 0, "a revoked device syncs no more");
    // The field goes on, and nothing is lost.
    let later = killed(&a, "2026-05-02");
    a.ok(&["sync"]);
    d.ok(&["case", "edit", &first, "--note", "from the new device"]);
    d.ok(&["sync"]);
    let s = office.json(&["sync"]);
    assert_eq!(s["refused"], serde_json::json!([]), "{s}");
    assert!(office.ok(&["case", "show", &later]).contains("KHR"));
    assert!(office
        .ok(&["case", "show", &first])
        .contains("from the new device"));
    assert!(office.json(&["status"])["delivery_warnings"]
        .as_array()
        .is_none_or(Vec::is_empty));
}

/// An office made before the office's own team key went into the roster gets it there at its
/// next sync: the server then holds a grant of it to the office.
#[test]
fn the_office_puts_its_own_team_key_in_the_roster_at_its_next_sync() {
    let office = Device::office();
    let server = Server::start(&office);
    let a = Device::init("T03");
    let id = a.json(&["id"])["line"].as_str().expect("a line").to_owned();
    let admission = office.ok(&[
        "office",
        "admit",
        &id,
        "--team",
        "T03",
        "--server",
        &server.url(),
        "--fingerprint",
        server.fingerprint(),
    ]);
    let grants_own = |statements: &[Statement]| {
        statements.iter().any(|s| {
            matches!(&s.act, Act::Grant(g) if g.team == OFFICE_TEAM
                && g.grants.iter().any(|to| to.device == office.keys().id()))
        })
    };
    // Before its sync the chain (as an older office's) holds none.
    assert!(!grants_own(
        &office.vault().roster_chain().expect("state").statements
    ));
    office.ok(&["sync"]);
    let held = office.vault().roster_chain().expect("state").statements;
    assert!(grants_own(&held));
    let stored: Vec<Statement> = stored_chain(&server)
        .iter()
        .map(|(_, body)| serde_json::from_str(body).expect("a statement"))
        .collect();
    assert!(grants_own(&stored), "the server holds it");
    let roster = cairn_protocol::Roster::build(
        &cairn_protocol::OfficeKeys::from_keys(&office.keys()),
        &stored,
    );
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    assert!(roster.keyring(&office.keys()).get(OFFICE_TEAM, 1).is_some());
    // Once only.
    office.ok(&["sync"]);
    assert_eq!(
        office.vault().roster_chain().expect("state").statements,
        held
    );
    // The device joins and syncs as before.
    a.ok(&["join", admission.trim()]);
    a.ok(&["sync"]);
}

fn stored_chain(server: &Server) -> Vec<(i64, String)> {
    let conn = server.dir().db();
    let mut stmt = conn
        .prepare("SELECT counter, body FROM statements ORDER BY counter")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn put_chain(server: &mut Server, rows: &[(i64, String)]) {
    server.edit_db("PRAGMA foreign_keys = OFF; DELETE FROM statements;");
    let conn = server.dir().db();
    for (counter, body) in rows {
        conn.execute(
            "INSERT INTO statements (counter, body) VALUES (?1, ?2)",
            rusqlite::params![counter, body],
        )
        .expect("insert");
    }
    drop(conn);
    server.restart();
}

/// A server that serves a chain another key signed, one with a statement cut out, or one
/// cut short before the office's own team key: refused, with a sentence saying so, and the
/// new vault is left as it was.
#[test]
fn a_chain_not_signed_by_this_office_or_cut_is_refused_and_nothing_is_stored() {
    let office = Device::office();
    let mut server = Server::start(&office);
    office.ok(&["office", "places", "add", "KHR", "--name", "Khan Younis"]);
    for team in ["T03", "T04"] {
        let d = Device::init(team);
        server.join(&office, &d, team, &server.url());
    }
    office.ok(&["sync"]);
    let chain = stored_chain(&server);
    assert!(chain.len() >= 4, "{chain:?}");
    let grant_at = chain
        .iter()
        .position(|(_, body)| body.contains("\"type\":\"grant\""))
        .expect("the office's own key in the chain");

    let other = cairn_crypto::DeviceKeys::generate();
    let mut prev = [0u8; 32];
    let forged: Vec<(i64, String)> = chain
        .iter()
        .map(|(counter, body)| {
            let s: Statement = serde_json::from_str(body).expect("a statement");
            let f = Statement::issue(&other, s.counter, prev, s.at, s.act).expect("issue");
            prev = f.hash();
            (*counter, serde_json::to_string(&f).expect("json"))
        })
        .collect();
    let mut gap = chain.clone();
    gap.remove(1);
    let short = chain[..grant_at].to_vec();

    let restoring = Device::empty();
    recover_into(&restoring, office.keys());
    let ring_before = restoring.keyring();
    for (rows, said) in [
        (forged, "is not signed by this office"),
        (gap, "breaks off after statement 1"),
        (short, "grants this device no key of the office's own team"),
    ] {
        put_chain(&mut server, &rows);
        let run = restore(&restoring, &server);
        assert_eq!(run.code, 1, "{said}: {}", run.stderr);
        assert!(run.stderr.contains(said), "{said}: {}", run.stderr);
        assert!(run.stderr.contains("nothing was stored"), "{}", run.stderr);
        let vault = restoring.vault();
        let state = vault.sync_state().expect("state");
        assert!(
            state.roster.statements.is_empty()
                && state.endpoint.server.is_none()
                && !state.restoring
        );
        let ring = vault.keyring();
        assert_eq!(ring.len(), ring_before.len());
        assert_eq!(
            ring.get(OFFICE_TEAM, 1).map(|k| *k.bytes()),
            ring_before.get(OFFICE_TEAM, 1).map(|k| *k.bytes())
        );
        assert_eq!(vault.case_count().expect("count"), 0);
    }
    // The genuine chain back: the restore goes through.
    put_chain(&mut server, &chain);
    let run = restore(&restoring, &server);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The office and a staff device both lose their laptops; each kept a copy of its key file.
/// Field devices keep recording and syncing meanwhile. Each is rebuilt around its key file
/// (`init --key-file`) and restored from the server (the staff device with the office's
/// public keys, its trust root): nothing is lost (every case, the field's work during the loss
/// included, reads the same on every device), and the staff device's next change is numbered
/// after its own that came back: the server stores it, nobody refuses it.
#[test]
fn the_office_and_a_staff_device_restored_while_the_field_syncs_lose_nothing() {
    let kept = tempfile::tempdir().expect("temp dir");
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    office.ok(&["office", "places", "add", "KHR", "--name", "Khan Younis"]);
    let (a, b) = (Device::init("T03"), Device::init("T04"));
    server.join(&office, &a, "T03", &url);
    server.join(&office, &b, "T04", &url);
    let staff = Device::staff("Analyst Rana");
    server.join(&office, &staff, "office", &url);
    let (first, second) = (killed(&a, "2026-03-02"), killed(&b, "2026-03-03"));
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    office.ok(&["sync"]);
    staff.ok(&["sync"]);
    for reference in [&first, &second] {
        staff.ok(&[
            "case",
            "verify",
            reference,
            "--status",
            "confirmed",
            "--basis",
            "two witnesses",
        ]);
    }
    staff.ok(&["sync"]);
    office.ok(&[
        "case",
        "edit",
        &second,
        "--note",
        "checked against the hospital list",
    ]);
    office.ok(&["sync"]);
    let staff_seq = staff.vault().own_log_len().expect("own log");
    assert!(staff_seq >= 2, "{staff_seq}");

    // Both keep a copy of their key file (and the staff, the office's public keys); then
    // both laptops are lost.
    let office_pub = kept.path().join("office.pub");
    office.ok(&[
        "office",
        "pubkey",
        "--out",
        office_pub.to_str().expect("UTF-8"),
    ]);
    let keep = |d: &Device, name: &str| {
        let to = kept.path().join(name);
        std::fs::copy(cairn_vault::Home::new(d.home()).key_file(), &to).expect("a copy");
        std::fs::remove_dir_all(d.home()).expect("the laptop is lost");
        to.display().to_string()
    };
    let (office_keys, staff_keys) = (keep(&office, "office.age"), keep(&staff, "staff.age"));

    // The field goes on meanwhile.
    let during = killed(&a, "2026-03-04");
    a.ok(&["sync"]);
    b.ok(&["case", "edit", &second, "--set", "person.age_group=adult"]);
    b.ok(&["sync"]);

    // The staff device needs the office's keys to restore: refused without, nothing stored.
    staff.ok(&[
        "init",
        "--staff",
        "--key-file",
        &staff_keys,
        "--kdf-cost",
        "4",
    ]);
    let run = staff.run(&[
        "office",
        "restore",
        "--server",
        &url,
        "--fingerprint",
        server.fingerprint(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--office-key"), "{}", run.stderr);
    office.ok(&[
        "init",
        "--office",
        "--key-file",
        &office_keys,
        "--kdf-cost",
        "4",
    ]);
    let run = restore(&office, &server);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A staff vault the office admitted as a field device restores nothing.
    let stranger = Device::staff("Not admitted");
    server.admit(&office, &stranger, "T03", &url);
    let run = stranger.run(&[
        "office",
        "restore",
        "--server",
        &url,
        "--fingerprint",
        server.fingerprint(),
        "--office-key",
        office_pub.to_str().expect("UTF-8"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("admits no staff device")
            && run.stderr.contains("`cairn office admit --staff`"),
        "{}",
        run.stderr
    );
    assert_eq!(stranger.case_count(), 0);
    let run = staff.run(&[
        "office",
        "restore",
        "--server",
        &url,
        "--fingerprint",
        server.fingerprint(),
        "--office-key",
        office_pub.to_str().expect("UTF-8"),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let restored: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(restored["own_changes"], staff_seq, "{restored}");
    assert_eq!(staff.vault().own_log_len().expect("own log"), staff_seq);

    // The restored staff device carries on: its next change is numbered after the ones that
    // came back, and the server stores it.
    let third = killed(&b, "2026-03-05");
    b.ok(&["sync"]);
    staff.ok(&["sync"]);
    staff.ok(&[
        "case",
        "verify",
        &third,
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
    let synced = staff.json(&["sync"]);
    assert_eq!(
        synced["rejected"].as_array().map(Vec::len),
        Some(0),
        "{synced}"
    );
    assert_eq!(staff.vault().own_log_len().expect("own log"), staff_seq + 1);
    assert_eq!(synced["pending"], 0, "{synced}");
    for d in [&a, &b, &office, &staff] {
        d.ok(&["sync"]);
    }
    // Nothing lost: every case reads the same at the office, the staff device and its team.
    for (reference, field) in [(&first, &a), (&during, &a), (&second, &b), (&third, &b)] {
        let shown = office.ok(&["case", "show", reference, "--json"]);
        assert_eq!(
            staff.ok(&["case", "show", reference, "--json"]),
            shown,
            "{reference}"
        );
        assert_eq!(
            field.ok(&["case", "show", reference, "--json"]),
            shown,
            "{reference}"
        );
    }
    assert_eq!(
        b.json(&["case", "show", &third])["status"],
        "confirmed",
        "the restored staff device's decision reached the field"
    );
    assert_eq!(office.case_count(), 4);
    assert_eq!(staff.case_count(), 4);
}
