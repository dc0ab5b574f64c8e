//! What sync needs from the vault: the outbox, the pull cursor, and applying a page of
//! received sealed changes in one transaction together with the cursor that follows it.
//!
//! The vault knows nothing of the protocol: the caller says which authors the roster admits
//! and whom to encrypt to; the vault verifies, decrypts, applies and stores.

use std::collections::{BTreeMap, HashMap};

use cairn_crypto::{CryptoError, SealedChange};
use cairn_model::CaseDoc;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cases::{begin, load, write_case};
use crate::{store, Vault, VaultError};

/// Sync settings and progress, kept encrypted in the vault.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// The server's URL, from the invite.
    pub server: Option<String>,
    /// SHA-256 fingerprint of the server's TLS certificate, pinned from the invite.
    pub fingerprint: Option<String>,
    /// The office's public keys in their text form (`cairn office pubkey`).
    pub office: Option<String>,
    /// Highest own change number the server has stored with no gap below it.
    pub acked: u64,
    /// Server cursor after the last page applied here.
    pub cursor: u64,
    /// When the last sync finished (RFC 3339).
    pub last_sync_at: Option<String>,
    /// One line summing up the last sync.
    pub last_summary: Option<String>,
    /// The roster's signed statements as the server served them (JSON, opaque here).
    pub roster: Vec<serde_json::Value>,
    /// The roster version the server last reported, to fetch the roster only when it changes.
    pub roster_version: Option<String>,
    /// Whom to encrypt to, by team: the office and the team's members (age recipients).
    pub recipients: BTreeMap<String, Vec<String>>,
}

/// A received change that was not applied, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// Short id of the claimed author.
    pub author: String,
    /// Its number.
    pub seq: u64,
    /// One sentence.
    pub reason: String,
}

/// What applying one page did.
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    /// Changes verified, decrypted and merged.
    pub applied: usize,
    /// Changes already here (a page resent after an interruption).
    pub duplicates: usize,
    /// Changes refused, with reasons.
    pub refused: Vec<Refused>,
    /// Valid changes not encrypted to this device (sealed before its author knew it was in
    /// the team); the office and their recipients hold them.
    pub unreadable: usize,
}

const SYNC_KEY: &str = "sync";

impl Vault {
    /// The sync state (default if this vault never joined a server).
    pub fn sync_state(&self) -> Result<SyncState, VaultError> {
        let path = self.home.database();
        Ok(store::read_meta(&self.conn, &self.cipher, SYNC_KEY, &path)?.unwrap_or_default())
    }

    /// Replaces the sync state.
    pub fn set_sync_state(&mut self, state: &SyncState) -> Result<(), VaultError> {
        let path = self.home.database();
        store::write_meta(&self.conn, &self.cipher, SYNC_KEY, state, &path)
    }

    /// Adopts the team an invite names. Refused once this device has recorded anything under
    /// another team, since its references carry the team.
    pub fn set_team(&mut self, team: &str) -> Result<(), VaultError> {
        if self.settings.team == team {
            return Ok(());
        }
        if self.own_log_len()? > 0 {
            return Err(VaultError::TeamMismatch {
                have: self.settings.team.clone(),
                invite: team.to_owned(),
            });
        }
        let path = self.home.database();
        let mut settings = self.settings.clone();
        settings.team = team.to_owned();
        store::write_settings(&self.conn, &self.cipher, &settings, &path)?;
        self.settings = settings;
        Ok(())
    }

