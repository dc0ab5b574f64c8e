//! Attachments against what a user would use instead, in one run (issue #9): a plain file
//! copy and `age` encrypting the same file, beside `cairn case attach` and the sync of the
//! file to the office, first on a clean link, then through the link that cuts every
//! connection after 256 KB.
//!
//! `cargo bench -p cairn-e2e --bench attachments` (release binaries; `CAIRN_BENCH_MB` sets
//! the size, 50 MB by default). The figures go into docs/BENCHMARKS.md; nothing here asserts
//! time.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use age::Recipient;
use cairn_e2e::{Device, Server};
use cairn_testkit::Relay;
use rand::RngCore;

fn rate(bytes: usize, took: Duration) -> String {
    format!(
        "{:>7.1} MB/s ({:.2} s)",
        bytes as f64 / 1e6 / took.as_secs_f64(),
        took.as_secs_f64()
    )
}

/// `cairn sync` until `done`, at most 20 times; the time it took.
fn sync_until(device: &Device, done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    for _ in 0..20 {
        let _ = device.run(&["sync"]);
        if done() {
            return start.elapsed();
        }
    }
    panic!("not delivered after 20 syncs");
}

fn attachment(device: &Device, reference: &str) -> serde_json::Value {
    device.json(&["case", "attachments", reference])[0].clone()
}

fn main() {
    let mb: usize = std::env::var("CAIRN_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let size = mb * 1_000_000;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("scene.bin");
    let mut plain = vec![0u8; size];
    rand::rngs::OsRng.fill_bytes(&mut plain);
    std::fs::write(&file, &plain).unwrap();
    drop(plain);

    let start = Instant::now();
    std::fs::copy(&file, work.path().join("copy.bin")).unwrap();
    let copy = start.elapsed();

    let recipient = age::x25519::Identity::generate().to_public();
    let start = Instant::now();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn Recipient)).unwrap();
    let out = std::fs::File::create(work.path().join("scene.age")).unwrap();
    let mut writer = encryptor.wrap_output(std::io::BufWriter::new(out)).unwrap();
    std::io::copy(&mut std::fs::File::open(&file).unwrap(), &mut writer).unwrap();
    writer.finish().unwrap().flush().unwrap();
    let age = start.elapsed();

    let office = Device::office();
    // The server's default limits (the client paces itself to its rate).
    let server = Server::start(&office);
    let clean = Relay::start(server.addr());
    let cut = Relay::cutting(server.addr(), 256 * 1024);
    let path = file.to_str().unwrap();

    let mut rows = Vec::new();
    for (label, relay) in [("clean link", &clean), ("cut every 256 KB", &cut)] {
        let field = Device::init("T03");
        server.join(&office, &field, "T03", &relay.url());
        let reference = field.new_case(&["--kind", "remains", "--place", "KHR"]);
        let start = Instant::now();
        field.ok(&["case", "attach", &reference, path]);
        let attach = start.elapsed();
        relay.reset();
        let send = sync_until(&field, || {
            attachment(&field, &reference)["delivered"] == true
        });
        let relayed = relay.bytes();
        let fetch = sync_until(&office, || attachment(&office, &reference)["here"] == true);
        rows.push((label, attach, send, relayed, fetch));
    }

    println!();
    println!("{mb} MB of random bytes, release binaries, one run:");
    println!(
        "  plain file copy (std::fs::copy)        {}",
        rate(size, copy)
    );
    println!(
        "  age crate, one X25519 recipient        {}",
        rate(size, age)
    );
    for (label, attach, send, relayed, fetch) in rows {
        println!("  {label}:");
        println!(
            "    cairn case attach                    {}",
            rate(size, attach)
        );
        println!(
            "    field sync until delivered           {}, {relayed} bytes relayed ({:.3}x the file)",
            rate(size, send),
            relayed as f64 / size as f64
        );
        println!(
            "    office sync until here (direct)      {}",
            rate(size, fetch)
        );
    }
}
