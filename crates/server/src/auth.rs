//! Authentication of signed requests: the signature, the clock, then the roster.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, Uri};
use cairn_crypto::DeviceId;
use cairn_protocol::{unix_now, verify_request, ErrorCode, Refusal, Roster};

use crate::app::{body, AppState};
use crate::error::ApiError;

/// Checks the `authorization` header against this exact request, then that the device is a
/// member of the roster and not revoked. Returns the device and the roster used.
async fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(DeviceId, Arc<Roster>), ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadAuth,
                "this request is not signed; enroll the device, then sync with `cairn`",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::BadAuth, "the authorization header is not text"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let device = verify_request(
        header,
        method.as_str(),
        path,
        body,
        unix_now(),
        state.limits.max_clock_skew_secs,
    )?;
    let mut roster = state.roster.get(state).await?;
    if roster.member(&device).is_none() {
        // It may have enrolled through another server process a moment ago.
        roster = state
            .roster
            .refresh_if_older(state, std::time::Duration::from_secs(1))
            .await?;
    }
    match roster.may_connect(&device) {
        Ok(_) => Ok((device, roster)),
        Err(Refusal::Revoked { .. }) => Err(ApiError::new(
            ErrorCode::Revoked,
            "this device was revoked by the office; it can no longer sync; contact the office",
        )),
        Err(_) => Err(ApiError::new(
            ErrorCode::NotEnrolled,
            "this device is not enrolled with this server; enroll it with an invite from the office",
        )),
    }
}

/// A request whose signature, clock and sender were checked, with its body: what every
/// endpoint but `/healthz` and `/v1/enroll` takes. Must be a handler's last extractor.
pub(crate) struct Signed {
    /// The device that signed the request.
    pub(crate) device: DeviceId,
    /// The roster it was checked against.
    pub(crate) roster: Arc<Roster>,
    /// The request body (within the size limit).
    pub(crate) body: Bytes,
}

impl FromRequest<Arc<AppState>> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        let raw = body(
            Bytes::from_request(request, state).await,
            state.limits.max_request_bytes,
        )?;
        let (device, roster) = authenticate(state, &method, &uri, &headers, &raw).await?;
        Ok(Signed {
            device,
            roster,
            body: raw,
        })
    }
}
