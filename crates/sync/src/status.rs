//! Where a vault stands with its server, without asking the server.

use cairn_protocol::Member;
use cairn_vault::Vault;

use crate::roster::stored_roster;
use crate::SyncError;

/// A vault's sync standing, from what it last heard.
#[derive(Clone, Debug)]
pub struct Status {
    /// The server's URL, if the vault joined one.
    pub server: Option<String>,
    /// Own changes not yet stored by the server.
    pub pending: u64,
    /// Highest own change number the server has stored with no gap below it.
    pub acked: u64,
    /// Server cursor after the last page applied here.
    pub cursor: u64,
    /// When the last sync finished (RFC 3339).
    pub last_sync_at: Option<String>,
    /// One line summing up the last sync.
    pub last_summary: Option<String>,
    /// The roster as last fetched, checked again from its signatures (empty before joining).
    pub members: Vec<Member>,
    /// How many own changes the office itself confirmed holding (1..=n), and when it said so
    /// (Unix seconds): `None` before the first receipt.
    pub office_confirmed: Option<(u64, u64)>,
    /// What the server served of the roster that this device refused.
    pub roster_warnings: Vec<String>,
    /// Changes the server seems to withhold.
    pub delivery_warnings: Vec<String>,
}

/// Reads the vault's sync standing.
pub fn status(vault: &Vault) -> Result<Status, SyncError> {
    let state = vault.sync_state()?;
    let pending = vault.own_log_len()?.saturating_sub(state.acked);
    let members = if state.office.is_some() {
        stored_roster(&state)?.members().cloned().collect()
    } else {
        Vec::new()
    };
    let me = vault.keys().id();
    let office_confirmed = state.receipt.as_ref().map(|r| (r.upto(&me), r.at));
    Ok(Status {
        office_confirmed,
        roster_warnings: state.roster_warnings,
        delivery_warnings: state.delivery_warnings,
        server: state.server,
        pending,
        acked: state.acked,
        cursor: state.cursor,
        last_sync_at: state.last_sync_at,
        last_summary: state.last_summary,
        members,
    })
}
