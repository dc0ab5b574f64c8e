//! Ingest rate of the server, in sealed changes per second, on each storage backend:
//!
//! - `storage`: `Storage::insert_changes` alone, in batches of 500 (one transaction each,
//!   SQLite with `synchronous=FULL`);
//! - `https push`: the whole path a device uses: signed `POST /v2/push` over TLS to an
//!   in-process server, request authentication, signature check of every change, storage.
//!
//! Run: `cargo bench -p cairn-server --bench ingest` (PostgreSQL too when
//! `CAIRN_TEST_POSTGRES_URL` is set; it works in a fresh schema, dropped at the end).
//! `CAIRN_BENCH_CHANGES` sets how many changes per measurement (default 20000),
//! `CAIRN_BENCH_BATCH` how many per push or transaction (default 500).

use std::time::{Duration, Instant};

use cairn_crypto::{DeviceKeys, SealedChange, SealedKind, TeamKey};
use cairn_protocol::{
    encode_push, paths, sign_request, unix_now, DevicePublic, OfficeKeys, PushResponse, Statement,
};
use cairn_server::storage::{NewChange, PostgresStorage, SqliteStorage, Storage};
use cairn_testkit::ServerDir;

const PLAINTEXT: usize = 600;

struct Fixture {
    office: DeviceKeys,
    device: DeviceKeys,
    key: TeamKey,
    changes: Vec<SealedChange>,
}

fn fixture(n: usize) -> Fixture {
    let office = DeviceKeys::generate();
    let device = DeviceKeys::generate();
    let key = TeamKey::generate("T1", 1);
    let plaintext = vec![b'a'; PLAINTEXT];
    let changes = (1..=n as u64)
        .map(|seq| {
            let case = [(seq % 50) as u8; 16];
            SealedChange::seal(&device, &key, SealedKind::CaseChange, case, seq, &plaintext)
                .expect("sealing")
        })
        .collect();
    Fixture {
        office,
        device,
        key,
        changes,
    }
}

/// The office's statement 1, admitting the fixture's device into T1.
fn admission(f: &Fixture, server: &str, fingerprint: &str) -> Statement {
    let device = DevicePublic::from_keys(&f.device);
    let expires_at = unix_now() + 60;
    cairn_testkit::admit(
        &f.office,
        1,
        [0; 32],
        &f.key,
        &device,
        server,
        fingerprint,
        expires_at,
    )
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn batch() -> usize {
    env_or("CAIRN_BENCH_BATCH", 500)
}

fn rate(n: usize, elapsed: Duration) -> String {
    format!(
        "{:>9.0} changes/s ({n} changes in {:.2} s)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    )
}

async fn bench_storage(name: &str, storage: &impl Storage, f: &Fixture) {
    let batches: Vec<Vec<NewChange>> = f
        .changes
        .chunks(batch())
        .map(|chunk| {
            chunk
                .iter()
                .map(|c| NewChange {
                    author: c.author,
                    seq: c.seq,
                    case_id: c.case_id,
                    team: c.team.clone(),
                    bytes: c.to_bytes(),
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for batch in batches {
        storage.insert_changes(batch).await.expect("insert");
    }
    let elapsed = started.elapsed();
    assert_eq!(
        storage.acked(&f.device.id()).await.expect("acked"),
        f.changes.len() as u64
    );
    println!("{name:<22} storage     {}", rate(f.changes.len(), elapsed));
}

async fn bench_https(name: &str, database: Option<&str>, f: &Fixture) {
    let dir = ServerDir::init(OfficeKeys::from_keys(&f.office));
    // A benchmark is one device pushing as fast as it can: lift the per-device rate limit.
    dir.configure(&[
        ("device_requests_per_sec", "1000000"),
        ("device_request_burst", "1000000"),
    ]);
    if let Some(url) = database {
        dir.set("database", format!("{url:?}"));
    }
    let cert = std::fs::read(dir.path().join("cert.pem")).expect("cert");
    let server = dir.serve().await;
    let base = format!("https://127.0.0.1:{}", server.addr().port());
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert).expect("pem")])
        .build()
        .expect("client");
    let body = serde_json::to_vec(&admission(f, &base, server.fingerprint())).expect("json");
    let auth = sign_request(&f.device, "POST", paths::JOIN, &body, unix_now());
    let response = client
        .post(format!("{base}{}", paths::JOIN))
        .header("authorization", auth)
        .body(body)
        .send()
        .await
        .expect("join");
    assert_eq!(response.status(), 200);

    let bodies: Vec<Vec<u8>> = f
        .changes
        .chunks(batch())
        .map(|chunk| encode_push(&chunk.iter().map(SealedChange::to_bytes).collect::<Vec<_>>()))
        .collect();
    let wire: usize = bodies.iter().map(Vec::len).sum();
    let sealed: usize = f.changes.iter().map(|c| c.to_bytes().len()).sum();
    let started = Instant::now();
    let mut acked = 0;
    for body in bodies {
        let auth = sign_request(&f.device, "POST", paths::PUSH, &body, unix_now());
        let response = client
            .post(format!("{base}{}", paths::PUSH))
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .expect("push");
        assert_eq!(response.status(), 200);
        let answer: PushResponse =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
        acked = answer.acked;
    }
    let elapsed = started.elapsed();
    assert_eq!(acked, f.changes.len() as u64);
    println!(
        "{name:<22} https push  {}  wire/sealed = {:.3}",
        rate(f.changes.len(), elapsed),
        wire as f64 / sealed as f64
    );
    server.shutdown(Duration::from_secs(5));
    server.stopped().await.expect("stop");
}

async fn drop_schema(url: &str, schema: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop");
    drop(client);
    let _ = task.await;
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = env_or("CAIRN_BENCH_CHANGES", 20_000);
    println!(
        "sealing {n} changes of {PLAINTEXT} plaintext bytes (under one team key), batches of {}...",
        batch()
    );
    let f = fixture(n);
    println!(
        "sealed change size: {} bytes",
        f.changes[0].to_bytes().len()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStorage::open(&dir.path().join("bench.db"))
        .await
        .expect("sqlite");
    bench_storage("sqlite", &sqlite, &f).await;
    bench_https("sqlite", None, &f).await;

    match std::env::var("CAIRN_TEST_POSTGRES_URL") {
        Err(_) => println!("postgres               skipped: CAIRN_TEST_POSTGRES_URL not set"),
        Ok(url) => {
            let schema = format!("cairn_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
            let pg = PostgresStorage::open_in_schema(&url, Some(&schema))
                .await
                .expect("postgres");
            bench_storage("postgres", &pg, &f).await;
            drop(pg);
            drop_schema(&url, &schema).await;
            // The server takes its schema from the URL's options.
            let schema = format!("cairn_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
            PostgresStorage::open_in_schema(&url, Some(&schema))
                .await
                .expect("schema");
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
            bench_https("postgres", Some(&scoped), &f).await;
            drop_schema(&url, &schema).await;
        }
    }
}
