//! The guided form of `cairn case new` and `cairn case edit`, typed on a pseudo-terminal into
//! the real binary as a person would: a full remains case equals the one `--set` makes, bad
//! answers are refused at the prompt, sections can be revisited, several cases follow one
//! passphrase, labels are words rather than keys, Ctrl-C or Esc asks before stopping, a
//! discard leaves the cases as they were and no draft, a form killed mid-way resumes from its
//! draft, saving removes the draft whatever instant it is killed at, and the line editor
//! takes Ctrl-U, Ctrl-W and the ends of the line.
#![allow(clippy::unwrap_used)]

use cairn_e2e::pty::{spawn, spawn_with, Pty};
use cairn_e2e::{Device, PASSPHRASE};

/// Every field the form asks a remains (or killed) case, in its order, with what a searcher
/// types for a full remains case; an empty answer skips the field.
const REMAINS: &[(&str, &str)] = &[
    ("found.at", "2026-11-02 09:40"),
    ("found.lat", "31.5017"),
    ("found.lon", "34.4668"),
    ("found.alt", "12"),
    ("found.accuracy_m", "5"),
    ("found.scene", "rubble"),
    ("found.description", "Collapsed house, north wall"),
    ("remains.completeness", "incomplete"),
    ("remains.condition", "skeletonised"),
    ("remains.height_cm", "170"),
    ("remains.clothing", "Blue jacket"),
    ("remains.marks", "Scar on the left hand"),
    ("remains.effects", "A watch"),
    ("injuries", "Fractured skull"),
    ("torture_signs", "unknown"),
    ("person.name", ""),
    // `male` must pick male, never female (which contains it and is listed first).
    ("person.sex", "male"),
    ("person.age_group", "adult"),
    ("person.age_years", "34"),
    ("person.civilian", "yes"),
    ("person.height_cm", ""),
    ("person.clothing", ""),
    ("person.effects", ""),
    ("person.marks", ""),
    ("incident.date", "2026-10-30/2026-11-01"),
    ("incident.place", "Khan Younis"),
    ("incident.cause", "targeted"),
    ("incident.narrative", "Found by the civil defence."),
    ("forensic.examiner", "Dr. A. Haddad"),
    ("forensic.date", "2026-11-03"),
    ("forensic.report_ref", "FR-77"),
    ("forensic.conclusions", "Blast injuries."),
    ("identification.status", "preliminary"),
    ("identification.basis", "Clothing recognised by family."),
];

/// A name added when the test comes back to the Person section.
const NAME: &str = "Amal N.";

/// Waits for the prompt of field `key` (its help ends with the key `--set` takes; `place` is
/// asked apart), then types `typed` and Enter.
fn answer(pty: &mut Pty, key: &str, typed: &str) {
    match key {
        "place" => pty.expect("Place of the reference"),
        _ => pty.expect(&format!("(--set {key})")),
    }
    pty.keys(&format!("{typed}\r"));
}

/// The kind menu's prompt.
const KIND: &str = "Kind of case";

/// Waits for the menu `prompt`, then picks the entry `typed` filters to.
fn pick(pty: &mut Pty, prompt: &str, typed: &str) {
    pty.expect(prompt);
    pty.keys(&format!("{typed}\r"));
}

/// The case as `case show --json` gives it, less what differs between any two cases.
fn content(device: &Device, reference: &str) -> serde_json::Value {
    let mut case = device.json(&["case", "show", reference]);
    let object = case.as_object_mut().unwrap();
    for key in ["id", "reference", "created_at"] {
        assert!(object.remove(key).is_some(), "{key} missing: {object:?}");
    }
    case
}

