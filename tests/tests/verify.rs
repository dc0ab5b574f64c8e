//! The office's workflow with real processes: a field device proposes, only the office
//! confirms (with a basis), the office's inbox lists what changed since its review, and the
//! office's verification and review reach the field devices on their next sync.

use cairn_e2e::{Device, Server};

fn refs(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|c| c["reference"].as_str().expect("reference").to_string())
        .collect()
}

#[test]
fn only_the_office_confirms_and_its_word_reaches_the_field() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let a = Device::init("T03");
    let b = Device::init("T03");
    server.join(&office, &a, "T03", &url);
    server.join(&office, &b, "T03", &url);
    let reference = a.new_case(&["--kind", "killed", "--place", "KHR"]);

    // A field device cannot confirm, by `verify` or by `--set`; nothing is written.
    let before = a.files();
    let verify = [
        "case",
        "verify",
        &reference,
        "--status",
        "confirmed",
        "--basis",
        "x",
    ];
    let set = ["case", "edit", &reference, "--set", "status=confirmed"];
    for (args, code) in [(&verify[..], 1), (&set[..], 2)] {
        let run = a.run(args);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("office"), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    // Confirming needs a basis, even at the office: refused before any passphrase.
    let run = office.run(&["case", "verify", &reference, "--status", "confirmed"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--basis"), "{}", run.stderr);
    assert_eq!(a.files(), before, "a refused verification wrote something");

    // A proposes an investigation: a note with its grounds (the status is the office's).
    let out = a.ok(&[
        "case",
        "verify",
        &reference,
        "--status",
        "under_investigation",
        "--basis",
        "two witnesses disagree on the date",
    ]);
    assert!(out.contains("proposal recorded as a note"), "{out}");
    a.ok(&["sync"]);
    office.ok(&["sync"]);
    let inbox = office.json(&["office", "inbox"]);
    assert_eq!(refs(&inbox), vec![reference.clone()], "{inbox}");
    assert_eq!(inbox[0]["status"], "alleged");
    let case = office.json(&["case", "show", &reference]);
    assert_eq!(
        case["notes"][0]["text"],
        "Proposed under_investigation: two witnesses disagree on the date"
    );

    // The office reviews and confirms; its inbox empties.
    office.ok(&["office", "review", &reference, "--state", "received"]);
    office.ok(&[
        "case",
        "verify",
        &reference,
        "--status",
        "confirmed",
        "--basis",
        "death certificate KHR-2026-114",
    ]);
    assert_eq!(
        refs(&office.json(&["office", "inbox"])),
        Vec::<String>::new()
    );
    office.ok(&["sync"]);

    // Both field devices read the office's word, in the case and in its history.
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    for d in [&a, &b] {
        let case = d.json(&["case", "show", &reference]);
        assert_eq!(case["status"], "confirmed", "{case}");
        assert_eq!(
            case["verifications"][0]["basis"],
            "death certificate KHR-2026-114"
        );
        assert_eq!(case["reviews"][0]["state"], "received");
        let history = d.json(&["case", "history", &reference]);
        let last = history.as_array().and_then(|h| h.last()).expect("history");
        assert!(
            last["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .any(|f| f == "verification"),
            "{history}"
        );
        let confirmed = d.json(&["case", "list", "--status", "confirmed"]);
        assert_eq!(refs(&confirmed), vec![reference.clone()]);
    }
    assert_eq!(
        a.ok(&["case", "show", &reference, "--json"]),
        office.ok(&["case", "show", &reference, "--json"])
    );

    // A field device cannot take the confirmation back (it may propose so, in a note); A's
    // new edit sends the case back to the office's inbox.
    let run = b.run(&["case", "edit", &reference, "--set", "status=alleged"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("only the office"), "{}", run.stderr);
    b.ok(&["case", "verify", &reference, "--status", "alleged"]);
    assert_eq!(b.json(&["case", "show", &reference])["status"], "confirmed");
    a.ok(&["case", "edit", &reference, "--set", "found.scene=rubble"]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);
    assert_eq!(
        refs(&office.json(&["office", "inbox"])),
        vec![reference.clone()]
    );
    let text = office.ok(&["office", "inbox"]);
    assert!(
        text.contains(&reference) && text.contains("received"),
        "{text}"
    );
    office.ok(&[
        "office",
        "review",
        &reference,
        "--state",
        "approved",
        "--comment",
        "ok",
    ]);
    assert!(office.ok(&["office", "inbox"]).contains("inbox empty"));

    // The office verifies the cases it records itself too.
    let own = office.new_case(&["--kind", "missing", "--place", "KHR"]);
    office.ok(&[
        "case",
        "verify",
        &own,
        "--status",
        "rejected",
        "--basis",
        "found alive",
    ]);
    assert_eq!(office.json(&["case", "show", &own])["status"], "rejected");
}
