//! `cairn check`: proves the log and the snapshots agree, one sealed change at a time.

use std::collections::BTreeMap;

use cairn_crypto::{SealedChange, SealedKind};
use uuid::Uuid;

use crate::{Vault, VaultError};

/// What a successful check covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Sealed changes verified and decrypted.
    pub changes: u64,
    /// Cases whose snapshot matched their replayed log.
    pub cases: usize,
    /// Cases holding changes whose dependencies have not arrived (not compared).
    pub waiting: usize,
}

impl Vault {
    /// Checks every encrypted record against the versions the vault recorded (as opening
    /// does) and reads each; verifies every sealed change's signature and row, decrypts it,
    /// checks this device's numbering has no gaps, checks each office record holds an edition
    /// the office signed, and replays each case's log to compare with its snapshot; then
    /// recomputes the head's sums from every row (see `head.rs`).
    pub fn check(&self) -> Result<CheckReport, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let corrupt = |detail: String| VaultError::Corrupt {
            path: path.clone(),
            detail,
        };
        let me = self.keys.id();
        let office = self.office_id()?;
        // One read transaction: a sync applying a page meanwhile cannot make log and
        // snapshots look out of step.
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        // What every command checks at open, and the records read later: a vault that
        // commands refuse never reads as sound.
        crate::store::check_records(&tx, &self.cipher, &path)?;
        crate::store::read_settings(&tx, &self.cipher, &path)?;
        crate::keyring::read(&tx, &self.cipher, &path)?;
        crate::sync_state::read_all(&tx, &self.cipher, &path, false)?;
        // Drafts are read as the form reads them: each decrypts under its own id.
        self.drafts()?;
        let mut stmt = tx
            .prepare("SELECT author, seq, case_id, sealed FROM changes ORDER BY author, seq")
            .map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        let mut per_case: BTreeMap<Uuid, Vec<Vec<u8>>> = BTreeMap::new();
        let mut changes = 0u64;
        let mut own_expected = 1u64;
        while let Some(row) = rows.next().map_err(sql)? {
            let author: Vec<u8> = row.get(0).map_err(sql)?;
            let seq: i64 = row.get(1).map_err(sql)?;
            let case_id: Vec<u8> = row.get(2).map_err(sql)?;
            let stored: Vec<u8> = row.get(3).map_err(sql)?;
            let (bytes, _) = crate::at_rest::open_stored(&self.cipher, &author, seq, &stored)?;
            let sealed = SealedChange::from_bytes(&bytes)?;
            sealed.verify()?;
            if sealed.author.0.as_slice() != author.as_slice()
                || sealed.seq != seq as u64
                || sealed.case_id.as_slice() != case_id.as_slice()
            {
                return Err(corrupt(format!(
                    "change {seq} is filed under another author, number or case than it was signed for"
                )));
            }
            if sealed.author == me {
                // Its changes held inside checkpoint documents only (a restored office's).
                while sealed.seq > own_expected
                    && crate::checkpoint::is_checkpointed(&tx, &me, own_expected, &path)?
                {
                    own_expected += 1;
                }
                if sealed.seq != own_expected {
                    return Err(corrupt(format!(
                        "this device's log jumps from change {} to {}",
                        own_expected - 1,
                        sealed.seq
                    )));
                }
                own_expected += 1;
            }
            let plain = sealed.open(&self.keyring)?;
            changes += 1;
            // An office record belongs to no case: it must hold an edition the office signed.
            if sealed.kind == SealedKind::OfficeRecord {
                crate::editions::received_edition(&sealed, &plain, office.as_ref()).map_err(
                    |reason| corrupt(format!("change {seq} of the log does not check: {reason}")),
                )?;
                continue;
            }
            per_case
                .entry(Uuid::from_bytes(sealed.case_id))
                .or_default()
                .push(plain);
        }
        let mut waiting = 0;
        for (id, raw) in &per_case {
            // Cases still waiting for a change this device cannot have yet are partial by design.
            if crate::sync::merge::has_waiting(&tx, id, &path)? {
                waiting += 1;
                continue;
            }
            let stored = crate::cases::load(&tx, &self.cipher, id, &me.0, &[], &path)?;
            let replayed =
                crate::checkpoint::replay_log(&tx, id, Some(&stored), raw, &me.0, &path)?;
            if replayed.heads() != stored.heads() {
                return Err(corrupt(format!(
                    "the snapshot of case {} disagrees with its log",
                    stored.reference()
                )));
            }
        }
        // Cases loaded from a checkpoint and holding no change since: their snapshot is the
        // office's document, read here as any snapshot.
        let mut based_only = 0;
        for id in crate::checkpoint::based_cases(&tx, &path)? {
            if !per_case.contains_key(&id) {
                crate::cases::load(&tx, &self.cipher, &id, &me.0, &[], &path)?;
                based_only += 1;
            }
        }
        drop(rows);
        drop(stmt);
        // Last, as it reads every row again: the rows must add up to what the vault recorded
        // in its head, case by case (a case put back whole with its log cut agrees with itself).
        crate::head::check_rows(&tx, &self.cipher, &path, |id| {
            crate::cases::load(&tx, &self.cipher, id, &me.0, &[], &path)
                .map(|doc| doc.reference().to_string())
                .unwrap_or_else(|_| id.to_string())
        })?;
        Ok(CheckReport {
            changes,
            cases: per_case.len() - waiting + based_only,
            waiting,
        })
    }
}
