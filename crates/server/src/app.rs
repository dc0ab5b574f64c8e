//! The HTTP application: shared state, routes, body limits and request logging.
//!
//! Every request is logged as one line with method, path, status, duration and, once known,
//! the device's short id and an error code. Bodies are never logged: they are either sealed
//! ciphertext or signed metadata, and the logs must never hold case content.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cairn_crypto::DeviceId;
use cairn_protocol::{paths, ErrorCode, OfficeKeys, NEXT_REQUEST_MS};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::guard::{Budget, InFlight, TokenBuckets, Uploads};
use crate::metrics::{Answering, CodeLabels, Metrics, RequestLabels};
use crate::roster::RosterCache;
use crate::storage::{AnyStorage, StorageError};

/// The limits a server enforces (see `config/server.example.toml`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body, in bytes; also the byte budget of one pull or checkpoint page.
    pub max_request_bytes: usize,
    /// Largest blob upload body, in bytes.
    pub max_upload_bytes: u64,
    /// Largest pull page, in changes.
    pub max_page: u32,
    /// Allowed clock difference of signed requests.
    pub max_clock_skew_secs: u64,
    /// Largest sealed change in a push.
    pub max_change_bytes: usize,
    /// Bytes of sealed changes one device may store.
    pub device_quota_bytes: u64,
    /// Steady requests per second per device.
    pub device_requests_per_sec: u32,
    /// Burst of requests per device.
    pub device_request_burst: u32,
    /// Requests in progress per device.
    pub device_max_in_flight: u32,
    /// Largest join body.
    pub join_max_bytes: usize,
    /// Joins per minute per IP address.
    pub join_per_minute: u32,
    /// Memory budget of bodies and pages in flight, in bytes.
    pub max_inflight_bytes: usize,
    /// Time to receive a whole request body.
    pub body_timeout: Duration,
}

impl Limits {
    /// The limits a configuration sets.
    pub fn from_config(config: &ServerConfig) -> Limits {
        Limits {
            max_request_bytes: config.max_request_bytes,
            max_upload_bytes: config.max_upload_bytes,
            max_page: config.max_page,
            max_clock_skew_secs: config.max_clock_skew_secs,
            max_change_bytes: config.change_limit(),
            device_quota_bytes: config.device_quota_bytes,
            device_requests_per_sec: config.device_requests_per_sec,
            device_request_burst: config.device_request_burst,
            device_max_in_flight: config.device_max_in_flight,
            join_max_bytes: config.join_max_bytes,
            join_per_minute: config.join_per_minute,
            max_inflight_bytes: config.max_inflight_bytes,
            body_timeout: Duration::from_secs(config.body_timeout_secs),
        }
    }
}

/// The peer of a connection: the address the connection-capped listener yields, read by
/// the join's rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<Peer> for Peer {
    fn connect_info(peer: Peer) -> Peer {
        peer
    }
}

/// The state of the limits: buckets, counters and the memory budget.
pub(crate) struct Guards {
    pub(crate) device_rate: TokenBuckets<DeviceId>,
    pub(crate) join_rate: TokenBuckets<std::net::IpAddr>,
    pub(crate) in_flight: InFlight,
    pub(crate) budget: Budget,
    pub(crate) uploads: Uploads,
}

/// What every handler shares.
pub struct AppState {
    /// The database.
    pub storage: AnyStorage,
    /// The office's public keys from the configuration.
    pub office: OfficeKeys,
    /// The limits.
    pub limits: Limits,
    pub(crate) roster: RosterCache,
    pub(crate) guards: Guards,
    pub(crate) metrics: Metrics,
    /// Lets a scraper that is not on this machine read `/metrics`.
    pub(crate) metrics_token: Option<String>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(storage: AnyStorage, office: OfficeKeys, limits: Limits) -> Arc<AppState> {
        AppState::with_metrics_token(storage, office, limits, None)
    }

