//! The office revokes a lost or seized device.

use cairn_crypto::DeviceId;
use cairn_protocol::{unix_now, Revocation};
use cairn_vault::Vault;

use crate::engine::{client_for, sync, Options};
use crate::roster::{apply_roster, stored_roster};
use crate::SyncError;

/// What a revocation did.
#[derive(Clone, Debug)]
pub struct Revoked {
    /// The device revoked.
    pub device: DeviceId,
    /// Its last change that stays valid; later ones are refused.
    pub last_seq: u64,
}

/// Revokes the enrolled device whose id starts with `prefix` (at least 8 hex digits), from
/// the office's vault. Syncs first, so changes on the server that the office had not fetched
/// yet are not thrown away (the sync also brings the roster up to date): everything the
/// device already delivered stays valid, later changes do not.
pub async fn revoke(
    vault: &mut Vault,
    prefix: &str,
    options: &Options,
) -> Result<Revoked, SyncError> {
    let client = client_for(&vault.sync_state()?)?;
    sync(vault, options, &()).await.map_err(|(e, _)| e)?;
    let roster = stored_roster(&vault.sync_state()?)?;
    let wanted = prefix.trim().to_ascii_lowercase();
    let matches: Vec<DeviceId> = roster
        .members()
        .map(|m| m.id)
        .filter(|id| !roster.is_office(id))
        .filter(|id| wanted.len() >= 8 && id.to_string().starts_with(&wanted))
        .collect();
    let device = match matches.as_slice() {
        [one] => *one,
        [] => return Err(SyncError::UnknownDevice(prefix.to_owned())),
        _ => return Err(SyncError::AmbiguousDevice(prefix.to_owned())),
    };
    let last_seq = vault.contiguous_seq(&device)?;
    let revocation = Revocation::issue(vault.keys(), device, last_seq, unix_now());
    client.revoke(vault.keys(), &revocation).await?;
    let statements = client.roster(vault.keys()).await?;
    let mut state = vault.sync_state()?;
    apply_roster(vault, &mut state, &statements)?;
    Ok(Revoked { device, last_seq })
}