#[test]
fn the_form_records_a_full_remains_case_equal_to_the_one_set_makes() {
    let device = Device::init("T03");
    let mut pty = spawn(&device, &["case", "new"], true);
    pty.expect("Passphrase:");
    pty.keys(&format!("{PASSPHRASE}\r"));
    pick(&mut pty, KIND, "remains");
    answer(&mut pty, "place", "KHR");
    for (key, typed) in REMAINS {
        match *key {
            // Shown as `now` for a new case: deleted, then the time typed.
            "found.at" => {
                pty.expect("(--set found.at)");
                pty.keys(&format!("\x7f\x7f\x7f{typed}\r"));
            }
            // Refused at the prompt with the reason, then corrected in place.
            "found.lat" => {
                answer(&mut pty, key, "31,5017");
                pty.expect("use a dot: 31.5017");
                pty.keys(&format!("{}{typed}\r", "\x7f".repeat(7)));
            }
            "person.age_years" => {
                answer(&mut pty, key, "340");
                pty.expect("a whole number from 0 to 130");
                pty.keys(&format!("{}{typed}\r", "\x7f".repeat(3)));
            }
            "incident.date" => {
                answer(&mut pty, key, "2026-11-01/2026-10-30");
                pty.expect("start is on or before its end");
                pty.keys(&format!("{}{typed}\r", "\x7f".repeat(21)));
            }
            _ => answer(&mut pty, key, typed),
        }
    }
    // Nothing is saved before the summary's Save; come back to a section skipped in part.
    pty.expect("Found at (date and time): 2026-11-02T09:40:00+03:00");
    pick(&mut pty, "What now?", "Change");
    pick(&mut pty, "Which section?", "Person");
    answer(&mut pty, "person.name", NAME);
    for key in [
        "person.sex",
        "person.age_group",
        "person.age_years",
        "person.civilian",
        "person.height_cm",
        "person.clothing",
        "person.effects",
        "person.marks",
    ] {
        // Each shows the answer given before; Enter keeps it.
        answer(&mut pty, key, "");
    }
    pty.expect(&format!("Name: {NAME}"));
    pick(&mut pty, "What now?", "Save");
    pty.expect("Recorded KHR-T03-");
    // A second case with the same unlock: Enter on every field, which keeps `found.at` now.
    pick(&mut pty, "Record another case?", "y");
    pick(&mut pty, KIND, "killed");
    answer(&mut pty, "place", "");
    for (key, _) in REMAINS {
        answer(&mut pty, key, "");
    }
    pty.expect("Found at (date and time): 20");
    pick(&mut pty, "What now?", "Save");
    pick(&mut pty, "Record another case?", "n");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(
        transcript.matches("Passphrase").count(),
        1,
        "one unlock for both cases: {transcript}"
    );
    // Labels are words, choices too; the key is named once, for `--set`.
    for human in [
        "Accuracy of the position (m)",
        "How far, in metres, the true position may be from the one given.",
        "Human remains",
        "Skeletonised",
        "Targeted strike",
        "Where and when found",
        "Type of scene: Rubble",
        "Sex: Male",
    ] {
        assert!(transcript.contains(human), "{human}: {transcript}");
    }
    for raw in ["found.accuracy_m - ", "found.accuracy_m:", "person.sex: "] {
        assert!(!transcript.contains(raw), "{raw}: {transcript}");
    }
    assert!(device
        .json(&["case", "drafts"])
        .as_array()
        .unwrap()
        .is_empty());

    let cases = device.json(&["case", "list"]);
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 2, "{cases:?}");
    let by_kind = |kind: &str| {
        let case = cases.iter().find(|c| c["kind"] == kind).unwrap();
        case["reference"].as_str().unwrap().to_owned()
    };
    let mut set = vec![
        "case".to_owned(),
        "new".into(),
        "--kind".into(),
        "remains".into(),
        "--place".into(),
        "KHR".into(),
    ];
    for (key, typed) in REMAINS.iter().filter(|(_, typed)| !typed.is_empty()) {
        let value = match *key {
            "incident.cause" => "targeted_strike",
            _ => typed,
        };
        set.extend(["--set".to_owned(), format!("{key}={value}")]);
    }
    set.extend(["--set".to_owned(), format!("person.name={NAME}")]);
    let set: Vec<&str> = set.iter().map(String::as_str).collect();
    let run = device.command(&set).env("TZ", "UTC-3").output().unwrap();
    assert!(run.status.success(), "{run:?}");
    let with_set = String::from_utf8(run.stdout).unwrap();
    let from_form = content(&device, &by_kind("remains"));
    assert_eq!(from_form, content(&device, with_set.trim()));
    assert_eq!(from_form["found"]["lat"], 31.5017, "{from_form}");
    assert_eq!(from_form["incident"]["cause"], "targeted_strike");

    let bare = device.json(&["case", "show", &by_kind("killed")]);
    assert!(bare.get("person").is_none(), "{bare}");
    let found = bare["found"].as_object().unwrap();
    assert_eq!(found.len(), 1, "only found.at: {bare}");
    let at = found["at"].as_str().unwrap();
    let rfc3339 = time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(at, &rfc3339).unwrap();
    let age = time::OffsetDateTime::now_utc() - at;
    assert!(
        age >= time::Duration::ZERO && age < time::Duration::minutes(10),
        "found.at is when the form was filled: {bare}"
    );
}

