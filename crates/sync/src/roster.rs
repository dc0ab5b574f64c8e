//! The roster step: keep the office's chain of statements, never letting a server take one
//! back, and hold every team key that chain grants this device. The one module that writes
//! the chain into the vault ([`cairn_vault::Update::roster`]): what the server serves, the
//! office's own new statements, a joining device's admission, a restored chain.

use cairn_crypto::TeamKey;
use cairn_protocol::{reconcile, OfficeKeys, PlaceList, Roster, Statement};
use cairn_vault::{Endpoint, Role, RosterChain, Vault};

use crate::engine::{retry, Link, Summary};
use crate::SyncError;

/// The office's public keys, from the admission this vault joined with (or its own).
pub(crate) fn office_of(endpoint: &Endpoint) -> Result<OfficeKeys, SyncError> {
    Ok(endpoint
        .office
        .as_deref()
        .ok_or(SyncError::NotJoined)?
        .parse()?)
}

/// The roster this vault holds, checked again from its signatures and links.
pub fn stored_roster(vault: &Vault) -> Result<Roster, SyncError> {
    let office = office_of(&vault.endpoint()?)?;
    Ok(Roster::build(&office, &vault.roster_chain()?.statements))
}

/// The roster this vault holds (see [`stored_roster`]) with the names it may read (its own
/// team's; every team's at the office), or `None` before it joined.
pub fn held_roster(vault: &Vault) -> Result<Option<Roster>, SyncError> {
    if vault.endpoint()?.office.is_none() {
        return Ok(None);
    }
    named_roster(vault).map(Some)
}

/// [`stored_roster`] with the sealed names opened that this vault's team keys open.
pub(crate) fn named_roster(vault: &Vault) -> Result<Roster, SyncError> {
    let mut roster = stored_roster(vault)?;
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
    let endpoint = vault.endpoint()?;
    // The office reads its own chain before it is pointed at any server.
    let office = match vault.settings().role {
        Role::Office => OfficeKeys::from_keys(vault.keys()),
        Role::Field | Role::Staff if endpoint.office.is_none() => return Ok(None),
        Role::Field | Role::Staff => office_of(&endpoint)?,
    };
    let roster = Roster::build(&office, &vault.roster_chain()?.statements);
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
pub fn apply_roster(vault: &mut Vault, served: &[Statement]) -> Result<Roster, SyncError> {
    let office = office_of(&vault.endpoint()?)?;
    let held = vault.roster_chain()?;
    let chain = match vault.settings().role {
        Role::Office => held.clone(),
        Role::Field | Role::Staff => {
            let kept = reconcile(&office, &held.statements, served);
            RosterChain {
                statements: kept.statements,
                warnings: kept.warnings,
            }
        }
    };
    let roster = Roster::build(&office, &chain.statements);
    let keys = roster.keyring(vault.keys());
    // The statements and the keys they grant, together.
    let update = vault.update().keys(keys.iter());
    if chain == held {
        update.commit()?;
    } else {
        update.roster(chain).commit()?;
    }
    if vault.settings().role != Role::Office {
        vault.reseal_unsent()?;
    }
    Ok(roster)
}

/// Keeps the statements the office just issued after the chain it holds, with the team keys
/// they grant, in one transaction: a key is never kept without its statement, nor a statement
/// without its key.
pub(crate) fn keep_issued(
    vault: &mut Vault,
    issued: &[Statement],
    keys: &[&TeamKey],
) -> Result<(), SyncError> {
    let mut chain = vault.roster_chain()?;
    chain.statements.extend_from_slice(issued);
    vault
        .update()
        .keys(keys.iter().copied())
        .roster(chain)
        .commit()?;
    Ok(())
}

/// Keeps a joining device's own admission, before anything else of the join: a join cut off
/// after it may be repeated once the admission has expired (the server allows it too).
pub(crate) fn keep_admission(vault: &mut Vault, admission: &Statement) -> Result<(), SyncError> {
    let mut chain = vault.roster_chain()?;
    if !chain.statements.contains(admission) {
        chain.statements.push(admission.clone());
        vault.update().roster(chain).commit()?;
    }
    Ok(())
}

/// Keeps the chain a restore checked (its keys are already in the vault: see
/// [`Vault::begin_restore`]).
pub(crate) fn keep_restored(vault: &mut Vault, roster: &Roster) -> Result<(), SyncError> {
    let chain = RosterChain {
        statements: roster.chain().to_vec(),
        warnings: Vec::new(),
    };
    vault.update().roster(chain).commit()?;
    Ok(())
}

/// The roster step of a sync. A field or staff device fetches the chain when the server's head differs
/// from the one it holds; the office hands the server the statements it lacks. Returns
/// whether anything was fetched or sent.
pub(crate) async fn roster_step(
    link: &Link<'_>,
    vault: &mut Vault,
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
    let complete = vault.roster_chain()?.statements.len() as u64 == roster.head();
    if head == Some(roster.head()) && complete {
        return Ok(false);
    }
    *roster = refresh_roster(link, vault, summary).await?;
    Ok(true)
}

/// Fetches the chain whatever its head (an author nobody here knows may have just joined),
/// records it and returns the roster.
pub(crate) async fn refresh_roster(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
) -> Result<Roster, SyncError> {
    let served = retry(link.options, summary, || link.client.roster(vault.keys())).await?;
    let roster = apply_roster(vault, &served)?;
    summary.warnings.extend(vault.roster_chain()?.warnings);
    Ok(roster)
}
