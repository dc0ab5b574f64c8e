//! The team keys this vault holds, kept in one encrypted record.
//!
//! A field device starts with a draft key of its own (epoch 0) for what it records before it
//! joins; such changes never leave it and are sealed again under the team's key at `join`.
//! The office starts with its own team's key (epoch 1) and adds every key it issues.

use std::path::Path;

use cairn_crypto::{Keyring, LocalCipher, TeamKey};
use cairn_protocol::OFFICE_TEAM;

use crate::{store, Role, Settings, Vault, VaultError};

pub(crate) const SLOT: &str = "keyring";

/// The keyring of a new vault.
pub(crate) fn initial(settings: &Settings) -> Keyring {
    let mut ring = Keyring::default();
    let epoch = match settings.role {
        Role::Office => 1,
        // A staff device seals its own cases under team `office`'s key granted at its
        // admission; until then, a draft key as a field device's.
        Role::Field | Role::Staff => 0,
    };
    ring.insert(TeamKey::generate(&settings.team, epoch));
    ring
}

pub(crate) fn read(
    conn: &rusqlite::Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<Keyring, VaultError> {
    store::read_meta(conn, cipher, SLOT, path)?.ok_or_else(|| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: "the vault holds no keyring".into(),
    })
}

pub(crate) fn write(
    conn: &rusqlite::Connection,
    cipher: &LocalCipher,
    ring: &Keyring,
    path: &Path,
) -> Result<(), VaultError> {
    store::write_meta(conn, cipher, SLOT, ring, path)
}

/// The key a change to a case of `team` is sealed under: the newest this vault holds of
/// that team, or a fresh draft key (epoch 0) for the device's own team before it joined.
pub(crate) fn sealing_key(
    conn: &rusqlite::Connection,
    cipher: &LocalCipher,
    ring: &mut Keyring,
    settings: &Settings,
    team: &str,
    path: &Path,
) -> Result<TeamKey, VaultError> {
    if let Some(key) = ring.newest(team) {
        return Ok(TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes()));
    }
    if team != settings.team || (settings.role == Role::Office && team != OFFICE_TEAM) {
        return Err(VaultError::NoTeamKey(team.to_owned()));
    }
    let draft = TeamKey::generate(team, 0);
    let copy = TeamKey::from_bytes(team, 0, *draft.bytes());
    ring.insert(draft);
    write(conn, cipher, ring, path)?;
    Ok(copy)
}

impl Vault {
    /// The team keys this vault holds.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Adds keys (from the roster, or issued by the office) and stores the keyring (with
    /// other records: [`Vault::update`]). Returns how many were new.
    pub fn add_keys<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k TeamKey>,
    ) -> Result<usize, VaultError> {
        self.update().keys(keys).commit()
    }
}