#[test]
fn a_discard_leaves_the_cases_as_they_were_and_no_draft_and_a_second_ctrl_c_keeps_one() {
    let device = Device::init("T03");
    let reference = device.new_case(&[
        "--kind",
        "remains",
        "--place",
        "KHR",
        "--set",
        "person.sex=male",
    ]);
    let before = content(&device, &reference);
    let no_drafts = |device: &Device| device.json(&["case", "drafts"]).as_array().unwrap().len();

    // Half-way through a new case, answers given and one being typed.
    let mut pty = spawn(
        &device,
        &["case", "new", "--kind", "remains", "--place", "KHR"],
        false,
    );
    answer(&mut pty, "found.at", "");
    answer(&mut pty, "found.lat", "31.5");
    pty.expect("(--set found.lon)");
    pty.keys("34.4");
    pty.control('c');
    pty.expect("Stop filling this case?");
    pty.keys("y\r");
    pty.expect("discarded: nothing of this case was recorded");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(device.case_count(), 1);
    assert_eq!(no_drafts(&device), 0, "the draft went with the case");

    // At the summary of an edit, a change made: Esc then yes discards; Ctrl-C twice (a
    // person who means to leave) keeps the draft and quits.
    for (key, confirm) in [("\x1b", "y\r"), ("\x03", "\x03")] {
        let mut pty = spawn(&device, &["case", "edit", &reference], false);
        pick(&mut pty, "What now?", "Change");
        pick(&mut pty, "Which section?", "Person");
        answer(&mut pty, "person.name", "Someone");
        for key in [
            "person.sex",
            "person.age_group",
            "person.age_years",
            "person.civilian",
            "person.height_cm",
            "person.clothing",
            "person.effects",
            "person.marks",
        ] {
            answer(&mut pty, key, "");
        }
        pty.expect("Name: Someone");
        pty.expect("What now?");
        pty.keys(key);
        pty.expect("Stop changing this case?");
        pty.keys(confirm);
        if key == "\x1b" {
            pty.expect("discarded: the case is unchanged");
            let (code, transcript) = pty.finish();
            assert_eq!(code, 1, "{transcript}");
            assert_eq!(no_drafts(&device), 0);
        } else {
            pty.expect("Kept as draft ");
            let (code, transcript) = pty.finish();
            assert_eq!(code, 0, "{transcript}");
            let drafts = device.json(&["case", "drafts"]);
            assert_eq!(drafts[0]["case"], reference.as_str(), "{drafts}");
            assert_eq!(drafts[0]["answers"], 1, "{drafts}");
        }
        assert_eq!(
            content(&device, &reference),
            before,
            "{key:?} changed the case"
        );
    }
    assert_eq!(device.case_count(), 1);

    // The kept edit resumes at its summary, with the name typed before; saved, it goes.
    let id = drafts(&device)[0]["id"].as_str().unwrap().to_owned();
    let mut pty = spawn(&device, &["case", "new", "--resume", &id], false);
    pty.expect(&format!("Editing {reference}"));
    pty.expect("Name: Someone");
    pick(&mut pty, "What now?", "Save");
    pty.expect("recorded (change");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(drafts(&device).is_empty());
    let case = device.json(&["case", "show", &reference]);
    assert_eq!(case["person"]["name"], "Someone", "{case}");
}

