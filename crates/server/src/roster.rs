//! The roster: `GET`/`POST /v2/roster`, and the server's cached copy of the checked roster.
//!
//! The server keeps the office's signed statements as a contiguous chain from 1, each one
//! checked (signature and link) before it is stored, and checks requests against the same
//! [`Roster`] every device builds from that chain. It keeps the built roster for a few
//! seconds, and rebuilds it at once after appending to the chain itself.
//!
//! Statements reach the chain two ways: the office posts them (`POST /v2/roster`, any
//! number at once, all or nothing), or a device presents its own admission (`/v2/join`).
//! Either way each statement is placed against the chain: the next one is appended, one
//! already held changes nothing, one beyond a gap is refused as `roster_behind` and one that
//! contradicts the chain (another statement at its number, a wrong link, a signature that is
//! not the office's) as `roster_conflict`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_protocol::{ErrorCode, Placement, Roster, Statement};
use tokio::sync::{Mutex, RwLock};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::storage::{Joined, Storage, StorageError};

/// How long a built roster is used before it is rebuilt from storage. Bounds how long a
/// revocation recorded by another server process on the same database goes unnoticed.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// How often an append is tried again when another server process appended meanwhile.
const APPEND_ATTEMPTS: usize = 4;

#[derive(Default)]
pub(crate) struct RosterCache {
    built: RwLock<Option<(Instant, Arc<Roster>)>>,
    /// Held while statements are placed and appended, so this process appends one batch
    /// at a time (other processes are caught by the storage's head check).
    appending: Mutex<()>,
}

/// Who is placing statements: the message of a refusal differs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placer {
    /// The office, posting statements.
    Office,
    /// A device presenting its admission.
    Joining,
}

impl RosterCache {
    /// The roster, rebuilt if it is stale.
    pub(crate) async fn get(&self, state: &AppState) -> Result<Arc<Roster>, ApiError> {
        if let Some((at, roster)) = &*self.built.read().await {
            if at.elapsed() < FRESH_FOR {
                return Ok(roster.clone());
            }
        }
        self.refresh(state).await
    }

    /// Rebuilds the roster unless it was built less than `min_age` ago. Used when an
    /// unknown device signs a request: anyone can make keys, so this must not let them force
    /// a rebuild (a signature check per statement) on every request.
    pub(crate) async fn refresh_if_older(
        &self,
        state: &AppState,
        min_age: Duration,
    ) -> Result<Arc<Roster>, ApiError> {
        if let Some((at, roster)) = &*self.built.read().await {
            if at.elapsed() < min_age {
                return Ok(roster.clone());
            }
        }
        self.refresh(state).await
    }

    /// Rebuilds the roster from storage now.
    pub(crate) async fn refresh(&self, state: &AppState) -> Result<Arc<Roster>, ApiError> {
        let mut slot = self.built.write().await;
        let statements = state.storage.statements().await?;
        let office = state.office.clone();
        // Checking every signature is CPU work: keep it off the async workers.
        let roster = tokio::task::spawn_blocking(move || Roster::build(&office, &statements))
            .await
            .map_err(|_| ApiError::from(StorageError::Backend("roster task failed".into())))?;
        if !roster.problems.is_empty() {
            tracing::warn!(
                problems = roster.problems.len(),
                "roster statements took no effect"
            );
            for problem in &roster.problems {
                tracing::warn!(%problem, "roster");
            }
        }
        let roster = Arc::new(roster);
        *slot = Some((Instant::now(), roster.clone()));
        Ok(roster)
    }

