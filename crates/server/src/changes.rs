//! `GET /v2/changes?case=C&after=N`: the stored changes of one case, for a deep check.
//!
//! A device that loaded a case from an office checkpoint holds the case's document, not the
//! signed changes it was built from; this lets it fetch them to verify each signature and
//! rebuild the document itself. What it may read is what pull lets it read: a field device
//! the changes sealed for its own team, the office and its staff devices every team's. A
//! case of another team answers an empty page, as a case that does not exist does, so the
//! answer tells nothing of other teams' cases. Pages are cut as pull's are.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cairn_protocol::{CaseChangesQuery, PULL_CONTENT_TYPE};

use crate::app::{AppState, LoggedDevice};
use crate::auth::Signed;
use crate::error::ApiError;
use crate::pull::{load_page, readable_team, Page};
use crate::storage::Storage;

/// `GET /v2/changes?case=C&after=N`.
pub(crate) async fn case_changes(
    State(state): State<Arc<AppState>>,
    query: Result<Query<CaseChangesQuery>, QueryRejection>,
    Signed {
        device,
        roster,
        hold,
        ..
    }: Signed,
) -> Result<Response, ApiError> {
    let bad_query = || {
        ApiError::malformed(
            "the changes query must be `case=C` (32 hex digits) and optionally `after=N`",
        )
    };
    let Query(query) = query.map_err(|_| bad_query())?;
    let case_id = parse_case(&query.case).ok_or_else(bad_query)?;
    let team = readable_team(&roster, &device)?;
    let limit = state.limits.max_page;
    let plan = state
        .storage
        .case_lengths(
            case_id,
            query.after,
            team.as_deref(),
            limit.saturating_add(1),
        )
        .await?;
    let acked = state.storage.acked(&device).await?;
    let Page {
        body,
        count,
        next,
        more,
    } = load_page(&state, plan, limit, query.after, acked, hold).await?;
    tracing::info!(device = %device.short(), after = query.after, count, next, more, "case changes");
    let mut response = ([(header::CONTENT_TYPE, PULL_CONTENT_TYPE)], body).into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

/// A case id from exactly 32 hex digits.
fn parse_case(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_case;

    #[test]
    fn a_case_id_is_exactly_32_hex_digits() {
        assert_eq!(parse_case(&"ab".repeat(16)), Some([0xab; 16]));
        assert_eq!(parse_case(&"AB".repeat(16)), Some([0xab; 16]));
        assert_eq!(parse_case(&"ab".repeat(15)), None);
        assert_eq!(parse_case(&"ab".repeat(17)), None);
        assert_eq!(parse_case(&"zz".repeat(16)), None);
        assert_eq!(parse_case(""), None);
    }
}
