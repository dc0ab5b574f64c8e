//! `POST /v2/join`: a device presents the office-signed statement admitting it.
//!
//! The device is not a member yet, so the request's `authorization` header is checked
//! against the keys the admission names rather than against the roster. Checks, in order:
//! the header's form and time (from the head, before the body is read); the statement
//! parses (`400 malformed`); it is an admission signed by the office key in this server's
//! configuration (`403 admission_invalid`); the request is signed by the very device it
//! admits (`403 admission_invalid`: a captured admission admits nobody else); it has not
//! expired (`410 admission_expired`), unless this same statement is in the chain and this
//! device joined with it before, so a device whose first answer was lost simply retries;
//! then it is placed against the chain: appended when it is the next statement, accepted
//! when the chain holds it already (the office may have sent it first), `409 roster_behind`
//! when statements before it are missing and `409 roster_conflict` when it contradicts the
//! chain.
//!
//! Being unauthenticated by nature, it is rate-limited per peer IP address (before anything
//! is read) and its body is small (`join_max_bytes`).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_protocol::{
    unix_now, Act, ErrorCode, JoinResponse, Placement, ProtocolError, Refusal, Statement,
};

use crate::app::{AppState, LoggedDevice, Peer};
use crate::auth::{head_form, signer};
use crate::error::ApiError;
use crate::guard::rate_limited;
use crate::roster::Placer;
use crate::storage::{Joined, Storage};

pub(crate) async fn join(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    // Anyone may knock: limit how often per address, and read little.
    let limit = state.limits.join_max_bytes;
    let budget = &state.guards.budget;
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(Peer(peer))| peer.ip());
    if let Some(Err(wait)) = peer.map(|ip| state.guards.join_rate.take(&ip)) {
        let e = rate_limited(wait, "too many joins from this address");
        return Err(budget.refuse(body, limit, e).await);
    }
    let now = unix_now();
    if let Err(e) = head_form(&state, &parts, now) {
        return Err(budget.refuse(body, limit, e).await);
    }
    let (raw, _budget) = budget
        .read(body, limit, || {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("an admission is at most {limit} bytes; this is not one"),
            )
        })
        .await?;
    let statement: Statement = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::malformed(format!("the admission does not parse ({e})")))?;
    let admit = match (statement.verify(&state.office.signing), &statement.act) {
        (Err(ProtocolError::NotSignedByOffice(_)), _) => {
            return Err(ApiError::new(
                ErrorCode::AdmissionInvalid,
                "the admission is not signed by this server's office; ask the office for an admission to this server",
            ))
        }
        (Err(other), _) => return Err(ApiError::malformed(other)),
        (Ok(()), Act::Revoke(_)) => {
            return Err(ApiError::new(
                ErrorCode::AdmissionInvalid,
                "this roster statement revokes a device; present the statement admitting this device",
            ))
        }
        (Ok(()), Act::Places(_)) => {
            return Err(ApiError::new(
                ErrorCode::AdmissionInvalid,
                "this roster statement lists places; present the statement admitting this device",
            ))
        }
        (Ok(()), Act::Grant(_) | Act::Rotate(_)) => {
            return Err(ApiError::new(
                ErrorCode::AdmissionInvalid,
                "this roster statement hands out a team's key; present the statement admitting this device",
            ))
        }
        (Ok(()), Act::Admit(admit)) => admit,
    };
    let device = signer(&state, &parts, &raw, now)?;
    if device != admit.device.signing {
        return Err(ApiError::new(
            ErrorCode::AdmissionInvalid,
            format!(
                "this admission is for another device (code {}); run `cairn id` on this device and ask the office to admit that line",
                admit.device.short_code()
            ),
        ));
    }
    if now >= admit.expires_at && !rejoin(&state, &statement).await? {
        return Err(ApiError::new(
            ErrorCode::AdmissionExpired,
            format!(
                "the admission expired at {} (unix time); ask the office to admit this device again",
                admit.expires_at
            ),
        ));
    }
    let joined = Joined {
        device,
        counter: statement.counter,
        at: now,
    };
    let (counter, team) = (statement.counter, admit.team.clone());
    let roster = state
        .roster
        .append(&state, vec![statement], Some(joined), Placer::Joining)
        .await?;
    match roster.may_connect(&device) {
        Ok(member) if member.team == team => {}
        Err(Refusal::Revoked { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Revoked,
                "this device was revoked by the office; it can no longer sync; contact the office",
            ))
        }
        _ => {
            let marker = format!("roster statement {counter} ");
            let why = roster
                .problems
                .iter()
                .find(|p| p.starts_with(&marker))
                .map_or("it took no effect", String::as_str);
            return Err(ApiError::new(
                ErrorCode::AdmissionInvalid,
                format!("this admission does not make the device a member: {why}; ask the office"),
            ));
        }
    }
    tracing::info!(device = %device.short(), team = %team, counter, "joined");
    let mut response = Json(JoinResponse {
        team,
        device: device.to_string(),
    })
    .into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// Whether `statement` is in the chain already and its device joined with it before: an
/// expired admission is then a retry, not a late first use.
async fn rejoin(state: &AppState, statement: &Statement) -> Result<bool, ApiError> {
    let mut roster = state.roster.get(state).await?;
    if statement.counter > roster.head() {
        roster = state.roster.refresh(state).await?;
    }
    if roster.place(statement) != Placement::Known {
        return Ok(false);
    }
    let Some(device) = statement.device() else {
        return Ok(false);
    };
    Ok(state.storage.joined(&device).await? == Some(statement.counter))
}
