//! `GET`/`POST /v2/receipt`: the office's signed receipts, one per team, each relayed to that
//! team's members only.
//!
//! After it synced, the office posts one receipt per team (a JSON array, all with one
//! counter, each naming its team and that team's devices only); the server checks the
//! office's signatures and that every device a receipt names is of its team, and keeps each
//! team's newest (highest counter), all or none. Posting the very receipts held again changes
//! nothing (`204`); one with a lower counter than its team's, or another one with the same
//! counter, is refused as `409 roster_conflict`: receipts only move forward. A member fetches
//! its own team's newest, `404 not_found` before the first: no member reads another team's
//! counts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_protocol::{ErrorCode, ProtocolError, Receipt, Roster};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::roster::office_only;
use crate::storage::{ReceiptOutcome, Storage, StorageError};

/// The most receipts one post carries (one per team).
const MAX_TEAM_RECEIPTS: usize = 10_000;

/// `GET /v2/receipt`: the newest receipt of the device's own team.
pub(crate) async fn receipt(
    State(state): State<Arc<AppState>>,
    Signed { device, roster, .. }: Signed,
) -> Result<Response, ApiError> {
    let team = roster.member(&device).map(|m| m.team.as_str());
    let found = match team {
        Some(team) if !roster.is_office(&device) => state.storage.receipt(team).await?,
        _ => None,
    };
    let Some(receipt) = found else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the office has not sent this server a receipt for this device's team yet",
        ));
    };
    let mut response = Json(receipt).into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// Checks a set of team receipts as the office posts them: each names a team and only that
/// team's devices, each team once, all with one counter.
fn check_set(receipts: &[Receipt], roster: &Roster) -> Result<(), String> {
    if receipts.is_empty() || receipts.len() > MAX_TEAM_RECEIPTS {
        return Err(format!("post 1 to {MAX_TEAM_RECEIPTS} team receipts"));
    }
    let mut teams = std::collections::BTreeSet::new();
    for r in receipts {
        let Some(team) = r.team.as_deref() else {
            return Err(
                "every receipt must name its team: the whole receipt stays with the office".into(),
            );
        };
        if !teams.insert(team) {
            return Err(format!("team {team} has two receipts"));
        }
        if r.counter != receipts[0].counter {
            return Err("the team receipts of one post carry one counter".into());
        }
        if let Some(h) = r
            .held
            .iter()
            .find(|h| roster.member(&h.device).map(|m| m.team.as_str()) != Some(team))
        {
            return Err(format!(
                "the receipt of team {team} names device {}, which is not of that team",
                h.device.short()
            ));
        }
    }
    Ok(())
}

/// `POST /v2/receipt` (the office only): a JSON array of team receipts.
pub(crate) async fn post_receipt(
    State(state): State<Arc<AppState>>,
    Signed {
        device,
        roster,
        body,
        ..
    }: Signed,
) -> Result<Response, ApiError> {
    office_only(&roster, &device)?;
    let receipts: Vec<Receipt> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed(format!("the receipts do not parse ({e})")))?;
    drop(body);
    let office = state.office.signing;
    let receipts = tokio::task::spawn_blocking(move || {
        receipts
            .iter()
            .try_for_each(|r| r.verify(&office))
            .map(|()| receipts)
    })
    .await
    .map_err(|_| ApiError::from(StorageError::Backend("receipt task failed".into())))?
    .map_err(|e| match e {
        ProtocolError::NotSignedByOffice(_) => ApiError::new(
            ErrorCode::BadSignature,
            "a receipt is not signed by this server's office key; sign it with the office identity",
        ),
        other => ApiError::malformed(other),
    })?;
    check_set(&receipts, &roster).map_err(ApiError::malformed)?;
    let counter = receipts[0].counter;
    match state.storage.store_receipts(&receipts).await? {
        ReceiptOutcome::Stored => {
            tracing::info!(counter, teams = receipts.len(), "receipts stored");
        }
        ReceiptOutcome::Same => {}
        ReceiptOutcome::Stale { held } => {
            return Err(ApiError::new(
                ErrorCode::RosterConflict,
                format!(
                    "this server holds receipt {held} of a team; receipt {counter} is not newer, and receipts only move forward"
                ),
            ))
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}