    /// Places `statements` against the chain and appends those that extend it, all or
    /// nothing, recording `joined` with them. Answers the roster afterwards.
    pub(crate) async fn append(
        &self,
        state: &AppState,
        statements: Vec<Statement>,
        joined: Option<Joined>,
        placer: Placer,
    ) -> Result<Arc<Roster>, ApiError> {
        let _appending = self.appending.lock().await;
        let mut roster = self.get(state).await?;
        let mut fresh = false;
        let statements = Arc::new(statements);
        for _ in 0..APPEND_ATTEMPTS {
            let (r, s) = (roster.clone(), statements.clone());
            // One signature check per statement: CPU work, off the async workers.
            let placed = tokio::task::spawn_blocking(move || place_all(&r, &s))
                .await
                .map_err(|_| ApiError::from(StorageError::Backend("roster task failed".into())))?;
            let new = match placed {
                Ok(new) => new,
                // The cached roster may be behind the database: look again before refusing.
                Err((_, Placement::Ahead)) if !fresh => {
                    roster = self.refresh(state).await?;
                    fresh = true;
                    continue;
                }
                Err((counter, placement)) => {
                    return Err(refusal(counter, placement, roster.head(), placer))
                }
            };
            if new.is_empty() && joined.is_none() {
                return Ok(roster);
            }
            if state
                .storage
                .append_statements(roster.head(), &new, joined)
                .await?
            {
                if new.is_empty() {
                    return Ok(roster);
                }
                tracing::info!(
                    from = new.first().map_or(0, |s| s.counter),
                    to = new.last().map_or(0, |s| s.counter),
                    "roster statements appended"
                );
                return self.refresh(state).await;
            }
            // Another server process appended meanwhile: place again against its chain.
            roster = self.refresh(state).await?;
            fresh = true;
        }
        Err(ApiError::new(
            ErrorCode::Unavailable,
            "the roster kept changing while these statements were added; try again",
        ))
    }
}

/// Places `statements` (any order; the same statement twice counts once) after `roster`'s
/// chain: the ones that extend it, in order (none if every one is held already), or the
/// counter and placement of the first that neither extends nor repeats it.
fn place_all(
    roster: &Roster,
    statements: &[Statement],
) -> Result<Vec<Statement>, (u64, Placement)> {
    let mut sorted: Vec<&Statement> = statements.iter().collect();
    sorted.sort_by_key(|s| s.counter);
    sorted.dedup_by(|a, b| a == b);
    let office = roster.office().signing;
    let mut new: Vec<Statement> = Vec::new();
    for s in sorted {
        if s.counter <= roster.head() {
            // The very statement held (checked when it was stored): no signature to check.
            let held = s
                .counter
                .checked_sub(1)
                .and_then(|i| roster.chain().get(i as usize));
            if held == Some(s) {
                continue;
            }
            match roster.place(s) {
                Placement::Known => continue,
                other => return Err((s.counter, other)),
            }
        }
        if s.verify(&office).is_err() {
            return Err((s.counter, Placement::Conflict));
        }
        let head = roster.head() + new.len() as u64;
        if s.counter <= head {
            // Another statement of this request already holds this number.
            return Err((s.counter, Placement::Conflict));
        }
        if s.counter > head + 1 {
            return Err((s.counter, Placement::Ahead));
        }
        let prev = new
            .last()
            .map_or_else(|| roster.head_hash(), Statement::hash);
        if s.prev != prev {
            return Err((s.counter, Placement::Conflict));
        }
        new.push(s.clone());
    }
    Ok(new)
}

/// The answer to a statement that does not fit the chain.
fn refusal(counter: u64, placement: Placement, head: u64, placer: Placer) -> ApiError {
    match (placement, placer) {
        (Placement::Ahead, Placer::Joining) => ApiError::new(
            ErrorCode::RosterBehind,
            format!(
                "the office has not yet sent this server the statements before this admission (statement {counter}; this server holds up to {head}); ask the office to run `cairn sync`, then join again"
            ),
        ),
        (Placement::Ahead, Placer::Office) => ApiError::new(
            ErrorCode::RosterBehind,
            format!(
                "roster statement {counter} does not follow this server's chain, which ends at statement {head}; send the statements from {} on",
                head + 1
            ),
        ),
        (_, Placer::Joining) => ApiError::new(
            ErrorCode::RosterConflict,
            format!(
                "this admission (statement {counter}) contradicts the roster this server holds from the office: another statement has its number or it does not follow the one before; ask the office to admit this device again"
            ),
        ),
        (_, Placer::Office) => ApiError::new(
            ErrorCode::RosterConflict,
            format!(
                "roster statement {counter} contradicts this server's chain: it is not signed by this server's office, another statement holds its number, or it does not link to statement {}",
                counter.saturating_sub(1)
            ),
        ),
    }
}

