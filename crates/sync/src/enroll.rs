//! Joining a server: check the invite, enroll, point the vault at the server, fetch the
//! roster and seal again what was recorded before; and the office's side, issuing invites.

use cairn_protocol::{unix_now, Enrollment, Invite, OfficeKeys};
use cairn_vault::{Role, Vault};

use crate::engine::{retry, Options, Summary};
use crate::roster::apply_roster;
use crate::{Client, SyncError};

/// What joining did.
#[derive(Clone, Debug)]
pub struct Joined {
    /// The team the invite named, now this vault's.
    pub team: String,
    /// The server's URL.
    pub server: String,
}

/// Parses an invite and checks it before anything is sent: the invite is the trust anchor,
/// handed over in person, so it must carry its own office's valid signature and be unexpired.
pub fn read_invite(text: &str) -> Result<Invite, SyncError> {
    let invite = Invite::parse(text)?;
    invite.verify(&invite.body.office.signing, unix_now())?;
    Ok(invite)
}

/// Records in the vault which server it syncs with, the certificate pinned for it, and the
/// office whose signatures make the roster.
pub fn point_at_server(
    vault: &mut Vault,
    server: &str,
    fingerprint: &str,
    office: &OfficeKeys,
) -> Result<(), SyncError> {
    let mut state = vault.sync_state()?;
    state.server = Some(server.to_owned());
    state.fingerprint = Some(fingerprint.to_owned());
    state.office = Some(office.to_string());
    vault.set_sync_state(&state)?;
    Ok(())
}

/// Issues an invite from the office's vault; the office syncs and revokes through the server
/// it first invites to, so a vault not yet pointed at a server is pointed at this one.
pub fn issue_invite(
    vault: &mut Vault,
    team: &str,
    server: &str,
    fingerprint: &str,
    expires_at: u64,
) -> Result<Invite, SyncError> {
    let invite = Invite::issue(vault.keys(), team, server, fingerprint, expires_at)?;
    if vault.sync_state()?.server.is_none() {
        let office = OfficeKeys::from_keys(vault.keys());
        point_at_server(
            vault,
            &invite.body.server,
            &invite.body.fingerprint,
            &office,
        )?;
    }
    Ok(invite)
}

/// Enrolls this field vault with the invite's server and records the server, pin and roster;
/// then seals again, for the roster, the changes recorded before joining.
pub async fn join(
    vault: &mut Vault,
    invite: Invite,
    options: &Options,
) -> Result<Joined, SyncError> {
    if vault.settings().role == Role::Office {
        return Err(SyncError::OfficeCannotJoin);
    }
    let team = invite.body.team.clone();
    let server = invite.body.server.clone();
    let fingerprint = invite.body.fingerprint.clone();
    let office = invite.body.office.clone();
    // Refuse a team mismatch before the invite is spent on the server.
    vault.check_team(&team)?;
    let enrollment = Enrollment::create(vault.keys(), invite, vault.settings().name.clone())?;
    let client = Client::new(&server, &fingerprint)?;
    let mut summary = Summary::default();
    // Enrollment is idempotent for this device and invite, so a dropped link is retried.
    retry(options, &mut summary, || client.enroll(&enrollment)).await?;
    vault.set_team(&team)?;
    point_at_server(vault, &server, &fingerprint, &office)?;
    let mut state = vault.sync_state()?;
    let statements = retry(options, &mut summary, || client.roster(vault.keys())).await?;
    apply_roster(vault, &mut state, &statements)?;
    vault.reseal_unsent()?;
    Ok(Joined { team, server })
}
