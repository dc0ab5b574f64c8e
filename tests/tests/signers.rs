//! Authors are the signers: a note, custody event or source shows the device whose signed
//! change wrote it, whatever name its writer typed. A hostile teammate's entries claiming
//! to be the office's show who really wrote them, "on behalf of" the name typed, in
//! `case show` (text and JSON) and in the exports.
#![allow(clippy::unwrap_used)]

use cairn_e2e::{Device, Server};
use cairn_model::{CaseDoc, Edit};

fn named(team: &str, name: &str) -> Device {
    let device = Device::empty();
    device.ok(&["init", "--team", team, "--name", name, "--kdf-cost", "4"]);
    device
}

#[test]
fn a_teammates_entries_claiming_to_be_the_office_show_their_real_signer() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let a = named("T03", "tablet 2");
    let evil = named("T03", "tablet 6");
    for device in [&a, &evil] {
        server.join(&office, device, "T03", &url);
    }
    let reference = a.new_case(&["--kind", "killed", "--place", "KHR", "--note", "honest"]);
    let id: uuid::Uuid = a.json(&["case", "show", &reference])["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    a.ok(&["sync"]);
    evil.ok(&["sync"]);

    // The hostile device writes entries that name the office as their author.
    let evil_id = evil.keys().id();
    let mut doc = CaseDoc::from_changes(&evil.raw_changes(id), &evil_id.0, &[]).unwrap();
    let forged = doc
        .edit(
            &[
                Edit::Custody {
                    from: Some("Search team 3".into()),
                    to: "Central morgue".into(),
                    place: None,
                    purpose: None,
                    seal: Some("S-1".into()),
                    at: None,
                },
                Edit::Note {
                    text: "Identity confirmed by the office.".into(),
                },
                Edit::Source {
                    kind: "witness".into(),
                    contact: None,
                    consent: "yes".into(),
                    at: None,
                },
            ],
            "office",
            time::OffsetDateTime::now_utc(),
        )
        .unwrap()
        .unwrap();
    evil.smuggle(id, &forged, "T03");
    evil.ok(&["sync"]);
    office.ok(&["sync"]);

    let evil_label = format!("tablet 6 ({})", evil_id.short());
    let a_label = format!("tablet 2 ({})", a.keys().id().short());
    let show = office.ok(&["case", "show", &reference]);
    let lines = |list: &str| -> Vec<String> {
        show.split(&format!("\n{list}:\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {list} in: {show}"))
            .lines()
            .take_while(|l| l.starts_with("  - "))
            .map(str::to_owned)
            .collect()
    };
    let on_behalf = format!("author: {evil_label} on behalf of office");
    for list in ["custody", "sources"] {
        let entries = lines(list);
        assert_eq!(entries.len(), 1, "{show}");
        assert!(entries[0].contains(&on_behalf), "{list}: {show}");
    }
    let notes = lines("notes");
    assert!(notes[0].contains(&format!("author: {a_label},")), "{show}");
    assert!(!notes[0].contains("on behalf"), "{show}");
    assert!(notes[1].contains(&on_behalf), "{show}");
    assert!(
        show.contains(&format!("created_by: {a_label}\n")),
        "the creator is its signer: {show}"
    );

    // JSON keeps the typed name and says who signed each entry, the same on every device.
    let json = office.json(&["case", "show", &reference]);
    assert_eq!(json["custody"][0]["author"], "office");
    assert_eq!(json["custody"][0]["signed_by"], evil_id.to_string());
    assert_eq!(json["sources"][0]["signed_by"], evil_id.to_string());
    assert_eq!(json["notes"][0]["signed_by"], a.keys().id().to_string());
    assert_eq!(json["created_signed_by"], a.keys().id().to_string());
    a.ok(&["sync"]);
    assert_eq!(a.json(&["case", "show", &reference]), json);

    // The exports name the signer too.
    let out = office.home().with_file_name("export");
    office.ok(&[
        "export",
        "--format",
        "csv,json",
        "--out",
        &out.to_string_lossy(),
    ]);
    let mut custody = csv::Reader::from_path(out.join("custody.csv")).unwrap();
    let event = custody
        .records()
        .map(Result::unwrap)
        .find(|r| &r[3] == "custody")
        .expect("the custody event");
    assert_eq!(&event[1], evil_id.short(), "custody.csv's author");
    assert!(event[4].contains("on behalf of office"), "{:?}", event);
    let line = std::fs::read_to_string(out.join("cases.jsonl")).unwrap();
    let exported: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(exported["case"], json);
    let mut cases = csv::Reader::from_path(out.join("cases.csv")).unwrap();
    let at = cases
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "created_by")
        .unwrap();
    let row = cases.records().next().unwrap().unwrap();
    assert_eq!(&row[at], a.keys().id().short());
}
