//! Attachments killed mid-upload and mid-download: A attaches a file of random bytes, its
//! sync is killed at random points until the attachment is delivered, then the office's sync
//! is killed while it fetches it; the office's copy must come back byte for byte.

use std::time::Instant;

use rand::RngCore;

use super::harness::{run, Fault, Running, Soak, Typical};
use super::world::{Backend, Counts, World};

/// Kills at most per transfer before it is left to finish.
const KILLS: usize = 4;

pub fn scenario(soak: &mut Soak) {
    soak.plan(1, 4);
    while soak.more() {
        world(soak);
    }
}

fn world(soak: &mut Soak) {
    let size = if soak.long { 4 << 20 } else { 2 << 20 };
    soak.step("start a server (SQLite), the office and A");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut world = World::start(&Backend::Sqlite, 1, None);
    world.field("A");
    world.sync(soak, "A");
    // How long a whole upload and download take, for where the kills land.
    let first = attach(soak, &mut world, dir.path(), size);
    let started = Instant::now();
    world.sync(soak, "A");
    let mut up = Typical(started.elapsed());
    let started = Instant::now();
    world.sync(soak, "office");
    let mut down = Typical(started.elapsed());
    soak.step(format!(
        "uploading {size} bytes takes {:?}, downloading {:?}",
        up.0, down.0
    ));
    if let Some(first) = first {
        fetch(soak, &world, &first);
    }
    while soak.more() {
        soak.run();
        let Some(file) = attach(soak, &mut world, dir.path(), size) else {
            continue;
        };
        for (who, typical, state) in [("A", &mut up, "delivered"), ("office", &mut down, "here")] {
            if !transfer(soak, &mut world, who, typical, &file, state) {
                return;
            }
        }
        fetch(soak, &world, &file);
    }
    world.verify(soak);
}

/// An attachment made by the soak: its case, its hash, its bytes.
struct File {
    reference: String,
    sha256: String,
    bytes: Vec<u8>,
    path: std::path::PathBuf,
}

/// A new case on A with a new file of random bytes attached.
fn attach(soak: &mut Soak, world: &mut World, dir: &std::path::Path, size: usize) -> Option<File> {
    let reference = world.new_case_ref(soak, "A", 0)?;
    let mut bytes = vec![0u8; size];
    soak.rng.fill_bytes(&mut bytes);
    let path = dir.join(format!("{reference}.bin"));
    std::fs::write(&path, &bytes).expect("write the file");
    soak.step(format!("A attaches {size} bytes to {reference}"));
    let ended =
        run(world
            .member("A")
            .command(&["case", "attach", &reference, &path.to_string_lossy()]));
    super::harness::check_message(soak, "case attach", &ended, None);
    if ended.run.code != 0 {
        return None;
    }
    let sha256 = state(world, "A", &reference)["attachment"]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Some(File {
        reference,
        sha256,
        bytes,
        path,
    })
}

/// The attachment's state on `who` (`case attachments --json`).
fn state(world: &World, who: &str, reference: &str) -> serde_json::Value {
    let ended = run(world
        .member(who)
        .command(&["case", "attachments", reference, "--json"]));
    serde_json::from_str::<serde_json::Value>(&ended.run.stdout)
        .map(|v| v[0].clone())
        .unwrap_or_default()
}

/// `who`'s sync killed at random points until `state` (delivered, here) holds, at most
/// [`KILLS`] times, then left to finish. False if the vault is bricked.
fn transfer(
    soak: &mut Soak,
    world: &mut World,
    who: &str,
    typical: &mut Typical,
    file: &File,
    wanted: &str,
) -> bool {
    for _ in 0..KILLS {
        if state(world, who, &file.reference)[wanted] == true {
            return true;
        }
        let delay = typical.draw(soak, 0.05..1.0);
        soak.step(format!(
            "kill {who}'s sync after {delay:?} (attachment not {wanted} yet)"
        ));
        let member = world.member(who);
        let before = Counts::take(&world.store, member);
        let ended = Running::spawn(member.sync()).kill_after(delay);
        typical.observe(&ended);
        if ended.killed {
            soak.tally.kills += 1;
        } else {
            world.judge_sync(soak, who, &before, &ended, None);
        }
        if !world.after_fault(soak, who) {
            return false;
        }
    }
    for _ in 0..4 {
        if state(world, who, &file.reference)[wanted] == true {
            return true;
        }
        soak.step(format!("{who} syncs to the end"));
        world.sync(soak, who);
    }
    if state(world, who, &file.reference)[wanted] != true {
        soak.found(
            Fault::Other,
            format!(
                "the attachment of {} is still not {wanted} on {who}",
                file.reference
            ),
        );
    }
    true
}

/// The office decrypts the attachment: the same bytes as attached.
fn fetch(soak: &mut Soak, world: &World, file: &File) {
    let out = file.path.with_extension("back");
    let _ = std::fs::remove_file(&out);
    let ended = run(world.office.command(&[
        "case",
        "attachment",
        "get",
        &file.reference,
        &file.sha256,
        "--out",
        &out.to_string_lossy(),
    ]));
    super::harness::check_message(soak, "attachment get at the office", &ended, None);
    match std::fs::read(&out) {
        Ok(back) if back == file.bytes => {}
        Ok(_) => soak.found(
            Fault::Mismatch,
            format!(
                "the office's copy of {}'s attachment differs",
                file.reference
            ),
        ),
        Err(_) => soak.found(
            Fault::Lost,
            format!(
                "the office cannot give back {}'s attachment: {}",
                file.reference,
                ended.run.stderr.trim()
            ),
        ),
    }
}
