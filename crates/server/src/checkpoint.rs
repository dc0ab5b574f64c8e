//! `/v2/checkpoints`: the office's checkpoint parts, stored blind and served by team.
//!
//! - `POST` (the office only): a push-framed body of sealed checkpoint parts. Each must parse,
//!   carry a valid signature by the office itself, be of kind checkpoint, and name a place
//!   (`PartHeader::of`), a team key's epoch (1 or later) and a valid team (or team
//!   `office`). The first bad part refuses the whole post; the parts are then stored in one
//!   transaction, where the same part again is taken, and a different part at a place held,
//!   or a generation older than its team's newest whole full one, refuses the whole post
//!   (`409 roster_conflict`). `204` once stored.
//! - `GET ?team=T[&generation=G&part=P]`: a [`CheckpointPage`] of the team's parts after the
//!   one named (from its newest whole full generation when none is), cut at
//!   `max_request_bytes` (one part at least). A field device reads its own team's only; the
//!   office and its staff devices read any team's.
//!
//! The server reads headers only: what a part holds is sealed under its team's key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_crypto::{DeviceId, SealedChange, SealedKind};
use cairn_protocol::checkpoint::{CheckpointPage, CheckpointQuery, PartHeader};
use cairn_protocol::{
    decode_push, validate_team, ErrorCode, Roster, CHECKPOINT_CONTENT_TYPE, OFFICE_TEAM,
};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::guard::Hold;
use crate::pull::HeldPage;
use crate::roster::office_only;
use crate::storage::{CheckpointOutcome, NewCheckpointPart, Storage, StorageError};

/// Bytes of a page before its parts: `CCK1`, more, count.
const PAGE_HEADER: usize = 4 + 1 + 4;