    /// The highest `n` such that changes 1..=n of `author` are all here.
    pub fn contiguous_seq(&self, author: &cairn_crypto::DeviceId) -> Result<u64, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare("SELECT seq FROM changes WHERE author = ?1 ORDER BY seq")
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
        let rows = stmt
            .query_map(
                params![self.keys.id().0.as_slice(), after as i64, limit as i64],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// Applies one pulled page and records `cursor` in the same transaction, so a page is
    /// either wholly applied with its cursor or not at all, and re-applying it changes nothing.
    ///
    /// `admit` is the roster's word on an author and number (`Err(reason)` refuses it).
    pub fn apply_page(
        &mut self,
        page: &[Vec<u8>],
        cursor: u64,
        admit: &dyn Fn(&SealedChange) -> Result<(), String>,
    ) -> Result<ApplyReport, VaultError> {
        let path = self.home.database();
        let now = time::OffsetDateTime::now_utc();
        let me = self.keys.id();
        let Vault {
            conn, keys, cipher, ..
        } = self;
        // Verifying and decrypting is most of the work and needs no database: spread it
        // over the cores first, then decide and write in one transaction.
        let opened = open_all(page, keys);
        let tx = begin(conn, &path)?;
        let mut report = ApplyReport::default();
        let mut by_case: BTreeMap<Uuid, Vec<Received>> = BTreeMap::new();
        let mut seen: HashMap<(cairn_crypto::DeviceId, u64), Vec<u8>> = HashMap::new();
        for (bytes, opened) in page.iter().zip(opened) {
            let (sealed, plain) = match opened {
                Opened::Readable(sealed, plain) => (sealed, Some(plain)),
                Opened::Unreadable(sealed) => (sealed, None),
                Opened::Refused(refused) => {
                    report.refused.push(refused);
                    continue;
                }
            };
            let refuse = |reason: String| Refused {
                author: sealed.author.short(),
                seq: sealed.seq,
                reason,
            };
            if let Err(reason) = admit(&sealed) {
                report.refused.push(refuse(reason));
                continue;
            }
            let Some(plain) = plain else {
                report.unreadable += 1;
                continue;
            };
            let stored = stored_bytes(&tx, &sealed, &path)?
                .or_else(|| seen.get(&(sealed.author, sealed.seq)).cloned());
            match stored {
                Some(existing) if existing == *bytes => {
                    report.duplicates += 1;
                    continue;
                }
                Some(_) => {
                    report.refused.push(refuse(format!(
                        "a different change {} of this device is already here: a replay or a forgery",
                        sealed.seq
                    )));
                    continue;
                }
                None => {}
            }
            seen.insert((sealed.author, sealed.seq), bytes.clone());
            by_case
                .entry(Uuid::from_bytes(sealed.case_id))
                .or_default()
                .push((sealed, bytes.clone(), plain));
        }
        for (id, changes) in by_case {
            for (sealed, bytes, _) in &changes {
                tx.execute(
                    "INSERT INTO changes (author, seq, case_id, sealed) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        sealed.author.0.as_slice(),
                        sealed.seq as i64,
                        id.as_bytes().as_slice(),
                        bytes
                    ],
                )
                .map_err(|e| VaultError::sqlite(&path, e))?;
            }
            let raw: Vec<Vec<u8>> = changes.into_iter().map(|(_, _, plain)| plain).collect();
            report.applied += raw.len();
            let mut doc = match load(&tx, cipher, &id, &me.0, &path) {
                Ok(mut doc) => {
                    doc.apply_changes(&raw)?;
                    Some(doc)
                }
                // A case first seen here; it may lack its creation for now.
                Err(VaultError::UnknownCase(_)) => CaseDoc::from_changes(&raw, &me.0).ok(),
                Err(e) => return Err(e),
            };
            // A change whose dependencies have not arrived waits inside Automerge and is not
            // part of a saved snapshot: rebuild from the whole log once they may have arrived.
            let incomplete = doc.as_ref().is_none_or(|d| !d.missing_deps().is_empty());
            if incomplete || has_waiting(&tx, &id, &path)? {
                doc = rebuild(&tx, keys, &id, &me.0, &path)?;
            }
            match doc.as_mut().filter(|d| d.missing_deps().is_empty()) {
                Some(doc) => {
                    set_waiting(&tx, &id, false, &path)?;
                    write_case(&tx, cipher, id, doc, now, &path)?;
                }
                None => set_waiting(&tx, &id, true, &path)?,
            }
        }
        let mut state: SyncState =
            store::read_meta(&tx, cipher, SYNC_KEY, &path)?.unwrap_or_default();
        state.cursor = cursor;
        store::write_meta(&tx, cipher, SYNC_KEY, &state, &path)?;
        tx.commit().map_err(|e| VaultError::sqlite(&path, e))?;
        Ok(report)
    }
}