#[test]
fn no_at_the_discard_question_goes_back_to_the_same_question_and_the_case_is_finished() {
    let device = Device::init("T03");
    let mut pty = spawn(
        &device,
        &["case", "new", "--kind", "remains", "--place", "KHR"],
        false,
    );
    // Esc on a line, then `n`: the same line again.
    pty.expect("(--set found.at)");
    pty.keys("\x1b");
    pty.expect("Stop filling this case?");
    pty.keys("n\r");
    answer(&mut pty, "found.at", "\x7f\x7f\x7f2026-11-02 09:40");
    // Ctrl-C in a menu, then Enter (no is the default): the same menu again.
    for (key, _) in REMAINS
        .iter()
        .skip(1)
        .take_while(|(key, _)| *key != "found.scene")
    {
        answer(&mut pty, key, "");
    }
    pty.expect("(--set found.scene)");
    pty.control('c');
    pty.expect("Stop filling this case?");
    pty.keys("\r");
    pick(&mut pty, "(--set found.scene)", "rubble");
    let rest = REMAINS.iter().skip_while(|(key, _)| *key != "found.scene");
    for (key, _) in rest.skip(1) {
        answer(&mut pty, key, "");
    }
    pty.expect("Type of scene: Rubble");
    pick(&mut pty, "What now?", "Save");
    pty.expect("Recorded KHR-T03-");
    pick(&mut pty, "Record another case?", "n");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");

    let cases = device.json(&["case", "list"]);
    let reference = cases[0]["reference"].as_str().unwrap();
    let case = device.json(&["case", "show", reference]);
    assert_eq!(case["found"]["scene"], "rubble", "{case}");
    assert!(
        case["found"]["at"]
            .as_str()
            .is_some_and(|at| at.starts_with("2026-11-02T09:40:00")),
        "{case}"
    );
}

#[test]
fn a_living_person_is_asked_no_remains_questions_yet_change_a_section_reaches_them() {
    let device = Device::init("T03");
    let mut pty = spawn(&device, &["case", "new"], false);
    pick(&mut pty, KIND, "injured");
    answer(&mut pty, "place", "KHR");
    let injured = REMAINS
        .iter()
        .filter(|(key, _)| !key.starts_with("remains.") && !key.starts_with("forensic."));
    for (key, _) in injured {
        answer(&mut pty, key, "");
    }
    // A person may still want a field of a section not asked.
    pick(&mut pty, "What now?", "Change");
    pick(&mut pty, "Which section?", "Forensic");
    answer(&mut pty, "forensic.examiner", "Dr. A. Haddad");
    for key in [
        "forensic.date",
        "forensic.report_ref",
        "forensic.conclusions",
    ] {
        answer(&mut pty, key, "");
    }
    pty.expect("Forensic examiner: Dr. A. Haddad");
    pick(&mut pty, "What now?", "Save");
    pty.expect("Recorded KHR-T03-");
    pick(&mut pty, "Record another case?", "y");
    let asked_injured = pty.transcript.clone();

    // A missing person: where last seen, not where found.
    pick(&mut pty, KIND, "missing");
    answer(&mut pty, "place", "");
    let missing = REMAINS.iter().map(|(key, _)| *key).filter(|key| {
        ["person.", "incident.", "identification."]
            .iter()
            .any(|p| key.starts_with(p))
    });
    let (person, rest): (Vec<&str>, Vec<&str>) =
        missing.partition(|key| key.starts_with("person."));
    for key in person {
        answer(&mut pty, key, "");
    }
    answer(&mut pty, "last_seen.at", "");
    answer(&mut pty, "last_seen.place", "Khan Younis market");
    answer(&mut pty, "last_seen.lat", "");
    answer(&mut pty, "last_seen.lon", "");
    for key in rest {
        answer(&mut pty, key, "");
    }
    pty.expect("Place last seen: Khan Younis market");
    pick(&mut pty, "What now?", "Save");
    pty.expect("Recorded KHR-T03-");
    pick(&mut pty, "Record another case?", "n");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");

    let before_change = asked_injured.split("Which section?").next().unwrap();
    for unasked in ["remains.", "forensic.", "last_seen."] {
        assert!(
            !before_change.contains(unasked),
            "{unasked}: {before_change}"
        );
    }
    let asked_missing = &transcript[asked_injured.len()..];
    for unasked in ["remains.", "forensic.", "found."] {
        assert!(
            !asked_missing.contains(unasked),
            "{unasked}: {asked_missing}"
        );
    }
    let cases = device.json(&["case", "list"]);
    let by_kind = |kind: &str| {
        let cases = cases.as_array().unwrap();
        let case = cases.iter().find(|c| c["kind"] == kind).unwrap();
        device.json(&["case", "show", case["reference"].as_str().unwrap()])
    };
    let injured = by_kind("injured");
    assert_eq!(
        injured["forensic"]["examiner"], "Dr. A. Haddad",
        "{injured}"
    );
    let missing = by_kind("missing");
    assert_eq!(
        missing["last_seen"]["place"], "Khan Younis market",
        "{missing}"
    );
}

