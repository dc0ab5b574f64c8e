//! `cairn case new` killed with SIGKILL at random moments: the vault always opens afterwards,
//! and every case whose command reported success is there.

use std::time::{Duration, Instant};

use cairn_e2e::Device;
use rand::Rng;

#[test]
fn sigkill_during_case_new_loses_nothing_reported() {
    let device = Device::init("T03");
    let args = [
        "case",
        "new",
        "--kind",
        "missing",
        "--place",
        "KHR",
        "--set",
        "incident.narrative=Last seen at the checkpoint.",
        "--note",
        "Reported by a neighbour.",
    ];
    // Time one run so kills land anywhere from before start-up to after the commit.
    let start = Instant::now();
    let mut reported = vec![device.ok(&args).trim().to_string()];
    let typical = start.elapsed();

    let mut rng = rand::thread_rng();
    let mut killed = 0;
    for _ in 0..40 {
        let mut child = device
            .command(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cairn");
        let delay = rng.gen_range(0..=typical.as_micros() as u64 * 12 / 10);
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        if out.status.success() {
            reported.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        } else {
            killed += 1;
        }
        // The vault must open after every kill.
        let list = device.json(&["case", "list"]);
        let present: Vec<&str> = list
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["reference"].as_str())
            .collect();
        for r in &reported {
            assert!(present.contains(&r.as_str()), "{r} reported but lost");
        }
    }
    assert!(
        killed >= 5,
        "too few runs were interrupted ({killed}) to mean anything"
    );
    let check = device.ok(&["check"]);
    assert!(check.contains("ok"), "{check}");
}
