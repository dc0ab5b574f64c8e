//! Issue #19 item 12 (second half), with real processes: a member reads its own team's device
//! names and change counts and no other team's (names sealed under the team key in the roster,
//! one office receipt per team), the office reads every team's, and the roster chain still
//! verifies for everyone. A server that hands a member another team's receipt is refused.

use cairn_e2e::{contains_any_encoding, files_under, Device, Server};
use cairn_protocol::{OfficeKeys, Receipt, Roster, Statement};

const ALPHA_ONE: &str = "Alpha One Tablet";
const ALPHA_TWO: &str = "Alpha Two Laptop";
const BRAVO: &str = "Bravo Secret Rugged";

/// A field vault of `team` named `name`, admitted and joined.
fn named(server: &Server, office: &Device, team: &str, name: &str) -> Device {
    let device = Device::empty();
    device.ok(&["init", "--team", team, "--name", name, "--kdf-cost", "4"]);
    server.join(office, &device, team, &server.url());
    device
}

fn id(device: &Device) -> String {
    device.json(&["id"])["device"]
        .as_str()
        .expect("device id")
        .to_owned()
}

/// What the server answers `device` for the roster and its receipt, as JSON text (the typed
/// answers written back: every wire type round-trips to the very bytes it was read from).
fn served(server: &Server, device: &Device) -> (Vec<Statement>, String, Option<Receipt>, String) {
    let client = cairn_sync::Client::new(&server.url(), server.fingerprint()).expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys = device.keys();
    let roster = runtime.block_on(client.roster(&keys)).expect("roster");
    let receipt = runtime.block_on(client.receipt(&keys)).expect("receipt");
    let roster_json = serde_json::to_string(&roster).expect("json");
    let receipt_json = serde_json::to_string(&receipt).expect("json");
    (roster, roster_json, receipt, receipt_json)
}

/// Every command output a member might show of the roster and receipts, text and `--json`.
fn outputs(device: &Device) -> String {
    let mut all = String::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["check"],
        &["check", "--json"],
        &["case", "list"],
        &["case", "list", "--json"],
    ] {
        let run = device.run(args);
        all.push_str(&run.stdout);
        all.push_str(&run.stderr);
    }
    all
}

/// The roster entry of `device_id` in `cairn status --json`.
fn entry(status: &serde_json::Value, device_id: &str) -> serde_json::Value {
    status["roster"]
        .as_array()
        .expect("roster")
        .iter()
        .find(|m| m["device"] == device_id)
        .cloned()
        .expect("member listed")
}

