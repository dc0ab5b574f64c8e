//! `/metrics`: scraped after real pushes and pulls, read with a Prometheus text parser.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_protocol::{pull_path, PullPage};
use common::TestServer;
use prometheus_parse::{Scrape, Value};

async fn scrape(server: &TestServer) -> Scrape {
    let answer = server.send("GET", "/metrics", vec![], None).await;
    assert_eq!(answer.status, 200);
    let text = String::from_utf8(answer.body).unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of `metric` with these labels (0 when no such sample is written yet).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match sample.map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(other) => panic!("{metric} is not a number: {other:?}"),
    }
}

fn pull_count(scrape: &Scrape) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == "cairn_pull_duration_seconds")
        .expect("the pull histogram");
    match &sample.value {
        Value::Histogram(buckets) => buckets.last().unwrap().count,
        other => panic!("not a histogram: {other:?}"),
    }
}

#[tokio::test]
async fn the_checkpoint_counters_move_by_what_was_posted_and_served() {
    use cairn_crypto::{SealedChange, SealedKind};
    use cairn_protocol::checkpoint::{checkpoints_path, PartBody, Place};
    let server = TestServer::start();
    let a = server.device("T1").await;
    let before = scrape(&server).await;
    let place = Place {
        part: 0,
        parts: 1,
        full: true,
    };
    let body = PartBody::default().encode();
    let part = SealedChange::seal(
        &server.office,
        &server.key("T1"),
        SealedKind::Checkpoint,
        place.to_id(),
        1,
        &body,
    )
    .unwrap()
    .to_bytes();
    // Posted twice (a resend stores nothing new), served once.
    for _ in 0..2 {
        let body = cairn_protocol::encode_push(std::slice::from_ref(&part));
        let answer = server
            .signed(&server.office, "POST", "/v2/checkpoints", body)
            .await;
        assert_eq!(answer.status, 204);
    }
    let answer = server
        .signed(&a, "GET", &checkpoints_path("T1", None), vec![])
        .await;
    assert_eq!(answer.status, 200);
    let after = scrape(&server).await;
    let moved = |metric: &str| value(&after, metric, &[]) - value(&before, metric, &[]);
    assert_eq!(moved("cairn_checkpoint_parts_posted_total"), 1.0);
    assert_eq!(
        moved("cairn_checkpoint_posted_bytes_total"),
        part.len() as f64
    );
    assert_eq!(moved("cairn_checkpoint_parts_served_total"), 1.0);
    assert_eq!(
        moved("cairn_checkpoint_served_bytes_total"),
        part.len() as f64
    );
}

