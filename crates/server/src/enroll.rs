//! `POST /v1/enroll`: a device presents an office-signed invite and its signed keys.
//!
//! Checks, in order: the JSON parses; the invite is signed by the office key in this
//! server's configuration (not the one embedded in the invite); the device's signature
//! holds; the invite has not expired; the invite is unused. Presenting the same enrollment
//! again succeeds and changes nothing, even after the invite expired, so a device whose
//! first answer was lost can simply retry.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_protocol::{unix_now, EnrollResponse, Enrollment, ErrorCode, ProtocolError};

use crate::app::{body, AppState, LoggedDevice};
use crate::error::ApiError;
use crate::storage::{EnrollOutcome, Storage};

pub(crate) async fn enroll(
    State(state): State<Arc<AppState>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(raw, state.limits.max_request_bytes)?;
    let enrollment: Enrollment = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::malformed(format!("the enrollment does not parse ({e})")))?;
    let device = enrollment.device_id();
    enrollment.verify(&state.office.signing).map_err(|e| match e {
        ProtocolError::NotSignedByOffice(_) => ApiError::new(
            ErrorCode::InviteInvalid,
            "the invite is not signed by this server's office; ask the office for an invite to this server",
        ),
        other => ApiError::from(other),
    })?;
    let outcome = match enrollment.invite.verify(&state.office.signing, unix_now()) {
        Ok(()) => state.storage.enroll(&enrollment).await?,
        Err(ProtocolError::Expired { .. }) => {
            if state.storage.invite_holder(enrollment.invite.id()).await? == Some(device) {
                EnrollOutcome::Repeated
            } else {
                return Err(ApiError::new(
                    ErrorCode::InviteExpired,
                    "the invite has expired; ask the office for a new invite",
                ));
            }
        }
        Err(other) => return Err(other.into()),
    };
    if outcome == EnrollOutcome::Enrolled {
        state.roster.refresh(&state).await?;
        tracing::info!(device = %device.short(), team = %enrollment.team(), "enrolled");
    }
    let mut response = Json(EnrollResponse {
        team: enrollment.team().to_owned(),
        device: device.to_string(),
    })
    .into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}
