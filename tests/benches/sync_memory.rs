//! Peak memory of `cairn sync` alone on the 50,000-change cold pull (issue #24): the real
//! `cairn` binary, a child process of its own, against a real `cairn-server` process, its peak
//! resident memory as the kernel reports it for the child when it exits (`/usr/bin/time -f
//! %M`, from `wait4`'s `ru_maxrss`; see `Device::run_measured`).
//!
//! `cargo bench -p cairn-e2e --bench sync_memory` (release binaries;
//! `CAIRN_BENCH_CASES_PER_DEVICE=50` for a quick run, 500 by default: 20 devices in two teams,
//! 10,000 cases, 50,000 changes, the fleet of `crates/sync/benches/fleet/mod.rs`, which
//! `versus_automerge` shares).
//! Three cold starts, each one `cairn sync`:
//!
//! (a) the office's first sync: it pulls every change one by one (no checkpoint exists yet)
//!     and then, in the same run, makes and publishes its checkpoint;
//! (b) a staff device (it reads every team, as a restored office does) starting cold from the
//!     office's checkpoints;
//! (c) a field device of T01 starting cold from its team's checkpoints.
//!
//! With `CAIRN_BENCH_SPLIT=1`, (a) is measured in two runs instead, to tell where its peak
//! is: the pull alone, stopped by a failpoint right after its last page, then the sync that
//! finishes and publishes the checkpoint.
//!
//! Nothing here asserts time or memory: the figures go into docs/BENCHMARKS.md. It asserts
//! only that each sync brought what it should, so that a figure is never that of a failure.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../../crates/sync/benches/fleet/mod.rs"]
mod fleet;

use std::time::{Duration, Instant};

use cairn_e2e::{Device, Server};
use cairn_protocol::{DeviceLine, OfficeKeys, OFFICE_TEAM};
use fleet::{Setup, CHANGES_PER_CASE, TEAMS};
use time::OffsetDateTime;

/// One measured `cairn sync --json`: its summary, peak RSS and wall time.
struct Measured {
    summary: serde_json::Value,
    peak_kib: u64,
    time: Duration,
}

fn measure(device: &Device, what: &str) -> Measured {
    let (run, peak_kib, time) = timed(device, what, &[]);
    assert_eq!(run.code, 0, "{what}: cairn sync failed: {}", run.stderr);
    let summary = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {}", run.stdout));
    Measured {
        summary,
        peak_kib,
        time,
    }
}

fn timed(device: &Device, what: &str, env: &[(&str, &str)]) -> (cairn_e2e::Run, u64, Duration) {
    eprintln!("{what}: cairn sync");
    let start = Instant::now();
    let (run, peak_kib) = device.run_measured_with(&["sync", "--json"], env);
    (run, peak_kib, start.elapsed())
}

fn count(m: &Measured, field: &str) -> u64 {
    m.summary[field].as_u64().unwrap_or(0)
}