#[test]
fn members_read_only_their_own_teams_names_and_counts_and_every_chain_verifies() {
    let office = Device::office();
    let server = Server::start(&office);
    let a1 = named(&server, &office, "T01", ALPHA_ONE);
    let a2 = named(&server, &office, "T01", ALPHA_TWO);
    let b = named(&server, &office, "T02", BRAVO);
    let (a1_id, a2_id, b_id) = (id(&a1), id(&a2), id(&b));

    // Each records cases (B more than the others: its count must not show), then the office
    // pulls and signs its receipts, and the members fetch theirs.
    let a2_case = a2.new_case(&["--kind", "killed", "--place", "KHR"]);
    a1.new_case(&["--kind", "killed", "--place", "KHR"]);
    let mut b_case = String::new();
    for _ in 0..3 {
        b_case = b.new_case(&["--kind", "missing", "--place", "KHR"]);
    }
    for d in [&a1, &a2, &b, &office, &a1, &a2, &b] {
        d.ok(&["sync"]);
    }

    // What the server hands A1: no name and no count of B.
    let office_keys: OfficeKeys = office
        .ok(&["office", "pubkey"])
        .trim()
        .parse()
        .expect("office keys");
    let (chain, roster_json, receipt, receipt_json) = served(&server, &a1);
    assert!(!contains_any_encoding(roster_json.as_bytes(), BRAVO));
    for name in [ALPHA_ONE, ALPHA_TWO] {
        assert!(
            !contains_any_encoding(roster_json.as_bytes(), name),
            "sealed for everyone"
        );
    }
    let receipt = receipt.expect("a receipt for team T01");
    assert_eq!(receipt.team.as_deref(), Some("T01"));
    receipt.verify(&office_keys.signing).expect("the office's");
    assert!(receipt_json.contains(&a1_id) && receipt_json.contains(&a2_id));
    assert!(!receipt_json.contains(&b_id), "{receipt_json}");
    // The chain verifies whole, for a member as for anyone: every statement, every link.
    let roster = Roster::build(&office_keys, &chain);
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    // Three admissions, and the office's own team key granted to itself at its first sync.
    assert_eq!(roster.head(), 4);
    // B reads its own count, and none of team T01's.
    let (_, _, b_receipt, b_json) = served(&server, &b);
    let b_receipt = b_receipt.expect("a receipt for team T02");
    assert_eq!(b_receipt.team.as_deref(), Some("T02"));
    assert_eq!(b_receipt.upto(&b.keys().id()), 3);
    assert!(!b_json.contains(&a1_id) && !b_json.contains(&a2_id));
    // What the server keeps, whatever it is asked: no name of any device, in any encoding.
    for (path, bytes) in files_under(&server.dir().path()) {
        for name in [ALPHA_ONE, ALPHA_TWO, BRAVO] {
            assert!(
                !contains_any_encoding(&bytes, name),
                "{name} in {}",
                path.display()
            );
        }
    }

    // What A1's commands show: its teammate's name, B without a name and without a count.
    let status = a1.json(&["status"]);
    assert!(status["roster_warnings"]
        .as_array()
        .expect("warnings")
        .is_empty());
    assert_eq!(entry(&status, &a2_id)["name"], ALPHA_TWO);
    assert_eq!(entry(&status, &b_id)["name"], serde_json::Value::Null);
    assert_eq!(entry(&status, &b_id)["team"], "T02");
    assert_eq!(status["office_confirmed"]["upto"], 1);
    let shown = outputs(&a1);
    assert!(!contains_any_encoding(shown.as_bytes(), BRAVO), "{shown}");
    assert!(shown.contains(&b_id[..12]), "B is listed by its short id");
    let show = a1.ok(&["case", "show", &a2_case]);
    assert!(
        show.contains(ALPHA_TWO),
        "a teammate's name as signer: {show}"
    );
    // `cairn check` finds nothing diverging: the team's receipt is enough for it.
    let check = a1.json(&["check"]);
    assert_eq!(check["divergences"], serde_json::json!([]), "{check}");
    // B does not read T01's names either.
    let status = b.json(&["status"]);
    assert_eq!(entry(&status, &a1_id)["name"], serde_json::Value::Null);
    let shown = outputs(&b);
    for name in [ALPHA_ONE, ALPHA_TWO] {
        assert!(!contains_any_encoding(shown.as_bytes(), name), "{shown}");
    }

    // The office reads every name, signs every count, and its chain verifies too.
    let status = office.json(&["status"]);
    assert!(status["roster_warnings"]
        .as_array()
        .expect("warnings")
        .is_empty());
    assert_eq!(entry(&status, &b_id)["name"], BRAVO);
    assert_eq!(entry(&status, &a1_id)["name"], ALPHA_ONE);
    assert!(office.ok(&["case", "show", &b_case]).contains(BRAVO));
    let check = office.json(&["check"]);
    assert_eq!(check["divergences"], serde_json::json!([]), "{check}");
    // The office can still revoke a device by its (sealed) name.
    office.ok(&["office", "revoke", BRAVO]);
    for d in [&office, &a1] {
        d.ok(&["sync"]);
    }
    let status = a1.json(&["status"]);
    assert_eq!(entry(&status, &b_id)["revoked_after"], 3);
    assert_eq!(entry(&status, &b_id)["name"], serde_json::Value::Null);
    let (chain, _, _, _) = served(&server, &a1);
    assert!(Roster::build(&office_keys, &chain).problems.is_empty());
}

/// A server that hands team T01's member the receipt of team T02 (its database edited so
/// T01's row holds T02's receipt under a newer counter): the member refuses it, keeps its own
/// team's, and shows nothing of T02's counts.
#[test]
fn a_member_refuses_another_teams_receipt() {
    let office = Device::office();
    let server = Server::start(&office);
    let a = named(&server, &office, "T01", ALPHA_ONE);
    let b = named(&server, &office, "T02", BRAVO);
    let b_id = id(&b);
    a.new_case(&["--kind", "killed", "--place", "KHR"]);
    for _ in 0..4 {
        b.new_case(&["--kind", "missing", "--place", "KHR"]);
    }
    for d in [&a, &b, &office, &a] {
        d.ok(&["sync"]);
    }
    let before = a.json(&["status"])["office_confirmed"].clone();
    assert_eq!(before["upto"], 1);

    server.edit_db(
        "UPDATE team_receipts SET counter = counter + 5,
             body = (SELECT body FROM team_receipts WHERE team = 'T02')
         WHERE team = 'T01';",
    );
    let run = a.run(&["sync"]);
    assert!(
        run.stderr.contains("instead of team T01's: refused"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&b_id[..12]), "{}", run.stderr);
    // The receipt it held stays: its own count, as before; B's is neither kept nor shown.
    let status = a.json(&["status"]);
    assert_eq!(status["office_confirmed"], before);
    let again = a.run(&["sync"]);
    assert!(again.stderr.contains("refused"), "{}", again.stderr);
    assert_eq!(a.json(&["status"])["office_confirmed"], before);
    let check = a.json(&["check"]);
    assert_eq!(check["divergences"], serde_json::json!([]), "{check}");
}
