//! Where a vault stands with its server, without asking the server.

use cairn_protocol::Member;
use cairn_vault::{Role, Vault};

use crate::roster::{named_roster, stored_roster};
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
    let pending = vault.own_log_len()?.saturating_sub(state.outbox.acked);
    let members = if state.endpoint.office.is_some() {
        named_roster(vault)?.members().cloned().collect()
    } else {
        Vec::new()
    };
    let me = vault.keys().id();
    let office_confirmed = state.receipt.as_ref().map(|r| (r.upto(&me), r.at));
    Ok(Status {
        office_confirmed,
        roster_warnings: state.roster.warnings,
        delivery_warnings: state.last_sync.delivery_warnings,
        server: state.endpoint.server,
        pending,
        acked: state.outbox.acked,
        cursor: state.pull.cursor,
        last_sync_at: state.last_sync.at,
        last_summary: state.last_sync.summary,
        members,
    })
}

/// Where what this vault holds and the office's newest receipt (its signed word on what it
/// holds of each device) disagree, one sentence each naming the device, the numbers and who
/// is likely at fault; and changes of a revoked device above its cut-off still held here,
/// which every other replica refuses. Empty before the first receipt. Read after a complete
/// pull, anything the office holds should be here (on a field device: of its own team).
pub fn divergences(vault: &Vault) -> Result<Vec<String>, SyncError> {
    let Some(receipt) = &vault.receipt()? else {
        return Ok(Vec::new());
    };
    let roster = stored_roster(vault)?;
    let me = vault.keys().id();
    let field = vault.settings().role == Role::Field;
    let delivery = vault.delivery()?;
    let here = |device: &cairn_crypto::DeviceId| {
        delivery
            .iter()
            .find(|(a, _, _)| a == device)
            .map_or(0, |(_, contiguous, _)| *contiguous)
    };
    let mut out = Vec::new();
    let own = vault.own_log_len()?;
    let confirmed = receipt.upto(&me);
    if confirmed > own {
        out.push(format!(
            "the office's receipt {} says it holds changes 1 to {confirmed} of this device, but this vault holds only {own}: this vault was put back from an older copy (this device is at fault); changes {} to {confirmed} exist only at the office and the server",
            receipt.counter,
            own + 1
        ));
    }
    for held in &receipt.held {
        let ours =
            !field || roster.member(&held.device).map(|m| &m.team) == Some(&vault.settings().team);
        if held.device == me || (field && roster.is_office(&held.device)) || !ours {
            continue;
        }
        let got = here(&held.device);
        if got < held.upto {
            out.push(format!(
                "changes {} to {} of device {}, which the office's receipt {} says it holds, are not here: the server is likely withholding them (sync again; if this stays, tell the office)",
                got + 1,
                held.upto,
                held.device.short(),
                receipt.counter
            ));
        }
    }
    for member in roster.members() {
        let Some(last) = member.revoked else { continue };
        let newest = vault.newest_seq(&member.id)?;
        if newest > last {
            out.push(format!(
                "this vault holds changes {} to {newest} of device {}, revoked after its change {last}, which every other replica refuses: sync again to take them out",
                last + 1,
                member.id.short()
            ));
        }
    }
    Ok(out)
}
