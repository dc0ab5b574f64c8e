//! `cairn case import` killed before its commit (at a random point of its run) and after it
//! (blocked on its summary, which goes to a full pipe, once the cases are in the vault). Each
//! time the person who saw no summary runs the same import again; every row must then be in
//! the vault exactly once.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::harness::{run, Ended, Fault, Running, Soak, Typical};
use super::world::{import_file, Backend, World};

pub fn scenario(soak: &mut Soak) {
    soak.plan(4, 15);
    while soak.more() {
        world(soak);
    }
}

fn world(soak: &mut Soak) {
    let rows = if soak.long { 60 } else { 20 };
    soak.step("start a server (SQLite), the office and A");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut world = World::start(&Backend::Sqlite, 1, None);
    world.field("A");
    let started = Instant::now();
    world.import(soak, "A", dir.path(), rows);
    let mut typical = Typical(started.elapsed());
    soak.step(format!("importing {rows} cases takes {:?}", typical.0));
    let mut since_verify = 0;
    while soak.more() {
        soak.run();
        let (path, markers) = import_file(soak, dir.path(), rows);
        let file = path.to_string_lossy().into_owned();
        let a = world.member("A");
        let before = a.case_rows();
        let blocked = soak.rng.gen_bool(0.5);
        let ended = if blocked {
            soak.step("kill the import after its commit, before its summary");
            after_commit(a.command(&["case", "import", &file]), || {
                a.case_rows() >= before + rows as u64
            })
        } else {
            let delay = typical.draw(soak, 0.0..1.1);
            soak.step(format!("kill the import after {delay:?}"));
            let ended = Running::spawn(a.command(&["case", "import", &file])).kill_after(delay);
            typical.observe(&ended);
            ended
        };
        let gained = world.member("A").case_rows() - before;
        if ended.killed {
            soak.tally.kills += 1;
            if gained != 0 && gained != rows as u64 {
                soak.found(
                    Fault::Other,
                    format!("a killed import left {gained} of its {rows} cases"),
                );
            }
        } else if blocked {
            // The pipe had room after all: its summary went there, unread.
            soak.step(format!(
                "the import ended before it could be stopped: {:?}",
                ended.run
            ));
            if ended.run.code == 0 && gained == rows as u64 {
                world
                    .acknowledged
                    .extend(markers.iter().map(|m| (m.clone(), false)));
            }
        } else {
            world.judge_import(soak, "A", &ended, before, &markers);
        }
        if !world.after_fault(soak, "A") {
            return;
        }
        if ended.killed {
            soak.step(format!(
                "the import left {gained} of {rows} cases and said nothing; the same import again"
            ));
            let before = world.member("A").case_rows();
            let again = run(world.member("A").command(&["case", "import", &file]));
            world.judge_import(soak, "A", &again, before, &markers);
        }
        world.markers_on(soak, "A");
        since_verify += 1;
        if soak.verify_due(since_verify) {
            since_verify = 0;
            world.verify(soak);
        }
    }
}

/// Runs `cmd` with its standard output a pipe already full, so that it blocks on its first
/// line of output; kills it once `committed` (or when it ends without printing).
fn after_commit(cmd: std::process::Command, committed: impl Fn() -> bool) -> Ended {
    let (mut reader, writer) = std::io::pipe().expect("a pipe");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let filler = {
        let (stop, written) = (stop.clone(), written.clone());
        let mut writer = writer.try_clone().expect("pipe writer");
        // One byte at a time: the last write blocks only when not one byte is free.
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && writer.write_all(b".").is_ok() {
                written.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Full when the filler has written at least a page and then nothing for half a second.
    let (mut last, deadline) = (usize::MAX, Instant::now() + Duration::from_secs(30));
    while (written.load(Ordering::Relaxed) != last || last < 4096) && Instant::now() < deadline {
        last = written.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut running = Running::spawn_with_stdout(cmd, Stdio::from(writer));
    let deadline = Instant::now() + Duration::from_secs(180);
    while !committed() && !running.ended() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let ended = running.kill_after(Duration::ZERO);
    // Unblock the filler and let it end.
    stop.store(true, Ordering::Relaxed);
    let mut sink = [0u8; 65536];
    while !filler.is_finished() {
        let _ = reader.read(&mut sink);
    }
    ended
}
