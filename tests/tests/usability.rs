//! Friendlier input and the generated documentation, with the real binary: completions and
//! the man page from the clap definitions, moments as people type them, `--at`, values from
//! files and standard input, `--unset`, hints and warnings, place names, references typed in part.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use cairn_e2e::{Device, Run, Server};

/// `cairn` on `device` with the device's clock at +03:00 (POSIX TZ: UTC-3).
fn run_tz(device: &Device, args: &[&str]) -> Run {
    device
        .command(args)
        .env("TZ", "UTC-3")
        .output()
        .unwrap()
        .into()
}

fn ok_tz(device: &Device, args: &[&str]) -> String {
    let run = run_tz(device, args);
    assert_eq!(run.code, 0, "cairn {args:?}: {}", run.stderr);
    run.stdout
}

fn show(device: &Device, reference: &str) -> serde_json::Value {
    device.json(&["case", "show", reference])
}

/// The subcommands `cairn --help` lists.
fn subcommands(device: &Device) -> Vec<String> {
    let help = device.ok(&["--help"]);
    let section = help.split("Commands:").nth(1).unwrap();
    section
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect()
}

/// Checks `script` with `shell -n` when that shell is installed.
fn parses_with(shell: &str, script: &str) {
    let Ok(mut child) = Command::new(shell)
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: {shell} is not installed to parse its completion script");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{shell} -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completions_for_bash_zsh_and_fish_parse_and_know_every_subcommand() {
    let device = Device::empty();
    let commands = subcommands(&device);
    assert!(commands.len() > 15, "{commands:?}");
    assert!(commands.iter().any(|c| c == "unlock") && commands.iter().any(|c| c == "lock"));
    assert!(!commands.iter().any(|c| c == "agent-serve"), "hidden");
    for shell in ["bash", "zsh", "fish"] {
        let script = device.ok(&["completions", shell]);
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} lacks {command}");
        }
        // A choice made a ValueEnum completes its words.
        assert!(script.contains("remains") && script.contains("under_investigation"));
        parses_with(shell, &script);
    }
    let run = device.run(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn the_man_page_names_every_subcommand_and_renders() {
    let device = Device::empty();
    let page = device.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH cairn"),
        "{}",
        &page[..200]
    );
    assert!(page.contains(".TH cairn"));
    for command in subcommands(&device) {
        assert!(page.contains(&command), "the man page lacks {command}");
    }
    assert!(!page.contains("agent-serve"));
    let Ok(mut groff) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: groff is not installed to render the man page");
        return;
    };
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
}

