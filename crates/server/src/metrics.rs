//! `/metrics`: the server's counters in Prometheus' text format (OpenMetrics), on the same
//! listener as the API.
//!
//! Only loopback peers, or a scraper holding `metrics_token`, may read them: the counts say
//! how busy the office's teams are. Labels are bounded (matched route patterns, status codes,
//! error codes), never a device id, a path's ids or anything from a body.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;

use crate::app::{AppState, Peer};

/// The content type of the OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The route's pattern (`/v2/blobs/{author}/{blob}`), or `unmatched`.
    pub(crate) route: String,
    pub(crate) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CodeLabels {
    pub(crate) code: String,
}

/// Every metric the server keeps, and the registry that writes them.
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) refusals: Family<CodeLabels, Counter>,
    pub(crate) rate_limited: Counter,
    pub(crate) in_flight: Gauge,
    pub(crate) changes_pushed: Counter,
    pub(crate) bytes_pushed: Counter,
    pub(crate) changes_pulled: Counter,
    pub(crate) bytes_pulled: Counter,
    pub(crate) pull_seconds: Histogram,
    pub(crate) checkpoint_parts_posted: Counter,
    pub(crate) checkpoint_bytes_posted: Counter,
    pub(crate) checkpoint_parts_served: Counter,
    pub(crate) checkpoint_bytes_served: Counter,
    storage_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cairn");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        let refusals = Family::<CodeLabels, Counter>::default();
        registry.register("refusals", "Error answers, by error code", refusals.clone());
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429 rate_limited",
            rate_limited.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being answered now",
            in_flight.clone(),
        );
        let changes_pushed = Counter::default();
        registry.register(
            "changes_pushed",
            "Sealed changes newly stored by pushes",
            changes_pushed.clone(),
        );
        let bytes_pushed = Counter::default();
        registry.register(
            "pushed_bytes",
            "Bytes of sealed changes newly stored by pushes",
            bytes_pushed.clone(),
        );
        let changes_pulled = Counter::default();
        registry.register(
            "changes_pulled",
            "Sealed changes served in pull pages",
            changes_pulled.clone(),
        );
        let bytes_pulled = Counter::default();
        registry.register(
            "pulled_bytes",
            "Bytes of sealed changes served in pull pages",
            bytes_pulled.clone(),
        );
        // 1 ms to about 16 s.
        let pull_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "pull_duration_seconds",
            "Time to answer a pull, until its page is ready to send",
            pull_seconds.clone(),
        );
        let checkpoint_parts_posted = Counter::default();
        registry.register(
            "checkpoint_parts_posted",
            "Checkpoint parts newly stored by the office's posts",
            checkpoint_parts_posted.clone(),
        );
        let checkpoint_bytes_posted = Counter::default();
        registry.register(
            "checkpoint_posted_bytes",
            "Bytes of checkpoint parts newly stored by the office's posts",
            checkpoint_bytes_posted.clone(),
        );
        let checkpoint_parts_served = Counter::default();
        registry.register(
            "checkpoint_parts_served",
            "Checkpoint parts served in checkpoint pages",
            checkpoint_parts_served.clone(),
        );
        let checkpoint_bytes_served = Counter::default();
        registry.register(
            "checkpoint_served_bytes",
            "Bytes of checkpoint parts served in checkpoint pages",
            checkpoint_bytes_served.clone(),
        );
        let storage_bytes = Gauge::default();
        registry.register(
            "storage_bytes",
            "Size of the database (SQLite file and WAL, or pg_database_size)",
            storage_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            refusals,
            rate_limited,
            in_flight,
            changes_pushed,
            bytes_pushed,
            changes_pulled,
            bytes_pulled,
            pull_seconds,
            checkpoint_parts_posted,
            checkpoint_bytes_posted,
            checkpoint_parts_served,
            checkpoint_bytes_served,
            storage_bytes,
        }
    }
}

/// Counts `n` of something (a length) on a counter.
pub(crate) fn add(counter: &Counter, n: usize) {
    counter.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
}

/// Holds one request in the in-flight gauge until dropped (also when the client leaves).
pub(crate) struct Answering<'a>(&'a Gauge);

