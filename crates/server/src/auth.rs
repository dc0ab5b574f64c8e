//! Authentication of signed requests, in two steps so that no stranger can make the server
//! read a body: from the head alone, the `authorization` header's form, its time and that
//! its device is an unrevoked member of the roster (then that device's rate, and its requests in
//! progress from that address); only then the body, within the limits of [`crate::guard`]; then the signature,
//! which covers the body's SHA-256. A request refused from its head has its body (if small)
//! read and thrown away before the answer, so that an honest client still sending reads the
//! refusal rather than a reset connection.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cairn_crypto::DeviceId;
use cairn_protocol::{unix_now, verify_request, ErrorCode, ProtocolError, Refusal, Roster};

use crate::app::{too_large, AppState, Peer};
use crate::error::ApiError;
use crate::guard::{rate_limited, Hold, InFlightGuard};

/// The device and time an `authorization` header names, if it has the expected form; the
/// full check (of every part, and of the signature) is [`verify_request`]'s.
fn peek(header: &str) -> Option<(DeviceId, u64)> {
    let params = header
        .strip_prefix(cairn_protocol::AUTH_SCHEME)?
        .strip_prefix(' ')?;
    let (mut device, mut time) = (None, None);
    for part in params.split(',') {
        match part.trim().split_once('=')? {
            ("device", value) => device = Some(DeviceId::from_hex(value).ok()?),
            ("time", value) => time = Some(value.parse::<u64>().ok()?),
            _ => {}
        }
    }
    Some((device?, time?))
}

/// Checks the `authorization` header's form and its time against `now`, from the head
/// alone; returns the device it names (whose signature is checked once the body is read).
pub(crate) fn head_form(state: &AppState, parts: &Parts, now: u64) -> Result<DeviceId, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadAuth,
                "this request is not signed; join this device with the office's admission, then sync with `cairn`",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::BadAuth, "the authorization header is not text"))?;
    let skew = state.limits.max_clock_skew_secs;
    let Some((device, time)) = peek(header) else {
        // Let the protocol's own parser say what is wrong (it never reads a body here).
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        return Err(
            match verify_request(header, parts.method.as_str(), path, b"", now, skew) {
                Err(e @ (ProtocolError::BadAuth(_) | ProtocolError::ClockSkew { .. })) => e.into(),
                _ => ApiError::new(
                    ErrorCode::BadAuth,
                    "the authorization header does not parse; this client does not speak Cairn's protocol v2",
                ),
            },
        );
    };
    if now.abs_diff(time) > skew {
        return Err(ProtocolError::ClockSkew {
            skew_secs: now.abs_diff(time),
            max_secs: skew,
        }
        .into());
    }
    Ok(device)
}

/// The header's signature over the request with this body: the device that signed it.
pub(crate) fn signer(
    state: &AppState,
    parts: &Parts,
    body: &[u8],
    now: u64,
) -> Result<DeviceId, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // The time was checked against the clock when the head arrived.
    Ok(verify_request(
        header,
        parts.method.as_str(),
        path,
        body,
        now,
        state.limits.max_clock_skew_secs,
    )?)
}

/// Checks what the head alone can tell: the header's form, its time, and that its device is
/// a member of the roster that is not revoked. Returns the device, the roster used and the
/// time the check was made at.
async fn authenticate_head(
    state: &AppState,
    parts: &Parts,
) -> Result<(DeviceId, Arc<Roster>, u64), ApiError> {
    let now = unix_now();
    let device = head_form(state, parts, now)?;
    let mut roster = state.roster.get(state).await?;
    if roster.member(&device).is_none() {
        // It may have joined through another server process a moment ago.
        roster = state
            .roster
            .refresh_if_older(state, std::time::Duration::from_secs(1))
            .await?;
    }
    match roster.may_connect(&device) {
        Ok(_) => Ok((device, roster, now)),
        Err(Refusal::Revoked { .. }) => Err(ApiError::new(
            ErrorCode::Revoked,
            "this device was revoked by the office; it can no longer sync; contact the office",
        )),
        Err(_) => Err(ApiError::new(
            ErrorCode::NotEnrolled,
            "this device is not in this server's roster; join it with the admission the office gave (`cairn join`), or ask the office to sync",
        )),
    }
}

/// A request whose signature, clock and sender were checked, with its body: what every
/// endpoint but `/healthz` and `/v2/join` takes. Must be a handler's last extractor.
pub(crate) struct Signed {
    /// The device that signed the request.
    pub(crate) device: DeviceId,
    /// The roster it was checked against.
    pub(crate) roster: Arc<Roster>,
    /// The request body (within the size limit).
    pub(crate) body: Bytes,
    /// The request's share of the limits, released when dropped.
    pub(crate) hold: Hold,
}