#[test]
fn man_out_writes_a_page_for_every_command() {
    let device = Device::empty();
    let dir = device.home().with_file_name("man");
    std::fs::create_dir(&dir).unwrap();
    device.ok(&["man", "--out", dir.to_str().unwrap()]);
    for command in subcommands(&device) {
        let page = std::fs::read_to_string(dir.join(format!("cairn-{command}.1"))).unwrap();
        assert!(page.contains(".TH"), "{command}");
    }
    let new = std::fs::read_to_string(dir.join("cairn-case-new.1")).unwrap();
    assert!(new.contains("unset") && new.contains("remains"));
    assert!(!dir.join("cairn-agent-serve.1").exists());
    let run = device.run(&["man", "--out", dir.join("absent").to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot write the manual"),
        "{}",
        run.stderr
    );
}

#[test]
fn times_take_a_date_a_local_time_or_now_with_the_devices_offset() {
    let device = Device::init("T03");
    let reference = ok_tz(
        &device,
        &[
            "case",
            "new",
            "--kind",
            "remains",
            "--place",
            "KHR",
            "--set",
            "found.at=2026-11-02 09:40",
        ],
    );
    let reference = reference.trim();
    assert_eq!(
        show(&device, reference)["found"]["at"],
        "2026-11-02T09:40:00+03:00"
    );
    ok_tz(
        &device,
        &["case", "edit", reference, "--set", "found.at=2026-11-01"],
    );
    assert_eq!(
        show(&device, reference)["found"]["at"],
        "2026-11-01T00:00:00+03:00"
    );
    ok_tz(
        &device,
        &["case", "edit", reference, "--set", "found.at=now"],
    );
    let at = show(&device, reference)["found"]["at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(at.ends_with("+03:00") && at.len() == 25, "{at}");
    // RFC 3339 as before.
    ok_tz(
        &device,
        &[
            "case",
            "edit",
            reference,
            "--set",
            "found.at=2026-11-01T08:00:00Z",
        ],
    );
    assert_eq!(
        show(&device, reference)["found"]["at"],
        "2026-11-01T08:00:00Z"
    );

    let before = device.files();
    let run = run_tz(
        &device,
        &["case", "edit", reference, "--set", "found.at=yesterday"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("YYYY-MM-DD HH:MM") && run.stderr.contains("+03:00"),
        "{}",
        run.stderr
    );
    assert_eq!(before, device.files());
}

#[test]
fn custody_and_source_records_say_when_they_happened() {
    let device = Device::init("T03");
    let reference = device.new_case(&["--kind", "remains", "--place", "KHR"]);
    ok_tz(
        &device,
        &[
            "case",
            "custody",
            &reference,
            "--to",
            "morgue",
            "--at",
            "2026-11-01 10:15",
        ],
    );
    ok_tz(
        &device,
        &[
            "case",
            "source",
            &reference,
            "--type",
            "witness",
            "--consent",
            "yes",
            "--at",
            "2026-10-30",
        ],
    );
    ok_tz(&device, &["case", "custody", &reference, "--to", "lab"]);
    let case = show(&device, &reference);
    assert_eq!(case["custody"][0]["at"], "2026-11-01T10:15:00+03:00");
    assert_eq!(case["sources"][0]["at"], "2026-10-30T00:00:00+03:00");
    // Without --at, the record's time is now.
    assert_ne!(case["custody"][1]["at"], case["custody"][0]["at"]);

    let before = device.files();
    for bad in ["2026-13-01", "10:15", ""] {
        let run = run_tz(
            &device,
            &["case", "custody", &reference, "--to", "x", "--at", bad],
        );
        assert_eq!(run.code, 2, "{bad:?}: {run:?}");
        assert!(run.stderr.contains("--at"), "{}", run.stderr);
    }
    assert_eq!(before, device.files());
}

#[test]
fn long_text_comes_from_a_file_or_standard_input() {
    let device = Device::init("T03");
    let reference = device.new_case(&["--kind", "killed", "--place", "KHR"]);
    // A 205 KB narrative in Ge'ez script (three bytes a letter): far beyond what an argument
    // list carries, within the 100,000 characters a field holds.
    let word = "ሰላም ";
    let narrative: String = word.repeat(205_000 / word.len());
    assert!(narrative.len() > 200_000 && narrative.chars().count() < 100_000);
    let file = device.home().with_file_name("narrative.txt");
    std::fs::write(&file, format!("{narrative}\n")).unwrap();
    let set = format!("incident.narrative=@{}", file.display());
    device.ok(&["case", "edit", &reference, "--set", &set]);
    assert_eq!(
        show(&device, &reference)["incident"]["narrative"],
        narrative
    );

    // Standard input, once per command.
    let mut child = device
        .command(&["case", "edit", &reference, "--set", "remains.marks=@-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"scar on the left hand\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(
        show(&device, &reference)["remains"]["marks"],
        "scar on the left hand"
    );
    // @@ is a literal @.
    device.ok(&["case", "edit", &reference, "--set", "person.name=@@handle"]);
    assert_eq!(show(&device, &reference)["person"]["name"], "@handle");

    let before = device.files();
    let missing = format!(
        "incident.narrative=@{}",
        file.with_extension("none").display()
    );
    let too_long = device.home().with_file_name("ascii.txt");
    std::fs::write(&too_long, "a".repeat(205_000)).unwrap();
    let ascii = format!("incident.narrative=@{}", too_long.display());
    let huge = device.home().with_file_name("huge.txt");
    std::fs::write(&huge, vec![b'a'; 5_000_000]).unwrap();
    let huge = format!("incident.narrative=@{}", huge.display());
    let binary = device.home().with_file_name("binary.bin");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x81]).unwrap();
    let binary = format!("incident.narrative=@{}", binary.display());
    for (set, says) in [
        (missing.as_str(), "cannot read"),
        (ascii.as_str(), "100000 characters"),
        (huge.as_str(), "larger than any field holds"),
        (binary.as_str(), "not UTF-8"),
        ("incident.narrative=@-", ""),
    ] {
        let run = device.run(&[
            "case",
            "edit",
            &reference,
            "--set",
            set,
            "--set",
            "injuries=@-",
        ]);
        assert_eq!(run.code, 2, "{set}: {run:?}");
        assert!(run.stderr.contains(says), "{set}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"));
    }
    assert_eq!(before, device.files());
}

#[test]
fn unset_clears_a_wrong_choice_but_never_the_kind() {
    let device = Device::init("T03");
    let reference = device.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "person.sex=male",
        "--set",
        "found.lat=31.5",
        "--set",
        "injuries=burns",
    ]);
    device.ok(&[
        "case",
        "edit",
        &reference,
        "--unset",
        "person.sex",
        "--unset",
        "found.lat",
        "--unset",
        "injuries",
    ]);
    let case = show(&device, &reference);
    assert!(case["person"].get("sex").is_none(), "{case}");
    assert!(case["found"].get("lat").is_none(), "{case}");
    assert_eq!(case["injuries"].as_str().unwrap_or(""), "");
    let before = device.files();
    for key in ["kind", "status", "persn.sex", "notes"] {
        let run = device.run(&["case", "edit", &reference, "--unset", key]);
        assert_eq!(run.code, 2, "{key}: {run:?}");
    }
    assert_eq!(before, device.files());
}

