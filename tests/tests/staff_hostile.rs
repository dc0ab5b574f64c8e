//! Issue #23 attacked, with real processes: a server that adds `grant` and `rotate`
//! statements to its chain (unsigned, or signed by the office but granting a field device of
//! T04 the key of T03), a revoked staff device whose later changes reach other replicas
//! through the server and who asks to be restored, and a staff device forging the office's
//! published record or doing what only the office key does. Nobody gains a key or a word.

use cairn_e2e::{sealed_case, Device, Server};
use cairn_protocol::{Act, DevicePublic, Grant, KeyGrant, Rotate, Statement, OFFICE_TEAM};

/// The newest statement the server holds.
fn head(server: &Server) -> Statement {
    let body: String = server
        .dir()
        .db()
        .query_row(
            "SELECT body FROM statements ORDER BY counter DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("head");
    serde_json::from_str(&body).expect("statement")
}

/// `act`, signed by `by` and linked to the server's head, appended to its chain as a
/// compromised server would (restarted, since it keeps the chain in memory).
fn append(server: &mut Server, by: &cairn_crypto::DeviceKeys, act: Act) {
    let head = head(server);
    let s = Statement::issue(by, head.counter + 1, head.hash(), head.at, act).expect("issue");
    server
        .dir()
        .db()
        .execute(
            "INSERT INTO statements (counter, body) VALUES (?1, ?2)",
            rusqlite::params![s.counter as i64, serde_json::to_string(&s).expect("json")],
        )
        .expect("append");
    server.restart();
}

fn killing(d: &Device) -> String {
    d.new_case(&["--kind", "killed", "--place", "KHR"])
}

#[test]
fn grants_and_rotations_a_server_adds_hand_no_field_device_another_teams_key() {
    let office = Device::office();
    let mut server = Server::start(&office);
    let url = server.url();
    let (a, b) = (Device::init("T03"), Device::init("T04"));
    server.join(&office, &a, "T03", &url);
    server.join(&office, &b, "T04", &url);
    let in_a = killing(&a);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let t03 = office.team_key("T03");
    let b_public = DevicePublic::from_keys(&b.keys());
    let grant_to_b = |key: &cairn_crypto::TeamKey| vec![Grant::new(key, &b_public).expect("grant")];
    let holds_t03 = |d: &Device| d.keyring().newest("T03").is_some();
    assert!(!holds_t03(&b));

    // A grant of T03's key to B signed by the server's own key: the chain stops there.
    let rogue = cairn_crypto::DeviceKeys::generate();
    append(
        &mut server,
        &rogue,
        Act::Grant(KeyGrant {
            team: "T03".into(),
            epoch: 1,
            grants: grant_to_b(&t03),
        }),
    );
    let held = b.vault().roster_chain().expect("state").statements.len();
    let run = b.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!holds_t03(&b));
    assert_eq!(
        b.vault().roster_chain().expect("state").statements.len(),
        held
    );
    server.edit_db("DELETE FROM statements WHERE counter = (SELECT MAX(counter) FROM statements);");
    server.restart();

    // Signed by the office key itself (as a buggy office might), linked to the chain: a grant
    // of T03 to B, then a rotation of T03 granted to B. B takes the chain, and neither hands
    // it a key: a field device never holds another team's.
    let keys = office.keys();
    append(
        &mut server,
        &keys,
        Act::Grant(KeyGrant {
            team: "T03".into(),
            epoch: 1,
            grants: grant_to_b(&t03),
        }),
    );
    let next = cairn_crypto::TeamKey::generate("T03", 2);
    let earlier = next.wrap_earlier(&t03).expect("wrap");
    let mut grants = grant_to_b(&next);
    grants.push(Grant::new(&next, &DevicePublic::from_keys(&keys)).expect("grant"));
    append(
        &mut server,
        &keys,
        Act::Rotate(Rotate {
            team: "T03".into(),
            epoch: 2,
            grants,
            earlier: base64_of(&earlier),
        }),
    );
    let run = b.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = b.vault().sync_state().expect("state");
    assert_eq!(
        state.roster.statements.len(),
        held + 2,
        "B took both statements"
    );
    let roster = cairn_protocol::Roster::build(
        &cairn_protocol::OfficeKeys::from_keys(&keys),
        &state.roster.statements,
    );
    assert_eq!(roster.problems.len(), 2, "{:?}", roster.problems);
    assert!(!holds_t03(&b), "{:?}", b.keyring());
    assert_eq!(b.run(&["case", "show", &in_a]).code, 1);
    // A, of T03, stays at the epoch the office really started: the rotation took no effect.
    a.ok(&["sync"]);
    assert_eq!(a.keyring().newest("T03").map(|k| k.epoch()), Some(1));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn a_revoked_staff_device_is_cut_off_everywhere_and_is_not_restored() {
    let kept = tempfile::tempdir().expect("temp dir");
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let a = Device::init("T03");
    server.join(&office, &a, "T03", &url);
    let rana = Device::staff("Analyst Rana");
    server.join(&office, &rana, "office", &url);
    let reference = killing(&a);
    a.ok(&["sync"]);
    rana.ok(&["sync"]);
    rana.ok(&[
        "case",
        "verify",
        &reference,
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
    rana.ok(&["sync"]);
    let cut = rana.vault().own_log_len().expect("own log");
    let rana_id = rana.keys().id().to_string();
    office.ok(&["office", "revoke", &rana_id[..16]]);

    // Its next change: the server refuses the push.
    rana.ok(&["case", "edit", &reference, "--note", "after the revocation"]);
    let run = rana.run(&["sync"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);

    // A change above its cut-off forged into the server's database (under the T03 key it
    // held) reaches the field device and the office, and both refuse it.
    let forged = sealed_case(&rana.keys(), &rana.team_key("T03"), cut + 1, "forged");
    server.inject(&forged);
    let forged_id = uuid::Uuid::from_bytes(forged.case_id);
    for d in [&a, &office] {
        let s = d.json(&["sync"]);
        let refused = s["refused"].to_string();
        assert!(refused.contains(&rana_id[..12]), "{s}");
        assert!(
            !d.json(&["case", "list"])
                .to_string()
                .contains(&forged_id.to_string()),
            "the forged case is listed"
        );
    }
    // Its confirmation made before the cut-off still binds.
    assert_eq!(a.json(&["case", "show", &reference])["status"], "confirmed");

    // Its laptop lost, it is rebuilt from its key file: restoring it is refused, nothing stored.
    let office_pub = kept.path().join("office.pub");
    let office_pub = office_pub.to_str().expect("UTF-8");
    office.ok(&["office", "pubkey", "--out", office_pub]);
    let key_file = kept.path().join("rana.age");
    std::fs::copy(cairn_vault::Home::new(rana.home()).key_file(), &key_file).expect("copy");
    std::fs::remove_dir_all(rana.home()).expect("lost");
    let key_file = key_file.to_str().expect("UTF-8");
    rana.ok(&["init", "--staff", "--key-file", key_file, "--kdf-cost", "4"]);
    let before = rana.files();
    let run = rana.run(&[
        "office",
        "restore",
        "--server",
        &url,
        "--fingerprint",
        server.fingerprint(),
        "--office-key",
        office_pub,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    assert_eq!(rana.files(), before, "the restore stored something");
    assert_eq!(rana.case_count(), 0);
}

#[test]
fn a_staff_device_neither_forges_the_offices_record_nor_does_the_office_keys_work() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let (rana, omar) = (Device::staff("Analyst Rana"), Device::staff("Analyst Omar"));
    server.join(&office, &rana, "office", &url);
    server.join(&office, &omar, "office", &url);
    rana.ok(&["sync"]);

    // What only the office key does: refused as a usage error, nothing written.
    let shares = tempfile::tempdir().expect("temp dir");
    let out = shares.path().join("shares");
    let before = rana.files();
    for args in [
        vec![
            "office",
            "key",
            "split",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--out",
            out.to_str().expect("UTF-8"),
        ],
        vec!["office", "places", "add", "KHR", "--name", "Khan Younis"],
    ] {
        let run = rana.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("only the office key"), "{}", run.stderr);
    }
    assert!(!out.exists(), "shares of a staff device's key were written");
    assert_eq!(rana.files(), before);

    // A published record (kind 2) it seals under team `office`'s key, forged into the
    // server's database past the server's own refusal: the office and the other staff
    // device refuse it and keep no edition.
    let keys = rana.keys();
    let seq = rana.vault().own_log_len().expect("own log") + 1;
    let record = cairn_crypto::SealedChange::seal(
        &keys,
        &rana.team_key(OFFICE_TEAM),
        cairn_crypto::SealedKind::OfficeRecord,
        *uuid::Uuid::new_v4().as_bytes(),
        seq,
        b"{}",
    )
    .expect("seal");
    server.inject(&record);
    for d in [&office, &omar] {
        let s = d.json(&["sync"]);
        assert!(s["refused"].to_string().contains("only the office"), "{s}");
        let editions = d.json(&["report", "editions"]);
        assert_eq!(editions.as_array().map(Vec::len), Some(0), "{editions}");
    }
}

/// A staff device confirms a case of T03 but seals the change under team `office`'s key, so
/// the server relays it to the office's devices only: the office would count it confirmed
/// while T03's devices never see the decision. Every replica refuses a change sealed for
/// another team than its case's, whoever wrote it.
#[test]
fn a_decision_sealed_for_another_team_than_its_case_is_refused() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let a = Device::init("T03");
    server.join(&office, &a, "T03", &url);
    let rana = Device::staff("Analyst Rana");
    server.join(&office, &rana, "office", &url);
    let reference = killing(&a);
    a.ok(&["sync"]);
    rana.ok(&["sync"]);
    rana.ok(&[
        "case",
        "verify",
        &reference,
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
    let keys = rana.keys();
    let hex = keys.id().to_string();
    let (author, seq, bytes) = rana
        .sealed_changes(&format!("author = x'{hex}'"))
        .pop()
        .expect("its verification");
    let honest = cairn_crypto::SealedChange::from_bytes(&bytes).expect("sealed");
    assert_eq!(honest.team, "T03");
    let plain = honest.open(&rana.keyring()).expect("readable");
    let hidden = cairn_crypto::SealedChange::seal(
        &keys,
        &rana.team_key(OFFICE_TEAM),
        cairn_crypto::SealedKind::CaseChange,
        honest.case_id,
        seq,
        &plain,
    )
    .expect("seal");
    rana.replace_sealed_change(&author, seq, &hidden.to_bytes());
    rana.ok(&["sync"]);

    let s = office.json(&["sync"]);
    assert!(
        s["refused"].to_string().contains("sealed for team office"),
        "{s}"
    );
    a.ok(&["sync"]);
    for d in [&office, &a] {
        assert_eq!(d.json(&["case", "show", &reference])["status"], "alleged");
    }
}
