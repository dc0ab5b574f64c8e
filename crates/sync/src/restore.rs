//! Restoring the office from its server (`cairn office restore`): from the office's keys
//! alone, in a new office vault, everything the server holds comes back.
//!
//! The server keeps the office's chain, every sealed change (the office's own among them)
//! and every attachment's chunks. The chain, checked against the office's own signing key,
//! gives the roster, the places and every team key (the office's own team's through the
//! grant the office puts in the chain for itself, see [`crate::office`]); an ordinary pull
//! from the start then brings back every case with its verifications, reviews and links, the
//! office's own changes under their numbers (its next one continues after them), published
//! editions (office records) and every attachment. The receipt step continues the office's
//! receipt counter after the newest the server holds.
//!
//! Nothing here is specific to the office's own key but the checks of the chain: a staff
//! device's vault could be restored the same way from its keys and its admission's chain.

use cairn_protocol::{OfficeKeys, Roster, Statement, OFFICE_TEAM};
use cairn_vault::{Role, Vault};

use crate::engine::{retry, sync, Options, Progress, Summary};
use crate::{Client, SyncError};

/// What a restore brought back.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Restored {
    /// Statements of the office's chain, now the office's own again.
    pub statements: u64,
    /// Team keys held, every epoch counted.
    pub team_keys: usize,
    /// Cases now in the vault.
    pub cases: u64,
    /// The office's own changes that came back (its next change is numbered after them).
    pub own_changes: u64,
    /// The number the office's next case reference takes.
    pub next_reference: u32,
    /// What the pulls did (received, refused, unreadable, attachments fetched...).
    pub summary: Summary,
}