fn main() {
    let per_device = fleet::cases_per_device();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let now = OffsetDateTime::now_utc();

    // The office and its server, both as a person sets them up; the staff and late field
    // device made as `cairn init` makes them.
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let fingerprint = server.fingerprint().to_owned();
    let staff = Device::staff("desk");
    let late = Device::init(TEAMS[0]);

    let started = Instant::now();
    let devices = fleet::build_devices(per_device, now);
    let changes: usize = devices
        .iter()
        .flat_map(|d| &d.cases)
        .map(|c| c.changes.len())
        .sum();
    let cases = changes / CHANGES_PER_CASE;
    eprintln!(
        "built {changes} changes of {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The office's admissions done with the library on its vault (twenty `cairn office admit`
    // would say nothing more); the fleet pushes its changes straight to the server.
    {
        let mut vault = office.vault();
        let office_keys = OfficeKeys::from_keys(vault.keys());
        cairn_sync::point_at_server(&mut vault, &url, &fingerprint, &office_keys).unwrap();
        let client = cairn_sync::Client::new(&url, &fingerprint).unwrap();
        let started = Instant::now();
        fleet::enroll_seal_push(
            &mut Setup {
                rt: &rt,
                client: &client,
                office: &mut vault,
                url: &url,
                fingerprint: &fingerprint,
            },
            &devices,
        );
        eprintln!(
            "sealed and pushed {changes} changes in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // Admitted once every team exists, so that the staff device is granted every key.
        for (device, team) in [(&late, TEAMS[0]), (&staff, OFFICE_TEAM)] {
            let line = DeviceLine::new(&device.keys(), None).unwrap();
            let to = fleet::admit_to(team, &url, &fingerprint);
            let admission = cairn_sync::admit(&mut vault, &line, &to).unwrap();
            let chain = vault.roster_chain().unwrap().statements;
            rt.block_on(client.post_roster(vault.keys(), &chain))
                .unwrap();
            let options = cairn_sync::Options::default();
            rt.block_on(cairn_sync::join(&mut device.vault(), admission, &options))
                .unwrap();
        }
    }
    drop(devices);

    // Where the office's peak is, on asking: its pull alone, the process stopped (abort) by a
    // failpoint right after the last page is applied; then the sync that finishes its run and
    // makes and publishes the checkpoint.
    let split = std::env::var("CAIRN_BENCH_SPLIT").is_ok();
    let mut pull_alone = None;
    if split {
        let pages = changes.div_ceil(cairn_sync::Options::default().page as usize);
        let failpoint = format!("pull:page#{pages}");
        let (run, kib, time) = timed(
            &office,
            "office: cold pull alone",
            &[("CAIRN_FAILPOINT", &failpoint)],
        );
        assert_ne!(run.code, 0, "the failpoint was not reached: {}", run.stdout);
        pull_alone = Some((kib, time));
    }
    let office_pull = measure(&office, "office: cold pull, then its checkpoint");
    let expected = if split { 0 } else { changes };
    // (After the failpoint, nothing is left to pull: it stopped after the last page.)
    assert_eq!(count(&office_pull, "received") as usize, expected);
    assert_eq!(
        office_pull.summary["refused"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(count(&office_pull, "from_checkpoints"), 0);
    let staff_cold = measure(&staff, "staff device: cold start from checkpoints");
    assert_eq!(count(&staff_cold, "from_checkpoints") as usize, cases);
    let field_cold = measure(&late, "field device: cold start from checkpoints");
    assert_eq!(
        count(&field_cold, "from_checkpoints") as usize,
        cases / TEAMS.len()
    );
    let office_noop = measure(&office, "office: nothing to do");
    assert_eq!(count(&office_noop, "received"), 0);

    let mib = |m: &Measured| m.peak_kib as f64 / 1024.0;
    println!();
    println!(
        "{} devices in {} teams, {per_device} cases each, {CHANGES_PER_CASE} changes a case: {cases} cases, {changes} changes; {} `cairn` and `cairn-server` processes",
        devices_count(),
        TEAMS.len(),
        // The binaries are built in the bench's own profile (`cairn_testkit::bin`).
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!();
    println!("| `cairn sync` | peak RSS of the `cairn` process | time | target |");
    println!("| --- | --- | --- | --- |");
    if let Some((kib, time)) = pull_alone {
        println!(
            "| (a1) the office's pull of all {changes} changes one by one, alone (stopped by `CAIRN_FAILPOINT=pull:page#N` after its last page) | **{:.1} MiB** | {:.2} s | < 300 MB |",
            kib as f64 / 1024.0,
            time.as_secs_f64()
        );
    }
    let first = match split {
        true => "(a2) the office's next sync: finishes the pull's run (receipt, checks) and makes and publishes its checkpoint".to_owned(),
        false => format!("(a) the office's first sync: pulls all {changes} changes one by one, then makes and publishes its checkpoint"),
    };
    for (what, m) in [
        (first, &office_pull),
        (
            format!("(b) staff device (every team, as a restored office) cold from the office's checkpoints: {cases} cases"),
            &staff_cold,
        ),
        (
            format!(
                "(c) field device of T01 cold from its team's checkpoints: {} cases",
                cases / TEAMS.len()
            ),
            &field_cold,
        ),
        ("the office again, nothing to do".to_owned(), &office_noop),
    ] {
        println!(
            "| {what} | **{:.1} MiB** | {:.2} s | < 300 MB |",
            mib(m),
            m.time.as_secs_f64()
        );
    }
    println!();
    println!(
        "cairn-server's own peak RSS over the run: {:.1} MiB",
        server.peak_mb()
    );
}

fn devices_count() -> usize {
    TEAMS.len() * fleet::DEVICES_PER_TEAM
}
