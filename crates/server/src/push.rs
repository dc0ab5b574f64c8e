//! `POST /v2/push`: store a batch of sealed changes from their author.
//!
//! The requester must be a member of the roster and not revoked (the office always is).
//! Each change is parsed, its signature verified, and refused unless its author is the
//! requester, its number is at least 1, it is sealed under a team key (epoch 1 or later: a
//! device's own draft key, epoch 0, never leaves it), the roster lets that author write that
//! number, and its team is the author's own (the office and its staff devices may write any
//! team's changes, and team `office`'s). An office record (kind 2, a published edition) is
//! taken from the office only, in team `office`: never from a staff device. A checkpoint
//! part (kind 3) is never taken here: it goes to `/v2/checkpoints`.
//! Refused changes are reported with a reason; the others are stored, with their team, in
//! one transaction. Storing is
//! idempotent by `(author, seq)`: a resent batch yields `duplicate`, and a different change
//! under a number already stored is refused as a replay. The answer carries `acked`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_crypto::{DeviceId, SealedChange, SealedKind};
use cairn_protocol::{
    decode_push, validate_team, ChangeRefusal, ErrorCode, Outcome, PushResponse, PushResult, Roster,
};

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
    let sizes: Vec<usize> = accepted.iter().map(|c| c.bytes.len()).collect();
    let outcomes = state
        .storage
        .insert_changes_within(accepted, Some(state.limits.device_quota_bytes))
        .await
        .inspect_err(|e| {
            if let StorageError::QuotaFull { used, quota } = e {
                tracing::warn!(device = %device.short(), used, quota, "storage quota full");
            }
        })?;
    let stored = sizes.iter().zip(&outcomes);
    let stored = stored.filter(|(_, o)| **o == InsertOutcome::Stored);
    let (stored_count, stored_bytes) = stored.fold((0, 0), |(n, b), (len, _)| (n + 1, b + len));
    crate::metrics::add(&state.metrics.changes_pushed, stored_count);
    crate::metrics::add(&state.metrics.bytes_pushed, stored_bytes);
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
    if change.epoch == 0 {
        return refuse(format!(
            "change {seq} is sealed under this device's draft key (epoch 0), which nobody else can open; seal it again with the team's key after joining"
        ));
    }
    // Checkpoints are kept by generation, not in the log of changes every device pulls.
    if change.kind == SealedKind::Checkpoint {
        return refuse(format!(
            "change {seq} is a checkpoint part; checkpoints go to {}",
            cairn_protocol::paths::CHECKPOINTS
        ));
    }
    // The same verdict every replica reaches when it pulls the change; told in the server's
    // words, the team's after the checks that say more.
    let verdict = roster.verdict(&change.author, seq, &change.team);
    if let Err(ChangeRefusal::Author(refusal)) = &verdict {
        return refuse(format!("change {seq} is refused: {refusal}"));
    }
    // Office records (published editions) reach only office devices: written by the office,
    // in its own team, which no field device pulls.
    if change.kind == SealedKind::OfficeRecord
        && !(roster.is_office(requester) && change.team == cairn_protocol::OFFICE_TEAM)
    {
        return refuse(format!(
            "change {seq} is an office record, which only the office writes, for team {}; this device may send only case changes",
            cairn_protocol::OFFICE_TEAM
        ));
    }
    // The office's own cases (team `office`) are sealed under a key only the office and its
    // staff devices hold.
    let office_own =
        roster.speaks_for_office(requester) && change.team == cairn_protocol::OFFICE_TEAM;
    if let Err(e) =
        validate_team(&change.team).or_else(|e| if office_own { Ok(()) } else { Err(e) })
    {
        return refuse(format!("change {seq} names no valid team ({e})"));
    }
    match verdict {
        Ok(_) => {}
        Err(ChangeRefusal::OtherTeam { sealed, own }) => {
            return refuse(format!(
                "change {seq} is sealed for team {sealed}, but this device belongs to team {own}; a device writes only its own team's cases"
            ))
        }
        Err(other) => return refuse(format!("change {seq} is refused: {other}")),
    }
    Checked::Accepted(NewChange {
        author: change.author,
        seq,
        case_id: change.case_id,
        team: change.team,
        bytes: frame.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_crypto::{DeviceKeys, TeamKey};
    use cairn_protocol::{Act, Admit, DevicePublic, Grant, OfficeKeys, Revoke, Statement};

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn sealed(keys: &DeviceKeys, key: &TeamKey, seq: u64) -> Vec<u8> {
        SealedChange::seal(keys, key, SealedKind::CaseChange, [1; 16], seq, b"x")
            .unwrap()
            .to_bytes()
    }

    fn admit(office: &DeviceKeys, device: &DeviceKeys, key: &TeamKey) -> Statement {
        let device = DevicePublic::from_keys(device);
        let act = Act::Admit(Admit {
            grants: vec![Grant::new(key, &device).unwrap()],
            device,
            name: None,
            sealed_name: None,
            team: key.team().into(),
            epoch: key.epoch(),
            server: "https://h:1".into(),
            fingerprint: FP.into(),
            expires_at: 10,
        });
        Statement::issue(office, 1, [0; 32], 1, act).unwrap()
    }

    fn refused(checked: Checked) -> (u64, String) {
        match checked {
            Checked::Refused { seq, reason } => (seq, reason),
            Checked::Accepted(c) => panic!("accepted change {}", c.seq),
        }
    }

    #[test]
    fn authors_epochs_teams_and_revocation() {
        let office = DeviceKeys::generate();
        let a = DeviceKeys::generate();
        let t1 = TeamKey::generate("T1", 1);
        let admitted = admit(&office, &a, &t1);
        let t1_next = TeamKey::generate("T1", 2);
        let revoke = Act::Revoke(Revoke {
            device: a.id(),
            last_seq: 2,
            team: "T1".into(),
            epoch: 2,
            grants: vec![],
            earlier: String::new(),
        });
        let revoked = Statement::issue(&office, 2, admitted.hash(), 2, revoke).unwrap();
        let keys = OfficeKeys::from_keys(&office);
        let roster = Roster::build(&keys, std::slice::from_ref(&admitted));
        match check(&sealed(&a, &t1, 1), &a.id(), &roster) {
            Checked::Accepted(c) => assert_eq!(c.team, "T1"),
            Checked::Refused { reason, .. } => panic!("{reason}"),
        }
        // Another team's key, a draft key, a made-up team name.
        let (_, reason) = refused(check(
            &sealed(&a, &TeamKey::generate("T2", 1), 1),
            &a.id(),
            &roster,
        ));
        assert!(reason.contains("belongs to team T1"), "{reason}");
        let (_, reason) = refused(check(
            &sealed(&a, &TeamKey::generate("T1", 0), 1),
            &a.id(),
            &roster,
        ));
        assert!(reason.contains("epoch 0"), "{reason}");
        let (_, reason) = refused(check(
            &sealed(&a, &TeamKey::generate("office", 1), 1),
            &a.id(),
            &roster,
        ));
        assert!(reason.contains("team"), "{reason}");
        // The office writes any team's changes, never a draft.
        assert!(matches!(
            check(&sealed(&office, &t1_next, 1), &office.id(), &roster),
            Checked::Accepted(_)
        ));
        refused(check(
            &sealed(&office, &TeamKey::generate("T1", 0), 2),
            &office.id(),
            &roster,
        ));
        // Its own cases, under the office's own key.
        assert!(matches!(
            check(
                &sealed(&office, &TeamKey::generate("office", 1), 2),
                &office.id(),
                &roster
            ),
            Checked::Accepted(_)
        ));

        let roster = Roster::build(&keys, &[admitted, revoked]);
        assert!(roster.problems.is_empty(), "{:?}", roster.problems);
        assert!(matches!(
            check(&sealed(&a, &t1, 2), &a.id(), &roster),
            Checked::Accepted(_)
        ));
        let (seq, reason) = refused(check(&sealed(&a, &t1, 3), &a.id(), &roster));
        assert_eq!(seq, 3);
        assert!(reason.contains("revoked"), "{reason}");
        let stranger = DeviceKeys::generate();
        let (_, reason) = refused(check(&sealed(&stranger, &t1, 1), &stranger.id(), &roster));
        assert!(reason.contains("not admitted"), "{reason}");
    }

    fn record(keys: &DeviceKeys, key: &TeamKey, seq: u64) -> Vec<u8> {
        SealedChange::seal(keys, key, SealedKind::OfficeRecord, [2; 16], seq, b"{}")
            .unwrap()
            .to_bytes()
    }

    /// Office records come from the office, in team `office`: a member's is refused whatever
    /// team it names, and so is one of the office's sealed for a field team (which its devices
    /// would pull).
    #[test]
    fn office_records_only_from_the_office_in_its_own_team() {
        let office = DeviceKeys::generate();
        let a = DeviceKeys::generate();
        let t1 = TeamKey::generate("T1", 1);
        let keys = OfficeKeys::from_keys(&office);
        let roster = Roster::build(&keys, &[admit(&office, &a, &t1)]);
        let own = TeamKey::generate(cairn_protocol::OFFICE_TEAM, 1);
        match check(&record(&office, &own, 1), &office.id(), &roster) {
            Checked::Accepted(c) => assert_eq!(c.team, cairn_protocol::OFFICE_TEAM),
            Checked::Refused { reason, .. } => panic!("{reason}"),
        }
        for (keys, key) in [(&a, &t1), (&a, &own), (&office, &t1)] {
            let (seq, reason) = refused(check(&record(keys, key, 1), &keys.id(), &roster));
            assert_eq!(seq, 1);
            assert!(reason.contains("office record"), "{reason}");
        }
    }

    /// A checkpoint part is refused here, even the office's: it goes to its own route.
    #[test]
    fn checkpoints_are_not_changes() {
        let office = DeviceKeys::generate();
        let t1 = TeamKey::generate("T1", 1);
        let roster = Roster::build(&OfficeKeys::from_keys(&office), &[]);
        let place = cairn_protocol::checkpoint::Place {
            part: 0,
            parts: 1,
            full: true,
        };
        let part = SealedChange::seal(&office, &t1, SealedKind::Checkpoint, place.to_id(), 1, b"x")
            .unwrap()
            .to_bytes();
        let (seq, reason) = refused(check(&part, &office.id(), &roster));
        assert_eq!(seq, 1);
        assert!(
            reason.contains("checkpoints go to /v2/checkpoints"),
            "{reason}"
        );
    }
}
