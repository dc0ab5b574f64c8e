//! The office at scale (issue #8): an office vault of 100,000 cases, made with one
//! `cairn case import`, then the commands an analyst runs on it, each a real `cairn` process.
//!
//! Run: `cargo bench -p cairn-collector --bench office_scale`
//! (`CAIRN_BENCH_CASES=10000` for a quick run). A second office vault then holds casualty lists
//! as several sources write them (`cairn_link::generate`, as many rows), for `office match`. The key file is made at a low scrypt cost so
//! that the figures are the commands' own work, not the unlock (which `cairn unlock` will
//! take off every command); the unlock alone is timed with `cairn check` on an empty vault.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CAUSES: [&str; 4] = ["targeted_strike", "captivity", "other_violence", "unknown"];
const KINDS: [&str; 4] = ["killed", "injured", "missing", "remains"];
const STATUSES: [&str; 4] = ["alleged", "under_investigation", "confirmed", "rejected"];

fn main() {
    let cases: usize = std::env::var("CAIRN_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let run_in = |home: &Path, args: &[&str]| -> (Duration, String, u64) {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("-v")
            .args(args)
            .env("CAIRN_HOME", home)
            .env("CAIRN_PASSPHRASE", "bench passphrase")
            .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run cairn");
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cairn {args:?}: {stderr}");
        (
            took,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            peak_kib(&stderr),
        )
    };
    let home = dir.path().join("home");
    let run = |args: &[&str]| run_in(&home, args);
    run(&["init", "--office", "--kdf-cost", "4"]);
    let (unlock, _, _) = run(&["check"]);

    let csv = dir.path().join("cases.csv");
    write_cases(&csv, cases);
    let (import, _, import_kib) = run(&["case", "import", csv.to_str().expect("path")]);

    println!();
    println!(
        "Office vault of {cases} cases (one `cairn case import`, {:.1} s: {:.0} cases/s, peak {} MiB). Each command a real `cairn` process; unlock at scrypt cost 4 ({:.0} ms, `cairn check` of an empty vault) included.",
        import.as_secs_f64(),
        cases as f64 / import.as_secs_f64(),
        import_kib / 1024,
        unlock.as_secs_f64() * 1000.0
    );
    println!();
    println!("| command | time | peak memory | output |");
    println!("| --- | --- | --- | --- |");
    let out = dir.path().join("export");
    let out = out.to_str().expect("path");
    let exported = dir.path().join("edition");
    let exported = exported.to_str().expect("path");
    let commands: [(&str, Vec<&str>); 10] = [
        (
            "case list --status confirmed --json",
            vec!["case", "list", "--status", "confirmed", "--json"],
        ),
        (
            "report --from 2024-01-01 --to 2024-12-31 --json",
            vec![
                "report",
                "--from",
                "2024-01-01",
                "--to",
                "2024-12-31",
                "--json",
            ],
        ),
        ("office inbox --json", vec!["office", "inbox", "--json"]),
        (
            "export --format csv",
            vec!["export", "--format", "csv", "--out", out],
        ),
        (
            "case list --json (every case)",
            vec!["case", "list", "--json"],
        ),
        (
            "report publish --from 2024-01-01 --to 2024-12-31",
            vec![
                "report",
                "publish",
                "--from",
                "2024-01-01",
                "--to",
                "2024-12-31",
                "--title",
                "Bench",
            ],
        ),
        (
            "report show latest --json",
            vec!["report", "show", "latest", "--json"],
        ),
        (
            "case list --status confirmed --json (an edition kept)",
            vec!["case", "list", "--status", "confirmed", "--json"],
        ),
        (
            "report --from 2024-01-01 --to 2024-12-31 --since latest --json",
            vec![
                "report",
                "--from",
                "2024-01-01",
                "--to",
                "2024-12-31",
                "--since",
                "latest",
                "--json",
            ],
        ),
        (
            "export --edition latest --format csv",
            vec![
                "export",
                "--edition",
                "latest",
                "--format",
                "csv",
                "--out",
                exported,
            ],
        ),
    ];
    for (what, args) in commands {
        let (took, stdout, kib) = run(&args);
        println!(
            "| `cairn {what}` | {:.2} s | {} MiB | {} bytes |",
            took.as_secs_f64(),
            kib / 1024,
            stdout.len()
        );
    }

    // Record linkage on lists as sources write them.
    let lists = dir.path().join("lists");
    let run = |args: &[&str]| run_in(&lists, args);
    run(&["init", "--office", "--kdf-cost", "4"]);
    let csv = dir.path().join("lists.csv");
    let generated = cairn_link::generate::generate(cases, 1);
    generated
        .write_csv(std::fs::File::create(&csv).expect("csv"))
        .expect("write");
    let (import, _, _) = run(&["case", "import", csv.to_str().expect("path")]);
    println!();
    println!(
        "Office vault of {cases} generated list rows (imported in {:.1} s).",
        import.as_secs_f64()
    );
    println!();
    println!("| command | time | peak memory | output |");
    println!("| --- | --- | --- | --- |");
    for (what, args) in [
        ("office match --json", vec!["office", "match", "--json"]),
        (
            "report --include-alleged --json",
            vec![
                "report",
                "--from",
                "2019-01-01",
                "--to",
                "2025-12-31",
                "--include-alleged",
                "--json",
            ],
        ),
    ] {
        let (took, stdout, kib) = run(&args);
        let pairs = serde_json::from_str::<serde_json::Value>(&stdout)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len));
        println!(
            "| `cairn {what}` | {:.2} s | {} MiB | {} bytes{} |",
            took.as_secs_f64(),
            kib / 1024,
            stdout.len(),
            pairs.map(|n| format!(", {n} pairs")).unwrap_or_default()
        );
    }
}

/// A CSV of `n` office cases, a third confirmed, spread over 2024 and four causes.
fn write_cases(path: &Path, n: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("csv"));
    writeln!(
        file,
        "place,kind,status,status_basis,incident.date,incident.cause,person.civilian,identification.status,found.lat,found.lon"
    )
    .expect("write");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let status = STATUSES[(next() % 4) as usize];
        let basis = if matches!(status, "confirmed" | "rejected") {
            "certificate"
        } else {
            ""
        };
        writeln!(
            file,
            "KHR,{},{status},{basis},2024-{:02}-{:02},{},{},{},{:.4},{:.4}",
            KINDS[i % 4],
            1 + next() % 12,
            1 + next() % 28,
            CAUSES[(next() % 4) as usize],
            ["yes", "no", "unknown"][(next() % 3) as usize],
            ["unidentified", "preliminary", "confirmed"][(next() % 3) as usize],
            31.0 + (next() % 10_000) as f64 / 10_000.0,
            34.0 + (next() % 10_000) as f64 / 10_000.0,
        )
        .expect("write");
    }
    file.flush().expect("flush");
}

/// The peak memory `cairn -v` reports for itself, in KiB (0 if it did not say).
fn peak_kib(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| l.split("peak_rss_kib=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .next_back()
        .unwrap_or(0)
}