fn stored_bytes(
    tx: &Transaction<'_>,
    sealed: &SealedChange,
    path: &std::path::Path,
) -> Result<Option<Vec<u8>>, VaultError> {
    tx.query_row(
        "SELECT sealed FROM changes WHERE author = ?1 AND seq = ?2",
        params![sealed.author.0.as_slice(), sealed.seq as i64],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| VaultError::sqlite(path, e))
}

/// Replays every stored change of a case; `None` while its creation has not arrived.
fn rebuild(
    tx: &Transaction<'_>,
    keys: &cairn_crypto::DeviceKeys,
    id: &Uuid,
    actor: &[u8; 32],
    path: &std::path::Path,
) -> Result<Option<CaseDoc>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = tx
        .prepare("SELECT sealed FROM changes WHERE case_id = ?1")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![id.as_bytes().as_slice()], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(sql)?;
    let mut raw = Vec::new();
    for row in rows {
        let sealed = SealedChange::from_bytes(&row.map_err(sql)?)?;
        raw.push(sealed.open(keys)?);
    }
    Ok(CaseDoc::from_changes(&raw, actor).ok())
}

/// A change to apply: the parsed envelope, its bytes as received, its plaintext.
type Received = (SealedChange, Vec<u8>, Vec<u8>);

/// What examining one received change found.
enum Opened {
    Readable(SealedChange, Vec<u8>),
    Unreadable(SealedChange),
    Refused(Refused),
}

/// Parses, verifies, decrypts and checks the inner author of every change, on all cores.
fn open_all(page: &[Vec<u8>], keys: &cairn_crypto::DeviceKeys) -> Vec<Opened> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = page.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = page
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|b| open_one(b, keys)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| {
                    vec![Opened::Refused(Refused {
                        author: "?".into(),
                        seq: 0,
                        reason: "internal error while opening".into(),
                    })]
                })
            })
            .collect()
    })
}

fn open_one(bytes: &[u8], keys: &cairn_crypto::DeviceKeys) -> Opened {
    let sealed = match SealedChange::from_bytes(bytes) {
        Ok(s) => s,
        Err(e) => {
            return Opened::Refused(Refused {
                author: "?".into(),
                seq: 0,
                reason: e.to_string(),
            })
        }
    };
    let refuse = |reason: String| {
        Opened::Refused(Refused {
            author: sealed.author.short(),
            seq: sealed.seq,
            reason,
        })
    };
    let plain = match sealed.open(keys) {
        Ok(p) => p,
        Err(CryptoError::NotARecipient { .. }) => return Opened::Unreadable(sealed),
        Err(e) => return refuse(e.to_string()),
    };
    match cairn_model::change_actor(&plain) {
        Ok(actor) if actor == sealed.author.0 => Opened::Readable(sealed, plain),
        Ok(_) => refuse("its content claims another author than its signature".into()),
        Err(e) => refuse(e.to_string()),
    }
}

fn has_waiting(
    tx: &Transaction<'_>,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    tx.query_row(
        "SELECT 1 FROM waiting WHERE case_id = ?1",
        params![id.as_bytes().as_slice()],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(|e| VaultError::sqlite(path, e))
}

fn set_waiting(
    tx: &Transaction<'_>,
    id: &Uuid,
    waiting: bool,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let sql = if waiting {
        "INSERT OR IGNORE INTO waiting (case_id) VALUES (?1)"
    } else {
        "DELETE FROM waiting WHERE case_id = ?1"
    };
    tx.execute(sql, params![id.as_bytes().as_slice()])
        .map(|_| ())
        .map_err(|e| VaultError::sqlite(path, e))
}
