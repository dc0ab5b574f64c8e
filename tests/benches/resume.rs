//! Attachment downloads killed mid-way (issue #20, item 6): a field device fetches a file
//! through a relay that counts every byte both ways, while its `cairn sync` is killed
//! (SIGKILL) again and again in the middle of the download; then it syncs to the end. The
//! figure is the bytes relayed over the file's size, beside a download that nobody kills.
//!
//! `cargo bench -p cairn-e2e --bench resume` (release binaries; `CAIRN_BENCH_MB` sets the
//! size, 8 MB by default, `CAIRN_BENCH_KILLS` the kills, 24 by default; `CAIRN_BENCH_TRACE`
//! prints each kill and sync). The figures go into docs/BENCHMARKS.md; nothing here asserts.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_e2e::{Device, Server};
use cairn_testkit::Relay;
use rand::{Rng, RngCore};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Chunks in the vault at `home` (read beside the running `cairn`).
fn chunks_here(home: &Path) -> u64 {
    let db = rusqlite::Connection::open_with_flags(
        home.join("vault.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.query_row("SELECT COUNT(*) FROM blob_chunks", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as u64
}

/// A file of `size` random bytes attached on a fresh field device of `team` and uploaded; a
/// teammate joined through `relay` that has the case but not the file yet. Returns the
/// teammate and the attachment's chunk count.
fn setup(
    office: &Device,
    server: &Server,
    relay: &Relay,
    team: &str,
    size: usize,
) -> (Device, u64) {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("scene.bin");
    let mut bytes = vec![0u8; size];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let author = Device::init(team);
    server.join(office, &author, team, &server.url());
    let reference = author.new_case(&["--kind", "remains", "--place", "KHR"]);
    author.ok(&["case", "attach", &reference, path.to_str().unwrap()]);
    author.ok(&["sync"]);
    let mate = Device::init(team);
    server.join(office, &mate, team, &relay.url());
    mate.ok(&["sync"]);
    let count = (size as u64).div_ceil(16 * 1024);
    (mate, count)
}

/// `cairn sync --with-attachments` until every chunk is here, at most 20 times.
fn sync_to_the_end(device: &Device, count: u64) {
    for _ in 0..20 {
        let run = device.run(&["sync", "--with-attachments"]);
        if std::env::var("CAIRN_BENCH_TRACE").is_ok() {
            eprintln!("sync: {} {}", run.stdout.trim(), run.stderr.trim());
        }
        if chunks_here(&device.home()) >= count {
            return;
        }
    }
    panic!("not fetched after 20 syncs");
}

fn main() {
    let mb = env("CAIRN_BENCH_MB", 8);
    let kills = env("CAIRN_BENCH_KILLS", 24) as u64;
    let size = mb * 1_000_000;
    let office = Device::office();
    let server = Server::start(&office);

    // Nobody kills it.
    let relay = Relay::start(server.addr());
    // Each on a team of its own, so that neither fetches the other's file.
    let (clean, count) = setup(&office, &server, &relay, "T03", size);
    relay.reset();
    let start = Instant::now();
    sync_to_the_end(&clean, count);
    let clean_took = start.elapsed();
    let clean_factor = relay.bytes() as f64 / size as f64;

    // Killed `kills` times, each time after a random share of what is left has arrived.
    let relay = Relay::start(server.addr());
    let (mate, count) = setup(&office, &server, &relay, "T04", size);
    relay.reset();
    let mut killed = 0;
    while killed < kills {
        let here = chunks_here(&mate.home());
        if std::env::var("CAIRN_BENCH_TRACE").is_ok() {
            eprintln!(
                "kill {killed}: {here} chunks here, {} bytes relayed",
                relay.bytes()
            );
        }
        let left = count.saturating_sub(here);
        if left < 2 {
            break;
        }
        let share = (left / (kills - killed + 1)).max(1);
        let at = here + rand::thread_rng().gen_range(1..=share * 2).min(left - 1);
        let mut child = mate
            .command(&["sync", "--with-attachments"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if chunks_here(&mate.home()) >= at || Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    sync_to_the_end(&mate, count);
    let factor = relay.bytes() as f64 / size as f64;
    println!(
        "a {mb} MB download: nobody kills it {clean_factor:.3} x the file ({:.1} s); killed {killed} times mid-way {factor:.3} x the file",
        clean_took.as_secs_f64()
    );
}
