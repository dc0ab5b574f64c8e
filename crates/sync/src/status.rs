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
    Ok(Status {
        server: state.server,
        pending,
        acked: state.acked,
        cursor: state.cursor,
        last_sync_at: state.last_sync_at,
        last_summary: state.last_summary,
        members,
    })
}