/// Restores the vault of the office, or of one of its staff devices, from the server at
/// `server` (its certificate pinned by `fingerprint`). A staff device names the office's
/// public keys (`office`: its trust root, as its admission carried them); the office's own
/// are its keys. Refused unless the vault holds nothing yet (or its restore was cut off, which
/// is taken up again), and unless the server serves a whole chain signed by the office that
/// grants this device the key of the office's own team (a staff device: that admits it and has
/// not revoked it): nothing is stored then.
pub async fn restore(
    vault: &mut Vault,
    server: &str,
    fingerprint: &str,
    office: Option<OfficeKeys>,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Restored, SyncError> {
    let office = match (vault.settings().role, office) {
        (Role::Office, _) => OfficeKeys::from_keys(vault.keys()),
        (Role::Staff, Some(office)) => office,
        (Role::Staff, None) => {
            return Err(SyncError::Restore(
                "a staff device is restored with the office's public keys, its trust root; nothing was stored".into(),
            ))
        }
        (Role::Field, _) => return Err(SyncError::OfficeOnly),
    };
    let held = vault.sync_state()?;
    let server = server.trim_end_matches('/').to_owned();
    let fingerprint = fingerprint.to_ascii_lowercase();
    let client = Client::with_timeouts(&server, &fingerprint, options.timeouts)?;
    let mut summary = Summary::default();
    let served = retry(options, &mut summary, || client.roster(vault.keys())).await?;
    // What the server says its chain holds: a chain served shorter than that was cut.
    let (_, versions) = retry(options, &mut summary, || client.pull(vault.keys(), 0, 1)).await?;
    let roster = checked_chain(&office, &served, versions.roster, &server)?;
    if held.restoring && !roster.chain().starts_with(&held.roster.statements) {
        return Err(SyncError::Restore(format!(
            "the server at {server} serves a roster that does not extend the {} statement(s) this restore already took from it: it was altered since; nothing was stored",
            held.roster.statements.len()
        )));
    }
    let me = vault.keys().id();
    if vault.settings().role == Role::Staff {
        match roster.member(&me) {
            Some(m) if m.team == OFFICE_TEAM && m.revoked.is_none() => {}
            Some(m) if m.revoked.is_some() => {
                return Err(SyncError::Restore(format!(
                    "the office revoked this staff device ({}): it is restored no more; nothing was stored",
                    me.short()
                )))
            }
            _ => {
                return Err(SyncError::NotAdmittedStaff {
                    server: server.to_owned(),
                    device: me.short(),
                })
            }
        }
    }
    let keyring = roster.keyring(vault.keys());
    let epoch = roster.epoch(OFFICE_TEAM);
    if keyring.get(OFFICE_TEAM, epoch).is_none() {
        return Err(SyncError::Restore(format!(
            "the roster the server at {server} serves grants this device no key of the office's own team (epoch {epoch}): the office's own cases and published editions could not be read. The lost office never synced with a cairn that puts that key in the roster, or the server cut the roster; nothing was stored"
        )));
    }
    let team_keys = keyring.len();
    // Each record by its own writer, in this order: a restore cut off between them is marked
    // as restoring and taken up again from the start. Its cursor is left as it is (where the
    // pulls of a restore taken up again stopped; 0 in a new vault).
    vault.begin_restore(keyring)?;
    crate::roster::keep_restored(vault, &roster)?;
    crate::join::point_at_server(vault, &server, &fingerprint, &office)?;
    // Every change of the office's own here came from the server: none is sent again.
    let logged = vault.own_log_len()?;
    crate::push::server_acked(vault, logged)?;
    tracing::info!(
        statements = roster.head(),
        team_keys,
        "the office's chain and keys are restored"
    );
    let mut done = sync(vault, options, progress).await.map_err(|(e, _)| e)?;
    // The last page applied was counted against the log as it stood before it: learn from
    // the server how many of its own changes it holds now that they are all here, so that
    // none is pushed again.
    let cursor = vault.pull_cursor()?;
    let (page, _) = retry(options, &mut done, || client.pull(vault.keys(), cursor, 1)).await?;
    let logged = vault.own_log_len()?;
    crate::push::server_acked(vault, page.acked.min(logged))?;
    let next_reference = vault.finish_restore()?;
    done.round_trips += summary.round_trips;
    Ok(Restored {
        statements: roster.head(),
        team_keys,
        cases: vault.case_count()?,
        own_changes: vault.own_log_len()?,
        next_reference,
        summary: done,
    })
}

/// The chain the server served, checked as the office's own: every statement signed by this
/// office and linked to the one before, from statement 1, none missing, and as long as the
/// server says its chain is.
fn checked_chain(
    office: &OfficeKeys,
    served: &[Statement],
    head: Option<u64>,
    server: &str,
) -> Result<Roster, SyncError> {
    let refuse = |why: String| Err(SyncError::Restore(format!("{why}; nothing was stored")));
    if served.is_empty() {
        return refuse(format!(
            "the server at {server} serves no roster: it is not this office's server, or it lost its database"
        ));
    }
    let roster = Roster::build(office, served);
    if roster.head() == 0 {
        return refuse(format!(
            "the roster the server at {server} serves is not signed by this office (its first statement does not verify against this office's key): it is another office's server, or the roster was forged"
        ));
    }
    // Identical copies are merged; anything past where the chain stopped is not taken.
    let highest = served.iter().map(|s| s.counter).max().unwrap_or(0);
    if roster.head() < highest {
        let why = roster.problems.last().cloned().unwrap_or_default();
        return refuse(format!(
            "the roster the server at {server} serves breaks off after statement {} ({why}): the server's roster is damaged or altered",
            roster.head()
        ));
    }
    if let Some(head) = head.filter(|h| *h > roster.head()) {
        return refuse(format!(
            "the server at {server} says its roster holds {head} statements but served only {}: the roster was cut",
            roster.head()
        ));
    }
    Ok(roster)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use cairn_crypto::{DeviceKeys, TeamKey};
    use cairn_protocol::{unix_now, Act, DevicePublic, Grant, KeyGrant};

    use super::*;

    /// A chain of `n` statements, each granting the office its own team's key.
    fn chain(office: &DeviceKeys, n: u64) -> Vec<Statement> {
        let key = TeamKey::generate(OFFICE_TEAM, 1);
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|counter| {
                let act = Act::Grant(KeyGrant {
                    team: OFFICE_TEAM.into(),
                    epoch: 1,
                    grants: vec![Grant::new(&key, &DevicePublic::from_keys(office)).unwrap()],
                });
                let s = Statement::issue(office, counter, prev, unix_now(), act).unwrap();
                prev = s.hash();
                s
            })
            .collect()
    }

    fn refusal(result: Result<Roster, SyncError>) -> String {
        match result {
            Err(SyncError::Restore(why)) => why,
            other => panic!("not refused: {:?}", other.map(|r| r.head())),
        }
    }

    /// The chain a restore takes: whole, this office's, as long as the server says; anything
    /// else is refused saying why, and that nothing was stored.
    #[test]
    fn only_a_whole_chain_of_this_office_is_taken() {
        let office = DeviceKeys::generate();
        let keys = OfficeKeys::from_keys(&office);
        let url = "https://127.0.0.1:1";
        let good = chain(&office, 4);
        assert_eq!(checked_chain(&keys, &good, Some(4), url).unwrap().head(), 4);
        assert_eq!(checked_chain(&keys, &good, None, url).unwrap().head(), 4);

        let cases: Vec<(Vec<Statement>, Option<u64>, &str)> = vec![
            (Vec::new(), Some(0), "serves no roster"),
            (
                chain(&DeviceKeys::generate(), 4),
                Some(4),
                "not signed by this office",
            ),
            (
                [&good[..1], &good[2..]].concat(),
                Some(4),
                "breaks off after statement 1",
            ),
            (
                good[..3].to_vec(),
                Some(4),
                "holds 4 statements but served only 3",
            ),
        ];
        for (served, head, said) in cases {
            let why = refusal(checked_chain(&keys, &served, head, url));
            assert!(why.contains(said), "{said}: {why}");
            assert!(why.ends_with("nothing was stored"), "{why}");
        }
        // Served twice, a statement is the same statement.
        let twice = [&good[..], &good[1..2]].concat();
        assert_eq!(
            checked_chain(&keys, &twice, Some(4), url).unwrap().head(),
            4
        );
        // A statement signed by another key in the middle stops the chain there.
        let mut spliced = good.clone();
        spliced[2] = chain(&DeviceKeys::generate(), 3).pop().unwrap();
        let why = refusal(checked_chain(&keys, &spliced, Some(4), url));
        assert!(why.contains("breaks off after statement 2"), "{why}");
    }
}