#[tokio::test]
async fn the_counters_move_by_what_was_pushed_and_pulled() {
    let server = TestServer::start();
    let a = server.device("T1").await;
    let before = scrape(&server).await;

    let changes = [
        server.sealed(&a, 1, b"first"),
        server.sealed(&a, 2, &[7u8; 3000]),
    ];
    let sent: usize = changes.iter().map(Vec::len).sum();
    assert_eq!(server.push(&a, &changes).await.push().acked, 2);
    // A duplicate stores nothing new, and counts nothing.
    assert_eq!(server.push(&a, &changes[..1]).await.push().acked, 2);
    let answer = server
        .signed(&server.office, "GET", &pull_path(0, None), vec![])
        .await;
    assert_eq!(PullPage::decode(&answer.body).unwrap().changes.len(), 2);
    // A refusal: a push with no signature.
    let refused = server.send("POST", "/v2/push", vec![1, 2, 3], None).await;
    assert_eq!(refused.code(), "bad_auth");

    let after = scrape(&server).await;
    let moved = |metric: &str, labels: &[(&str, &str)]| {
        value(&after, metric, labels) - value(&before, metric, labels)
    };
    assert_eq!(moved("cairn_changes_pushed_total", &[]), 2.0);
    assert_eq!(moved("cairn_pushed_bytes_total", &[]), sent as f64);
    assert_eq!(moved("cairn_changes_pulled_total", &[]), 2.0);
    assert_eq!(moved("cairn_pulled_bytes_total", &[]), sent as f64);
    let push_ok = [("route", "/v2/push"), ("status", "200")];
    assert_eq!(moved("cairn_requests_total", &push_ok), 2.0);
    let pull_ok = [("route", "/v2/pull"), ("status", "200")];
    assert_eq!(moved("cairn_requests_total", &pull_ok), 1.0);
    let push_refused = [("route", "/v2/push"), ("status", "401")];
    assert_eq!(moved("cairn_requests_total", &push_refused), 1.0);
    assert_eq!(moved("cairn_refusals_total", &[("code", "bad_auth")]), 1.0);
    assert_eq!(moved("cairn_rate_limited_total", &[]), 0.0);
    assert_eq!(pull_count(&after) - pull_count(&before), 1.0);
    // The first scrape is counted by the second, under its route, never its device or ids.
    assert_eq!(moved("cairn_requests_total", &[("route", "/metrics")]), 1.0);
    // Only the scrape itself is being answered.
    assert_eq!(value(&after, "cairn_requests_in_flight", &[]), 1.0);
    let db = std::fs::metadata(server.process.dir().path().join("server.db")).unwrap();
    assert!(value(&after, "cairn_storage_bytes", &[]) >= db.len() as f64);
    // An unknown path is counted under one label, whatever it was.
    server.send("GET", "/no/such/thing-42", vec![], None).await;
    let last = scrape(&server).await;
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(value(&last, "cairn_requests_total", &unmatched), 1.0);
    assert!(last
        .samples
        .iter()
        .all(|s| s.labels.values().all(|v| !v.contains("thing-42"))));
}

#[tokio::test]
async fn rate_limited_requests_are_counted() {
    let server = TestServer::start_with(&[
        ("device_requests_per_sec", "1"),
        ("device_request_burst", "2"),
    ]);
    let a = server.device("T1").await;
    let mut limited = 0;
    for _ in 0..6 {
        let answer = server.signed(&a, "GET", &pull_path(0, None), vec![]).await;
        if answer.status == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 1, "the burst of 2 was exceeded");
    let scraped = scrape(&server).await;
    assert_eq!(
        value(&scraped, "cairn_rate_limited_total", &[]),
        limited as f64
    );
    let code = [("code", "rate_limited")];
    assert_eq!(
        value(&scraped, "cairn_refusals_total", &code),
        limited as f64
    );
}

#[tokio::test]
async fn a_short_metrics_token_is_refused_at_start() {
    let office = cairn_crypto::DeviceKeys::generate();
    let dir = cairn_testkit::ServerDir::init(cairn_protocol::OfficeKeys::from_keys(&office));
    dir.set("metrics_token", "\"short\"");
    let out = std::process::Command::new(cairn_testkit::bin("cairn-server"))
        .args(["run", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics_token"));
}

/// On PostgreSQL, the database's size is `pg_database_size` and readiness is its answer.
#[tokio::test]
async fn on_postgresql_readiness_and_the_storage_size_come_from_the_database() {
    common::with_postgres_server(|server| async move {
        let ready = server.send("GET", "/readyz", vec![], None).await;
        assert_eq!((ready.status, ready.body.as_slice()), (200, &b"ready"[..]));
        let a = server.device("T1").await;
        let change = server.sealed(&a, 1, b"on postgres");
        assert_eq!(server.push(&a, &[change]).await.push().acked, 1);
        let scraped = scrape(&server).await;
        assert_eq!(value(&scraped, "cairn_changes_pushed_total", &[]), 1.0);
        let size = value(&scraped, "cairn_storage_bytes", &[]);
        // An empty PostgreSQL database is several megabytes.
        assert!(size > 1_000_000.0, "{size}");
    })
    .await;
}
