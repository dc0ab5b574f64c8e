//! How the vault writes a moment as text: RFC 3339, as case summaries, drafts and settings
//! keep it. Below the modules that write one, so that none imports another for it.

use time::OffsetDateTime;

/// `t` as RFC 3339 (its Unix seconds in the unlikely case it cannot be written so).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
