//! Protocol v2 with real processes: the office admits devices into teams, every teammate reads
//! the team's whole history (also one admitted much later), another team reads nothing, and a
//! revoked device's key opens nothing written after its revocation.

use cairn_e2e::{Device, Server};

fn sync(device: &Device) -> String {
    device.ok(&["sync"]).trim().to_string()
}

/// `case show --json` of every case the device lists, in reference order.
fn shown(device: &Device) -> Vec<String> {
    let list = device.json(&["case", "list"]);
    let mut refs: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["reference"].as_str().expect("reference").to_string())
        .collect();
    refs.sort();
    refs.iter()
        .map(|r| device.ok(&["case", "show", r, "--json"]))
        .collect()
}

/// The sealed bytes of every change in the device's log written by `author`.
fn sealed_by(device: &Device, author: &cairn_crypto::DeviceId) -> Vec<cairn_crypto::SealedChange> {
    let hex: String = author.0.iter().map(|b| format!("{b:02x}")).collect();
    let mut changes = device.sealed_changes(&format!("author = x'{hex}'"));
    changes.sort_by_key(|(_, seq, _)| *seq);
    changes
        .into_iter()
        .map(|(_, _, bytes)| cairn_crypto::SealedChange::from_bytes(&bytes).expect("sealed"))
        .collect()
}

#[test]
fn teammates_read_the_whole_history_other_teams_nothing_and_revoked_keys_nothing_new() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();

    // Morning: A and B of T03 are admitted. A records and edits a case before it even joins.
    let a = Device::init("T03");
    let b = Device::init("T03");
    let reference = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--note",
        "recorded before joining",
    ]);
    a.ok(&["case", "edit", &reference, "--set", "person.sex=male"]);
    // `admit` runs `cairn sync` on the office, so the server learns each admission.
    server.join(&office, &a, "T03", &url);
    server.join(&office, &b, "T03", &url);

    // The syncs this needs: A sends, B and the office receive. Nobody's roster had to be
    // fresh when A wrote: the change is sealed under the team's key, which B holds.
    assert!(sync(&a).starts_with("sent 2"), "{}", sync(&a));
    let line = sync(&b);
    assert!(line.contains("received 2"), "{line}");
    assert!(!line.contains("does not hold"), "{line}");
    sync(&office);
    let on_a = shown(&a);
    assert_eq!(on_a.len(), 1);
    assert!(on_a[0].contains("recorded before joining"));
    assert_eq!(shown(&b), on_a, "B reads A's case exactly as A does");
    assert_eq!(shown(&office), on_a, "and so does the office");

    // Many more changes by A and B, then C joins: it reads every one of them.
    for i in 0..10 {
        a.new_case(&[
            "--kind",
            "injured",
            "--place",
            "KHR",
            "--note",
            &format!("a{i}"),
        ]);
        b.new_case(&[
            "--kind",
            "missing",
            "--place",
            "KHR",
            "--note",
            &format!("b{i}"),
        ]);
    }
    a.ok(&["case", "edit", &reference, "--note", "later"]);
    sync(&a);
    sync(&b);
    sync(&a);
    let c = Device::init("T03");
    server.join(&office, &c, "T03", &url);
    let line = sync(&c);
    // 21 cases whole from the office's checkpoint, with the edits they hold.
    assert!(
        line.contains("21 cases loaded from the office's checkpoints"),
        "{line}"
    );
    sync(&office);
    let everyone = shown(&a);
    assert_eq!(everyone.len(), 21);
    for (name, device) in [("B", &b), ("C", &c), ("office", &office)] {
        assert_eq!(shown(device), everyone, "{name} differs from A");
    }

    // A T04 device reads nothing of T03's: the server sends it none, and T03's key is not in
    // its keyring, so even A's sealed changes handed to it directly do not open.
    let d = Device::init("T04");
    server.join(&office, &d, "T04", &url);
    sync(&d);
    assert_eq!(d.case_count(), 0);
    let a_id = a.keys().id();
    let d_keys = d.keyring();
    for sealed in sealed_by(&a, &a_id) {
        assert!(
            sealed.open(&d_keys).is_err(),
            "T04 opened change {}",
            sealed.seq
        );
    }

    // Revocation: the office revokes B; once A has synced, A's next change is sealed under a
    // key B never received, and the server refuses B.
    let b_id = b.keys().id();
    let b_keys = b.keyring();
    office.ok(&["office", "revoke", &b_id.to_string()[..16]]);
    sync(&a);
    a.ok(&["case", "edit", &reference, "--note", "after the revocation"]);
    sync(&a);
    let newest = sealed_by(&a, &a_id).pop().expect("A's newest change");
    assert_eq!(newest.epoch, 2, "sealed under the new epoch");
    assert!(
        newest.open(&b_keys).is_err(),
        "B's keys open A's new change"
    );
    assert!(newest.open(&b.keyring()).is_err(), "B learned the new key");
    let run = b.run(&["sync"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    // The others read it: C (which held only epoch 1 before) and the office.
    sync(&c);
    sync(&office);
    let after = shown(&a);
    assert!(after.iter().any(|s| s.contains("after the revocation")));
    assert_eq!(shown(&c), after);
    assert_eq!(shown(&office), after);
    for device in [&a, &c, &office] {
        device.ok(&["check"]);
    }
}
