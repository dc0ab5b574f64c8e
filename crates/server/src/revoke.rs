//! `POST /v1/revoke`: records an office-signed revocation, relayed by any enrolled device.
//!
//! The signature is what counts, not who relays it; storing the same revocation twice keeps
//! one. From then on the device's requests are refused and so are its changes numbered
//! above the revocation's `last_seq`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_protocol::{ErrorCode, Revocation};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::storage::Storage;

pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    Signed {
        device: requester,
        body: raw,
        ..
    }: Signed,
) -> Result<Response, ApiError> {
    let revocation: Revocation = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::malformed(format!("the revocation does not parse ({e})")))?;
    revocation.verify(&state.office.signing).map_err(|_| {
        ApiError::new(
            ErrorCode::BadSignature,
            "the revocation is not signed by this server's office key; sign it with the office identity",
        )
    })?;
    state.storage.revoke(&revocation).await?;
    state.roster.refresh(&state).await?;
    tracing::info!(device = %revocation.device.short(), last_seq = revocation.last_seq, "revoked");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(LoggedDevice(requester));
    Ok(response)
}
