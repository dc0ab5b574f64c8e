//! An attachment synced end to end: a 50 MB file attached on a field device goes through a
//! link that cuts every connection after 256 KB (both directions counted) to a real
//! `cairn-server` over TLS, and arrives at the office byte-identical, re-sending at most 10 %
//! more than its sealed size, each `cairn` process under 100 MB of peak RSS, and no 64-byte
//! window of the plaintext anywhere in the server's storage.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use cairn_e2e::{files_under, Device, Server};
use cairn_testkit::Relay;
use rand::RngCore;

const MB: usize = 1_000_000;

/// `cairn sync` at most `rounds` times, until `done`; the largest peak RSS (KiB) of those runs.
fn sync_until(device: &Device, args: &[&str], rounds: usize, done: impl Fn() -> bool) -> u64 {
    let mut peak = 0;
    for round in 0..rounds {
        let (run, kib) = device.run_measured(args);
        eprintln!(
            "round {round}: exit {} peak {kib} KiB: {}{}",
            run.code,
            run.stdout.trim(),
            run.stderr.trim()
        );
        peak = peak.max(kib);
        if done() {
            return peak;
        }
    }
    panic!("not done after {rounds} syncs");
}

fn attachment(device: &Device, reference: &str) -> serde_json::Value {
    device.json(&["case", "attachments", reference])[0].clone()
}

/// Keys are 8 random bytes of plaintext already: no need to hash them again.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(w)
}

/// Whether any 64-byte window of `plain` occurs in `haystack`. Such a window holds a whole
/// 32-byte block of `plain` starting at a multiple of 32, so this looks for those blocks
/// (stricter): each 32-byte window of `haystack` is looked up by its first 8 bytes among
/// them, and a hit compared in full.
fn leaks(plain: &[u8], haystack: &[u8]) -> bool {
    let mut blocks: HashSet<u64, BuildHasherDefault<Identity>> = HashSet::default();
    for block in plain.chunks_exact(32) {
        blocks.insert(word(block));
    }
    haystack.windows(32).any(|window| {
        blocks.contains(&word(window)) && plain.chunks_exact(32).any(|block| window == block)
    })
}

#[test]
fn a_50_mb_attachment_crosses_a_link_cut_every_256_kb_intact_in_bounded_memory() {
    let office = Device::office();
    // The server's default limits: about five cuts a second on loopback, each costing a
    // status and an upload request, is over its 10 requests a second; the client paces
    // itself to the rate the server announces, so no upload is refused for it.
    let server = Server::start(&office);
    let relay = Relay::cutting(server.addr(), 256 * 1024);
    let field = Device::init("T03");
    server.join(&office, &field, "T03", &relay.url());
    let reference = field.new_case(&["--kind", "remains", "--place", "KHR"]);

    let work = tempfile::tempdir().expect("temp dir");
    let mut plain = vec![0u8; 50 * MB];
    rand::rngs::OsRng.fill_bytes(&mut plain);
    let file = work.path().join("scene.bin");
    std::fs::write(&file, &plain).expect("write");
    let (out, attach_kib) = field.run_measured(&[
        "case",
        "attach",
        &reference,
        file.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sha = attachment(&field, &reference)["attachment"]["sha256"]
        .as_str()
        .expect("sha256")
        .to_owned();
    let sealed: i64 = rusqlite::Connection::open(field.home().join("vault.db"))
        .expect("open vault.db")
        .query_row("SELECT SUM(LENGTH(sealed)) FROM blob_chunks", [], |r| {
            r.get(0)
        })
        .expect("sealed size");

    // Everything the field device sends and receives counts, the case changes included
    // (one case and one attachment entry: a few kB), so the bound is stricter than the
    // blob's own re-sending.
    relay.reset();
    let field_kib = sync_until(&field, &["sync"], 10, || {
        attachment(&field, &reference)["delivered"] == true
    });
    let relayed = relay.bytes();
    eprintln!(
        "sealed {sealed} bytes, relayed {relayed} ({:.3}x); peak RSS attach {attach_kib} KiB, sync {field_kib} KiB",
        relayed as f64 / sealed as f64
    );
    assert!(
        relayed as f64 <= 1.10 * sealed as f64,
        "{relayed} bytes relayed for {sealed} sealed"
    );

    let office_kib = sync_until(&office, &["sync"], 5, || {
        attachment(&office, &reference)["here"] == true
    });
    let back = work.path().join("back.bin");
    let (got, get_kib) = office.run_measured(&[
        "case",
        "attachment",
        "get",
        &reference,
        &sha,
        "--out",
        back.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert!(
        std::fs::read(&back).expect("read back") == plain,
        "not byte-identical"
    );
    eprintln!("office: peak RSS sync {office_kib} KiB, get {get_kib} KiB");
    for (what, kib) in [
        ("attach", attach_kib),
        ("field sync", field_kib),
        ("office sync", office_kib),
        ("get", get_kib),
    ] {
        assert!(kib < 100 * 1024, "{what} peaked at {kib} KiB, over 100 MB");
    }

    // The server's storage files hold no 64-byte window of the plaintext.
    let storage = files_under(&server.dir().path());
    assert!(!storage.is_empty());
    for (path, bytes) in &storage {
        assert!(!leaks(&plain, bytes), "plaintext in {}", path.display());
    }
    // The check can fail: it finds a window planted in a copy.
    let mut planted = storage.values().next().expect("a file").clone();
    planted.extend_from_slice(&plain[1_000_001..1_000_065]);
    assert!(leaks(&plain, &planted));
}