    /// Assembles the state, `/metrics` also answering to `metrics_token`.
    pub fn with_metrics_token(
        storage: AnyStorage,
        office: OfficeKeys,
        limits: Limits,
        metrics_token: Option<String>,
    ) -> Arc<AppState> {
        let guards = Guards {
            // Device keys are bounded by the roster (checked first); addresses are not.
            device_rate: TokenBuckets::new(
                f64::from(limits.device_requests_per_sec),
                limits.device_request_burst,
                100_000,
            ),
            join_rate: TokenBuckets::new(
                f64::from(limits.join_per_minute) / 60.0,
                limits.join_per_minute,
                10_000,
            ),
            in_flight: InFlight::new(limits.device_max_in_flight),
            budget: Budget::new(
                limits.max_inflight_bytes,
                limits.body_timeout,
                limits.body_timeout.min(Duration::from_secs(5)),
            ),
            uploads: Uploads::default(),
        };
        Arc::new(AppState {
            storage,
            office,
            limits,
            roster: RosterCache::default(),
            guards,
            metrics: Metrics::default(),
            metrics_token,
        })
    }
}

/// The device a request came from, attached to the response for the log line.
#[derive(Clone, Copy)]
pub(crate) struct LoggedDevice(pub DeviceId);

/// Builds the router with every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(paths::HEALTHZ, get(|| async { "ok" }))
        .route(paths::READYZ, get(readyz))
        .route(paths::METRICS, get(crate::metrics::metrics))
        .route(paths::JOIN, post(crate::join::join))
        .route(paths::PUSH, post(crate::push::push))
        .route(paths::PULL, get(crate::pull::pull))
        .route(paths::CHANGES, get(crate::changes::case_changes))
        .route(
            paths::ROSTER,
            get(crate::roster::roster).post(crate::roster::post_roster),
        )
        .route(
            paths::BLOB,
            get(crate::blob::download).post(crate::blob::upload),
        )
        .route(paths::BLOB_STATUS, get(crate::blob::status))
        .route(
            paths::CHECKPOINTS,
            get(crate::checkpoint::checkpoints).post(crate::checkpoint::post_checkpoints),
        )
        .route(
            paths::RECEIPT,
            get(crate::receipt::receipt).post(crate::receipt::post_receipt),
        )
        .fallback(|| async {
            ApiError::new(
                ErrorCode::NotFound,
                "no such endpoint; check the server address",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// `/readyz`: ready once the database answers a trivial query. Unlike `/healthz` (from
/// memory), this tells a load balancer to stop sending devices here while the database is
/// gone.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    readiness(state.storage.ping().await)
}

/// The readiness answer for what the database said.
fn readiness(ping: Result<(), StorageError>) -> Response {
    match ping {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database does not answer",
            )
                .into_response()
        }
    }
}

/// The `413 too_large` answer for a body over `limit` bytes.
pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("the request is larger than this server's limit of {limit} bytes; send fewer changes per request"),
    )
}

/// Logs and counts each request without its body, and tells a device when its next
/// request fits its rate.
async fn log_request(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // The pattern, not the path: metrics labels stay few and hold no ids.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let answering = Answering::new(&state.metrics.in_flight);
    let mut response = next.run(request).await;
    drop(answering);
    if let Some(LoggedDevice(device)) = response.extensions().get::<LoggedDevice>().copied() {
        let (left, next) = state.guards.device_rate.level(&device);
        let wait = if left >= 1 { 0 } else { next.as_millis() + 1 };
        response.headers_mut().insert(
            NEXT_REQUEST_MS,
            HeaderValue::from(u64::try_from(wait).unwrap_or(u64::MAX)),
        );
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let device = response
        .extensions()
        .get::<LoggedDevice>()
        .map(|d| d.0.short());
    let code = response.extensions().get::<ErrorCode>().map(|c| c.as_str());
    let metrics = &state.metrics;
    if route == paths::PULL {
        metrics
            .pull_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    metrics
        .requests
        .get_or_create(&RequestLabels { route, status })
        .inc();
    if let Some(code) = code {
        metrics
            .refusals
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }
    if response.extensions().get::<ErrorCode>() == Some(&ErrorCode::RateLimited) {
        metrics.rate_limited.inc();
    }
    tracing::info!(%method, %path, status, ms = format_args!("{ms:.1}"), device, code, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_that_fails_makes_the_server_not_ready() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = crate::storage::SqliteStorage::open(&dir.path().join("server.db"))
            .await
            .expect("open");
        assert_eq!(readiness(storage.ping().await).status(), StatusCode::OK);
        // SQLite keeps answering from its cache when its file is overwritten behind its
        // back, so the failure is the one PostgreSQL gives when it is stopped.
        let failed = StorageError::Backend("cannot reach PostgreSQL: connection refused".into());
        let answer = readiness(Err(failed));
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
