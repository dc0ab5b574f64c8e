//! Restoring an office vault from what its server holds (`cairn office restore`).
//!
//! The sync client fetches and checks the office's chain and derives every team key from it;
//! the vault takes them in place of what a new vault made for itself (a new office vault
//! generates a key of its own team that nobody else holds), and only into a vault that holds
//! nothing yet. Everything else then arrives by ordinary pulls. Once they are in, the office
//! numbers its next case after the highest of its own that came back.

use cairn_crypto::Keyring;
use cairn_model::Reference;

use crate::sync_state::{read_all, RESTORING};
use crate::{store, Role, Vault, VaultError};

impl Vault {
    /// Starts a restore: replaces the keyring with `keyring` (the keys the office's chain
    /// grants it) and marks the vault as restoring, in one transaction (the chain itself and
    /// the server are stored next, by their own writers; a restore cut off in between is
    /// taken up again). Refused unless this is an office vault holding no case, no change and
    /// no statement of a chain, or one whose restore began and has not finished.
    ///
    /// With [`Vault::finish_restore`], the only writer of the restoring mark; the sync client
    /// calls both from `restore.rs`.
    pub fn begin_restore(&mut self, keyring: Keyring) -> Result<(), VaultError> {
        if self.settings.role == Role::Field {
            return Err(VaultError::OfficeOnly("restores a vault from its server"));
        }
        let path = self.home.database();
        let Vault { conn, cipher, .. } = &*self;
        store::atomic(conn, &path, || {
            let held = read_all(conn, cipher, &path, false)?;
            if !held.restoring {
                let count = |table: &str| -> Result<i64, VaultError> {
                    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                        .map_err(|e| VaultError::sqlite(&path, e))
                };
                let (cases, changes) = (count("cases")?, count("changes")?);
                if cases > 0 || changes > 0 {
                    return Err(VaultError::NotEmpty(format!(
                        "{cases} case(s) and {changes} change(s)"
                    )));
                }
                if !held.roster.statements.is_empty() {
                    return Err(VaultError::NotEmpty(format!(
                        "a roster of {} statement(s)",
                        held.roster.statements.len()
                    )));
                }
            }
            // Whatever this vault made of its own is replaced: the chain's keys are the office's.
            crate::keyring::write(conn, cipher, &keyring, &path)?;
            store::write_meta(conn, cipher, RESTORING, &true, &path)
        })?;
        self.keyring = keyring;
        Ok(())
    }

    /// Refuses to record a change while a restore has not finished: the office's own changes
    /// not pulled yet hold numbers a new one would take again, which the server refuses.
    pub(crate) fn refuse_while_restoring(&self) -> Result<(), VaultError> {
        match self.is_restoring()? {
            true => Err(VaultError::Restoring),
            false => Ok(()),
        }
    }

    /// Ends a restore: the office's next case reference continues after the highest of its
    /// own that came back, whatever its team (a reference names the device's tag and its own
    /// counter), and the vault is no longer marked as restoring. Returns that next number.
    pub fn finish_restore(&mut self) -> Result<u32, VaultError> {
        let tag = cairn_crypto::device_tag(&self.keys.id().0);
        let mut highest = 0;
        // One counter numbers the device's cases of every team (the office imports into
        // field teams under its own tag).
        for case in self.list()? {
            if let Ok(r) = case.reference.parse::<Reference>() {
                if r.device_tag == tag {
                    highest = highest.max(r.number);
                }
            }
        }
        let path = self.home.database();
        let Vault { conn, cipher, .. } = &*self;
        let settings = store::atomic(conn, &path, || {
            let mut settings = store::read_settings(conn, cipher, &path)?;
            settings.next_reference = settings.next_reference.max(highest.saturating_add(1));
            store::write_settings(conn, cipher, &settings, &path)?;
            store::write_meta(conn, cipher, RESTORING, &false, &path)?;
            Ok(settings)
        })?;
        let next = settings.next_reference;
        self.settings = settings;
        Ok(next)
    }
}
