//! The soak: real `cairn` and `cairn-server` processes killed (SIGKILL) at random points, links
//! cut at random byte counts and disks filled, and after each fault the checks a search team
//! depends on: nothing acknowledged lost, nothing stored twice, every replica's cases the same,
//! `cairn check` green, the vault opens and takes a new case, every message true.
//! docs/RELIABILITY.md says what each scenario does.
//!
//! The short mode is what `cargo test` runs: a few faults per scenario. The long mode runs rounds of every scenario, two at a time, until the kills reach a
//! number, and prints the table of docs/RELIABILITY.md:
//!
//! ```text
//! CAIRN_SOAK=long CAIRN_SOAK_KILLS=1000 cargo test -p cairn-e2e --test soak long -- --nocapture
//! ```
//!
//! Every scenario prints its seed and each step; `CAIRN_SOAK_SEED=N` draws the same kill
//! points, cut points and sizes again (when a kill lands still depends on the machine);
//! `CAIRN_SOAK_ONLY=name,name` runs only those scenarios in the long mode.

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

/// The long mode's table: a row per scenario and their sum.
fn table(soaks: &[(Soak, Scenario)]) -> String {
    let mut total = Tally::default();
    let mut rows = vec![Tally::HEADER.to_string()];
    for (soak, _) in soaks {
        total.add(&soak.tally);
        rows.push(soak.tally.row(soak.name));
    }
    rows.push(total.row("**all**"));
    rows.join("\n")
}

/// The long mode: rounds of every scenario, two at a time (`CAIRN_SOAK_THREADS`), until the
/// kills reach `CAIRN_SOAK_KILLS` (1000); then the table of docs/RELIABILITY.md.
#[test]
fn long() {
    let Some(target) = long_target() else {
        println!("soak long mode: skipped (set CAIRN_SOAK=long, and CAIRN_SOAK_KILLS)");
        return;
    };
    let threads: usize = std::env::var("CAIRN_SOAK_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let seed = base_seed();
    let started = std::time::Instant::now();
    // `CAIRN_SOAK_ONLY=name,name`: only those scenarios (to chase one finding).
    let only = std::env::var("CAIRN_SOAK_ONLY").ok();
    let mut soaks: Vec<(Soak, Scenario)> = SCENARIOS
        .iter()
        .filter(|(name, _)| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == *name))
        })
        .map(|(name, scenario)| (Soak::new(name, seed, true), *scenario))
        .collect();
    assert!(!soaks.is_empty(), "CAIRN_SOAK_ONLY names no scenario");
    let kills = |soaks: &[(Soak, Scenario)]| soaks.iter().map(|(s, _)| s.tally.kills).sum::<u64>();
    let mut rounds = 0;
    while rounds == 0 || kills(&soaks) < target {
        rounds += 1;
        let before = kills(&soaks);
        let queue = std::sync::Mutex::new(soaks.iter_mut());
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| loop {
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some((soak, scenario)) = next else {
                        break;
                    };
                    scenario(soak);
                });
            }
        });
        println!(
            "soak long: round {rounds} done, {} kills, {:.0} s\n{}",
            kills(&soaks),
            started.elapsed().as_secs_f64(),
            table(&soaks)
        );
        assert!(
            kills(&soaks) > before,
            "a whole round of the soak killed nothing"
        );
    }
    println!(
        "soak long: seed {seed}, {rounds} round(s), {threads} thread(s), {:.0} s\n{}",
        started.elapsed().as_secs_f64(),
        table(&soaks)
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

/// Each of the soak's checks fires on what it is there to catch, so that a green soak means
/// something: messages that are not true, a summary that claims more than the server stored,
/// a change the server lost, a case missing, differing or stored twice, a vault that no
/// longer opens.
#[test]
fn the_checks_catch_what_they_claim() {
    use soak::harness::{check_message, Ended};
    use soak::world::{export, Backend, Counts, World};

    let mut soak = Soak::new("self-test", base_seed(), false);
    let ended = |code: i32, stdout: &str, stderr: &str| Ended {
        run: cairn_e2e::Run {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        },
        killed: false,
        took: std::time::Duration::ZERO,
    };
    let untrue = |soak: &Soak| soak.tally.untrue;
    let summary = "sent 0, received 0, refused 0, still pending 0\n";
    for (run, expect, faults) in [
        (
            ended(1, summary, "cairn: cannot reach the server\n"),
            None,
            1,
        ),
        (
            ended(1, "", "cairn: see https://docs.rs/rustls/x\n"),
            None,
            1,
        ),
        (ended(1, "", "cairn: one thing\ncairn: another\n"), None, 1),
        // Panicked, exit code 101, and no sentence of cairn's.
        (
            ended(101, "", "thread 'main' panicked at x.rs:1\n"),
            None,
            3,
        ),
        (
            ended(1, "", "cairn: vault storage error: disk I/O error\n"),
            Some(["full"].as_slice()),
            1,
        ),
        (
            ended(1, "", "cairn: the disk is full; free some space\n"),
            Some(["full"].as_slice()),
            0,
        ),
        (
            ended(
                1,
                "",
                "cairn: cannot reach https://127.0.0.1:4000: refused\n",
            ),
            None,
            0,
        ),
        (ended(0, summary, ""), None, 0),
    ] {
        let before = untrue(&soak);
        check_message(&mut soak, "a command", &run, expect);
        assert_eq!(untrue(&soak) - before, faults, "{:?}", run.run);
    }

    let mut world = World::start(&Backend::Sqlite, 1, None);
    world.field("A");
    assert!(world.new_case(&mut soak, "A", 0));
    world.sync(&mut soak, "A");
    world.sync(&mut soak, "office");
    world.server_holds(&mut soak);
    let clean = soak.tally.clone();
    assert_eq!(
        (
            clean.lost,
            clean.duplicates,
            clean.mismatches,
            clean.bricked,
            clean.other
        ),
        (0, 0, 0, 0, 0),
        "{:?}",
        soak.findings()
    );

    // A summary that claims a change the server did not store.
    let before = Counts::take(&world.store, world.member("A"));
    let claims = ended(0, "sent 1, received 0, refused 0, still pending 0\n", "");
    world.judge_sync(&mut soak, "A", &before, &claims, None);
    assert_eq!(untrue(&soak), clean.untrue + 1);

    // The server loses the change behind everyone's back.
    let a = world.member("A").id.clone();
    world.servers[0]
        .dir()
        .db()
        .execute("DELETE FROM changes WHERE author = ?1", [a.as_slice()])
        .expect("delete");
    world.server_holds(&mut soak);
    assert_eq!(soak.tally.lost, 1);

    // A case missing on A, the same case twice at the office under another reference.
    let mut on_a = export(&mut soak, world.member("A")).expect("export");
    let mut at_office = export(&mut soak, &world.office).expect("export");
    let (reference, case) = on_a.pop_first().expect("a case");
    at_office.insert(format!("{reference}-COPY-T03-"), case);
    world.compare(
        &mut soak,
        &[("A".into(), on_a), ("office".into(), at_office)],
    );
    assert_eq!(soak.tally.mismatches, 2, "{:?}", soak.findings());
    assert_eq!(
        (soak.tally.lost, soak.tally.duplicates),
        (2, 1),
        "{:?}",
        soak.findings()
    );

    // A vault that no longer opens.
    std::fs::write(
        world.member("A").device.home().join("vault.db"),
        b"not a vault",
    )
    .expect("spoil the vault");
    assert!(!world.after_fault(&mut soak, "A"));
    assert_eq!(soak.tally.bricked, 1);
}
