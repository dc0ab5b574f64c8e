//! Joining: a field device takes the office's admission, registers with the server it names,
//! fetches the roster and seals again, under its team's key, what it recorded before.

use cairn_protocol::{unix_now, Admission, OfficeKeys};
use cairn_vault::{Endpoint, Role, Vault};

use crate::engine::{retry, Options, Summary};
use crate::roster::refresh_roster;
use crate::{Client, SyncError};

/// What joining did.
#[derive(Clone, Debug)]
pub struct Joined {
    /// The team the admission named, now this vault's.
    pub team: String,
    /// The server's URL.
    pub server: String,
    /// Roster problems met on the way (the server serving less than the admission).
    pub warnings: Vec<String>,
}

/// Parses an admission line; [`join`] checks it against this device before anything is sent.
pub fn read_admission(text: &str) -> Result<Admission, SyncError> {
    Ok(Admission::parse(text)?)
}

/// Records in the vault which server it syncs with, the certificate pinned for it, and the
/// office whose signatures make the roster (the office for its own server, a restore). This
/// module is the one that writes the vault's [`Endpoint`].
pub fn point_at_server(
    vault: &mut Vault,
    server: &str,
    fingerprint: &str,
    office: &OfficeKeys,
) -> Result<(), SyncError> {
    vault
        .update()
        .endpoint(endpoint(server, fingerprint, office))
        .commit()?;
    Ok(())
}

fn endpoint(server: &str, fingerprint: &str, office: &OfficeKeys) -> Endpoint {
    Endpoint {
        server: Some(server.to_owned()),
        fingerprint: Some(fingerprint.to_owned()),
        office: Some(office.to_string()),
    }
}

/// Joins the server the admission names: checks the admission is the office's, for this
/// device's keys and unexpired; keeps the team key it grants; registers with the server
/// (safe to repeat); fetches the roster; seals again what was recorded before joining.
pub async fn join(
    vault: &mut Vault,
    admission: Admission,
    options: &Options,
) -> Result<Joined, SyncError> {
    if vault.settings().role == Role::Office {
        return Err(SyncError::OfficeCannotJoin);
    }
    // A device that already joined with this admission may repeat the join after it expired
    // (its first answer may have been lost): the server allows it too.
    let held = vault
        .roster_chain()?
        .statements
        .contains(&admission.statement);
    let now = if held { 0 } else { unix_now() };
    let key = admission.open(vault.keys(), now)?;
    let admit = admission.admit()?.clone();
    // Refuse a team mismatch before anything is sent: a staff vault joins the office's team
    // only, a field vault a field team only.
    let staff_admission = admit.team == cairn_protocol::OFFICE_TEAM;
    if staff_admission != (vault.settings().role == Role::Staff) {
        return Err(SyncError::WrongRole {
            staff_admission,
            team: admit.team,
        });
    }
    vault.check_team(&admit.team)?;
    let client = Client::with_timeouts(&admit.server, &admit.fingerprint, options.timeouts)?;
    let mut summary = Summary::default();
    retry(options, &mut summary, || {
        client.join(vault.keys(), &admission.statement)
    })
    .await?;
    // Its admission first: a join cut off after it may be repeated once the admission expired.
    crate::roster::keep_admission(vault, &admission.statement)?;
    // Team, key and server together: a join cut off here leaves all of them or none.
    vault
        .update()
        .team(&admit.team)
        .keys([&key])
        .endpoint(endpoint(
            &admit.server,
            &admit.fingerprint,
            &admission.office,
        ))
        .commit()?;
    let link = crate::engine::Link {
        client: &client,
        options,
        progress: &(),
    };
    refresh_roster(&link, vault, &mut summary).await?;
    vault.reseal_unsent()?;
    Ok(Joined {
        team: admit.team,
        server: admit.server,
        warnings: summary.warnings,
    })
}
