//! What this device sends, and what arrived of each author: the outbox, the drafts sealed
//! again once the device joined, and the numbers that arrived without a gap.

use cairn_crypto::SealedChange;
use rusqlite::params;

use crate::transactions::begin;
use crate::{Vault, VaultError};

impl Vault {
    /// Seals again under the team's key this device's changes and attachment chunks recorded
    /// before it joined (under its draft key, epoch 0, which nobody else holds). Done in one
    /// transaction before the first push; changes sealed under a team key are left alone. Returns how
    /// many changes were sealed again (0 while the vault holds no key of its team).
    pub fn reseal_unsent(&mut self) -> Result<u64, VaultError> {
        let path = self.home.database();
        let me = self.keys.id();
        let team = self.settings.team.clone();
        let Some(key) = self.keyring.newest(&team).filter(|k| k.epoch() > 0) else {
            return Ok(0);
        };
        let key = cairn_crypto::TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes());
        let Vault {
            conn,
            keys,
            keyring,
            cipher,
            ..
        } = self;
        let tx = begin(conn, &path)?;
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT seq, sealed FROM changes WHERE author = ?1 AND draft = 1 ORDER BY seq",
                )
                .map_err(|e| VaultError::sqlite(&path, e))?;
            let rows = stmt
                .query_map(params![me.0.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| VaultError::sqlite(&path, e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| VaultError::sqlite(&path, e))?
        };
        // Attachments recorded before the join, likewise.
        crate::blobs::reseal_drafts(&tx, cipher, keys, keyring, &key, &path)?;
        let mut count = 0;
        for (seq, stored) in &rows {
            let (bytes, _) = crate::at_rest::open_change(cipher, &me, *seq as u64, stored)?;
            let old = SealedChange::from_bytes(&bytes)?;
            if old.epoch != 0 {
                continue;
            }
            let plain = old.open(keyring)?;
            let new = SealedChange::seal(keys, &key, old.kind, old.case_id, old.seq, &plain)?;
            let stored = crate::at_rest::seal_change(cipher, &me, old.seq, None, &new.to_bytes())?;
            tx.execute(
                "UPDATE changes SET sealed = ?1, draft = 0 WHERE author = ?2 AND seq = ?3",
                params![stored, me.0.as_slice(), seq],
            )
            .map_err(|e| VaultError::sqlite(&path, e))?;
            count += 1;
            crate::failpoint::hit("reseal:change");
        }
        crate::head::commit(&tx, &path)?;
        Ok(count)
    }

    /// Per author whose changes are here (or were refused here): the highest `n` such that
    /// its changes `1..=n` all arrived, and the highest number that arrived. A gap between
    /// them that stays open after a complete pull means the server withholds a change.
    pub fn delivery(&self) -> Result<Vec<(cairn_crypto::DeviceId, u64, u64)>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT author, seq FROM changes UNION SELECT author, seq FROM refused
                 UNION SELECT author, seq FROM checkpointed ORDER BY 1, 2",
            )
            .map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        let mut out: Vec<(cairn_crypto::DeviceId, u64, u64)> = Vec::new();
        while let Some(row) = rows.next().map_err(sql)? {
            let author: Vec<u8> = row.get(0).map_err(sql)?;
            let seq = row.get::<_, i64>(1).map_err(sql)? as u64;
            let Ok(author) = <[u8; 32]>::try_from(author.as_slice()) else {
                continue;
            };
            let author = cairn_crypto::DeviceId(author);
            match out.last_mut() {
                Some((a, contiguous, newest)) if *a == author => {
                    if seq == *contiguous + 1 {
                        *contiguous = seq;
                    }
                    *newest = seq;
                }
                _ => out.push((author, u64::from(seq == 1), seq)),
            }
        }
        Ok(out)
    }

    /// The highest `n` such that changes 1..=n of `author` all arrived here: applied (or
    /// waiting for a change they depend on), or judged and refused. Every replica that holds
    /// them reaches the same verdicts, so this is where a revocation can cut without one
    /// replica keeping what another refuses.
    pub fn contiguous_seq(&self, author: &cairn_crypto::DeviceId) -> Result<u64, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq FROM changes WHERE author = ?1
                 UNION SELECT seq FROM refused WHERE author = ?1
                 UNION SELECT seq FROM checkpointed WHERE author = ?1 ORDER BY seq",
            )
            .map_err(sql)?;
        let seqs = stmt
            .query_map(params![author.0.as_slice()], |r| r.get::<_, i64>(0))
            .map_err(sql)?;
        let mut last = 0u64;
        for seq in seqs {
            if seq.map_err(sql)? as u64 != last + 1 {
                break;
            }
            last += 1;
        }
        Ok(last)
    }

    /// This device's sealed changes numbered above `after`, in order, at most `limit`.
    pub fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, sealed FROM changes WHERE author = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(sql)?;
        let me = self.keys.id();
        let rows = stmt
            .query_map(params![me.0.as_slice(), after as i64, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, stored) = row.map_err(sql)?;
            let (sealed, _) = crate::at_rest::open_change(&self.cipher, &me, seq, &stored)?;
            out.push((seq, sealed));
        }
        Ok(out)
    }
}
