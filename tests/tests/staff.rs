//! Staff devices with real processes: the office key admits a staff device, which reads every
//! team and decides as the office does (verifies, links), signing as itself; everyone counts
//! its confirmation and history names it. Field devices still cannot confirm. Revoking the
//! staff device starts a new epoch of every team: the revoked device is refused and never
//! holds a new key, while field devices seal under the new epochs and the office and the
//! remaining staff read them.

use cairn_e2e::{Device, Server};

const FROM: &str = "2026-01-01";
const TO: &str = "2026-12-31";

fn killing(device: &Device, note: &str) -> String {
    device.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-03-02",
        "--set",
        "incident.cause=captivity",
        "--set",
        "person.civilian=yes",
        "--note",
        note,
    ])
}

fn status(device: &Device, reference: &str) -> String {
    device.json(&["case", "show", reference])["status"]
        .as_str()
        .expect("a status")
        .to_owned()
}

/// The epoch of every team in the roster as `cairn status --json` would not show it: read from
/// the office's vault.
fn epochs(office: &Device) -> Vec<(String, u32)> {
    let state = office.vault().sync_state().expect("sync state");
    let office_keys = cairn_protocol::OfficeKeys::from_keys(&office.keys());
    let roster = cairn_protocol::Roster::build(&office_keys, &state.roster.statements);
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    roster.teams().map(|(t, e)| (t.to_owned(), e)).collect()
}

