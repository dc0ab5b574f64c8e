//! The roster step: rebuild who may write, and whom to encrypt to, from signed statements,
//! fetching them again only when the server's roster version changes.

use cairn_protocol::{unix_now, OfficeKeys, Roster, Statement};
use cairn_vault::{Role, SyncState, Vault};

use crate::engine::{retry, Link, Summary};
use crate::SyncError;

/// Rebuilds the roster from signed statements and records it, with whom to encrypt to, in the
/// vault. Returns the checked roster.
pub fn apply_roster(
    vault: &mut Vault,
    state: &mut SyncState,
    statements: &[Statement],
) -> Result<Roster, SyncError> {
    let roster = Roster::build(&office_of(state)?, statements, unix_now());
    state.roster = statements.to_vec();
    state.recipients.clear();
    let teams: Vec<String> = match vault.settings().role {
        Role::Office => roster.members().map(|m| m.team.clone()).collect(),
        Role::Field => vec![vault.settings().team.clone()],
    };
    for team in teams {
        let recipients = roster.recipients_for_team(&team);
        state.recipients.insert(team, recipients);
    }
    vault.set_sync_state(state)?;
    Ok(roster)
}

/// The office's public keys, from the invite this vault joined with.
fn office_of(state: &SyncState) -> Result<OfficeKeys, SyncError> {
    Ok(state
        .office
        .as_deref()
        .ok_or(SyncError::NotJoined)?
        .parse()?)
}

/// The roster as last fetched, checked again from its signatures.
pub fn stored_roster(state: &SyncState) -> Result<Roster, SyncError> {
    Ok(Roster::build(&office_of(state)?, &state.roster, unix_now()))
}

/// The roster step of a sync: when the server reports a roster `version` other than the one
/// held (or none, or nothing is held yet), fetches the statements again, records them and
/// replaces `roster`. Returns whether it fetched.
pub(crate) async fn roster_step(
    link: &Link<'_>,
    vault: &mut Vault,
    state: &mut SyncState,
    summary: &mut Summary,
    version: Option<String>,
    roster: &mut Roster,
) -> Result<bool, SyncError> {
    if version.is_some() && version == state.roster_version && !state.roster.is_empty() {
        return Ok(false);
    }
    let statements = retry(link.options, summary, || link.client.roster(vault.keys())).await?;
    state.roster_version = version;
    *roster = apply_roster(vault, state, &statements)?;
    Ok(true)
}

/// Fetches the roster whatever its version (an author nobody here knows may have just
/// enrolled), records it and returns it.
pub(crate) async fn refresh_roster(
    link: &Link<'_>,
    vault: &mut Vault,
    state: &mut SyncState,
    summary: &mut Summary,
) -> Result<Roster, SyncError> {
    let statements = retry(link.options, summary, || link.client.roster(vault.keys())).await?;
    apply_roster(vault, state, &statements)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use super::*;
    use crate::engine::{client_for, Options};
    use crate::testing::Setup;

    #[tokio::test]
    async fn roster_step_refetches_when_the_version_changes() {
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup::start(dir.path(), &[]).await;
        let mut device = setup.field(dir.path(), "a", "T1").await;
        let mut state = device.sync_state().unwrap();
        let client = client_for(&state).unwrap();
        let options = Options::default();
        let link = Link {
            client: &client,
            options: &options,
            progress: &(),
        };
        let mut summary = Summary::default();
        let mut roster = stored_roster(&state).unwrap();
        let office = setup.office.keys();
        let version = || async { client.pull(office, 0, 1).await.unwrap().1 };

        // No version held yet: fetched. The same version again: not fetched.
        let v1 = version().await;
        assert!(v1.is_some());
        let step = roster_step(
            &link,
            &mut device,
            &mut state,
            &mut summary,
            v1.clone(),
            &mut roster,
        );
        assert!(step.await.unwrap());
        assert_eq!(summary.round_trips, 1);
        let step = roster_step(
            &link,
            &mut device,
            &mut state,
            &mut summary,
            v1.clone(),
            &mut roster,
        );
        assert!(!step.await.unwrap());
        assert_eq!(summary.round_trips, 1);

        // Another device enrolls: the version changes, and the roster fetched knows it.
        let other = setup.field(dir.path(), "b", "T1").await;
        let v2 = version().await;
        assert_ne!(v2, v1);
        assert!(roster.member(&other.keys().id()).is_none());
        let step = roster_step(
            &link,
            &mut device,
            &mut state,
            &mut summary,
            v2.clone(),
            &mut roster,
        );
        assert!(step.await.unwrap());
        assert!(roster.member(&other.keys().id()).is_some());
        let stored = device.sync_state().unwrap();
        assert_eq!(stored.roster_version, v2);
        assert!(stored_roster(&stored)
            .unwrap()
            .member(&other.keys().id())
            .is_some());

        // A server that reports no version: fetched every time.
        let step = roster_step(
            &link,
            &mut device,
            &mut state,
            &mut summary,
            None,
            &mut roster,
        );
        assert!(step.await.unwrap());
        assert_eq!(summary.round_trips, 3);
    }
}
