//! What the vault's head (issue #19 item 11) costs on a large vault: opening (the head against
//! the database, the `meta` rows recomputed), loading one case (its rows recomputed),
//! `cairn check` (every row recomputed, besides replaying every case), and carrying a vault
//! made before heads over (every row tagged once).
//!
//! Run: `cargo bench -p cairn-vault --bench head [-- CASES]` (default 10,000 cases). Results
//! go in docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used)] // A benchmark: a failed unwrap is a failed run.

use std::time::{Duration, Instant};

use cairn_crypto::{DeviceKeys, KeyFileCost, SecretString};
use cairn_model::{Edit, Kind};
use cairn_vault::{Home, NewCase, NewVault, Role};

fn edits(n: usize) -> Vec<Edit> {
    [
        ("incident.cause", "targeted_strike".to_string()),
        ("incident.date", "2026-11-02".to_string()),
        (
            "incident.narrative",
            format!("Found at the edge of the orchard, north of the road ({n})."),
        ),
        ("found.lat", "31.5017".to_string()),
        ("found.lon", "34.4668".to_string()),
        ("person.sex", "male".to_string()),
        ("person.age_group", "adult".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| Edit::Set {
        key: k.into(),
        value: v,
    })
    .chain([Edit::Note {
        text: "Recovered by team T03 with the civil defence.".into(),
    }])
    .collect()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn main() {
    let cases: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let pass = SecretString::from("pass".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path().join("v"));
    let new = NewVault {
        team: "T03".into(),
        name: None,
        role: Role::Field,
    };
    let now = time::OffsetDateTime::now_utc();
    let mut vault = home.create(&pass, KeyFileCost::LogN(4), new, now).unwrap();
    for start in (0..cases).step_by(1_000) {
        let batch: Vec<NewCase> = (start..cases.min(start + 1_000))
            .map(|n| NewCase {
                kind: Kind::Killed,
                place: "KHR".into(),
                edits: edits(n),
                row: None,
            })
            .collect();
        vault.create_cases(&batch, now, &mut |_| {}).unwrap();
    }
    let reference = vault.list().unwrap()[cases / 2].reference.clone();
    drop(vault);
    let bytes = std::fs::metadata(home.database()).unwrap().len();
    let keys = home.unlock(&pass).unwrap().to_unlocked_bytes();
    let unlocked = || DeviceKeys::from_unlocked_bytes(&keys).unwrap();

    let opens: Vec<Duration> = (0..9)
        .map(|_| timed(|| home.open_unlocked(unlocked()).unwrap()).1)
        .collect();
    let vault = home.open_unlocked(unlocked()).unwrap();
    let loads: Vec<Duration> = (0..9)
        .map(|_| timed(|| vault.case(&reference).unwrap()).1)
        .collect();
    let (report, check) = timed(|| vault.check().unwrap());
    drop(vault);
    // The same vault as one made before heads: loading a case there recomputes nothing, and
    // carrying it over tags every row once (what `cairn check` adds to its replay).
    cairn_vault::as_made_before_heads(&home, &unlocked()).unwrap();
    let (as_found, _) = home.open_as_found(unlocked()).unwrap();
    let bare: Vec<Duration> = (0..9)
        .map(|_| timed(|| as_found.case(&reference).unwrap()).1)
        .collect();
    drop(as_found);
    let (_, carry) = timed(|| home.open_unlocked(unlocked()).unwrap());
    println!(
        "{cases} cases, vault.db {:.1} MB, {} changes",
        bytes as f64 / 1e6,
        report.changes
    );
    println!("open (head checked): {:?} median of 9", median(opens));
    println!(
        "load one case (its rows recomputed): {:?} median of 9",
        median(loads)
    );
    println!(
        "load one case without a head: {:?} median of 9",
        median(bare)
    );
    println!("check (replay and every row recomputed): {check:?}");
    println!("carry over (every row tagged once): {carry:?}");
}
