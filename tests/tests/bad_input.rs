//! Every bad input ends in one clear sentence, a non-zero exit code, and an unchanged vault.

use cairn_e2e::{Device, Run};

fn assert_refused(device: &Device, args: &[&str], code: i32, message: &str) -> Run {
    let before = device.files();
    let run = device.run(args);
    assert_eq!(run.code, code, "cairn {args:?}: {}", run.stderr);
    assert!(
        run.stderr.contains(message),
        "cairn {args:?}: expected `{message}` in: {}",
        run.stderr
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one sentence, no trace: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(before, device.files(), "cairn {args:?} changed the vault");
    run
}

fn device_with_case() -> (Device, String) {
    let device = Device::init("T03");
    let reference = device.new_case(&["--kind", "injured", "--place", "KHR"]);
    (device, reference)
}

#[test]
fn wrong_passphrase() {
    let (device, reference) = device_with_case();
    let before = device.files();
    let run: Run = device
        .command(&["case", "show", &reference])
        .env("CAIRN_PASSPHRASE", "not the passphrase")
        .output()
        .expect("run")
        .into();
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
    assert_eq!(before, device.files());
}

/// A flag typed on the command line wins over the environment: a wrong CAIRN_PASSPHRASE
/// (left in a shell's profile) never hides the file the person named, nor does the
/// configuration's file hide the environment.
#[test]
fn an_explicit_passphrase_file_wins_over_the_environment() {
    let (device, reference) = device_with_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, format!("{}\n", cairn_e2e::PASSPHRASE)).expect("write");
    std::fs::write(&wrong, "not the passphrase\n").expect("write");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("passphrase_file = {:?}\n", wrong.display().to_string()),
    )
    .expect("write");
    let show = |flag: Option<&std::path::Path>, env: &[(&str, &std::ffi::OsStr)]| -> Run {
        let mut args = vec!["case", "show", &reference];
        let flag = flag.map(|p| p.display().to_string());
        if let Some(path) = &flag {
            args.extend(["--passphrase-file", path]);
        }
        let mut cmd = device.command(&args);
        cmd.env_remove("CAIRN_PASSPHRASE");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.output().expect("run").into()
    };
    let wrong_env = (
        "CAIRN_PASSPHRASE",
        std::ffi::OsStr::new("not the passphrase"),
    );
    let wrong_env_file = ("CAIRN_PASSPHRASE_FILE", wrong.as_os_str());
    let config_env = ("CAIRN_CONFIG", config.as_os_str());
    for env in [
        vec![wrong_env],
        vec![wrong_env_file],
        vec![wrong_env, wrong_env_file, config_env],
    ] {
        let run = show(Some(&right), &env);
        assert_eq!(
            run.code, 0,
            "--passphrase-file lost to {env:?}: {}",
            run.stderr
        );
    }
    // Without the flag, the environment wins over the configuration's file.
    let right_env = (
        "CAIRN_PASSPHRASE",
        std::ffi::OsStr::new(cairn_e2e::PASSPHRASE),
    );
    let run = show(None, &[right_env, config_env]);
    assert_eq!(
        run.code, 0,
        "CAIRN_PASSPHRASE lost to the file: {}",
        run.stderr
    );
    let run = show(None, &[wrong_env, config_env]);
    assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
}

