//! Office cold pull and no-op sync against a real TLS server on 127.0.0.1.
//!
//! Run: `cargo bench -p cairn-sync --bench cold_pull` (CAIRN_BENCH_CASES to change the 10,000).
//! 20 field devices are admitted, join and push sealed cases; then a fresh office vault pulls them all
//! through a byte-counting TCP proxy, so the bytes on the wire include TLS and HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cairn_crypto::{DeviceKeys, KeyFileCost, SealedChange, SealedKind, SecretString};
use cairn_model::{CaseDoc, Edit, Kind, Reference};
use cairn_protocol::{unix_now, DeviceLine, OfficeKeys};
use cairn_sync::{sync, Client, Options};
use cairn_vault::{Home, NewVault, Role};

const DEVICES: usize = 20;

fn main() {
    let cases: usize = std::env::var("CAIRN_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let now = time::OffsetDateTime::now_utc();
    let pass = SecretString::from("bench".to_owned());
    let office_home = Home::new(dir.path().join("office"));
    let mut office = office_home
        .create(
            &pass,
            KeyFileCost::LogN(2),
            NewVault {
                team: "office".into(),
                name: None,
                role: Role::Office,
            },
            now,
        )
        .expect("office vault");
    let office_keys = OfficeKeys::from_keys(office.keys());
    let key_file = dir.path().join("office.pub");
    std::fs::write(&key_file, office_keys.to_string()).expect("office key");
    let srv = dir.path().join("srv");
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = rt.block_on(async {
        cairn_server::init::init(&srv, &key_file, listen, None)
            .await
            .expect("server init");
        cairn_server::RunningServer::start(&srv, None)
            .await
            .expect("server start")
    });
    let url = format!("https://{}", server.addr());
    let fingerprint = server.fingerprint().to_owned();
    let direct = Client::new(&url, &fingerprint).expect("client");

    // Field devices: the office admits them and hands the server its roster; each device
    // joins, then pushes its sealed cases.
    let to = cairn_sync::AdmitTo {
        team: "T01".into(),
        server: url.clone(),
        fingerprint: fingerprint.clone(),
        expires_at: unix_now() + 3600,
    };
    let devices: Vec<(DeviceKeys, cairn_protocol::Admission)> = (0..DEVICES)
        .map(|_| {
            let keys = DeviceKeys::generate();
            let line = DeviceLine::new(&keys, None).expect("line");
            let admission = cairn_sync::admit(&mut office, &line, &to).expect("admit");
            (keys, admission)
        })
        .collect();
    let chain = office.sync_state().expect("state").roster;
    rt.block_on(direct.post_roster(office.keys(), &chain))
        .expect("roster");
    let mut payload = 0u64;
    let per_device = cases / DEVICES;
    for (d, (keys, admission)) in devices.iter().enumerate() {
        rt.block_on(direct.join(keys, &admission.statement))
            .expect("join");
        let team_key = admission.open(keys, unix_now()).expect("team key");
        let mut batch = Vec::new();
        for n in 0..per_device {
            let reference = Reference {
                place: "KHR".into(),
                team: "T01".into(),
                device_tag: keys.id().tag(),
                number: n as u32 + 1,
            };
            let edits = [
                Edit::set("incident.cause", "targeted_strike"),
                Edit::set("incident.narrative", "Found at the edge of the orchard."),
                Edit::set("found.lat", "31.5"),
                Edit::Note {
                    text: format!("device {d} case {n}"),
                },
            ];
            let id = uuid::Uuid::new_v4();
            let (_, change) = CaseDoc::create(
                &keys.id().0,
                id,
                &reference,
                Kind::Killed,
                &keys.id().short(),
                now,
                &edits,
            )
            .expect("case");
            let sealed = SealedChange::seal(
                keys,
                &team_key,
                SealedKind::CaseChange,
                *id.as_bytes(),
                n as u64 + 1,
                &change,
            )
            .expect("seal")
            .to_bytes();
            payload += sealed.len() as u64;
            batch.push(sealed);
            if batch.len() == 250 {
                rt.block_on(direct.push(keys, &batch)).expect("push");
                batch.clear();
            }
        }
        if !batch.is_empty() {
            rt.block_on(direct.push(keys, &batch)).expect("push");
        }
    }

    // The office pulls everything through a counting proxy.
    let counter = Arc::new(AtomicU64::new(0));
    let proxy = rt.block_on(counting_proxy(server.addr(), counter.clone()));
    let mut state = office.sync_state().expect("state");
    state.server = Some(format!("https://{proxy}"));
    state.fingerprint = Some(fingerprint.clone());
    state.office = Some(office_keys.to_string());
    office.set_sync_state(&state).expect("state");

    let start = Instant::now();
    let summary = rt
        .block_on(sync(&mut office, &Options::default(), &()))
        .map_err(|(e, _)| e)
        .expect("cold pull");
    let elapsed = start.elapsed();
    let wire = counter.load(Ordering::Relaxed);
    assert_eq!(
        summary.received as usize,
        per_device * DEVICES,
        "{}",
        summary.line()
    );
    println!(
        "cold pull: {} changes from {DEVICES} devices in {:.2} s; {} round trips; wire {} bytes vs sealed payload {} bytes = {:.3}x",
        summary.received,
        elapsed.as_secs_f64(),
        summary.round_trips,
        wire,
        payload,
        wire as f64 / payload as f64
    );

    counter.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let noop = rt
        .block_on(sync(&mut office, &Options::default(), &()))
        .map_err(|(e, _)| e)
        .expect("no-op sync");
    println!(
        "no-op sync: {} round trip(s), {} bytes on the wire (TLS handshake included), {:.1} ms",
        noop.round_trips,
        counter.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64() * 1000.0
    );
    server.shutdown(std::time::Duration::from_secs(1));
}

/// Forwards 127.0.0.1:ephemeral to `upstream`, adding every byte in both directions to `count`.
async fn counting_proxy(upstream: SocketAddr, count: Arc<AtomicU64>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let (client_read, client_write) = inbound.into_split();
                let (server_read, server_write) = outbound.into_split();
                tokio::spawn(pump(client_read, server_write, count.clone()));
                tokio::spawn(pump(server_read, client_write, count));
            });
        }
    });
    addr
}

/// Copies one direction, counting bytes as they pass (connections stay open in the pool).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::Relaxed);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
