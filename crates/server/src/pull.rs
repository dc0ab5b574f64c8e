//! `GET /v2/pull?after=N&limit=M`: the next page of sealed changes the caller may receive.
//!
//! The office and its staff devices receive every change; a field device receives exactly the changes sealed for
//! its own team (the team in their header), whoever wrote them: its teammates (revoked ones
//! included: their changes up to `last_seq` stay valid) and the office. The answer names the
//! roster's head counter (`x-cairn-roster`) and the newest receipt's counter
//! of its team (`x-cairn-receipt`, once there is one), so a client fetches either only when it changed. Pages are capped at `max_page` changes and `max_request_bytes` bytes (or one change):
//! the page is chosen from the changes' sizes, and only its changes are loaded. The
//! answer's `next` is the cursor for the next call; `more` says whether to call again now.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cairn_crypto::DeviceId;
use cairn_protocol::{
    ErrorCode, PullPage, PullQuery, Roster, PULL_CONTENT_TYPE, RECEIPT_VERSION, ROSTER_VERSION,
};

use axum::body::Bytes;

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::guard::Hold;
use crate::storage::{Storage, StorageError};

pub(crate) async fn pull(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PullQuery>, QueryRejection>,
    Signed {
        device,
        roster,
        hold,
        ..
    }: Signed,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::malformed("the pull query must be `after=N` and optionally `limit=M`")
    })?;
    let limit = query
        .limit
        .unwrap_or(state.limits.max_page)
        .clamp(1, state.limits.max_page);
    let team = readable_team(&roster, &device)?;
    // Sizes first (one extra row tells whether more are waiting), so that only what fits
    // the page's byte budget is ever loaded.
    let plan = state
        .storage
        .pull_lengths(query.after, team.as_deref(), limit.saturating_add(1))
        .await?;
    let acked = state.storage.acked(&device).await?;
    let Page {
        body,
        count,
        next,
        more,
    } = load_page(&state, plan, limit, query.after, acked, hold).await?;
    tracing::info!(device = %device.short(), after = query.after, count, next, more, "pull");
    // Let a client skip fetching the roster and the receipt when neither changed, so a
    // sync with nothing to do is one round trip.
    // A member hears of its own team's receipt only; the office, of the newest of any team.
    let receipt = state.storage.receipt_counter(team.as_deref()).await?;
    let mut response = (
        [
            (header::CONTENT_TYPE, PULL_CONTENT_TYPE.to_owned()),
            (
                header::HeaderName::from_static(ROSTER_VERSION),
                roster.head().to_string(),
            ),
        ],
        body,
    )
        .into_response();
    if let Some(counter) = receipt {
        response.headers_mut().insert(
            header::HeaderName::from_static(RECEIPT_VERSION),
            header::HeaderValue::from(counter),
        );
    }
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// The team whose changes `device` may receive: `None` (every team) for the office and its
/// staff devices, its own for a field device.
pub(crate) fn readable_team(
    roster: &Roster,
    device: &DeviceId,
) -> Result<Option<String>, ApiError> {
    if roster.speaks_for_office(device) {
        return Ok(None);
    }
    let member = roster.member(device).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotEnrolled,
            "this device is not in this server's roster",
        )
    })?;
    Ok(Some(member.team.clone()))
}

/// A page of changes ready to send, holding its share of the limits.
pub(crate) struct Page {
    pub(crate) body: Bytes,
    pub(crate) count: usize,
    pub(crate) next: u64,
    pub(crate) more: bool,
}

/// Cuts `plan` (server sequence numbers and sizes, one more than `limit` when more are
/// waiting) to `limit` changes and the request byte budget, loads those changes and encodes
/// them as a [`PullPage`] whose cursor starts at `after`.
pub(crate) async fn load_page(
    state: &AppState,
    mut plan: Vec<(u64, u64)>,
    limit: u32,
    after: u64,
    acked: u64,
    hold: Hold,
) -> Result<Page, ApiError> {
    let mut more = plan.len() > limit as usize;
    plan.truncate(limit as usize);
    let budget = state.limits.max_request_bytes;
    let mut used = 0usize;
    let mut keep = 0usize;
    for (_, len) in &plan {
        let size = usize::try_from(*len)
            .unwrap_or(usize::MAX)
            .saturating_add(12);
        // A page always carries at least one change, or the cursor could never move.
        if keep > 0 && used.saturating_add(size) > budget {
            break;
        }
        used = used.saturating_add(size);
        keep += 1;
    }
    if keep < plan.len() {
        plan.truncate(keep);
        more = true;
    }
    // The rows and the encoded page are both held for a moment: reserve both.
    let mut permit = state
        .guards
        .budget
        .reserve(used.saturating_add(PAGE_HEADER).saturating_mul(2))
        .await?;
    let seqs: Vec<u64> = plan.iter().map(|(seq, _)| *seq).collect();
    let changes = state.storage.load_changes(&seqs).await?;
    if changes.len() != seqs.len() {
        return Err(ApiError::from(StorageError::Corrupt(
            "a change listed for a page could not be loaded".into(),
        )));
    }
    let next = changes.last().map_or(after, |(seq, _)| *seq);
    let count = changes.len();
    let bytes: usize = changes.iter().map(|(_, c)| c.len()).sum();
    crate::metrics::add(&state.metrics.changes_pulled, count);
    crate::metrics::add(&state.metrics.bytes_pulled, bytes);
    let page = PullPage {
        acked,
        next,
        more,
        changes,
    };
    let encoded = page.encode();
    drop(page);
    // Once sent, only the encoded page stays: give back the rows' share of the budget.
    let half = u32::try_from(encoded.len())
        .unwrap_or(u32::MAX)
        .min(permit.num_permits() as u32);
    let kept = permit.split(half as usize);
    drop(permit);
    // The page's share of the budget and of its device's requests in progress is held until
    // hyper has sent it (or the connection is gone): a reader that stalls holds its page,
    // never more.
    let body = Bytes::from_owner(HeldPage {
        bytes: encoded,
        _hold: Hold {
            budget: kept,
            in_flight: hold.in_flight,
        },
    });
    Ok(Page {
        body,
        count,
        next,
        more,
    })
}

/// Bytes of a page before its changes: `CPL1`, acked, next, more, count.
const PAGE_HEADER: usize = 4 + 8 + 8 + 1 + 4;

/// An encoded page (of changes, or of a blob's chunks) with what it holds of the limits,
/// released once hyper has sent it.
pub(crate) struct HeldPage {
    pub(crate) bytes: Vec<u8>,
    pub(crate) _hold: Hold,
}

impl AsRef<[u8]> for HeldPage {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