#[test]
fn no_vault_says_run_init() {
    let device = Device::empty();
    let run = device.run(&["case", "list"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cairn init"), "{}", run.stderr);
    assert!(
        !device.home().exists(),
        "a failed command must not create the home"
    );
}

#[test]
fn init_over_an_existing_vault() {
    let (device, _) = device_with_case();
    assert_refused(
        &device,
        &["init", "--team", "T04", "--kdf-cost", "4"],
        1,
        "already exists",
    );
}

#[test]
fn unknown_field_suggests_the_nearest() {
    let (device, reference) = device_with_case();
    let run = assert_refused(
        &device,
        &["case", "edit", &reference, "--set", "persn.name=A"],
        2,
        "unknown field",
    );
    assert!(run.stderr.contains("person.name"), "{}", run.stderr);
    assert_refused(
        &device,
        &[
            "case",
            "new",
            "--kind",
            "killed",
            "--place",
            "KHR",
            "--set",
            "incident.cuase=captivity",
        ],
        2,
        "incident.cause",
    );
}

#[test]
fn values_outside_their_range_or_list() {
    let (device, reference) = device_with_case();
    let run = assert_refused(
        &device,
        &["case", "edit", &reference, "--set", "found.lat=91"],
        2,
        "found.lat",
    );
    assert!(
        run.stderr.contains("-90") && run.stderr.contains("90"),
        "{}",
        run.stderr
    );
    let run = assert_refused(
        &device,
        &[
            "case",
            "edit",
            &reference,
            "--set",
            "incident.cause=bombing",
        ],
        2,
        "targeted_strike",
    );
    assert!(run.stderr.contains("captivity"), "{}", run.stderr);
    assert_refused(
        &device,
        &["case", "edit", &reference, "--set", "found.accuracy_m=-1"],
        2,
        "found.accuracy_m",
    );
    assert_refused(
        &device,
        &[
            "case",
            "edit",
            &reference,
            "--set",
            "incident.date=2026-02-30",
        ],
        2,
        "incident.date",
    );
    // A choice clap knows (a ValueEnum) is refused by clap, which lists the choices.
    let before = device.files();
    let run = device.run(&["case", "new", "--kind", "dead", "--place", "KHR"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run
        .stderr
        .contains("possible values: killed, injured, missing, remains, detained"));
    assert_eq!(before, device.files());
    assert_refused(
        &device,
        &["case", "edit", &reference, "--set", "novalue"],
        2,
        "key=value",
    );
}

#[test]
fn unknown_reference() {
    let (device, _) = device_with_case();
    assert_refused(
        &device,
        &["case", "show", "KHR-T03-ZZZZ-9999"],
        1,
        "no case `KHR-T03-ZZZZ-9999`",
    );
    assert_refused(
        &device,
        &["case", "edit", "KHR-T03-ZZZZ-9999", "--note", "x"],
        1,
        "cairn case list",
    );
}

#[test]
fn truncated_or_corrupted_key_file() {
    let (device, reference) = device_with_case();
    let path = device.home().join("keys.age");
    let good = std::fs::read(&path).expect("key file");
    for damaged in [good[..good.len() / 2].to_vec(), {
        let mut b = good.clone();
        let i = b.len() - 20;
        b[i] ^= 0x55;
        b
    }] {
        std::fs::write(&path, &damaged).expect("damage");
        let run = assert_refused(
            &device,
            &["case", "show", &reference],
            1,
            "key file is damaged",
        );
        assert!(!run.stderr.contains("passphrase"), "{}", run.stderr);
    }
    std::fs::write(&path, &good).expect("restore");
    device.ok(&["case", "show", &reference]);
}

#[test]
fn truncated_or_corrupted_vault_database() {
    let (device, reference) = device_with_case();
    let path = device.home().join("vault.db");
    let good = std::fs::read(&path).expect("db");
    let truncated = good[..good.len() / 3].to_vec();
    let mut garbage = good.clone();
    for b in garbage.iter_mut().skip(100) {
        *b = 0xA5;
    }
    for damaged in [
        truncated,
        garbage,
        b"not a database at all, just text".to_vec(),
    ] {
        std::fs::write(&path, &damaged).expect("damage");
        assert_refused(&device, &["case", "show", &reference], 1, "damaged");
    }
    std::fs::write(&path, &good).expect("restore");
    device.ok(&["case", "show", &reference]);
}

#[test]
fn sealed_change_with_a_bad_signature_is_reported() {
    let (device, reference) = device_with_case();
    device.ok(&["case", "edit", &reference, "--note", "second change"]);
    {
        let (author, seq, mut sealed) = device.sealed_changes("seq = 2").remove(0);
        let last = sealed.len() - 1;
        sealed[last] ^= 0x01;
        device.replace_sealed_change(&author, seq, &sealed);
    }
    let run = assert_refused(&device, &["check"], 1, "does not verify");
    assert!(run.stderr.contains("change 2"), "{}", run.stderr);
}