/// `POST /v2/checkpoints` (the office only).
pub(crate) async fn post_checkpoints(
    State(state): State<Arc<AppState>>,
    Signed {
        device,
        roster,
        body,
        hold: _hold,
    }: Signed,
) -> Result<Response, ApiError> {
    office_only(&roster, &device)?;
    // Verifying signatures is CPU work: keep it off the async workers.
    let parts = tokio::task::spawn_blocking(move || check_parts(&body, &device))
        .await
        .map_err(|_| ApiError::from(StorageError::Backend("verification task failed".into())))??;
    let count = parts.len();
    match state.storage.store_checkpoint_parts(parts).await? {
        CheckpointOutcome::Stored { parts, bytes } => {
            crate::metrics::add(&state.metrics.checkpoint_parts_posted, parts);
            crate::metrics::add(&state.metrics.checkpoint_bytes_posted, bytes);
            tracing::info!(device = %device.short(), parts = count, new = parts, bytes, "checkpoints posted");
        }
        refused => return Err(conflict(&refused)),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// The answer to a post that storage refused as a whole.
fn conflict(outcome: &CheckpointOutcome) -> ApiError {
    let message = match outcome {
        CheckpointOutcome::Conflict {
            team,
            generation,
            part,
        } => format!(
            "another part {} of team {team}'s checkpoint {generation} is stored; a checkpoint's parts never change, so nothing of this post was stored",
            u64::from(*part) + 1
        ),
        CheckpointOutcome::Stale {
            team,
            generation,
            newest,
        } => format!(
            "team {team}'s checkpoint {generation} is older than its whole full checkpoint {newest}; checkpoints only move forward, so nothing of this post was stored"
        ),
        CheckpointOutcome::Mismatch { team, generation } => format!(
            "team {team}'s checkpoint {generation} is stored with another number of parts or another kind (full or not); nothing of this post was stored"
        ),
        CheckpointOutcome::Stored { .. } => "nothing of this post was stored".to_owned(),
    };
    ApiError::new(ErrorCode::RosterConflict, message)
}

/// Checks every part of a post; the first bad one refuses the whole post.
fn check_parts(body: &[u8], office: &DeviceId) -> Result<Vec<NewCheckpointPart>, ApiError> {
    let frames = decode_push(body)?;
    if frames.is_empty() {
        return Err(ApiError::malformed("the post carries no checkpoint part"));
    }
    frames
        .into_iter()
        .enumerate()
        .map(|(index, frame)| {
            check_part(frame, office).map_err(|(code, why)| {
                ApiError::new(
                    code,
                    format!(
                        "checkpoint part {} of this post is refused: {why}; nothing of this post was stored",
                        index + 1
                    ),
                )
            })
        })
        .collect()
}

/// One part of a post, checked from its header and signature alone.
fn check_part(frame: &[u8], office: &DeviceId) -> Result<NewCheckpointPart, (ErrorCode, String)> {
    let malformed = |why: String| (ErrorCode::Malformed, why);
    let sealed = SealedChange::from_bytes(frame).map_err(|e| {
        malformed(format!(
            "{e}; it was damaged in transit or made by an incompatible version"
        ))
    })?;
    sealed
        .verify()
        .map_err(|e| (ErrorCode::BadSignature, e.to_string()))?;
    if sealed.author != *office {
        return Err((
            ErrorCode::OfficeOnly,
            format!(
                "it is written by device {}; only the office writes checkpoints",
                sealed.author.short()
            ),
        ));
    }
    if sealed.kind != SealedKind::Checkpoint {
        return Err(malformed(
            "it is a change, not a checkpoint part; changes go to /v2/push".into(),
        ));
    }
    let header = PartHeader::of(&sealed).map_err(|e| malformed(e.to_string()))?;
    if header.generation > i64::MAX as u64 {
        return Err(malformed(format!(
            "generation {} is out of range",
            header.generation
        )));
    }
    if sealed.epoch == 0 {
        return Err(malformed(
            "it is sealed under a draft key (epoch 0), which nobody else can open".into(),
        ));
    }
    if header.team != OFFICE_TEAM {
        validate_team(&header.team)
            .map_err(|e| malformed(format!("it names no valid team ({e})")))?;
    }
    Ok(NewCheckpointPart {
        team: header.team,
        generation: header.generation,
        part: header.place.part,
        parts: header.place.parts,
        full: header.place.full,
        bytes: frame.to_vec(),
    })
}

/// Whether `device` may read `team`'s checkpoints: the office and its staff devices read
/// every team's, a field device its own team's.
fn may_read(roster: &Roster, device: &DeviceId, team: &str) -> bool {
    roster.speaks_for_office(device) || roster.member(device).is_some_and(|m| m.team == team)
}

/// `GET /v2/checkpoints?team=T[&generation=G&part=P]`.
pub(crate) async fn checkpoints(
    State(state): State<Arc<AppState>>,
    query: Result<Query<CheckpointQuery>, QueryRejection>,
    Signed {
        device,
        roster,
        hold,
        ..
    }: Signed,
) -> Result<Response, ApiError> {
    let bad_query = || {
        ApiError::malformed(
            "the checkpoint query must be `team=T`, optionally with `generation=G&part=P`",
        )
    };
    let Query(query) = query.map_err(|_| bad_query())?;
    let after = match (query.generation, query.part) {
        (Some(generation), Some(part)) => Some((generation, part)),
        (None, None) => None,
        _ => return Err(bad_query()),
    };
    if query.team != OFFICE_TEAM {
        validate_team(&query.team).map_err(|e| ApiError::malformed(format!("{e}")))?;
    }
    if !may_read(&roster, &device, &query.team) {
        let own = roster.member(&device).map_or("(none)", |m| m.team.as_str());
        return Err(ApiError::new(
            ErrorCode::OfficeOnly,
            format!(
                "this device belongs to team {own}: it reads its own team's checkpoints, not team {}'s",
                query.team
            ),
        ));
    }
    let budget = state.limits.max_request_bytes;
    // The rows and the encoded page are both held for a moment. No part is larger than a
    // post, so a page holds at most the budget.
    let mut permit = state
        .guards
        .budget
        .reserve(budget.saturating_add(PAGE_HEADER).saturating_mul(2))
        .await?;
    let (parts, more) = state
        .storage
        .checkpoint_parts(&query.team, after, budget)
        .await?;
    let count = parts.len();
    let bytes: usize = parts.iter().map(Vec::len).sum();
    crate::metrics::add(&state.metrics.checkpoint_parts_served, count);
    crate::metrics::add(&state.metrics.checkpoint_bytes_served, bytes);
    let encoded = CheckpointPage { more, parts }.encode();
    // Once sent, only the encoded page stays: give back the rest of the reservation.
    let kept = u32::try_from(encoded.len())
        .unwrap_or(u32::MAX)
        .clamp(1, permit.num_permits() as u32);
    let kept = permit.split(kept as usize);
    drop(permit);
    tracing::info!(device = %device.short(), team = %query.team, after = ?after, count, bytes, more, "checkpoints");
    let body = Bytes::from_owner(HeldPage {
        bytes: encoded,
        _hold: Hold {
            budget: kept,
            in_flight: hold.in_flight,
        },
    });
    let mut response = (
        [(header::CONTENT_TYPE, CHECKPOINT_CONTENT_TYPE.to_owned())],
        body,
    )
        .into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_crypto::{DeviceKeys, TeamKey};
    use cairn_protocol::checkpoint::{PartBody, Place};

    fn part(keys: &DeviceKeys, key: &TeamKey, kind: SealedKind, id: [u8; 16], g: u64) -> Vec<u8> {
        SealedChange::seal(keys, key, kind, id, g, &PartBody::default().encode())
            .unwrap()
            .to_bytes()
    }

    fn place() -> [u8; 16] {
        Place {
            part: 0,
            parts: 1,
            full: true,
        }
        .to_id()
    }

    fn code(frame: &[u8], office: &DeviceKeys) -> ErrorCode {
        check_part(frame, &office.id()).unwrap_err().0
    }

    #[test]
    fn a_part_is_checked_from_its_header_and_signature() {
        let office = DeviceKeys::generate();
        let t1 = TeamKey::generate("T01", 1);
        let good = part(&office, &t1, SealedKind::Checkpoint, place(), 3);
        let checked = check_part(&good, &office.id()).unwrap();
        assert_eq!(
            (
                checked.team.as_str(),
                checked.generation,
                checked.parts,
                checked.full
            ),
            ("T01", 3, 1, true)
        );
        let own = TeamKey::generate(OFFICE_TEAM, 1);
        check_part(
            &part(&office, &own, SealedKind::Checkpoint, place(), 3),
            &office.id(),
        )
        .unwrap();
        // Another author, another kind, no place, generation 0, a draft key, a made-up team.
        let device = DeviceKeys::generate();
        assert_eq!(
            code(
                &part(&device, &t1, SealedKind::Checkpoint, place(), 3),
                &office
            ),
            ErrorCode::OfficeOnly
        );
        for bad in [
            part(&office, &t1, SealedKind::CaseChange, place(), 3),
            part(&office, &t1, SealedKind::Checkpoint, [0; 16], 3),
            part(&office, &t1, SealedKind::Checkpoint, place(), 0),
            part(&office, &t1, SealedKind::Checkpoint, place(), u64::MAX),
            part(
                &office,
                &TeamKey::generate("T01", 0),
                SealedKind::Checkpoint,
                place(),
                3,
            ),
            part(
                &office,
                &TeamKey::generate("T 1", 1),
                SealedKind::Checkpoint,
                place(),
                3,
            ),
            good[..good.len() - 1].to_vec(),
        ] {
            assert_eq!(code(&bad, &office), ErrorCode::Malformed);
        }
        let mut forged = good.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(code(&forged, &office), ErrorCode::BadSignature);
    }
}
