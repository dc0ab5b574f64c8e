//! The HTTP application: shared state, routes, body limits and request logging.
//!
//! Every request is logged as one line with method, path, status, duration and, once known,
//! the device's short id and an error code. Bodies are never logged: they are either sealed
//! ciphertext or signed metadata, and the logs must never hold case content.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use cairn_crypto::DeviceId;
use cairn_protocol::{paths, ErrorCode, OfficeKeys};

use crate::error::ApiError;
use crate::roster::RosterCache;
use crate::storage::AnyStorage;

/// The limits a server enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body, in bytes; also the byte budget of one pull page.
    pub max_request_bytes: usize,
    /// Largest pull page, in changes.
    pub max_page: u32,
    /// Allowed clock difference of signed requests.
    pub max_clock_skew_secs: u64,
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
}

impl AppState {
    /// Assembles the state.
    pub fn new(storage: AnyStorage, office: OfficeKeys, limits: Limits) -> Arc<AppState> {
        Arc::new(AppState {
            storage,
            office,
            limits,
            roster: RosterCache::default(),
        })
    }
}

/// The device a request came from, attached to the response for the log line.
#[derive(Clone, Copy)]
pub(crate) struct LoggedDevice(pub DeviceId);

/// Builds the router with every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.limits.max_request_bytes;
    Router::new()
        .route(paths::HEALTHZ, get(|| async { "ok" }))
        .route(paths::ENROLL, post(crate::enroll::enroll))
        .route(paths::PUSH, post(crate::push::push))
        .route(paths::PULL, get(crate::pull::pull))
        .route(paths::ROSTER, get(crate::roster::roster))
        .route(paths::REVOKE, post(crate::revoke::revoke))
        .fallback(|| async {
            ApiError::new(
                ErrorCode::NotFound,
                "no such endpoint; check the server address",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// The body, or 413 `too_large` / 400 `malformed`.
pub(crate) fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("the request is larger than this server's limit of {limit} bytes; send fewer changes per request"),
            )
        } else {
            ApiError::malformed("the request body could not be read")
        }
    })
}

async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let device = response
        .extensions()
        .get::<LoggedDevice>()
        .map(|d| d.0.short());
    let code = response.extensions().get::<ErrorCode>().map(|c| c.as_str());
    tracing::info!(%method, %path, status, ms = format_args!("{ms:.1}"), device, code, "request");
    response
}
