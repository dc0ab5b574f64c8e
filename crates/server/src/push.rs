//! `POST /v1/push`: store a batch of sealed changes from their author.
//!
//! The requester must be enrolled and not revoked (the office always may push). Each change
//! is parsed, its signature verified, and refused unless its author is the requester, its
//! number is at least 1, and the roster lets that author write that number. Refused changes
//! are reported with a reason; the others are stored in one transaction. Storing is
//! idempotent by `(author, seq)`: a resent batch yields `duplicate`, and a different change
//! under a number already stored is refused as a replay. The answer carries `acked`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_crypto::{DeviceId, SealedChange};
use cairn_protocol::{decode_push, ErrorCode, Outcome, PushResponse, PushResult, Roster};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::storage::{InsertOutcome, NewChange, Storage, StorageError};

/// One frame after checking: refused with a reason, or ready to store.
enum Checked {
    Refused { seq: u64, reason: String },
    Accepted(NewChange),
}

pub(crate) async fn push(
    State(state): State<Arc<AppState>>,
    Signed {
        device,
        roster,
        body: raw,
        hold: _hold,
    }: Signed,
) -> Result<Response, ApiError> {
    let max_change = state.limits.max_change_bytes;
    // Verifying signatures is CPU work: keep it off the async workers.
    let checked =
        tokio::task::spawn_blocking(move || check_frames(&raw, &device, &roster, max_change))
            .await
            .map_err(|_| {
                ApiError::from(StorageError::Backend("verification task failed".into()))
            })??;

    let mut results = Vec::with_capacity(checked.len());
    let mut accepted = Vec::new();
    for c in checked {
        match c {
            Checked::Refused { seq, reason } => results.push(Some(PushResult {
                seq,
                outcome: Outcome::Refused,
                reason: Some(reason),
            })),
            Checked::Accepted(change) => {
                results.push(None);
                accepted.push(change);
            }
        }
    }
    let seqs: Vec<u64> = accepted.iter().map(|c| c.seq).collect();
    let outcomes = state
        .storage
        .insert_changes_within(accepted, Some(state.limits.device_quota_bytes))
        .await
        .inspect_err(|e| {
            if let StorageError::QuotaFull { used, quota } = e {
                tracing::warn!(device = %device.short(), used, quota, "storage quota full");
            }
        })?;
    let mut outcomes = seqs.into_iter().zip(outcomes);
    let mut counts = [0usize; 3];
    let results: Vec<PushResult> = results
        .into_iter()
        .map(|slot| {
            let result = slot.unwrap_or_else(|| match outcomes.next() {
                Some((seq, InsertOutcome::Stored)) => PushResult { seq, outcome: Outcome::Stored, reason: None },
                Some((seq, InsertOutcome::Duplicate)) => PushResult { seq, outcome: Outcome::Duplicate, reason: None },
                Some((seq, InsertOutcome::Conflict)) => PushResult {
                    seq,
                    outcome: Outcome::Refused,
                    reason: Some(format!(
                        "a different change {seq} by this device is already stored; this one is refused as a replay"
                    )),
                },
                None => PushResult {
                    seq: 0,
                    outcome: Outcome::Refused,
                    reason: Some("the server lost track of this change; send it again".into()),
                },
            });
            counts[match result.outcome {
                Outcome::Stored => 0,
                Outcome::Duplicate => 1,
                Outcome::Refused => 2,
            }] += 1;
            result
        })
        .collect();
    let acked = state.storage.acked(&device).await?;
    tracing::info!(
        device = %device.short(),
        stored = counts[0],
        duplicate = counts[1],
        refused = counts[2],
        acked,
        "push"
    );
    let mut response = Json(PushResponse { results, acked }).into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

fn check_frames(
    body: &[u8],
    requester: &DeviceId,
    roster: &Roster,
    max_change: usize,
) -> Result<Vec<Checked>, ApiError> {
    let frames = decode_push(body)?;
    if let Some((index, frame)) = frames
        .iter()
        .enumerate()
        .find(|(_, f)| f.len() > max_change)
    {
        return Err(ApiError::new(
            ErrorCode::ChangeTooLarge,
            format!(
                "change {} of this push is {} bytes, over this server's limit of {max_change} bytes per change; it stays on the device",
                index + 1,
                frame.len()
            ),
        ));
    }
    Ok(frames
        .into_iter()
        .map(|frame| check(frame, requester, roster))
        .collect())
}

fn check(frame: &[u8], requester: &DeviceId, roster: &Roster) -> Checked {
    let change = match SealedChange::from_bytes(frame) {
        Ok(c) => c,
        Err(e) => {
            return Checked::Refused {
                seq: 0,
                reason: format!(
                    "{e}; it was damaged in transit or made by an incompatible version"
                ),
            }
        }
    };
    let seq = change.seq;
    let refuse = |reason: String| Checked::Refused { seq, reason };
    if let Err(e) = change.verify() {
        return refuse(e.to_string());
    }
    if change.author != *requester {
        return refuse(format!(
            "change {seq} is authored by device {}, not by the device sending it; each device pushes only its own changes",
            change.author.short()
        ));
    }
    if seq == 0 || seq > i64::MAX as u64 {
        return refuse(format!(
            "change number {seq} is out of range; numbers start at 1"
        ));
    }
    if let Err(refusal) = roster.may_write(&change.author, seq) {
        return refuse(format!("change {seq} is refused: {refusal}"));
    }
    Checked::Accepted(NewChange {
        author: change.author,
        seq,
        case_id: change.case_id,
        bytes: frame.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_crypto::{DeviceKeys, SealedKind};
    use cairn_protocol::{Enrollment, Invite, OfficeKeys, Revocation, Statement};

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn sealed(keys: &DeviceKeys, seq: u64) -> Vec<u8> {
        SealedChange::seal(keys, &[], SealedKind::CaseChange, [1; 16], seq, b"x")
            .unwrap()
            .to_bytes()
    }

    #[test]
    fn a_revoked_author_may_write_up_to_last_seq_only() {
        let office = DeviceKeys::generate();
        let a = DeviceKeys::generate();
        let invite = Invite::issue(&office, "T1", "https://h:1", FP, 10).unwrap();
        let statements = vec![
            Statement::Enrollment(Enrollment::create(&a, invite, None).unwrap()),
            Statement::Revocation(Revocation::issue(&office, a.id(), 2, 5)),
        ];
        let roster = Roster::build(&OfficeKeys::from_keys(&office), &statements, 0);
        assert!(matches!(
            check(&sealed(&a, 2), &a.id(), &roster),
            Checked::Accepted(_)
        ));
        match check(&sealed(&a, 3), &a.id(), &roster) {
            Checked::Refused { seq, reason } => {
                assert_eq!(seq, 3);
                assert!(reason.contains("revoked"), "{reason}");
            }
            Checked::Accepted(_) => panic!("accepted a change made after revocation"),
        }
        let stranger = DeviceKeys::generate();
        match check(&sealed(&stranger, 1), &stranger.id(), &roster) {
            Checked::Refused { reason, .. } => assert!(reason.contains("not enrolled"), "{reason}"),
            Checked::Accepted(_) => panic!("accepted a change by a non-member"),
        }
    }
}