#[test]
fn the_edit_form_shows_current_values_and_saves_only_what_changed() {
    let device = Device::init("T03");
    let reference = device.new_case(&[
        "--kind",
        "remains",
        "--place",
        "KHR",
        "--set",
        "person.sex=male",
        "--set",
        "found.lat=31.5",
        "--set",
        "found.lon=34.25",
    ]);
    let mut pty = spawn(&device, &["case", "edit", &reference], false);
    pick(&mut pty, "What now?", "Change");
    pick(&mut pty, "Which section?", "Where and when");
    answer(&mut pty, "found.at", "");
    // The current value is shown in the line; deleting it clears the field.
    pty.expect("Latitude where found 31.5");
    pty.keys(&format!("{}\r", "\x7f".repeat(4)));
    for key in ["found.lon", "found.alt", "found.accuracy_m"] {
        answer(&mut pty, key, "");
    }
    pick(&mut pty, "What now?", "Change");
    pick(&mut pty, "Which section?", "Person");
    answer(&mut pty, "person.name", "");
    answer(&mut pty, "person.sex", "female");
    for key in [
        "person.age_group",
        "person.age_years",
        "person.civilian",
        "person.height_cm",
        "person.clothing",
        "person.effects",
        "person.marks",
    ] {
        answer(&mut pty, key, "");
    }
    pty.expect("Latitude where found: 31.5 -> (cleared)");
    pty.expect("Sex: Male -> Female");
    pick(&mut pty, "What now?", "Save");
    pty.expect("recorded (change");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(
        !transcript.contains("Longitude where found: 34.25"),
        "{transcript}"
    );

    let case = device.json(&["case", "show", &reference]);
    assert_eq!(case["person"]["sex"], "female", "{case}");
    assert!(case["found"].get("lat").is_none(), "{case}");
    assert_eq!(case["found"]["lon"], 34.25, "{case}");
    let history = device.json(&["case", "history", &reference]);
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
}

