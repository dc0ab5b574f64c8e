//! Office receipts, the office's signed word on what it holds of each device: the office
//! issues one after a pull that changed what it holds and hands the server one per team; a
//! field or staff device takes its team's newest. The one module that keeps the newest
//! receipt in the vault ([`Vault::keep_receipt`]).

use cairn_protocol::{unix_now, Held, Receipt, Roster};
use cairn_vault::{Role, Vault};

use crate::client::Versions;
use crate::engine::{retry, Link, Summary};
use crate::roster::office_of;
use crate::SyncError;

/// A field or staff device fetches its team's newest office receipt when the server reports a
/// newer one than it holds (and refuses an older one, or one of another team); the office
/// signs a new one when what it holds changed and hands the server one receipt per team, cut
/// from it.
pub(crate) async fn receipt_step(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
    versions: Versions,
    received: bool,
    roster: &Roster,
) -> Result<(), SyncError> {
    if vault.settings().role == Role::Office {
        next_receipt(vault, received, versions.receipt)?;
        // Stored before it is sent, so its number is never used twice; sent again at the next
        // sync if the server still reports an older one (a lost answer, a lost link).
        if let Some(receipt) = vault
            .receipt()?
            .filter(|r| versions.receipt.unwrap_or(0) < r.counter)
        {
            let receipts = team_receipts(vault, &receipt, roster);
            retry(link.options, summary, || {
                link.client.post_receipts(vault.keys(), &receipts)
            })
            .await?;
        }
        return Ok(());
    }
    let held = vault.receipt()?.map_or(0, |r| r.counter);
    if versions.receipt.unwrap_or(0) <= held {
        return Ok(());
    }
    let Some(receipt) = retry(link.options, summary, || link.client.receipt(vault.keys())).await?
    else {
        return Ok(());
    };
    let office = office_of(&vault.endpoint()?)?;
    let team = &vault.settings().team;
    if let Err(e) = receipt.verify(&office.signing) {
        summary.warnings.push(format!(
            "the server served an office receipt that is not genuine: {e}"
        ));
    } else if receipt.team.as_ref() != Some(team) {
        // Another team's counts, or every team's: not this device's to keep or show.
        summary.warnings.push(format!(
            "the server served office receipt {} for {} instead of team {team}'s: refused (the server is at fault; tell its administrator)",
            receipt.counter,
            receipt
                .team
                .as_ref()
                .map_or_else(|| "every team".to_owned(), |t| format!("team {t}"))
        ));
    } else if receipt.counter < held {
        summary.warnings.push(format!(
            "the server served office receipt {}, older than receipt {held} this device holds",
            receipt.counter
        ));
    } else {
        vault.keep_receipt(&receipt)?;
    }
    Ok(())
}

/// After the office's pull: signs and stores what it now holds of every author, if that changed
/// since its last receipt or the pull brought anything (`received`): a receipt newer than the
/// one the server had when it acknowledged a device's change then tells that device the
/// office pulled after it, so a change it still lacks was lost or withheld (the caller hands
/// the server the newest stored one).
///
/// `served` is the counter of the newest receipt the server holds: an office that has issued
/// none yet (a restored one) numbers its first after it, since the server refuses a receipt
/// that is not newer than the one it holds.
fn next_receipt(
    vault: &mut Vault,
    received: bool,
    served: Option<u64>,
) -> Result<Option<Receipt>, SyncError> {
    let newest = vault.receipt()?;
    let held: Vec<Held> = vault
        .delivery()?
        .into_iter()
        .filter(|(_, upto, _)| *upto > 0)
        .map(|(device, upto, _)| Held { device, upto })
        .collect();
    let mut sorted = held.clone();
    sorted.sort_by_key(|h| h.device);
    if !received && newest.as_ref().is_some_and(|r| r.held == sorted) {
        return Ok(None);
    }
    let counter = match &newest {
        Some(r) => r.counter + 1,
        None => served.unwrap_or(0).checked_add(1).ok_or_else(|| {
            SyncError::Protocol("the server claims an office receipt numbered beyond any".into())
        })?,
    };
    let receipt = Receipt::issue(vault.keys(), counter, unix_now(), held);
    vault.keep_receipt(&receipt)?;
    Ok(Some(receipt))
}

/// The office's whole receipt cut into one receipt per team of the roster, each naming that
/// team's devices only (revoked ones included), so a member reads its own team's counts and
/// no other's. Every team gets one, even with nothing held, so its counter moves with the
/// office's. Signing is deterministic: cutting the same receipt again gives the same bytes.
fn team_receipts(vault: &Vault, whole: &Receipt, roster: &Roster) -> Vec<Receipt> {
    let teams: std::collections::BTreeSet<&str> = roster
        .members()
        .filter(|m| !roster.is_office(&m.id))
        .map(|m| m.team.as_str())
        .collect();
    teams
        .into_iter()
        .map(|team| {
            whole.for_team(vault.keys(), team, |device| {
                roster.member(device).is_some_and(|m| m.team == team)
            })
        })
        .collect()
}