/// `GET /v2/roster`: the chain of signed statements from 1, for devices to check and build
/// the roster.
pub(crate) async fn roster(
    State(state): State<Arc<AppState>>,
    Signed { device, .. }: Signed,
) -> Result<Response, ApiError> {
    let statements = state.storage.statements().await?;
    let mut response = Json(statements).into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// `POST /v2/roster` (the office only): a JSON list of statements to append.
pub(crate) async fn post_roster(
    State(state): State<Arc<AppState>>,
    Signed {
        device,
        roster,
        body,
        ..
    }: Signed,
) -> Result<Response, ApiError> {
    office_only(&roster, &device)?;
    let statements: Vec<Statement> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed(format!("the roster statements do not parse ({e})")))?;
    drop(body);
    state
        .roster
        .append(&state, statements, None, Placer::Office)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// Refuses anyone but the office.
pub(crate) fn office_only(
    roster: &Roster,
    device: &cairn_crypto::DeviceId,
) -> Result<(), ApiError> {
    if roster.is_office(device) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::OfficeOnly,
            "only the office key may do this; this device is a field or staff device",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_crypto::{DeviceKeys, TeamKey};
    use cairn_protocol::{Act, Admit, DevicePublic, Grant, OfficeKeys};

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn admit(office: &DeviceKeys, counter: u64, prev: [u8; 32], team: &str) -> Statement {
        let key = TeamKey::generate(team, 1);
        let device = DevicePublic::from_keys(&DeviceKeys::generate());
        let grants = vec![Grant::new(&key, &device).unwrap()];
        let act = Act::Admit(Admit {
            device,
            name: None,
            sealed_name: None,
            team: team.into(),
            epoch: 1,
            grants,
            server: "https://h:1".into(),
            fingerprint: FP.into(),
            expires_at: 10,
        });
        Statement::issue(office, counter, prev, 1, act).unwrap()
    }

    #[test]
    fn placing_a_batch() {
        let office = DeviceKeys::generate();
        let keys = OfficeKeys::from_keys(&office);
        let s1 = admit(&office, 1, [0; 32], "T1");
        let s2 = admit(&office, 2, s1.hash(), "T1");
        let s3 = admit(&office, 3, s2.hash(), "T2");
        let empty = Roster::build(&keys, &[]);
        // Any order, repeats counted once.
        let all = vec![s3.clone(), s1.clone(), s2.clone(), s1.clone()];
        assert_eq!(
            place_all(&empty, &all).unwrap(),
            vec![s1.clone(), s2.clone(), s3.clone()]
        );
        let held = Roster::build(&keys, &[s1.clone(), s2.clone()]);
        assert_eq!(place_all(&held, &all).unwrap(), vec![s3.clone()]);
        assert!(place_all(&held, std::slice::from_ref(&s1))
            .unwrap()
            .is_empty());
        assert_eq!(
            place_all(&empty, std::slice::from_ref(&s2)),
            Err((2, Placement::Ahead))
        );
        // Another statement 2, a wrong link, a foreign signature.
        let other2 = admit(&office, 2, s1.hash(), "T9");
        assert_eq!(
            place_all(&held, std::slice::from_ref(&other2)),
            Err((2, Placement::Conflict))
        );
        assert_eq!(
            place_all(&empty, &[s1.clone(), s2.clone(), other2]),
            Err((2, Placement::Conflict))
        );
        let unlinked = admit(&office, 3, [9; 32], "T2");
        assert_eq!(place_all(&held, &[unlinked]), Err((3, Placement::Conflict)));
        let mut zero = s1.clone();
        zero.counter = 0;
        assert_eq!(place_all(&held, &[zero]), Err((0, Placement::Conflict)));
        let forged = admit(&DeviceKeys::generate(), 3, s2.hash(), "T2");
        assert_eq!(place_all(&held, &[forged]), Err((3, Placement::Conflict)));
    }
}