#[test]
fn off_a_terminal_the_flags_stay_required_and_no_form_opens() {
    let device = Device::init("T03");
    let before = device.files();
    let run = device.run(&["case", "new", "--set", "found.lat=31.5"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("required arguments were not provided")
            && run.stderr.contains("--kind <KIND>")
            && run.stderr.contains("--place <PLACE>"),
        "{}",
        run.stderr
    );
    let run = device.run(&["case", "new"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--kind <KIND>"), "{}", run.stderr);
    let run = device.run(&["case", "edit", "KHR-T03-AAAA-0001"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("nothing to change"), "{}", run.stderr);
    assert!(device.files() == before);
}

/// The drafts `case drafts --json` lists.
fn drafts(device: &Device) -> Vec<serde_json::Value> {
    device.json(&["case", "drafts"]).as_array().unwrap().clone()
}

#[test]
fn a_form_killed_mid_way_resumes_from_its_draft_with_every_answer_given() {
    let device = Device::init("T03");
    let mut pty = spawn(
        &device,
        &["case", "new", "--kind", "remains", "--place", "KHR"],
        false,
    );
    // `now` cleared with Ctrl-U, then a time typed.
    answer(&mut pty, "found.at", "\x152026-11-02 09:40");
    answer(&mut pty, "found.lat", "31.5");
    answer(&mut pty, "found.lon", "34.4");
    pty.expect("(--set found.alt)");
    pty.keys("12");
    // Killed while the altitude is being typed: as a power cut, nothing runs after.
    let transcript = pty.kill();
    assert!(!transcript.contains("Kept as draft"), "{transcript}");
    assert_eq!(device.case_count(), 0);
    let kept = drafts(&device);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let draft = &kept[0];
    assert_eq!(draft["kind"], "remains", "{draft}");
    assert_eq!(draft["place"], "KHR", "{draft}");
    assert_eq!(draft["case"], serde_json::Value::Null, "{draft}");
    assert_eq!(draft["answers"], 3, "{draft}");
    let listed = device.ok(&["case", "drafts"]);
    let id = draft["id"].as_str().unwrap();
    assert!(
        listed.contains(id) && listed.contains("new remains case at KHR"),
        "{listed}"
    );

    // A new form says that a draft is kept.
    let mut pty = spawn(&device, &["case", "new"], false);
    pty.expect("1 draft(s) kept from earlier forms: `cairn case drafts` lists them.");
    pty.expect(KIND);
    pty.keys("\x1b");
    pty.expect("Stop filling this case?");
    pty.keys("y\r");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 1, "{transcript}");
    assert_eq!(drafts(&device).len(), 1, "the kept draft is still there");

    // Resumed: it goes on at the altitude, the answers before the kill in the summary.
    let mut pty = spawn(&device, &["case", "drafts", "resume", id], false);
    pty.expect("Resuming draft");
    let rest = REMAINS.iter().skip_while(|(key, _)| *key != "found.alt");
    for (key, _) in rest {
        answer(&mut pty, key, "");
    }
    pty.expect("Found at (date and time): 2026-11-02T09:40:00+03:00");
    pty.expect("Latitude where found: 31.5");
    pty.expect("Longitude where found: 34.4");
    pick(&mut pty, "What now?", "Save");
    pty.expect("Recorded KHR-T03-");
    pick(&mut pty, "Record another case?", "n");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(
        !transcript.contains("(--set found.lat)"),
        "an answer given was asked again: {transcript}"
    );
    assert!(drafts(&device).is_empty());
    let cases = device.json(&["case", "list"]);
    let case = device.json(&["case", "show", cases[0]["reference"].as_str().unwrap()]);
    assert_eq!(case["found"]["lat"], 31.5, "{case}");
    assert_eq!(case["found"]["lon"], 34.4, "{case}");
    assert!(case["found"].get("alt").is_none(), "{case}");
    assert_eq!(case["kind"], "remains", "{case}");

    // Off a terminal a draft cannot be resumed; discard takes it away.
    let run = device.run(&["case", "drafts", "resume", id]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = device.run(&["case", "drafts", "discard", "ffff0000"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no draft"), "{}", run.stderr);
}

/// A new killed case with every field asked and none answered, kept as a draft at the
/// summary: its id.
fn kept_draft(device: &Device) -> String {
    let mut pty = spawn(
        device,
        &["case", "new", "--kind", "killed", "--place", "KHR"],
        false,
    );
    answer(&mut pty, "found.at", "\x15");
    answer(&mut pty, "found.lat", "31.5");
    for (key, _) in REMAINS.iter().skip(2) {
        answer(&mut pty, key, "");
    }
    pick(&mut pty, "What now?", "Keep");
    pty.expect("Kept as draft ");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let kept = drafts(device);
    kept.last().unwrap()["id"].as_str().unwrap().to_owned()
}

#[test]
fn saving_a_draft_killed_at_any_instant_leaves_the_draft_or_the_case_never_both() {
    let device = Device::init("T03");
    // (failpoint, whether the case is there after the kill)
    let points = [
        ("draft:case-written", false),
        ("draft:dropped", false),
        ("head:sealed", false),
        ("head:committed", true),
    ];
    let mut cases = 0;
    for (point, saved) in points {
        let id = kept_draft(&device);
        let mut pty = spawn_with(
            &device,
            &["case", "new", "--resume", &id],
            false,
            &[("CAIRN_FAILPOINT", point)],
        );
        pick(&mut pty, "What now?", "Save");
        let transcript = pty.finish_killed();
        assert!(!transcript.contains("Recorded"), "{point}: {transcript}");
        // The vault opens and checks; exactly one of the draft and the case is there.
        device.ok(&["check"]);
        cases += usize::from(saved);
        assert_eq!(device.case_count(), cases, "{point}");
        let left: Vec<_> = drafts(&device)
            .into_iter()
            .filter(|d| d["id"] == id.as_str())
            .collect();
        assert_eq!(left.len(), usize::from(!saved), "{point}: {left:?}");
        if !saved {
            device.ok(&["case", "drafts", "discard", &id]);
        }
    }
    assert!(drafts(&device).is_empty());
    let list = device.json(&["case", "list"]);
    let case = device.json(&["case", "show", list[0]["reference"].as_str().unwrap()]);
    assert_eq!(case["found"]["lat"], 31.5, "{case}");
}

#[test]
fn ctrl_u_ctrl_w_and_the_ends_of_the_line_edit_as_in_a_shell() {
    let device = Device::init("T03");
    let reference = device.new_case(&[
        "--kind",
        "missing",
        "--place",
        "KHR",
        "--set",
        "person.name=Amal N.",
    ]);
    let mut pty = spawn(&device, &["case", "edit", &reference], false);
    pick(&mut pty, "What now?", "Change");
    // A menu's filter takes the same keys: Ctrl-U clears what was typed (in inquire's menu it
    // typed a `u`, and nothing matched).
    pick(&mut pty, "Which section?", "Scene\x15Person");
    // The name shown: Ctrl-U clears it (it used to type a `u`), then the new one.
    pty.expect("Name Amal N.");
    pty.expect("(--set person.name)");
    pty.keys("\x15Sara\r");
    answer(&mut pty, "person.sex", "fem\x17male");
    for key in ["person.age_group", "person.age_years", "person.civilian"] {
        answer(&mut pty, key, "");
    }
    answer(&mut pty, "person.height_cm", "");
    // Ctrl-W takes the last word; Ctrl-A and Home go to the start, Ctrl-E and End to the end;
    // Left and Delete take one character.
    pty.expect("(--set person.clothing)");
    pty.keys("blue jacket\x17coat\x01dark \x05s\x1b[H\x1b[3~d\x1b[F!\x1b[D\x7f\r");
    answer(&mut pty, "person.effects", "");
    answer(&mut pty, "person.marks", "");
    pty.expect("Name: Amal N. -> Sara");
    pick(&mut pty, "What now?", "Save");
    pty.expect("recorded (change");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let case = device.json(&["case", "show", &reference]);
    assert_eq!(case["person"]["name"], "Sara", "{case}");
    assert_eq!(case["person"]["sex"], "male", "{case}");
    assert_eq!(case["person"]["clothing"], "dark blue coat!", "{case}");
}

#[test]
fn every_field_and_choice_value_has_a_label_in_fields() {
    let device = Device::init("T03");
    let fields = device.json(&["fields"]);
    for field in fields.as_array().unwrap() {
        let key = field["key"].as_str().unwrap();
        let label = field["label"].as_str().unwrap();
        assert!(!label.is_empty() && label != key, "{field}");
        if let Some(values) = field["values"].as_array() {
            for value in values {
                let shown = &field["value_labels"][value.as_str().unwrap()];
                assert!(shown.as_str().is_some_and(|s| !s.is_empty()), "{field}");
            }
        }
    }
    let text = device.ok(&["fields"]);
    assert!(text.contains("found.accuracy_m") && text.contains("Accuracy of the position (m)"));
}
