//! Attacks that tried to starve the server, run against the real `cairn-server` process over
//! TLS on 127.0.0.1: stalled uploads, half-sent heads, connections over the cap, oversized
//! pulls in parallel, a device over its quota, a device over its rate. During each, an
//! honest device's push and pull still succeed, and the server's peak memory (VmHWM) stays
//! under 200 MB. Loops are bounded in count and time; only generous liveness bounds are
//! timed.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::io::Write;
use std::time::Duration;

use cairn_crypto::DeviceKeys;
use cairn_protocol::{paths, pull_path, sign_request, unix_now, PullPage};
use common::{closed_within, tcp_connect, tls_connect, RawTls, TestServer};

/// The ceiling the issue set for the server's memory under attack.
const PEAK_MB: f64 = 200.0;
/// How long a server may take to close what it should close: generous, for a busy machine.
const LIVENESS: Duration = Duration::from_secs(40);

/// A server with short timeouts (seconds) for tests.
fn start(settings: &[(&str, &str)]) -> TestServer {
    let mut all = vec![
        ("header_timeout_secs", "2"),
        ("idle_timeout_secs", "3"),
        ("body_timeout_secs", "4"),
    ];
    all.extend_from_slice(settings);
    TestServer::start_with(&all)
}

/// One push and one pull by an honest device, which must both succeed.
async fn honest_round(server: &TestServer, keys: &DeviceKeys, seq: u64) {
    let change = server.sealed(keys, seq, format!("honest {seq}").as_bytes());
    let answer = server.push(keys, &[change]).await;
    assert_eq!(
        answer.status,
        200,
        "honest push: {}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.push().acked, seq);
    let answer = server
        .signed(keys, "GET", &pull_path(0, None), vec![])
        .await;
    assert_eq!(answer.status, 200, "honest pull");
    let page = PullPage::decode(&answer.body).unwrap();
    assert_eq!(page.acked, seq);
}

/// Opens a TLS connection, sends a push head announcing `length` bytes and four of them,
/// then leaves it stalled.
fn stalled_upload(
    addr: std::net::SocketAddr,
    config: &std::sync::Arc<rustls::ClientConfig>,
    auth: Option<String>,
    length: usize,
) -> RawTls {
    let mut stream = tls_connect(addr, config);
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {length}\r\n",
        paths::PUSH
    );
    if let Some(auth) = auth {
        head.push_str(&format!("authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(b"abcd").unwrap();
    stream.flush().unwrap();
    stream
}

fn report(server: &TestServer, attack: &str) {
    let peak = server.process.peak_mb();
    println!("{attack}: server peak memory (VmHWM) {peak:.1} MB");
    assert!(
        peak < PEAK_MB,
        "{attack}: the server's peak memory was {peak:.1} MB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_hold_neither_memory_nor_honest_devices() {
    let server = start(&[]);
    let honest = server.device("T2").await;
    let insider = server.device("T1").await;
    let addr = server.process.addr();
    let tls = server.tls_client_config();
    let max = 4 * 1024 * 1024;
    // 60 strangers (unsigned, or signed by keys no office admitted) and 20 uploads from an
    // admitted device, each announcing about max_request_bytes, sending 4 bytes, stalling.
    let auths: Vec<Option<String>> = (0..80)
        .map(|i| {
            let signer = match i % 4 {
                0 => return None,
                1 | 2 => &DeviceKeys::generate(),
                _ => &insider,
            };
            Some(sign_request(
                signer,
                "POST",
                paths::PUSH,
                b"never sent",
                unix_now(),
            ))
        })
        .collect();
    let stalled: Vec<RawTls> = tokio::task::spawn_blocking(move || {
        auths
            .into_iter()
            .enumerate()
            .map(|(i, auth)| stalled_upload(addr, &tls, auth, max - (i % 2)))
            .collect()
    })
    .await
    .unwrap();
    assert_eq!(stalled.len(), 80);
    for seq in 1..=3 {
        honest_round(&server, &honest, seq).await;
    }
    report(&server, "80 stalled 4 MiB uploads");
    // Every stalled upload is answered or closed: strangers at once (their head is refused),
    // the insider's when the body timeout or its in-flight cap strikes.
    let closed = tokio::task::spawn_blocking(move || {
        stalled
            .into_iter()
            .map(|mut s| closed_within(&mut s, LIVENESS))
            .filter(|c| *c)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 80, "{}", server.process.log());
    honest_round(&server, &honest, 4).await;
    let log = server.process.log();
    assert!(
        log.contains("not_enrolled"),
        "strangers were refused: {log}"
    );
    assert!(log.contains("too_slow"), "the insider timed out: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_and_idle_connections_are_closed() {
    let server = start(&[]);
    let honest = server.device("T2").await;
    let addr = server.process.addr();
    let tls = server.tls_client_config();
    let all_closed = tokio::task::spawn_blocking(move || {
        // A half-sent head.
        let mut half = tls_connect(addr, &tls);
        half.write_all(b"POST /v2/push HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-len")
            .unwrap();
        half.flush().unwrap();
        // A TLS connection that never sends a request.
        let mut silent = tls_connect(addr, &tls);
        // A TCP connection that never starts TLS.
        let mut bare = tcp_connect(addr).unwrap();
        // A kept-alive connection, idle after one answer.
        let mut idle = tls_connect(addr, &tls);
        idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .unwrap();
        idle.flush().unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        for _ in 0..100 {
            if let Ok(n) = std::io::Read::read(&mut idle, &mut buf) {
                answer.extend_from_slice(&buf[..n]);
            }
            if answer.ends_with(b"ok") {
                break;
            }
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        let started = std::time::Instant::now();
        let half_closed = closed_within(&mut half, LIVENESS);
        println!(
            "a half-sent head was closed after {:.1} s (header timeout 2 s)",
            started.elapsed().as_secs_f64()
        );
        [
            half_closed,
            closed_within(&mut silent, LIVENESS),
            closed_within(&mut bare, LIVENESS),
            closed_within(&mut idle, LIVENESS),
        ]
    })
    .await
    .unwrap();
    assert_eq!(all_closed, [true; 4], "half head, silent, bare TCP, idle");
    honest_round(&server, &honest, 1).await;
    report(&server, "half-sent heads and idle connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_outside_the_server() {
    let cap = 40;
    let server = start(&[("max_connections", &cap.to_string())]);
    let honest = server.device("T2").await;
    let addr = server.process.addr();
    let tls = server.tls_client_config();
    // 150 connections: half silent TCP, half silent TLS (those over the cap cannot finish
    // their handshake until a slot frees, so they are only started).
    let held: Vec<std::net::TcpStream> = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for i in 0..150 {
            let Some(tcp) = tcp_connect(addr) else {
                continue;
            };
            if i % 2 == 1 {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                let mut conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
                let mut sock = &tcp;
                // Sends the ClientHello; the answer is never read.
                let _ = conn.write_tls(&mut sock);
            }
            out.push(tcp);
        }
        out
    })
    .await
    .unwrap();
    assert!(
        held.len() >= 100,
        "only {} connections were made",
        held.len()
    );
    let sockets = server.process.open_sockets();
    assert!(
        sockets <= cap + 8,
        "{sockets} sockets open with a cap of {cap} connections"
    );
    // The honest device's connection waits its turn in the kernel's queue, then is served.
    for seq in 1..=2 {
        honest_round(&server, &honest, seq).await;
    }
    report(&server, "150 connections over a cap of 40");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_up_to_the_default_cap_each_filling_their_buffer() {
    // The default cap (512): 450 TLS connections each send 60 kB of a head that never ends,
    // filling the read buffer every connection may have.
    let server = TestServer::start_with(&[("header_timeout_secs", "10")]);
    let honest = server.device("T2").await;
    let addr = server.process.addr();
    let tls = server.tls_client_config();
    let held: Vec<RawTls> = tokio::task::spawn_blocking(move || {
        let pad = "a".repeat(60_000);
        (0..450)
            .map(|_| {
                let mut s = tls_connect(addr, &tls);
                let head = format!("POST /v2/push HTTP/1.1\r\nhost: 127.0.0.1\r\nx-pad: {pad}");
                s.write_all(head.as_bytes()).unwrap();
                s.flush().unwrap();
                s
            })
            .collect()
    })
    .await
    .unwrap();
    for seq in 1..=2 {
        honest_round(&server, &honest, seq).await;
    }
    report(
        &server,
        "450 connections with 60 kB of unfinished head each",
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_pulls_in_parallel_stay_within_the_page_budget() {
    // Pulls queue for the memory budget: give them time to wait their turn.
    let server = start(&[("body_timeout_secs", "15")]);
    let honest = server.device("T2").await;
    let readers = std::sync::Arc::new([
        server.device("T1").await,
        server.device("T1").await,
        server.device("T1").await,
    ]);
    let pusher = &readers[0];
    // 30 changes just under the 2 MiB per-change limit: 57 MB for every reader to pull.
    let plaintext = vec![b'x'; 1_900_000];
    let mut seq = 0;
    while seq < 30 {
        let batch: Vec<Vec<u8>> = (seq + 1..=(seq + 2).min(30))
            .map(|s| server.sealed(pusher, s, &plaintext))
            .collect();
        seq += batch.len() as u64;
        let answer = server.push(pusher, &batch).await;
        assert_eq!(answer.push().acked, seq);
    }
    // Three readers that never read their answers: each holds at most its page, until the
    // server gives up on it.
    let addr = server.process.addr();
    let tls = server.tls_client_config();
    let path = pull_path(0, None);
    let auth = sign_request(&readers[1], "GET", &path, b"", unix_now());
    let stalled: Vec<RawTls> = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| {
                let mut s = tls_connect(addr, &tls);
                let head = format!(
                    "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: {auth}\r\n\r\n"
                );
                s.write_all(head.as_bytes()).unwrap();
                s.flush().unwrap();
                s
            })
            .collect()
    })
    .await
    .unwrap();
    // 3 readers and the office × 8 parallel pulls × 3 rounds, with honest rounds in between.
    let server = std::sync::Arc::new(server);
    let mut pulled_bytes = 0usize;
    let (mut ok, mut limited) = (0, 0);
    for round in 0..3u64 {
        let mut tasks = Vec::new();
        for who in 0..4 {
            for _ in 0..8 {
                let (server, readers) = (server.clone(), readers.clone());
                tasks.push(tokio::spawn(async move {
                    let keys = readers.get(who).unwrap_or(&server.office);
                    server
                        .signed(keys, "GET", &pull_path(0, Some(1000)), vec![])
                        .await
                }));
            }
        }
        honest_round(&server, &honest, round + 1).await;
        for task in tasks {
            let answer = task.await.unwrap();
            match answer.status {
                200 => {
                    let page = PullPage::decode(&answer.body).unwrap();
                    assert!(answer.body.len() <= 4 * 1024 * 1024 + 64);
                    assert!(page.more && !page.changes.is_empty());
                    pulled_bytes += answer.body.len();
                    ok += 1;
                }
                // Over the device's requests in progress, or no room in the memory budget
                // in time: both say to retry.
                429 | 503 => {
                    assert!(
                        ["rate_limited", "unavailable"].contains(&answer.code().as_str()),
                        "{}",
                        answer.code()
                    );
                    limited += 1;
                }
                other => panic!("pull answered {other}: {}", answer.code()),
            }
        }
    }
    println!(
        "parallel pulls: {ok} pages ({pulled_bytes} bytes), {limited} refused with 429 or 503"
    );
    assert!(ok >= 12, "{ok} pages");
    report(&server, "parallel pulls of 30 changes of 1.9 MB");
    let closed = tokio::task::spawn_blocking(move || {
        stalled
            .into_iter()
            .map(|mut s| {
                // Never reads: only checks, after a while, that the server gave up.
                std::thread::sleep(Duration::from_secs(1));
                closed_within(&mut s, LIVENESS)
            })
            .filter(|c| *c)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 3, "stalled readers are let go");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_over_its_quota_gets_507_and_big_changes_413() {
    let server = start(&[
        ("device_quota_bytes", "300000"),
        ("max_change_bytes", "100000"),
    ]);
    let honest = server.device("T2").await;
    let greedy = server.device("T1").await;
    let chunk = vec![b'q'; 60_000];
    let mut quota_full = None;
    for seq in 1..=10u64 {
        let change = server.sealed(&greedy, seq, &chunk);
        let answer = server.push(&greedy, &[change]).await;
        if answer.status != 200 {
            quota_full = Some((seq, answer));
            break;
        }
    }
    let (seq, answer) = quota_full.expect("the quota was never reached");
    assert_eq!(seq, 5, "300 kB hold four changes of 60 kB, not five");
    assert_eq!((answer.status, answer.code().as_str()), (507, "quota_full"));
    let message = answer.error().message;
    assert!(message.contains("ask the office"), "{message}");
    assert_eq!(message.matches(". ").count(), 0, "one sentence: {message}");
    // Nothing of the refused push was stored; what was stored stays.
    let page = PullPage::decode(
        &server
            .signed(&greedy, "GET", &pull_path(0, None), vec![])
            .await
            .body,
    )
    .unwrap();
    assert_eq!(page.acked, 4);
    // A change over the per-change limit is refused with its own code.
    let big = server.sealed(&honest, 1, &vec![b'b'; 150_000]);
    let answer = server.push(&honest, &[big]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (413, "change_too_large")
    );
    honest_round(&server, &honest, 1).await;
    report(&server, "a device over its quota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_over_its_rate_gets_429_with_retry_after() {
    let server = start(&[
        ("device_requests_per_sec", "1"),
        ("device_request_burst", "5"),
        ("join_per_minute", "4"),
    ]);
    let honest = server.device("T2").await;
    let noisy = server.device("T1").await;
    // Someone who knows the honest device's id but not its key cannot spend its requests.
    let stranger = DeviceKeys::generate();
    for _ in 0..20 {
        let auth = sign_request(&stranger, "GET", paths::ROSTER, b"", unix_now())
            .replace(&stranger.id().to_string(), &honest.id().to_string());
        let answer = server.send("GET", paths::ROSTER, vec![], Some(auth)).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (401, "bad_signature")
        );
    }
    let mut limited = None;
    for _ in 0..40 {
        let auth = sign_request(&noisy, "GET", paths::ROSTER, b"", unix_now());
        let response = server
            .client
            .get(format!("{}{}", server.base(), paths::ROSTER))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("40 requests at once were never limited");
    let wait: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a retry-after header");
    assert!((1..=60).contains(&wait), "{wait}");
    let body: cairn_protocol::ErrorBody =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body.code, "rate_limited");
    // Others are not slowed down by it.
    honest_round(&server, &honest, 1).await;
    // Joining, unauthenticated, is limited per address (two joined already).
    let mut join_limited = false;
    for _ in 0..10 {
        let answer = server.send("POST", paths::JOIN, b"{}".to_vec(), None).await;
        if answer.status == 429 {
            assert_eq!(answer.code(), "rate_limited");
            join_limited = true;
            break;
        }
        assert_eq!(answer.code(), "bad_auth");
    }
    assert!(join_limited, "joins from one address were never limited");
    report(&server, "a device over its rate");
}
