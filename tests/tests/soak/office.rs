//! The office's pull killed at random points: a field device imports a batch of cases and
//! sends it, and the office's `cairn sync` that receives it (in pages of 20) is killed.

use std::time::Instant;

use super::harness::{Running, Soak, Typical};
use super::world::{Backend, Counts, World};

pub fn scenario(soak: &mut Soak) {
    soak.plan(5, 15);
    while soak.more() {
        world(soak);
    }
}

fn world(soak: &mut Soak) {
    let rows = if soak.long { 100 } else { 40 };
    soak.step("start a server (SQLite), the office and field device A");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut world = World::start(&Backend::Sqlite, 1, None);
    world.field("A");
    world.sync(soak, "A");
    world.import(soak, "A", dir.path(), rows);
    world.sync(soak, "A");
    let started = Instant::now();
    world.sync(soak, "office");
    let mut typical = Typical(started.elapsed());
    soak.step(format!(
        "the office's pull of {rows} cases takes {:?}",
        typical.0
    ));
    let (mut killed, mut advanced) = (0, 0);
    let mut since_verify = 0;
    while soak.more() {
        soak.run();
        world.import(soak, "A", dir.path(), rows);
        world.sync(soak, "A");
        let delay = typical.draw(soak, 0.0..1.1);
        soak.step(format!("kill the office's sync after {delay:?}"));
        let before = Counts::take(&world.store, &world.office);
        let ended = Running::spawn(world.office.sync()).kill_after(delay);
        typical.observe(&ended);
        if ended.killed {
            soak.tally.kills += 1;
            killed += 1;
            if world.office.changes().1 > before.others {
                advanced += 1;
            }
        } else {
            world.judge_sync(soak, "office", &before, &ended, None);
        }
        if !world.after_fault(soak, "office") {
            return;
        }
        since_verify += 1;
        if soak.verify_due(since_verify) {
            since_verify = 0;
            world.verify(soak);
        }
    }
    soak.step(format!(
        "{advanced} of {killed} killed pulls kept some of what they fetched"
    ));
}
