//! The server killed (SIGKILL) at random points while two field devices push and the office
//! pulls, all at once: on SQLite, on PostgreSQL, and as one of two servers sharing one
//! PostgreSQL database (each device syncing with its own).

use std::time::{Duration, Instant};

use rand::Rng;

use super::harness::{Running, Soak};
use super::postgres::FreshDb;
use super::world::{Backend, Counts, World};

pub fn sqlite(soak: &mut Soak) {
    soak.plan(5, 15);
    while soak.more() {
        world(soak, &Backend::Sqlite, 1);
    }
}

pub fn postgres(soak: &mut Soak) {
    soak.plan(5, 15);
    while soak.more() {
        let Some(db) = FreshDb::create(soak.name) else {
            return;
        };
        world(soak, &Backend::Postgres(db.url.clone()), 1);
    }
}

pub fn two_servers(soak: &mut Soak) {
    soak.plan(5, 15);
    while soak.more() {
        let Some(db) = FreshDb::create(soak.name) else {
            return;
        };
        world(soak, &Backend::Postgres(db.url.clone()), 2);
    }
}

const SYNCING: [&str; 3] = ["A", "B", "office"];

fn world(soak: &mut Soak, backend: &Backend, servers: usize) {
    soak.step(format!(
        "start {servers} server(s), the office and field devices A (server 1) and B (server {servers})"
    ));
    let mut world = World::start(backend, servers, None);
    world.field("A");
    world.join("B", cairn_e2e::Device::init("T03"), servers - 1, None);
    world.sync(soak, "A");
    work(soak, &mut world);
    let started = Instant::now();
    all_at_once(soak, &mut world, None);
    let typical = started.elapsed().max(Duration::from_millis(100));
    soak.step(format!(
        "A, B and the office syncing at once take {typical:?}"
    ));
    let mut since_verify = 0;
    while soak.more() {
        soak.run();
        work(soak, &mut world);
        let victim = soak.rng.gen_range(0..servers);
        let delay = soak.delay(typical, 0.0..1.0);
        let down = Duration::from_millis(soak.rng.gen_range(0..500));
        soak.step(format!(
            "kill server {} after {delay:?} of A, B and the office syncing; restart it {down:?} later",
            victim + 1
        ));
        all_at_once(soak, &mut world, Some((victim, delay, down)));
        soak.tally.kills += 1;
        world.server_holds(soak);
        for who in ["A", "B"] {
            if !world.after_fault(soak, who) {
                return;
            }
        }
        since_verify += 1;
        if soak.verify_due(since_verify) {
            since_verify = 0;
            world.verify(soak);
        }
    }
}

/// A and B each record a few cases.
fn work(soak: &mut Soak, world: &mut World) {
    for who in ["A", "B"] {
        for _ in 0..soak.rng.gen_range(1..=3) {
            let size = soak.rng.gen_range(0..8000);
            world.new_case(soak, who, size);
        }
    }
}

/// A, B and the office sync at once; with `kill`, server `victim` is killed after `delay` and
/// restarted `down` later. Every sync's message and summary is checked.
fn all_at_once(soak: &mut Soak, world: &mut World, kill: Option<(usize, Duration, Duration)>) {
    let before: Vec<Counts> = SYNCING
        .iter()
        .map(|who| Counts::take(&world.store, world.member(who)))
        .collect();
    let running: Vec<Running> = SYNCING
        .iter()
        .map(|who| Running::spawn(world.member(who).sync()))
        .collect();
    if let Some((victim, delay, down)) = kill {
        std::thread::sleep(delay);
        world.servers[victim].kill();
        std::thread::sleep(down);
        world.servers[victim].restart();
    }
    for ((who, before), running) in SYNCING.iter().zip(&before).zip(running) {
        let ended = running.wait();
        world.judge_sync(soak, who, before, &ended, None);
    }
}