/// What the head of a request admits it to: its device, the roster, the time of the check
/// and its place among the device's requests in progress.
struct Admitted {
    device: DeviceId,
    roster: Arc<Roster>,
    now: u64,
    in_flight: InFlightGuard,
}

/// Everything checked from the head before a byte of the body is kept: the header, the
/// device's membership, its rate (checked, not charged) and its requests in progress. A
/// refused request's body is drained (up to `limit`) so the client reads the answer.
async fn admit(
    state: &AppState,
    parts: &Parts,
    body: Body,
    limit: usize,
) -> Result<(Admitted, Body), ApiError> {
    let budget = &state.guards.budget;
    let (device, roster, now) = match authenticate_head(state, parts).await {
        Ok(found) => found,
        Err(e) => return Err(budget.refuse(body, limit, e).await),
    };
    // The rate is charged once the signature holds (see `charge`), so that someone who
    // only knows a device's id cannot spend its requests; here it is only checked.
    if let Err(wait) = state.guards.device_rate.check(&device) {
        let e = rate_limited(wait, "this device is sending too many requests");
        return Err(budget.refuse(body, limit, e).await);
    }
    let ip = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(Peer(peer))| {
            peer.ip()
        });
    let Some(in_flight) = state.guards.in_flight.enter(device, ip) else {
        let e = rate_limited(
            std::time::Duration::from_secs(1),
            "this device has too many requests in progress",
        );
        return Err(budget.refuse(body, limit, e).await);
    };
    Ok((
        Admitted {
            device,
            roster,
            now,
            in_flight,
        },
        body,
    ))
}

/// Checks that the signature over the request with `body` is the admitted device's, then
/// charges the device's rate.
fn charge(
    state: &AppState,
    parts: &Parts,
    admitted: &Admitted,
    body: &[u8],
) -> Result<(), ApiError> {
    let device = admitted.device;
    if signer(state, parts, body, admitted.now)? != device {
        return Err(ApiError::new(
            ErrorCode::BadAuth,
            "the authorization header names two devices; this client does not speak Cairn's protocol v2",
        ));
    }
    state
        .guards
        .device_rate
        .take(&device)
        .map_err(|wait| rate_limited(wait, "this device is sending too many requests"))
}

impl FromRequest<Arc<AppState>> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let limit = state.limits.max_request_bytes;
        let (admitted, body) = admit(state, &parts, body, limit).await?;
        let (raw, budget) = state
            .guards
            .budget
            .read(body, limit, || too_large(limit))
            .await?;
        charge(state, &parts, &admitted, &raw)?;
        Ok(Signed {
            device: admitted.device,
            roster: admitted.roster,
            body: raw,
            hold: Hold {
                budget,
                in_flight: Some(admitted.in_flight),
            },
        })
    }
}

/// A request whose body is a stream read as it arrives (a blob upload): its signature
/// covers an empty body, since the body's every part (a sealed chunk) carries its author's
/// own signature, which the endpoint checks against [`SignedStream::device`]. Must be a
/// handler's last extractor.
pub(crate) struct SignedStream {
    /// The device that signed the request.
    pub(crate) device: DeviceId,
    /// The roster it was checked against.
    pub(crate) roster: Arc<Roster>,
    /// The body, not yet read.
    pub(crate) body: Body,
    /// Its place among the device's requests in progress, released when dropped.
    pub(crate) in_flight: InFlightGuard,
}

impl FromRequest<Arc<AppState>> for SignedStream {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let (admitted, body) = admit(state, &parts, body, state.limits.max_request_bytes).await?;
        if let Err(e) = charge(state, &parts, &admitted, b"") {
            return Err(state
                .guards
                .budget
                .refuse(body, state.limits.max_request_bytes, e)
                .await);
        }
        Ok(SignedStream {
            device: admitted.device,
            roster: admitted.roster,
            body,
            in_flight: admitted.in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_crypto::DeviceKeys;

    #[test]
    fn peek_reads_the_device_and_time_of_a_signed_header() {
        let keys = DeviceKeys::generate();
        let header = cairn_protocol::sign_request(&keys, "GET", "/v2/roster", b"", 1234);
        assert_eq!(peek(&header), Some((keys.id(), 1234)));
        for bad in [
            "",
            "Basic abc",
            "Cairn time=1",
            "Cairn device=zz,time=1",
            "Cairn device=00,time=x",
        ] {
            assert_eq!(peek(bad), None, "{bad}");
        }
    }
}
