//! The roster: `GET /v1/roster`, and the server's cached copy of the checked roster.
//!
//! The server checks requests against the same [`Roster`] every device builds from the
//! signed statements. It keeps the built roster for a few seconds, and rebuilds it at once
//! after an enrollment or revocation it recorded itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_protocol::{unix_now, Roster};
use tokio::sync::RwLock;

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::storage::Storage;

/// How long a built roster is used before it is rebuilt from storage. Bounds how long a
/// revocation recorded by another server process on the same database goes unnoticed.
const FRESH_FOR: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(crate) struct RosterCache {
    built: RwLock<Option<(Instant, Arc<Roster>)>>,
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
        let roster =
            tokio::task::spawn_blocking(move || Roster::build(&office, &statements, unix_now()))
                .await
                .map_err(|_| {
                    ApiError::from(crate::storage::StorageError::Backend(
                        "roster task failed".into(),
                    ))
                })?;
        if !roster.problems.is_empty() {
            tracing::warn!(
                problems = roster.problems.len(),
                "roster statements were ignored"
            );
            for problem in &roster.problems {
                tracing::warn!(%problem, "roster");
            }
        }
        let roster = Arc::new(roster);
        *slot = Some((Instant::now(), roster.clone()));
        Ok(roster)
    }
}

/// `GET /v1/roster`: every signed statement, for devices to check and build the roster.
pub(crate) async fn roster(
    State(state): State<Arc<AppState>>,
    Signed { device, .. }: Signed,
) -> Result<Response, ApiError> {
    let statements = state.storage.statements().await?;
    let mut response = Json(statements).into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}
