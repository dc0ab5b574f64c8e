//! A link cut at random byte counts: field device B syncs through a relay that cuts each
//! connection after a number of bytes (both directions together) drawn from the seeded
//! generator, from inside the TLS handshake to well into a page. B tries a few times, then
//! the link comes back and its sync must complete.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn_testkit::Relay;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::harness::Soak;
use super::world::{Backend, Counts, World};

/// Syncs B tries through the cutting link in each run before the link comes back.
const TRIES: usize = 3;

pub fn scenario(soak: &mut Soak) {
    soak.plan(4, 10);
    while soak.more() {
        world(soak);
    }
}

fn world(soak: &mut Soak) {
    soak.step("start a server (SQLite), the office, A and B (B through a cutting link)");
    let mut world = World::start(&Backend::Sqlite, 1, None);
    world.field("A");
    let whole = Arc::new(AtomicBool::new(true));
    let mut draws = StdRng::seed_from_u64(soak.rng.gen());
    let link_whole = whole.clone();
    // Log-uniform from 200 bytes (inside the TLS handshake) to 200 kB (many pages): as many
    // cuts in the first kilobytes as in the last hundred.
    let relay = Relay::cutting_with(world.servers[0].addr(), move || {
        let bytes = draws.gen_range(200f64.ln()..200_000f64.ln()).exp() as usize;
        (!link_whole.load(Ordering::Relaxed)).then_some(bytes)
    });
    world.join("B", cairn_e2e::Device::init("T03"), 0, Some(relay.url()));
    world.sync(soak, "A");
    world.sync(soak, "B");
    let mut since_verify = 0;
    while soak.more() {
        soak.run();
        for (who, most) in [("A", 2), ("B", 3)] {
            for _ in 0..soak.rng.gen_range(0..=most) {
                let size = soak.rng.gen_range(0..20_000);
                world.new_case(soak, who, size);
            }
        }
        world.sync(soak, "A");
        let cuts = relay.cuts();
        whole.store(false, Ordering::Relaxed);
        let mut done = false;
        for attempt in 1..=TRIES {
            soak.step(format!("B syncs through the cutting link, try {attempt}"));
            let before = Counts::take(&world.store, world.member("B"));
            let ended = super::harness::run(world.member("B").sync());
            let line = world.judge_sync(soak, "B", &before, &ended, None);
            if line.is_some_and(|l| l.pending == 0) {
                done = true;
                break;
            }
        }
        whole.store(true, Ordering::Relaxed);
        soak.tally.cuts += relay.cuts() - cuts;
        soak.step(format!(
            "{} connection(s) cut; {}",
            relay.cuts() - cuts,
            if done {
                "B's sync completed"
            } else {
                "the link comes back"
            }
        ));
        if !done {
            world.sync(soak, "B");
        }
        if !world.after_fault(soak, "B") {
            return;
        }
        since_verify += 1;
        if soak.verify_due(since_verify) {
            since_verify = 0;
            world.verify(soak);
        }
    }
}
