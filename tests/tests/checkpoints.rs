//! Office checkpoints with real processes: the office publishes the compacted documents of its
//! cases at its sync; a device joining later loads them whole and pulls only what came after,
//! and ends reading every case byte for byte as a teammate that pulled every change. What the
//! checkpoint holds counts as delivered; a change the server withholds after it is still named.
//! A server that serves a part signed by anyone but the office, or another team's part, has it
//! refused, and the device pulls every change instead, losing nothing.

use cairn_e2e::{Device, Server};

fn killing(device: &Device, note: &str) -> String {
    device.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-03-02",
        "--set",
        "person.civilian=yes",
        "--note",
        note,
    ])
}

fn shown(device: &Device, references: &[String]) -> Vec<String> {
    references
        .iter()
        .map(|r| device.ok(&["case", "show", r, "--json"]))
        .collect()
}

fn delivery_warnings(device: &Device) -> String {
    device.json(&["status"])["delivery_warnings"].to_string()
}

struct World {
    office: Device,
    server: Server,
    url: String,
    a: Device,
    b: Device,
    references: Vec<String>,
}

/// The office, T01's `a` and `b` and T02's `t` record, edit, verify and sync; then the office
/// syncs once more and so publishes its checkpoint.
fn world() -> World {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let (a, b, t) = (
        Device::init("T01"),
        Device::init("T01"),
        Device::init("T02"),
    );
    server.join(&office, &a, "T01", &url);
    server.join(&office, &b, "T01", &url);
    server.join(&office, &t, "T02", &url);
    let mut references: Vec<String> = (0..3).map(|i| killing(&a, &format!("seen {i}"))).collect();
    references.push(killing(&b, "b's own"));
    killing(&t, "another team's");
    a.ok(&["case", "edit", &references[0], "--set", "person.sex=female"]);
    for d in [&a, &b, &t] {
        d.ok(&["sync"]);
    }
    office.ok(&["sync"]);
    office.ok(&[
        "case",
        "verify",
        &references[1],
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
    office.ok(&["sync"]);
    World {
        office,
        server,
        url,
        a,
        b,
        references,
    }
}

#[test]
fn a_late_joiner_loads_the_checkpoint_and_reads_every_case_as_one_that_pulled_every_change() {
    let w = world();
    // After the checkpoint: an edit that arrives the ordinary way, and one the server withholds.
    w.a.ok(&[
        "case",
        "edit",
        &w.references[2],
        "--note",
        "after the checkpoint",
    ]);
    w.a.ok(&["case", "edit", &w.references[2], "--note", "withheld"]);
    w.a.ok(&["case", "edit", &w.references[2], "--note", "the last"]);
    w.a.ok(&["sync"]);
    let own = w.a.sealed_changes("received = 0");
    let withheld = own[own.len() - 2].1;
    w.server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{}' AND seq = {withheld};",
        w.a.keys().id()
    ));

    let late = Device::init("T01");
    w.server.join(&w.office, &late, "T01", &w.url);
    let run = late.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("4 cases loaded from the office's checkpoints"),
        "{}",
        run.stdout
    );
    // Only the changes after the checkpoint were pulled: a's three edits less the withheld one.
    assert!(run.stdout.contains("received 2"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("change {withheld} of device"))
            && run.stderr.contains("withholding"),
        "{}",
        run.stderr
    );
    // Nothing the checkpoint holds is taken for withheld.
    let warnings = delivery_warnings(&late);
    assert_eq!(warnings.matches("withholding").count(), 1, "{warnings}");

    // Every case the server kept whole reads byte for byte as at b, which pulled every change
    // (the case with the withheld change differs, as it must).
    w.b.ok(&["sync"]);
    let whole = [&w.references[..2], &w.references[3..]].concat();
    assert_eq!(shown(&late, &whole), shown(&w.b, &whole));
    assert_eq!(late.case_count(), 4);
    let confirmed = late.json(&["case", "show", &w.references[1]]);
    assert_eq!(confirmed["status"], "confirmed", "{confirmed}");

    // The late joiner works on: its edit reaches b.
    late.ok(&[
        "case",
        "edit",
        &w.references[3],
        "--note",
        "from the late joiner",
    ]);
    late.ok(&["sync"]);
    w.b.ok(&["sync"]);
    assert_eq!(
        shown(&late, &w.references[3..]),
        shown(&w.b, &w.references[3..])
    );
}

/// Runs `cairn sync` with the failpoint armed; whether it was killed there.
fn killed_at(device: &Device, failpoint: &str) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let out = device
        .command(&["sync"])
        .env("CAIRN_FAILPOINT", failpoint)
        .output()
        .expect("run cairn");
    match out.status.signal() {
        Some(9) => true,
        None => {
            assert!(
                out.status.success(),
                "sync with {failpoint} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Some(other) => panic!("sync with {failpoint} died of signal {other}"),
    }
}

/// Power cut at every step: the office killed after sealing its generation and after posting
/// it (the next sync posts the same bytes again), a late joiner killed before and after each
/// part it loads. Each then syncs on and reads every case as a teammate that pulled them all.
#[test]
fn a_kill_at_any_step_of_publishing_or_loading_loses_nothing() {
    let w = world();
    w.a.ok(&[
        "case",
        "edit",
        &w.references[0],
        "--note",
        "for the next generation",
    ]);
    w.a.ok(&["sync"]);
    for point in ["checkpoint:made", "checkpoint:posted"] {
        assert!(killed_at(&w.office, point), "{point} never reached");
        w.a.ok(&["case", "edit", &w.references[3], "--note", point]);
        w.a.ok(&["sync"]);
    }
    w.office.ok(&["sync"]);
    w.b.ok(&["sync"]);
    let at_b = shown(&w.b, &w.references);
    // Before and after each part stored (how many parts the chain has depends on when the
    // office found a full generation lighter than the ones after it).
    for point in ["checkpoint:stored", "checkpoint:loaded"] {
        for pass in 1..=4 {
            let point = format!("{point}#{pass}");
            let late = Device::init("T01");
            w.server.join(&w.office, &late, "T01", &w.url);
            if !killed_at(&late, &point) {
                assert!(pass > 1, "{point} never reached");
                break;
            }
            let line = late.ok(&["sync"]);
            assert!(line.contains("received"), "{line}");
            assert_eq!(shown(&late, &w.references), at_b, "after a kill at {point}");
            assert_eq!(delivery_warnings(&late), "[]", "after a kill at {point}");
            late.ok(&["check"]);
        }
    }
}