impl<'a> Answering<'a> {
    pub(crate) fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Answering(gauge)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Whether a request from `peer` with these headers may read the metrics: a loopback peer
/// always; another only with `authorization: Bearer <token>`, compared in constant time.
pub(crate) fn may_scrape(peer: IpAddr, token: Option<&str>, headers: &HeaderMap) -> bool {
    if peer.to_canonical().is_loopback() {
        return true;
    }
    let (Some(token), Some(given)) = (token, headers.get(header::AUTHORIZATION)) else {
        return false;
    };
    let Some(given) = given.as_bytes().strip_prefix(b"Bearer ") else {
        return false;
    };
    given.ct_eq(token.as_bytes()).into()
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    State(state): State<Arc<AppState>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    if !may_scrape(peer.ip(), state.metrics_token.as_deref(), &headers) {
        return (
            StatusCode::FORBIDDEN,
            "metrics are answered to this machine, or with `authorization: Bearer <metrics_token>` from server.toml",
        )
            .into_response();
    }
    let metrics = &state.metrics;
    match state.storage.size().await {
        Ok(bytes) => {
            metrics
                .storage_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        // The other metrics still say something; the gauge keeps its last value.
        Err(e) => tracing::warn!(error = %e, "cannot read the database's size"),
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &metrics.registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot write the metrics",
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        headers
    }

    #[test]
    fn only_loopback_or_the_token_may_scrape() {
        let far: IpAddr = "203.0.113.9".parse().expect("ip");
        let token = Some("a-long-metrics-token-0123456789");
        for near in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            let near: IpAddr = near.parse().expect("ip");
            assert!(may_scrape(near, None, &HeaderMap::new()), "{near}");
        }
        assert!(!may_scrape(far, None, &HeaderMap::new()));
        assert!(!may_scrape(far, token, &HeaderMap::new()));
        assert!(!may_scrape(far, None, &bearer("anything")));
        assert!(!may_scrape(
            far,
            token,
            &bearer("a-long-metrics-token-012345678")
        ));
        assert!(!may_scrape(
            far,
            token,
            &bearer("a-long-metrics-token-0123456789x")
        ));
        assert!(!may_scrape(far, token, &bearer("")));
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            "Basic a-long-metrics-token-0123456789"
                .parse()
                .expect("header"),
        );
        assert!(!may_scrape(far, token, &basic));
        assert!(may_scrape(
            far,
            token,
            &bearer("a-long-metrics-token-0123456789")
        ));
        let far6: IpAddr = "2001:db8::7".parse().expect("ip");
        assert!(!may_scrape(far6, None, &HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_stranger_without_the_token_gets_403_and_no_metrics() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = crate::storage::SqliteStorage::open(&dir.path().join("server.db"))
            .await
            .expect("open");
        let office = cairn_protocol::OfficeKeys::from_keys(&cairn_crypto::DeviceKeys::generate());
        let config = crate::ServerConfig::new("127.0.0.1:0".parse().expect("addr"), None, office);
        let state = AppState::with_metrics_token(
            crate::storage::AnyStorage::Sqlite(storage),
            config.office.clone(),
            crate::Limits::from_config(&config),
            Some("a-long-metrics-token-0123456789".into()),
        );
        let far = Peer("203.0.113.9:4431".parse().expect("addr"));
        let ask = |headers: HeaderMap| metrics(State(state.clone()), ConnectInfo(far), headers);
        let refused = ask(bearer("a-long-metrics-token-wrong-wrong")).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(refused.into_body(), 4096)
            .await
            .expect("body");
        assert!(!String::from_utf8_lossy(&body).contains("cairn_"));
        assert_eq!(ask(HeaderMap::new()).await.status(), StatusCode::FORBIDDEN);
        let allowed = ask(bearer("a-long-metrics-token-0123456789")).await;
        assert_eq!(allowed.status(), StatusCode::OK);
        let body = axum::body::to_bytes(allowed.into_body(), 1 << 20)
            .await
            .expect("body");
        assert!(String::from_utf8_lossy(&body).contains("cairn_storage_bytes"));
    }
}
