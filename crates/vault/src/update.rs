//! Writing several of the vault's records together (its team, its team keys, the server it
//! syncs with, the roster chain): all of them or none, so that no crash leaves one written
//! without the others.

use cairn_crypto::TeamKey;

use crate::sync_state::{write_endpoint, write_roster};
use crate::{store, Endpoint, RosterChain, Vault, VaultError};

/// Records to write in one transaction: see [`Vault::update`].
#[must_use = "nothing is written until `commit`"]
pub struct Update<'v> {
    vault: &'v mut Vault,
    team: Option<String>,
    keys: Vec<TeamKey>,
    endpoint: Option<Endpoint>,
    roster: Option<RosterChain>,
}

impl Vault {
    /// Starts an update of the vault's records; [`Update::commit`] writes what it was given
    /// in one transaction.
    pub fn update<'v>(&'v mut self) -> Update<'v> {
        Update {
            vault: self,
            team: None,
            keys: Vec::new(),
            endpoint: None,
            roster: None,
        }
    }
}

impl<'v> Update<'v> {
    /// Adopts `team` (see [`Vault::set_team`]).
    pub fn team(mut self, team: &str) -> Self {
        self.team = Some(team.to_owned());
        self
    }

    /// Adds team keys (those already held are left as they are).
    pub fn keys<'k>(mut self, keys: impl IntoIterator<Item = &'k TeamKey>) -> Self {
        self.keys.extend(
            keys.into_iter()
                .map(|k| TeamKey::from_bytes(k.team(), k.epoch(), *k.bytes())),
        );
        self
    }

    /// Replaces the server and office this vault syncs with: the only writer of
    /// [`Endpoint`], which the sync client calls from `join.rs`.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Replaces the roster chain this vault holds: the only writer of [`RosterChain`], which
    /// the sync client calls from `roster.rs` (with the team keys the chain grants).
    pub fn roster(mut self, chain: RosterChain) -> Self {
        self.roster = Some(chain);
        self
    }

    /// Writes everything given, in one transaction. The settings and the keyring are read
    /// again under the write lock and changed as they are stored (another cairn process may
    /// have written them since this vault was opened). Returns how many keys were new.
    pub fn commit(self) -> Result<usize, VaultError> {
        let Update {
            vault,
            team,
            keys,
            endpoint,
            roster,
        } = self;
        let team = team.filter(|t| *t != vault.settings.team);
        // Keys are never taken out: one held here is stored.
        let keys: Vec<TeamKey> = keys
            .into_iter()
            .filter(|k| vault.keyring.get(k.team(), k.epoch()).is_none())
            .collect();
        if team.is_none() && keys.is_empty() && endpoint.is_none() && roster.is_none() {
            return Ok(0);
        }
        let path = vault.home.database();
        let me = vault.keys.id();
        let Vault { conn, cipher, .. } = &*vault;
        let (settings, keyring) = store::atomic(conn, &path, || {
            let settings = match &team {
                Some(team) => {
                    let mut settings = store::read_settings(conn, cipher, &path)?;
                    // Its references carry the team: a device that recorded under one keeps it.
                    if settings.team != *team && crate::cases::last_own_seq(conn, &me.0, &path)? > 0
                    {
                        return Err(VaultError::TeamMismatch {
                            have: settings.team,
                            admitted: team.clone(),
                        });
                    }
                    settings.team = team.clone();
                    store::write_settings(conn, cipher, &settings, &path)?;
                    crate::failpoint::hit("update:settings");
                    Some(settings)
                }
                None => None,
            };
            let keyring = match keys.is_empty() {
                true => None,
                false => {
                    let mut ring = crate::keyring::read(conn, cipher, &path)?;
                    for key in &keys {
                        if ring.get(key.team(), key.epoch()).is_none() {
                            ring.insert(TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes()));
                        }
                    }
                    crate::keyring::write(conn, cipher, &ring, &path)?;
                    crate::failpoint::hit("update:keyring");
                    Some(ring)
                }
            };
            if let Some(endpoint) = &endpoint {
                write_endpoint(conn, cipher, endpoint, &path)?;
            }
            if let Some(chain) = &roster {
                write_roster(conn, cipher, chain, &path)?;
            }
            Ok((settings, keyring))
        })?;
        if let Some(settings) = settings {
            vault.settings = settings;
        }
        if let Some(keyring) = keyring {
            vault.keyring = keyring;
        }
        Ok(keys.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use cairn_crypto::{KeyFileCost, SecretString};

    use super::*;
    use crate::{Home, NewVault, Role};

    /// Two processes add keys to one vault, each through a vault opened before the other's
    /// write: both keys are kept (the keyring is read again under the write lock, not
    /// written from what one process read at its start).
    #[test]
    fn keys_added_by_two_processes_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("office"));
        let pass = SecretString::from("pass".to_owned());
        let new = NewVault {
            team: "office".into(),
            name: None,
            role: Role::Office,
        };
        let now = time::OffsetDateTime::now_utc();
        drop(home.create(&pass, KeyFileCost::LogN(4), new, now).unwrap());
        let mut first = home.open(&pass).unwrap();
        let mut second = home.open(&pass).unwrap();
        let (a, b) = (TeamKey::generate("T01", 1), TeamKey::generate("T02", 1));
        assert_eq!(second.add_keys([&a]).unwrap(), 1);
        let endpoint = Endpoint {
            server: Some("https://127.0.0.1:7".into()),
            ..Endpoint::default()
        };
        first
            .update()
            .keys([&b])
            .endpoint(endpoint.clone())
            .commit()
            .unwrap();
        assert!(first.keyring().get("T01", 1).is_some(), "read again");
        let reopened = home.open(&pass).unwrap();
        for team in ["T01", "T02"] {
            assert!(reopened.keyring().get(team, 1).is_some(), "{team} was lost");
        }
        assert_eq!(reopened.endpoint().unwrap(), endpoint);
    }
}
