//! Reading cases one at a time by id, for exports that walk the whole vault.
//!
//! [`Vault::case`] finds a reference among every summary first; an export that already holds
//! the summaries (from [`Vault::list`]) loads each case straight by its id instead, so walking
//! the vault costs one snapshot per case and memory does not grow with the number of cases.

use std::collections::HashMap;

use cairn_crypto::SealedChange;
use cairn_model::{CaseDoc, HistoryEntry};
use rusqlite::params;
use uuid::Uuid;

use crate::cases::load;
use crate::{Vault, VaultError};

impl Vault {
    /// Loads a case by its id.
    pub fn case_by_id(&self, id: &Uuid) -> Result<CaseDoc, VaultError> {
        let path = self.home.database();
        let office = self.office_devices()?;
        load(
            &self.conn,
            &self.cipher,
            id,
            &self.keys.id().0,
            &office,
            &path,
        )
    }

    /// A loaded case's history, with the time each change from another device arrived here
    /// (as [`Vault::history`] gives it).
    pub fn history_of(&self, doc: &CaseDoc) -> Result<Vec<HistoryEntry>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT author, seq, sealed FROM changes WHERE case_id = ?1 AND received = 1",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![doc.id().as_bytes().as_slice()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(sql)?;
        let mut received = HashMap::new();
        for row in rows {
            let (author, seq, stored) = row.map_err(sql)?;
            let (sealed, at) = crate::at_rest::open_stored(&self.cipher, &author, seq, &stored)?;
            let Some(at) = at else { continue };
            let plain = SealedChange::from_bytes(&sealed)?.open(&self.keyring)?;
            received.insert(cairn_model::screen_change(&plain)?.hash, at);
        }
        Ok(doc.history_received(&received))
    }
}
