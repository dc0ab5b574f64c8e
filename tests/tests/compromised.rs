//! A compromised server, played by editing its database between syncs (the server is
//! restarted where it keeps state in memory): it deletes a revocation, serves an older roster,
//! appends an admission the office never signed, drops a change from the middle of an
//! author's numbers, and inflates `acked`. Each is refused or reported; no device ever holds a
//! key the office did not grant it.

use cairn_e2e::{Device, Server};

fn sync(device: &Device) -> String {
    device.ok(&["sync"]).trim().to_string()
}

fn status(device: &Device) -> serde_json::Value {
    device.json(&["status"])
}

fn warnings(device: &Device) -> String {
    let s = status(device);
    format!("{} {}", s["roster_warnings"], s["delivery_warnings"])
}

struct World {
    office: Device,
    server: Server,
    a: Device,
    b: Device,
}

fn world() -> World {
    let office = Device::office();
    let server = Server::start(&office);
    let (a, b) = (Device::init("T03"), Device::init("T03"));
    for d in [&a, &b] {
        server.join(&office, d, "T03", &server.url());
    }
    World {
        office,
        server,
        a,
        b,
    }
}

#[test]
fn a_deleted_revocation_or_older_roster_is_refused_and_reported() {
    let mut w = world();
    let b_id = w.b.keys().id().to_string();
    w.office.ok(&["office", "revoke", &b_id[..16]]);
    sync(&w.a);
    let held = status(&w.a);
    let revoked = |s: &serde_json::Value| {
        s["roster"]
            .as_array()
            .expect("roster")
            .iter()
            .any(|m| m["device"] == b_id.as_str() && !m["revoked_after"].is_null())
    };
    assert!(revoked(&held));

    // The server forgets the revocation (the newest statement) and restarts without it.
    w.server
        .edit_db("DELETE FROM statements WHERE counter = (SELECT MAX(counter) FROM statements);");
    w.server.restart();
    let line = sync(&w.a);
    assert!(line.contains("sent 0"), "{line}");
    let s = status(&w.a);
    assert!(revoked(&s), "A forgot the revocation: {s}");
    assert!(
        warnings(&w.a).contains("older than statement"),
        "{}",
        warnings(&w.a)
    );
    // A keeps sealing under the epoch B never received.
    let reference = w.a.new_case(&["--kind", "killed", "--place", "KHR"]);
    sync(&w.a);
    let b_keys = w.b.keyring();
    assert!(b_keys.newest("T03").is_some_and(|k| k.epoch() == 1));
    // B gets back in through the altered server, but reads nothing written since.
    let line = sync(&w.b);
    assert!(line.contains("does not hold"), "{line}");
    assert!(
        w.b.run(&["case", "show", &reference]).code != 0,
        "B read a case sealed after its revocation"
    );
}

#[test]
fn an_admission_the_office_never_signed_admits_nobody() {
    let mut w = world();
    sync(&w.a);
    let before = w.a.keyring().len();
    // The server appends, as statement 3, an admission of its own key signed by another
    // "office", linked to the genuine head.
    let rogue = cairn_crypto::DeviceKeys::generate();
    let stranger = cairn_crypto::DeviceKeys::generate();
    let head = {
        let conn = w.server.dir().db();
        let body: String = conn
            .query_row(
                "SELECT body FROM statements ORDER BY counter DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("head");
        serde_json::from_str::<cairn_protocol::Statement>(&body).expect("statement")
    };
    let key = cairn_crypto::TeamKey::generate("T03", 1);
    let public = cairn_protocol::DevicePublic::from_keys(&stranger);
    let forged = cairn_protocol::Statement::issue(
        &rogue,
        head.counter + 1,
        head.hash(),
        head.at,
        cairn_protocol::Act::Admit(cairn_protocol::Admit {
            device: public.clone(),
            name: Some("server's own".into()),
            sealed_name: None,
            team: "T03".into(),
            epoch: 1,
            grants: vec![cairn_protocol::Grant::new(&key, &public).expect("grant")],
            server: w.server.url(),
            fingerprint: w.server.fingerprint().to_owned(),
            expires_at: u64::MAX / 2,
        }),
    )
    .expect("statement");
    let body = serde_json::to_string(&forged)
        .expect("json")
        .replace('\'', "''");
    w.server.edit_db(&format!(
        "INSERT INTO statements (counter, body) VALUES ({}, '{body}');",
        forged.counter
    ));
    w.server.restart();
    sync(&w.a);
    let s = status(&w.a);
    let members = s["roster"].as_array().expect("roster").len();
    assert_eq!(members, 3, "office, A and B only: {s}");
    assert_eq!(
        w.a.keyring().len(),
        before,
        "no key from the forged statement"
    );
    // A's changes stay sealed under the office's key for T03, which the stranger lacks.
    w.a.new_case(&["--kind", "killed", "--place", "KHR"]);
    let mut ring = cairn_crypto::Keyring::default();
    ring.insert(key);
    let (_, _, sealed) = w.a.sealed_changes("1").pop().expect("a change");
    let sealed = cairn_crypto::SealedChange::from_bytes(&sealed).expect("parse");
    assert!(sealed.open(&ring).is_err());
}

#[test]
fn a_change_dropped_from_the_middle_and_an_inflated_acked_are_reported() {
    let w = world();
    let reference = w.a.new_case(&["--kind", "killed", "--place", "KHR"]);
    for note in ["two", "three"] {
        w.a.ok(&["case", "edit", &reference, "--note", note]);
    }
    sync(&w.a);
    let a_hex = w.a.keys().id().to_string();
    // The server drops A's change 2 (and keeps serving 1 and 3).
    w.server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{a_hex}' AND seq = 2;"
    ));
    let run = w.b.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("change 2 of device") && run.stderr.contains("withholding"),
        "{}",
        run.stderr
    );
    assert!(warnings(&w.b).contains("withholding"), "{}", warnings(&w.b));

    // A's fourth change: the server claims it stored it, and drops it.
    w.a.ok(&["case", "edit", &reference, "--note", "four"]);
    sync(&w.a);
    w.server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{a_hex}' AND seq = 4;"
    ));
    // The office signs what it really holds: 1 (2 is gone, 3 cannot count past the gap).
    sync(&w.office);
    sync(&w.a);
    let s = status(&w.a);
    assert_eq!(s["acked"], 4, "{s}");
    assert_eq!(s["office_confirmed"]["upto"], 1, "{s}");
    let text = w.a.ok(&["status"]);
    assert!(text.contains("confirmed holding changes 1..1"), "{text}");
    assert!(text.contains("server says 4"), "{text}");
}
