//! Attachments end to end: the real `cairn` binary attaches a 50 MB file in bounded memory,
//! hands it back byte-identical, refuses to hand out a tampered copy, refuses an oversized
//! file at attach time, and stores the same file once.
//!
//! Peak memory is the process's own maximum resident set size as `/usr/bin/time -f %M`
//! reports it for the `cairn` child; where that tool is missing, what `cairn -v` reports of
//! itself (VmHWM) instead.

use std::path::{Path, PathBuf};

use cairn_e2e::Device;
use rand::RngCore;

const MB: usize = 1_000_000;

/// Runs `cairn ARGS` for `device`, asserts success; returns stdout and peak RSS in KiB.
fn measured(device: &Device, args: &[&str]) -> (String, u64) {
    let (run, kib) = device.run_measured(args);
    assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
    (run.stdout, kib)
}

fn random_file(dir: &Path, name: &str, size: usize) -> PathBuf {
    let mut bytes = vec![0u8; size];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

#[test]
fn attach_50_mb_in_bounded_memory_get_it_back_and_never_hand_out_a_tampered_copy() {
    let device = Device::init("T03");
    let reference = device.new_case(&["--kind", "remains", "--place", "KHR"]);
    let work = tempfile::tempdir().expect("temp dir");
    let file = random_file(work.path(), "scene.bin", 50 * MB);
    let sha = sha256_of(&file);
    let file_arg = file.to_str().expect("utf-8 path");

    let (out, kib) = measured(
        &device,
        &[
            "case",
            "attach",
            &reference,
            file_arg,
            "--caption",
            "reference in frame",
        ],
    );
    assert!(out.contains(&sha), "{out}");
    eprintln!("attach of 50 MB: peak RSS {kib} KiB");
    assert!(kib < 100 * 1024, "attach peaked at {kib} KiB, over 100 MB");

    let listed = device.json(&["case", "attachments", &reference]);
    let entry = &listed[0]["attachment"];
    assert_eq!(entry["sha256"], sha.as_str());
    assert_eq!(entry["size"], 50 * MB);
    assert_eq!(entry["chunks"], (50 * MB).div_ceil(16 * 1024));
    assert_eq!(entry["caption"], "reference in frame");
    assert_eq!(listed[0]["here"], true);
    assert!(device
        .ok(&["case", "show", &reference])
        .contains("scene.bin"));
    assert!(device
        .ok(&["case", "history", &reference])
        .contains("attachment"));

    // Back, byte-identical, in bounded memory too.
    let back = work.path().join("back.bin");
    let back_arg = back.to_str().expect("utf-8 path");
    let (_, kib) = measured(
        &device,
        &[
            "case",
            "attachment",
            "get",
            &reference,
            &sha[..16],
            "--out",
            back_arg,
        ],
    );
    eprintln!("get of 50 MB: peak RSS {kib} KiB");
    assert!(kib < 100 * 1024, "get peaked at {kib} KiB");
    assert_eq!(sha256_of(&back), sha);
    assert!(std::fs::read(&back).expect("read") == std::fs::read(&file).expect("read"));

    // The same file again: stored once.
    let again = device.ok(&["case", "attach", &reference, file_arg]);
    assert!(again.contains("already attached"), "{again}");
    assert_eq!(
        device
            .json(&["case", "attachments", &reference])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let db = rusqlite::Connection::open(device.home().join("vault.db")).expect("open db");
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM blob_chunks", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows as usize, (50 * MB).div_ceil(16 * 1024));

    // A chunk altered in the vault's database: get fails naming it, nothing at PATH.
    let sealed: Vec<u8> = db
        .query_row("SELECT sealed FROM blob_chunks WHERE idx = 1000", [], |r| {
            r.get(0)
        })
        .expect("chunk");
    let mut bad = sealed.clone();
    bad[sealed.len() / 2] ^= 0x20;
    db.execute(
        "UPDATE blob_chunks SET sealed = ?1 WHERE idx = 1000",
        [&bad],
    )
    .expect("tamper");
    drop(db);
    let spoiled = work.path().join("spoiled.bin");
    let run = device.run(&[
        "case",
        "attachment",
        "get",
        &reference,
        &sha,
        "--out",
        spoiled.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("scene.bin") && run.stderr.contains("damaged"),
        "{}",
        run.stderr
    );
    assert!(!spoiled.exists());
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_file_over_the_configured_limit_is_refused_at_attach() {
    let device = Device::init("T03");
    let reference = device.new_case(&["--kind", "remains", "--place", "KHR"]);
    let work = tempfile::tempdir().expect("temp dir");
    let config = work.path().join("config.toml");
    std::fs::write(&config, "attachment_limit = 1000\n").expect("config");
    let small = random_file(work.path(), "small.jpg", 1000);
    let big = random_file(work.path(), "big.wav", 1001);
    let config_arg = config.to_str().expect("utf-8 path");
    let run = device.run(&[
        "--config",
        config_arg,
        "case",
        "attach",
        &reference,
        small.to_str().expect("utf-8 path"),
        big.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("big.wav")
            && run.stderr.contains("1001")
            && run.stderr.contains("1000"),
        "{}",
        run.stderr
    );
    // Refused before anything was attached, the file under the limit included.
    assert_eq!(
        device.ok(&["case", "attachments", &reference]),
        "no attachments\n"
    );
    device.ok(&[
        "--config",
        config_arg,
        "case",
        "attach",
        &reference,
        small.to_str().expect("utf-8 path"),
    ]);
    let run = device.run(&["case", "attach", &reference]);
    assert_eq!(run.code, 2, "a missing FILE is a usage error");
}