#[test]
fn a_staff_device_verifies_and_links_every_team_until_revoked() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let (a, b) = (Device::init("T03"), Device::init("T04"));
    server.join(&office, &a, "T03", &url);
    server.join(&office, &b, "T04", &url);
    let in_a = killing(&a, "seen by a neighbour");
    let in_b = killing(&b, "the same man, seen by his brother");
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    office.ok(&["sync"]);
    let counted =
        |d: &Device| d.json(&["report", "--from", FROM, "--to", TO])["killed"]["total"].clone();
    let alleged_only = counted(&office);

    // Two analysts' laptops, admitted by the office key.
    let rana = Device::staff("Analyst Rana");
    let omar = Device::staff("Analyst Omar");
    server.join(&office, &rana, "office", &url);
    server.join(&office, &omar, "office", &url);
    // A field vault cannot take a staff admission, nor a staff vault a field one.
    let field = Device::init("T03");
    let staff_line = server.admit(&office, &field, "office", &url);
    let run = field.run(&["join", &staff_line]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("a staff device of the office, but this vault is a field device's")
            && run.stderr.contains("`cairn init --staff`"),
        "{}",
        run.stderr
    );

    // Rana reads both teams' cases, confirms one of each and links them.
    let line = rana.ok(&["sync"]);
    assert!(!line.contains("does not hold"), "{line}");
    assert_eq!(rana.case_count(), 2);
    for reference in [&in_a, &in_b] {
        rana.ok(&[
            "case",
            "verify",
            reference,
            "--status",
            "confirmed",
            "--basis",
            "death certificate",
        ]);
    }
    rana.ok(&[
        "case",
        "link",
        &in_a,
        &in_b,
        "--as",
        "same_person",
        "--basis",
        "name, age and place agree",
    ]);
    // What only the office key does stays with it, said plainly.
    let newcomer = Device::init("T05");
    let line = newcomer.json(&["id"])["line"]
        .as_str()
        .expect("a line")
        .to_owned();
    let run = rana.run(&[
        "office",
        "admit",
        &line,
        "--team",
        "T05",
        "--server",
        &url,
        "--fingerprint",
        server.fingerprint(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("only the office key admits devices"),
        "{}",
        run.stderr
    );
    let run = rana.run(&[
        "report", "publish", "--from", FROM, "--to", TO, "--title", "Ours",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("office key"), "{}", run.stderr);
    let run = rana.run(&["office", "revoke", "Analyst Omar"]);
    assert!(
        run.stderr.contains("only the office key revokes devices"),
        "{}",
        run.stderr
    );
    rana.ok(&["sync"]);

    // Everyone sees the confirmation, and the office's report counts it.
    for d in [&a, &b, &office, &omar] {
        d.ok(&["sync"]);
    }
    assert_eq!(status(&a, &in_a), "confirmed");
    assert_eq!(status(&b, &in_b), "confirmed");
    assert_eq!(status(&office, &in_a), "confirmed");
    assert_eq!(status(&omar, &in_b), "confirmed");
    let links = office.json(&["case", "links", &in_a]);
    assert_eq!(links.as_array().map(Vec::len), Some(1), "{links}");
    // Confirmed, linked as one person: the report counts one killing it did not count before.
    assert_ne!(counted(&office), alleged_only);
    assert_eq!(counted(&office), 1, "{}", counted(&office));
    assert_eq!(counted(&omar), counted(&office));
    // The office's daily work runs on a staff vault: its inbox lists what changed.
    let inbox = omar.json(&["office", "inbox"]);
    assert!(inbox.as_array().is_some_and(|l| !l.is_empty()), "{inbox}");
    // History names the analyst at the office and at the other staff device; a field device
    // holds no key of the office's team and shows the short id.
    let rana_id = rana.json(&["id"])["device"]
        .as_str()
        .expect("id")
        .to_owned();
    for d in [&office, &omar] {
        let history = d.ok(&["case", "history", &in_a]);
        assert!(history.contains("Analyst Rana"), "{history}");
    }
    let history = a.ok(&["case", "history", &in_a]);
    assert!(!history.contains("Analyst Rana"), "{history}");
    assert!(history.contains(&rana_id[..12]), "{history}");

    // A field device still cannot confirm or reject.
    let run = a.run(&[
        "case", "verify", &in_a, "--status", "rejected", "--basis", "mine",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("only the office"), "{}", run.stderr);
    assert_eq!(status(&a, &in_a), "confirmed");

    // Revoking Rana moves every team's key on.
    let before = epochs(&office);
    let revoked = office.ok(&["office", "revoke", "Analyst Rana"]);
    assert!(revoked.contains("every team's key moved on"), "{revoked}");
    let after = epochs(&office);
    assert_eq!(before.len(), after.len());
    for ((team, old), (same, new)) in before.iter().zip(&after) {
        assert_eq!(team, same);
        assert_eq!(*new, old + 1, "team {team}: {before:?} then {after:?}");
    }
    let run = rana.run(&["sync"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    for (team, epoch) in &after {
        assert!(
            rana.keyring().get(team, *epoch).is_none(),
            "the revoked device holds {team} epoch {epoch}"
        );
    }

    // Field devices seal under the new epochs; the office and Omar read them.
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let later_a = killing(&a, "recorded after the revocation");
    let later_b = killing(&b, "also after");
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    let a_id = a.keys().id();
    let hex: String = a_id.0.iter().map(|b| format!("{b:02x}")).collect();
    let newest = a
        .sealed_changes(&format!("author = x'{hex}'"))
        .into_iter()
        .max_by_key(|(_, seq, _)| *seq)
        .expect("a change");
    let sealed = cairn_crypto::SealedChange::from_bytes(&newest.2).expect("sealed");
    assert_eq!((sealed.team.as_str(), sealed.epoch), ("T03", 2));
    for d in [&office, &omar] {
        let line = d.ok(&["sync"]);
        assert!(!line.contains("does not hold"), "{line}");
        for reference in [&later_a, &later_b] {
            assert!(d.ok(&["case", "show", reference]).contains("after"));
        }
    }
    // Omar still decides, under the new keys, and field devices take his word.
    omar.ok(&[
        "case",
        "verify",
        &later_a,
        "--status",
        "confirmed",
        "--basis",
        "photograph",
    ]);
    omar.ok(&["sync"]);
    a.ok(&["sync"]);
    assert_eq!(status(&a, &later_a), "confirmed");
}
