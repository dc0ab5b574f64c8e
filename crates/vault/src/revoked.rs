//! What a revocation leaves valid. A revoked device's changes numbered above its cut-off
//! (`last_seq`) are refused by every replica from the moment it learns of the revocation;
//! any that arrived here before that are taken out again, and the cases they touched are
//! rebuilt from what stays, so that every replica ends holding the same set.

use std::collections::BTreeSet;

use cairn_crypto::{DeviceId, SealedChange, SealedKind};
use cairn_model::ModelError;
use rusqlite::params;
use uuid::Uuid;

use crate::cases::write_case;
use crate::sync::merge::set_waiting;
use crate::sync::refused::remember_refused;
use crate::transactions::begin;
use crate::{Vault, VaultError};

/// What [`Vault::cut_off`] took out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutOff {
    /// The lowest and highest numbers of the changes taken out.
    pub seqs: Option<(u64, u64)>,
    /// How many changes.
    pub changes: u64,
    /// How many cases they touched.
    pub cases: usize,
}

impl Vault {
    /// Takes out of this vault the changes of `author` numbered above `last_seq`, its
    /// revocation's cut-off, that arrived before the revocation did; remembers them as
    /// refused (so they are not judged or reported again), and rebuilds each case they
    /// touched from the changes that stay, in one transaction. A change of another device
    /// that depended on one taken out waits, as it does on every replica. Nothing to do is
    /// one indexed look-up.
    pub fn cut_off(&mut self, author: &DeviceId, last_seq: u64) -> Result<CutOff, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let last = i64::try_from(last_seq).unwrap_or(i64::MAX);
        let any: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM changes WHERE author = ?1 AND seq > ?2)",
                params![author.0.as_slice(), last],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if !any {
            return Ok(CutOff::default());
        }
        let me = self.keys.id();
        let office = self.office_devices()?;
        let now = time::OffsetDateTime::now_utc();
        let Vault {
            conn,
            cipher,
            keyring,
            ..
        } = self;
        let tx = begin(conn, &path)?;
        let dropped: Vec<(i64, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT seq, sealed FROM changes WHERE author = ?1 AND seq > ?2")
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![author.0.as_slice(), last], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)?
        };
        let mut cases = BTreeSet::new();
        for (seq, stored) in &dropped {
            let (bytes, _) = crate::at_rest::open_change(cipher, author, *seq as u64, stored)?;
            let sealed = SealedChange::from_bytes(&bytes)?;
            // Only a case change names a case to rebuild (office records come from the office,
            // which no revocation reaches).
            if sealed.kind == SealedKind::CaseChange {
                cases.insert(Uuid::from_bytes(sealed.case_id));
            }
            remember_refused(&tx, &sealed, &bytes, &path)?;
            tx.execute(
                "DELETE FROM changes WHERE author = ?1 AND seq = ?2",
                params![author.0.as_slice(), seq],
            )
            .map_err(sql)?;
        }
        for id in &cases {
            // The case from the changes that stay, in the order they arrived: each was
            // judged when it came; one that depended on a change taken out now waits.
            let raw = {
                let mut stmt = tx
                    .prepare(
                        "SELECT author, seq, sealed FROM changes WHERE case_id = ?1 ORDER BY rowid",
                    )
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(params![id.as_bytes().as_slice()], |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                        ))
                    })
                    .map_err(sql)?;
                let mut raw = Vec::new();
                for row in rows {
                    let (author, seq, stored) = row.map_err(sql)?;
                    let (bytes, _) = crate::at_rest::open_stored(cipher, &author, seq, &stored)?;
                    raw.push(SealedChange::from_bytes(&bytes)?.open(keyring)?);
                }
                raw
            };
            // A case first loaded from a checkpoint replays its log from that document.
            let current = crate::cases::load(&tx, cipher, id, &me.0, &office, &path).ok();
            let based = crate::checkpoint::base_heads(&tx, id, &path)?.is_some();
            let rebuilt = match crate::checkpoint::replay_log(
                &tx,
                id,
                current.as_ref(),
                &raw,
                &me.0,
                &path,
            ) {
                Err(VaultError::Model(e)) => Err(e),
                other => Ok(other?),
            };
            match rebuilt {
                Ok(mut doc) => {
                    doc.set_office(&office);
                    let waiting = !based && doc.changes().len() < raw.len();
                    write_case(&tx, cipher, *id, &mut doc, now, &path)?;
                    set_waiting(&tx, id, waiting, &path)?;
                }
                // Its creation was taken out: nothing of it stays readable.
                Err(ModelError::Incomplete) => {
                    tx.execute(
                        "DELETE FROM cases WHERE case_id = ?1",
                        params![id.as_bytes().as_slice()],
                    )
                    .map_err(sql)?;
                    set_waiting(&tx, id, true, &path)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        crate::head::commit(&tx, &path)?;
        let seqs: Vec<u64> = dropped.iter().map(|(seq, _)| *seq as u64).collect();
        Ok(CutOff {
            seqs: seqs.iter().min().copied().zip(seqs.iter().max().copied()),
            changes: seqs.len() as u64,
            cases: cases.len(),
        })
    }

    /// The highest number of `author`'s changes this vault holds (0: none), refused ones
    /// left out.
    pub fn newest_seq(&self, author: &DeviceId) -> Result<u64, VaultError> {
        let path = self.home.database();
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE author = ?1",
                params![author.0.as_slice()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| VaultError::sqlite(&path, e))
    }
}