#[test]
fn a_decimal_comma_is_answered_with_use_a_dot() {
    let device = Device::init("T03");
    let run = device.run(&[
        "case",
        "new",
        "--kind",
        "remains",
        "--place",
        "KHR",
        "--set",
        "found.lat=31,5",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("use a dot: 31.5"), "{}", run.stderr);
    assert_eq!(device.case_count(), 0);
}

#[test]
fn a_future_incident_date_is_recorded_with_a_warning() {
    let device = Device::init("T03");
    let run = device.run(&[
        "case",
        "new",
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2030-01-01",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("after today"),
        "{}",
        run.stderr
    );
    let reference = run.stdout.trim();
    assert_eq!(show(&device, reference)["incident"]["date"], "2030-01-01");
    // A custody record said to happen next year is recorded, with the same warning.
    let run = device.run(&[
        "case",
        "custody",
        reference,
        "--to",
        "morgue",
        "--at",
        "2030-01-01 10:00",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("--at") && run.stderr.contains("after today"),
        "{}",
        run.stderr
    );
    // A past date says nothing.
    let run = device.run(&[
        "case",
        "edit",
        reference,
        "--set",
        "incident.date=2024-01-01/2024-02-01",
    ]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "");
}

#[test]
fn a_weak_passphrase_is_warned_about_at_init_not_refused() {
    let weak = Device::empty();
    let run: Run = weak
        .command(&["init", "--team", "T03", "--kdf-cost", "4"])
        .env("CAIRN_PASSPHRASE", "a")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("weak"), "{}", run.stderr);
    assert!(
        !run.stderr.contains(" a "),
        "the passphrase is never echoed"
    );
    let strong = Device::empty();
    let run: Run = strong
        .command(&["init", "--team", "T03", "--kdf-cost", "4"])
        .env("CAIRN_PASSPHRASE", "quartz lantern ferry oblique hummus")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0);
    assert!(!run.stderr.contains("weak"), "{}", run.stderr);
}

#[test]
fn places_have_names_and_a_name_stands_for_its_code() {
    let device = Device::init("T03");
    let config = device.home().with_file_name("config.toml");
    std::fs::write(
        &config,
        "[places]\nKHR = \"Khan Younis\"\nGZA = \"Gaza City\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let places = device.json(&["--config", &config, "places"]);
    assert_eq!(
        places,
        serde_json::json!([
            {"code": "GZA", "name": "Gaza City", "from": "config"},
            {"code": "KHR", "name": "Khan Younis", "from": "config"}
        ])
    );
    assert!(device
        .ok(&["--config", &config, "places"])
        .contains("KHR     Khan Younis"));
    let reference = device.ok(&[
        "--config",
        &config,
        "case",
        "new",
        "--kind",
        "killed",
        "--place",
        "khan younis",
    ]);
    assert!(reference.starts_with("KHR-T03-"), "{reference}");
    // Codes still work; an unknown name says where names come from.
    assert!(device
        .ok(&["--config", &config, "case", "new", "--kind", "killed", "--place", "RFH"])
        .starts_with("RFH-"));
    let run = device.run(&[
        "--config",
        &config,
        "case",
        "new",
        "--kind",
        "killed",
        "--place",
        "Deir al-Balah",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cairn places"), "{}", run.stderr);
    // Without a configuration: an empty list, and a clear word.
    assert_eq!(device.json(&["places"]), serde_json::json!([]));
    assert!(device.ok(&["places"]).contains("[places]"));
    // A bad code in the configuration is named.
    std::fs::write(&config, "[places]\n\"K H\" = \"x\"\n").unwrap();
    let run = device.run(&["--config", &config, "places"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("[places]"), "{}", run.stderr);
}

/// A reference may be typed in part, from a `-` to its end (`0001`, `7kq2-0001`), where it
/// names one case: by every command that takes one. Where it ends several references, it is
/// refused with them named.
#[test]
fn a_reference_is_taken_in_part_where_it_names_one_case() {
    let office = Device::office();
    let server = Server::start(&office);
    let (a, b) = (Device::init("T03"), Device::init("T03"));
    for device in [&a, &b] {
        server.join(&office, device, "T03", &server.url());
    }
    let first = a.new_case(&["--kind", "killed", "--place", "KHR"]);
    let second = b.new_case(&["--kind", "injured", "--place", "KHR"]);
    let third = a.new_case(&["--kind", "missing", "--place", "GAZ"]);
    for device in [&a, &b, &office] {
        device.ok(&["sync"]);
    }
    // Each device numbers its own cases: both first cases end in 0001.
    assert!(first.ends_with("-0001") && second.ends_with("-0001"));
    let run = office.run(&["case", "show", "0001"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for expected in [&first, &second] {
        assert!(run.stderr.contains(expected.as_str()), "{}", run.stderr);
    }
    assert!(
        run.stderr.contains("type more of the reference"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // Unique tails, in any letter case, name their case everywhere.
    let (_, tail) = first.split_once("-T03-").unwrap();
    assert_eq!(show(&office, &tail.to_lowercase())["reference"], first);
    assert_eq!(show(&office, "0002")["reference"], third);
    office.ok(&["case", "edit", "0002", "--note", "by its number"]);
    assert_eq!(show(&office, &third)["notes"][0]["text"], "by its number");
    let history = office.ok(&["case", "history", "0002"]);
    assert!(history.trim_end().ends_with("note"), "{history}");

    // Only from a `-`, and a tail that ends no reference is unknown as before.
    for unknown in ["001", "9999"] {
        let run = office.run(&["case", "show", unknown]);
        assert_eq!(run.code, 1);
        assert!(
            run.stderr.contains(&format!("no case `{unknown}`")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn the_office_s_init_prints_its_public_keys_for_the_server() {
    let office = Device::empty();
    let said = office.ok(&["init", "--office", "--kdf-cost", "4"]);
    let keys = office.ok(&["office", "pubkey"]);
    assert!(keys.starts_with("cairn-office"), "{keys}");
    assert!(said.ends_with(&keys), "{said}");
}
