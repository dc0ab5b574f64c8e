//! `cairn sync` of a field device killed at random points: before it connects, during its
//! push, its pull and its writes. The device has its own cases to send and another device's
//! to receive each time.

use std::time::Instant;

use rand::Rng;

use super::harness::{Running, Soak, Typical};
use super::world::{Backend, Counts, World};

pub fn scenario(soak: &mut Soak) {
    soak.plan(6, 15);
    while soak.more() {
        world(soak);
    }
}

fn world(soak: &mut Soak) {
    soak.step("start a server (SQLite), the office and field devices A and B");
    let mut world = World::start(&Backend::Sqlite, 1, None);
    world.field("A");
    world.field("B");
    // A learns B from the roster, so that it seals to B from its first case on.
    world.sync(soak, "A");
    work(soak, &mut world);
    let started = Instant::now();
    world.sync(soak, "A");
    let mut typical = Typical(started.elapsed());
    soak.step(format!("a sync of A with work to do takes {:?}", typical.0));
    let mut since_verify = 0;
    while soak.more() {
        soak.run();
        work(soak, &mut world);
        let delay = typical.draw(soak, 0.0..1.1);
        soak.step(format!("kill A's sync after {delay:?}"));
        let before = Counts::take(&world.store, world.member("A"));
        let ended = Running::spawn(world.member("A").sync()).kill_after(delay);
        typical.observe(&ended);
        if ended.killed {
            soak.tally.kills += 1;
        } else {
            world.judge_sync(soak, "A", &before, &ended, None);
        }
        if !world.after_fault(soak, "A") {
            return;
        }
        since_verify += 1;
        if soak.verify_due(since_verify) {
            since_verify = 0;
            world.verify(soak);
        }
    }
}

/// Cases for A to send and for B to have sent, so that A's sync pushes and pulls.
fn work(soak: &mut Soak, world: &mut World) {
    let (mine, theirs) = (soak.rng.gen_range(1..=3), soak.rng.gen_range(0..=3));
    soak.step(format!("A records {mine} case(s), B {theirs} and syncs"));
    for _ in 0..mine {
        let size = soak.rng.gen_range(0..4000);
        world.new_case(soak, "A", size);
    }
    for _ in 0..theirs {
        let size = soak.rng.gen_range(0..4000);
        world.new_case(soak, "B", size);
    }
    world.sync(soak, "B");
}
