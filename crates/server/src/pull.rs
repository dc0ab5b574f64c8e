//! `GET /v1/pull?after=N&limit=M`: the next page of sealed changes the caller may receive.
//!
//! The office receives every change; a field device receives the changes of its own team's
//! members (revoked ones included: their changes up to `last_seq` stay valid) and of the
//! office. Pages are capped at `max_page` changes and about `max_request_bytes` bytes. The
//! answer's `next` is the cursor for the next call; `more` says whether to call again now.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cairn_protocol::{PullPage, PullQuery, PULL_CONTENT_TYPE, ROSTER_VERSION};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::storage::Storage;

pub(crate) async fn pull(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PullQuery>, QueryRejection>,
    Signed { device, roster, .. }: Signed,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::malformed("the pull query must be `after=N` and optionally `limit=M`")
    })?;
    let limit = query
        .limit
        .unwrap_or(state.limits.max_page)
        .clamp(1, state.limits.max_page);
    let readable = roster.readable_authors(&device);
    // One extra row tells whether more are waiting.
    let mut changes = state
        .storage
        .pull(query.after, readable.as_deref(), limit.saturating_add(1))
        .await?;
    let mut more = changes.len() > limit as usize;
    changes.truncate(limit as usize);
    let budget = state.limits.max_request_bytes;
    let mut used = 0usize;
    let mut keep = 0usize;
    for (_, bytes) in &changes {
        if keep > 0 && used + bytes.len() + 12 > budget {
            break;
        }
        used += bytes.len() + 12;
        keep += 1;
    }
    if keep < changes.len() {
        changes.truncate(keep);
        more = true;
    }
    let next = changes.last().map_or(query.after, |(seq, _)| *seq);
    let acked = state.storage.acked(&device).await?;
    let count = changes.len();
    let page = PullPage {
        acked,
        next,
        more,
        changes,
    };
    tracing::info!(device = %device.short(), after = query.after, count, next, more, "pull");
    // Lets a client skip fetching the roster when nothing in it changed, so a sync with
    // nothing to do is one round trip.
    let revoked: Vec<u64> = roster.members().filter_map(|m| m.revoked).collect();
    let version = format!(
        "{}.{}.{}",
        roster.members().count(),
        revoked.len(),
        revoked.iter().fold(0u64, |a, b| a.wrapping_add(*b))
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, PULL_CONTENT_TYPE.to_owned()),
            (header::HeaderName::from_static(ROSTER_VERSION), version),
        ],
        page.encode(),
    )
        .into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}
