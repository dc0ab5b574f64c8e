//! The soak: real `cairn` and `cairn-server` processes killed (SIGKILL) at random points, links
//! cut at random byte counts and disks filled, and after each fault the checks a search team
//! depends on: nothing acknowledged lost, nothing stored twice, every replica's cases the same,
//! `cairn check` green, the vault opens and takes a new case, every message true.
//! docs/RELIABILITY.md says what each scenario does.
//!
//! The short mode is what `cargo test` runs: a few faults per scenario. The long mode runs
//! every scenario in turn until it reaches a number of kills, and prints the table of
//! docs/RELIABILITY.md:
//!
//! ```text
//! CAIRN_SOAK=long CAIRN_SOAK_KILLS=1000 cargo test -p cairn-e2e --test soak long -- --nocapture
//! ```
//!
//! Every scenario prints its seed and each step; `CAIRN_SOAK_SEED=N` draws the same kill
//! points, cut points and sizes again (when a kill lands still depends on the machine).

mod dataset;
mod soak {
    pub mod harness;
    pub mod postgres;
    pub mod world;

    pub mod attach;
    pub mod disk;
    pub mod field;
    pub mod import;
    pub mod link;
    pub mod office;
    pub mod server;
}

use soak::harness::{base_seed, long_target, Soak, Tally};

type Scenario = fn(&mut Soak);

/// Every scenario, by name.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("field-sync-killed", soak::field::scenario),
    ("office-pull-killed", soak::office::scenario),
    ("server-killed-sqlite", soak::server::sqlite),
    ("server-killed-postgres", soak::server::postgres),
    ("two-servers-one-postgres", soak::server::two_servers),
    ("link-cut", soak::link::scenario),
    ("device-disk-full", soak::disk::device),
    ("server-disk-full", soak::disk::server),
    ("attachment-killed", soak::attach::scenario),
    ("import-killed", soak::import::scenario),
];

/// One scenario in the short mode; nothing in the long one (the `long` test runs them all).
fn short(name: &'static str) {
    if long_target().is_some() {
        println!("soak {name}: the long mode runs it (test `long`)");
        return;
    }
    let (_, scenario) = SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a scenario of that name");
    let mut soak = Soak::new(name, base_seed(), false);
    scenario(&mut soak);
    soak.finish();
}

#[test]
fn field_sync_killed() {
    short("field-sync-killed");
}

#[test]
fn office_pull_killed() {
    short("office-pull-killed");
}

#[test]
fn server_killed_sqlite() {
    short("server-killed-sqlite");
}

#[test]
fn server_killed_postgres() {
    short("server-killed-postgres");
}

#[test]
fn two_servers_one_postgres() {
    short("two-servers-one-postgres");
}

#[test]
fn link_cut() {
    short("link-cut");
}

#[test]
fn device_disk_full() {
    short("device-disk-full");
}

#[test]
fn server_disk_full() {
    short("server-disk-full");
}

#[test]
fn attachment_killed() {
    short("attachment-killed");
}

#[test]
fn import_killed() {
    short("import-killed");
}

/// The long mode: every scenario in turn until the kills reach `CAIRN_SOAK_KILLS` (1000), then
/// the table.
#[test]
fn long() {
    let Some(target) = long_target() else {
        println!("soak long mode: skipped (set CAIRN_SOAK=long, and CAIRN_SOAK_KILLS)");
        return;
    };
    let seed = base_seed();
    let started = std::time::Instant::now();
    let mut soaks: Vec<(Soak, Scenario)> = SCENARIOS
        .iter()
        .map(|(name, scenario)| (Soak::new(name, seed, true), *scenario))
        .collect();
    let kills = |soaks: &[(Soak, Scenario)]| soaks.iter().map(|(s, _)| s.tally.kills).sum::<u64>();
    let mut rounds = 0;
    while rounds == 0 || kills(&soaks) < target {
        rounds += 1;
        let before = kills(&soaks);
        for i in 0..soaks.len() {
            let (soak, scenario) = &mut soaks[i];
            scenario(soak);
            println!(
                "soak long: round {rounds}, {} kills so far, {:.0} s",
                kills(&soaks),
                started.elapsed().as_secs_f64()
            );
        }
        assert!(
            kills(&soaks) > before,
            "a whole round of the soak killed nothing"
        );
    }
    let mut total = Tally::default();
    let mut table = vec![Tally::HEADER.to_string()];
    for (soak, _) in &soaks {
        total.add(&soak.tally);
        table.push(soak.tally.row(soak.name));
    }
    table.push(total.row("**all**"));
    println!(
        "soak long: seed {seed}, {rounds} round(s), {:.0} s\n{}",
        started.elapsed().as_secs_f64(),
        table.join("\n")
    );
    let findings: Vec<String> = soaks
        .iter()
        .flat_map(|(s, _)| s.findings().to_vec())
        .collect();
    assert!(
        findings.is_empty(),
        "the soak found {} fault(s) (replay with CAIRN_SOAK_SEED={seed}):\n{}",
        findings.len(),
        findings.join("\n")
    );
}
