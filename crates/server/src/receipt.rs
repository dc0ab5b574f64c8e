//! `GET`/`POST /v2/receipt`: the office's signed receipt, relayed to field devices.
//!
//! The office posts a receipt after it synced; the server checks the office's signature and
//! keeps only the newest (highest counter). Posting the very receipt held again changes
//! nothing (`204`); one with a lower counter, or another one with the same counter, is
//! refused as `409 roster_conflict`: receipts only move forward. Any member fetches the
//! newest, `404 not_found` before the first.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_protocol::{ErrorCode, ProtocolError, Receipt};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::roster::office_only;
use crate::storage::{ReceiptOutcome, Storage, StorageError};

/// `GET /v2/receipt`.
pub(crate) async fn receipt(
    State(state): State<Arc<AppState>>,
    Signed { device, .. }: Signed,
) -> Result<Response, ApiError> {
    let Some(receipt) = state.storage.receipt().await? else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the office has not sent this server a receipt yet",
        ));
    };
    let mut response = Json(receipt).into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// `POST /v2/receipt` (the office only).
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
    let receipt: Receipt = serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed(format!("the receipt does not parse ({e})")))?;
    drop(body);
    let office = state.office.signing;
    let receipt = tokio::task::spawn_blocking(move || receipt.verify(&office).map(|()| receipt))
        .await
        .map_err(|_| ApiError::from(StorageError::Backend("receipt task failed".into())))?
        .map_err(|e| match e {
            ProtocolError::NotSignedByOffice(_) => ApiError::new(
                ErrorCode::BadSignature,
                "the receipt is not signed by this server's office key; sign it with the office identity",
            ),
            other => ApiError::malformed(other),
        })?;
    match state.storage.store_receipt(&receipt).await? {
        ReceiptOutcome::Stored => {
            tracing::info!(counter = receipt.counter, "receipt stored");
        }
        ReceiptOutcome::Same => {}
        ReceiptOutcome::Stale { held } => {
            return Err(ApiError::new(
                ErrorCode::RosterConflict,
                format!(
                    "this server holds receipt {held}; receipt {} is not newer, and receipts only move forward",
                    receipt.counter
                ),
            ))
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}
