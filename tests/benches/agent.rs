//! Ten `cairn case list` in a row at the DEFAULT (calibrated) scrypt cost, with and without
//! the unlock agent: the wall time of each whole process, as a person waits for it.
//!
//! `cargo bench -p cairn-e2e --bench agent` (release binaries), or add `--profile dev` to
//! measure the debug ones. The figures go into docs/BENCHMARKS.md; nothing here asserts time.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use cairn_e2e::Device;

const RUNS: usize = 10;

fn main() {
    let device = Device::empty();
    let start = Instant::now();
    device.ok(&["init", "--team", "T03"]);
    println!(
        "init at the default cost: {} ms",
        start.elapsed().as_millis()
    );
    device.ok(&["case", "new", "--kind", "remains", "--place", "KHR"]);

    let time = |label: &str, passphrase: bool| {
        let mut each = Vec::new();
        for _ in 0..RUNS {
            let mut cmd = device.command(&["case", "list", "--json"]);
            if !passphrase {
                cmd.env_remove("CAIRN_PASSPHRASE");
            }
            cmd.env_remove("XDG_RUNTIME_DIR");
            let start = Instant::now();
            let out = cmd.output().unwrap();
            each.push(start.elapsed().as_secs_f64() * 1000.0);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mean = each.iter().sum::<f64>() / each.len() as f64;
        let max = each.iter().cloned().fold(0.0, f64::max);
        let list: Vec<String> = each.iter().map(|ms| format!("{ms:.0}")).collect();
        println!(
            "{label}: mean {mean:.1} ms, max {max:.1} ms; each: {}",
            list.join(" ")
        );
    };

    time("passphrase (scrypt every command)", true);
    let mut unlock = device.command(&["unlock", "--for", "10m"]);
    unlock.env_remove("XDG_RUNTIME_DIR");
    let start = Instant::now();
    assert!(unlock.status().unwrap().success());
    println!("cairn unlock: {} ms", start.elapsed().as_millis());
    time("agent (no passphrase anywhere)", false);
    let mut lock = device.command(&["lock"]);
    lock.env_remove("XDG_RUNTIME_DIR");
    assert!(lock.status().unwrap().success());
}
