//! `POST /v1/enroll`: a device presents an office-signed invite and its signed keys.
//!
//! Checks, in order: the JSON parses; the invite is signed by the office key in this
//! server's configuration (not the one embedded in the invite); the device's signature
//! holds; the invite has not expired; the invite is unused. Presenting the same enrollment
//! again succeeds and changes nothing, even after the invite expired, so a device whose
//! first answer was lost can simply retry.
//!
//! Being unauthenticated by nature, it is rate-limited per peer IP address (before anything
//! is read) and its body is small (`enroll_max_bytes`).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_crypto::DeviceId;
use cairn_protocol::{unix_now, EnrollResponse, Enrollment, ErrorCode, ProtocolError};

use crate::app::{AppState, LoggedDevice, Peer};
use crate::error::ApiError;
use crate::guard::rate_limited;
use crate::storage::{EnrollOutcome, Storage};

pub(crate) async fn enroll(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    // Anyone may knock: limit how often per address, and read little.
    let limit = state.limits.enroll_max_bytes;
    let budget = &state.guards.budget;
    let peer = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(Peer(peer))| peer.ip());
    let body = request.into_body();
    if let Some(Err(wait)) = peer.map(|ip| state.guards.enroll_rate.take(&ip)) {
        let e = rate_limited(wait, "too many enrollments from this address");
        return Err(budget.refuse(body, limit, e).await);
    }
    let (raw, _budget) = budget
        .read(body, limit, || {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("an enrollment is at most {limit} bytes; this is not one"),
            )
        })
        .await?;
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
        Ok(()) => {
            // References carry the device's tag; two devices of one team must never share it.
            let roster = state.roster.get(&state).await?;
            let members = roster.members().map(|m| (m.id, m.team.as_str()));
            if let Some(other) = tag_taken(members, enrollment.team(), &device, DeviceId::tag) {
                return Err(ApiError::new(
                    ErrorCode::TagTaken,
                    format!(
                        "device {} of team {} already has reference tag {}; make new keys for this device (a new vault) and join again",
                        other.short(),
                        enrollment.team(),
                        device.tag()
                    ),
                ));
            }
            state.storage.enroll(&enrollment).await?
        }
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

/// Another device of `team` whose reference tag equals `device`'s, if any.
fn tag_taken<'a>(
    members: impl Iterator<Item = (DeviceId, &'a str)>,
    team: &str,
    device: &DeviceId,
    tag: impl Fn(&DeviceId) -> String,
) -> Option<DeviceId> {
    let wanted = tag(device);
    members
        .filter(|(id, member_team)| id != device && member_team.eq_ignore_ascii_case(team))
        .find(|(id, _)| tag(id) == wanted)
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_taken_only_by_another_device_of_the_same_team() {
        let (a, b, c) = (DeviceId([1; 32]), DeviceId([2; 32]), DeviceId([3; 32]));
        // Real tags collide once in a million keys; a constant tag shows the rule.
        let same = |_: &DeviceId| "7KQ2".to_string();
        let members = || [(a, "T03"), (b, "T04")].into_iter();
        assert_eq!(tag_taken(members(), "T03", &c, same), Some(a));
        assert_eq!(tag_taken(members(), "T05", &c, same), None);
        assert_eq!(
            tag_taken(members(), "T03", &a, same),
            None,
            "re-enrolling itself"
        );
        assert_eq!(tag_taken(members(), "T03", &c, DeviceId::tag), None);
    }
}
