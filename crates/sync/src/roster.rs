//! The roster step: keep the office's chain of statements, never letting a server take one
//! back, and hold every team key that chain grants this device.

use cairn_protocol::{reconcile, OfficeKeys, PlaceList, Roster, Statement};
use cairn_vault::{Role, SyncState, Vault};

use crate::engine::{retry, Link, Summary};
use crate::SyncError;

/// The office's public keys, from the admission this vault joined with (or its own).
pub(crate) fn office_of(state: &SyncState) -> Result<OfficeKeys, SyncError> {
    Ok(state
        .office
        .as_deref()
        .ok_or(SyncError::NotJoined)?
        .parse()?)
}

/// The roster this vault holds, checked again from its signatures and links.
pub fn stored_roster(state: &SyncState) -> Result<Roster, SyncError> {
    Ok(Roster::build(&office_of(state)?, &state.roster))
}

/// The roster this vault holds (see [`stored_roster`]) with the names it may read (its own
/// team's; every team's at the office), or `None` before it joined.
pub fn held_roster(vault: &Vault) -> Result<Option<Roster>, SyncError> {
    let state = vault.sync_state()?;
    if state.office.is_none() {
        return Ok(None);
    }
    named_roster(vault, &state).map(Some)
}

/// [`stored_roster`] with the sealed names opened that this vault's team keys open.
pub(crate) fn named_roster(vault: &Vault, state: &SyncState) -> Result<Roster, SyncError> {
    let mut roster = stored_roster(state)?;
    roster.open_names(vault.keyring());
    Ok(roster)
}

/// The office's list of places as this vault reads it from the roster it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldPlaces {
    /// The counter of the roster statement carrying it.
    pub counter: u64,
    /// The list, or `None` when it was not sealed for a key this device holds (its team got
    /// its first member after the list was made, and the office has not synced since).
    pub list: Option<PlaceList>,
}

/// The newest list of places of the roster this vault holds, `None` before it joined or
/// before the office made one.
pub fn held_places(vault: &Vault) -> Result<Option<HeldPlaces>, SyncError> {
    let state = vault.sync_state()?;
    // The office reads its own chain before it is pointed at any server.
    let office = match vault.settings().role {
        Role::Office => OfficeKeys::from_keys(vault.keys()),
        Role::Field | Role::Staff if state.office.is_none() => return Ok(None),
        Role::Field | Role::Staff => office_of(&state)?,
    };
    let roster = Roster::build(&office, &state.roster);
    let Some((counter, places)) = roster.places() else {
        return Ok(None);
    };
    let list = places.open(vault.keys(), vault.keyring())?;
    Ok(Some(HeldPlaces { counter, list }))
}

/// The office's own list (empty before it made one).
pub(crate) fn office_places(vault: &Vault) -> Result<Option<PlaceList>, SyncError> {
    Ok(held_places(vault)?.and_then(|h| h.list))
}

/// Takes what the server served into the statements this vault holds, records them, adds the
/// team keys they grant this device and seals again what it recorded before it had one.
/// A field or staff device keeps its own statements when the server serves fewer or other
/// ones, and says so; the office's own chain is the roster, whatever a server serves.
pub fn apply_roster(
    vault: &mut Vault,
    state: &mut SyncState,
    served: &[Statement],
) -> Result<Roster, SyncError> {
    let office = office_of(state)?;
    if vault.settings().role != Role::Office {
        let kept = reconcile(&office, &state.roster, served);
        state.roster = kept.statements;
        state.roster_warnings = kept.warnings;
    }
    let roster = Roster::build(&office, &state.roster);
    let keys = roster.keyring(vault.keys());
    // The statements and the keys they grant, together.
    vault
        .update()
        .keys(keys.iter())
        .sync_state(state)
        .commit()?;
    if vault.settings().role != Role::Office {
        vault.reseal_unsent()?;
    }
    Ok(roster)
}

/// The roster step of a sync. A field or staff device fetches the chain when the server's head differs
/// from the one it holds; the office hands the server the statements it lacks. Returns
/// whether anything was fetched or sent.
pub(crate) async fn roster_step(
    link: &Link<'_>,
    vault: &mut Vault,
    state: &mut SyncState,
    summary: &mut Summary,
    head: Option<u64>,
    roster: &mut Roster,
) -> Result<bool, SyncError> {
    if vault.settings().role == Role::Office {
        let served = head.unwrap_or(0);
        if served >= roster.head() {
            if served > roster.head() {
                summary.warnings.push(format!(
                    "the server holds roster statements up to {served}, beyond this office's {}: the server's database may have been altered",
                    roster.head()
                ));
            }
            return Ok(false);
        }
        let missing = roster.chain()[served as usize..].to_vec();
        retry(link.options, summary, || {
            link.client.post_roster(vault.keys(), &missing)
        })
        .await?;
        summary.roster_sent += missing.len() as u64;
        return Ok(true);
    }
    let complete = state.roster.len() as u64 == roster.head();
    if head == Some(roster.head()) && complete {
        return Ok(false);
    }
    *roster = refresh_roster(link, vault, state, summary).await?;
    Ok(true)
}

/// Fetches the chain whatever its head (an author nobody here knows may have just joined),
/// records it and returns the roster.
pub(crate) async fn refresh_roster(
    link: &Link<'_>,
    vault: &mut Vault,
    state: &mut SyncState,
    summary: &mut Summary,
) -> Result<Roster, SyncError> {
    let served = retry(link.options, summary, || link.client.roster(vault.keys())).await?;
    let roster = apply_roster(vault, state, &served)?;
    summary
        .warnings
        .extend(state.roster_warnings.iter().cloned());
    Ok(roster)
}
