//! What sync needs from the vault: the outbox, the pull cursor, and applying a page of
//! received sealed changes in one transaction together with the cursor that follows it.
//!
//! The vault speaks no protocol: the caller hands it the roster, whose verdict says which
//! authors it admits, and says whom to encrypt to; the vault verifies, decrypts, applies and
//! stores. It only keeps the roster's
//! signed statements (protocol types) for the sync client, never judging them itself.

use std::collections::{BTreeMap, HashMap};

use cairn_crypto::{CryptoError, SealedChange, SealedKind};
use cairn_model::CaseDoc;
use cairn_protocol::{Receipt, Roster, Statement};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::cases::{begin, case_row, load, open_snapshot, snapshot_of, CaseRow};
use crate::{store, Vault, VaultError};

/// Sync settings and progress, kept encrypted in the vault.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncState {
    /// The server's URL, from the admission.
    pub server: Option<String>,
    /// SHA-256 fingerprint of the server's TLS certificate, pinned from the admission.
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
    /// The office-signed roster statements this device verified (for a device that just
    /// joined, only its own admission): the sync client never lets a server take one back.
    pub roster: Vec<Statement>,
    /// What the server served of the roster that this device refused, from the last sync.
    #[serde(default)]
    pub roster_warnings: Vec<String>,
    /// The newest office receipt received (for the office, the newest it issued).
    #[serde(default)]
    pub receipt: Option<Receipt>,
    /// Changes the server seems to withhold, from the last complete pull, one sentence each.
    #[serde(default)]
    pub delivery_warnings: Vec<String>,
    /// The first own change the server acknowledged that the office's receipts do not
    /// confirm yet, watched so that it is sent again once the office has pulled without it.
    #[serde(default)]
    pub unconfirmed: Option<Unconfirmed>,
    /// An office restore from the server (`cairn office restore`) began and has not finished:
    /// the vault holds the office's chain and keys, perhaps not yet everything the server holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restoring: bool,
}

/// An own change the server acknowledged and the office's receipts do not confirm (see
/// [`SyncState::unconfirmed`]). Receipt counters are the office's clock here: it issues a
/// new receipt after every pull that brought anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unconfirmed {
    /// The change's number (the office confirms 1 to `seq - 1`).
    pub seq: u64,
    /// How many times it was sent again.
    pub resent: u32,
    /// It is sent (again) only once a receipt newer than this one arrives: one the office
    /// made after a pull that should have carried it.
    pub after_receipt: u64,
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
    /// Valid changes sealed under a team key this device does not hold (another team's,
    /// or an epoch it was never granted).
    pub unreadable: usize,
    /// Editions received in office records and kept here for the first time (each record
    /// stored is also counted in `applied`).
    pub editions: usize,
}

pub(crate) const SYNC_KEY: &str = "sync";

impl Vault {
    /// The sync state (default if this vault never joined a server).
    pub fn sync_state(&self) -> Result<SyncState, VaultError> {
        let path = self.home.database();
        let read = match self.as_found {
            true => store::read_meta_as_found,
            false => store::read_meta,
        };
        Ok(read(&self.conn, &self.cipher, SYNC_KEY, &path)?.unwrap_or_default())
    }

    /// Replaces the sync state (with other records: [`Vault::update`]).
    pub fn set_sync_state(&mut self, state: &SyncState) -> Result<(), VaultError> {
        self.update().sync_state(state).commit().map(|_| ())
    }

    /// Whether this vault may take `team` (see [`Vault::set_team`]), without changing it.
    pub fn check_team(&self, team: &str) -> Result<(), VaultError> {
        if self.settings.team != team && self.own_log_len()? > 0 {
            return Err(VaultError::TeamMismatch {
                have: self.settings.team.clone(),
                admitted: team.to_owned(),
            });
        }
        Ok(())
    }

    /// Adopts the team an admission names. Refused once this device has recorded anything under
    /// another team, since its references carry the team.
    pub fn set_team(&mut self, team: &str) -> Result<(), VaultError> {
        self.update().team(team).commit().map(|_| ())
    }

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
                "SELECT author, seq FROM changes UNION SELECT author, seq FROM refused ORDER BY 1, 2",
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
                 UNION SELECT seq FROM refused WHERE author = ?1 ORDER BY seq",
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

    /// Applies pulled changes (one page or several in a row) and records `cursor`, the one
    /// after the last of them, in the same transaction: they are either wholly applied with
    /// their cursor or not at all, and re-applying them changes nothing.
    ///
    /// `roster` gives its verdict on each author and number ([`Roster::verdict`]): the author's
    /// team (`None` for the office, which writes to every team's cases), or why it is refused.
    /// A change that the roster admits but that does not fit its case (bad content,
    /// another team's case, an attempt to change a case's id or reference) is refused alone:
    /// one bad change never blocks the changes after it.
    ///
    /// An office record (a published edition) is kept only if the office wrote it, for team
    /// `office`, and the edition inside is signed by the office and filed under its own id;
    /// it is stored in the log (its author's numbers stay whole) and its edition among the editions
    /// unless one of that id is already kept. Any other record is refused like a bad change.
    pub fn apply_pulled(
        &mut self,
        page: &[Vec<u8>],
        cursor: u64,
        roster: &Roster,
    ) -> Result<ApplyReport, VaultError> {
        let path = self.home.database();
        let now = time::OffsetDateTime::now_utc();
        let me = self.keys.id();
        let office = self.office_id()?;
        let deciders = self.office_devices()?;
        let Vault {
            conn,
            keyring,
            cipher,
            ..
        } = self;
        let keyring = &*keyring;
        // Verifying and decrypting is most of the work and needs no database: spread it
        // over the cores first, then decide and write in one transaction.
        let opened = open_all(page, keyring, office.as_ref());
        let mut tx = begin(conn, &path)?;
        let mut report = ApplyReport::default();
        let mut by_case: BTreeMap<Uuid, Vec<Received<'_>>> = BTreeMap::new();
        // Office records: no case to merge into; kept after the cases, in the same transaction.
        let mut records: Vec<(SealedChange, &[u8], Box<crate::SignedEdition>)> = Vec::new();
        // Each author and number taken from this batch, with its bytes (a second, different
        // change under the same number is a replay or a forgery).
        let mut seen: HashMap<(cairn_crypto::DeviceId, u64), &[u8]> = HashMap::new();
        for (bytes, opened) in page.iter().zip(opened) {
            let (sealed, readable) = match opened {
                Opened::Readable(sealed, change) => (sealed, Some(change)),
                Opened::Unreadable(sealed) => (sealed, None),
                Opened::Refused(refused, None) => {
                    report.refused.push(refused);
                    continue;
                }
                // Signed by its author, then refused for its content: judged once only.
                Opened::Refused(refused, Some(sealed)) => {
                    match refused_before(&tx, &sealed, bytes, &path)? {
                        Some(true) => {}
                        Some(false) => report.refused.push(Refused {
                            reason: different(sealed.seq),
                            ..refused
                        }),
                        None => {
                            remember_refused(&tx, &sealed, bytes, &path)?;
                            report.refused.push(refused);
                        }
                    }
                    continue;
                }
            };
            let refuse = |reason: String| Refused {
                author: sealed.author.short(),
                seq: sealed.seq,
                reason,
            };
            let team = match roster.verdict(&sealed.author, sealed.seq, &sealed.team) {
                Ok(team) => team.map(str::to_owned),
                Err(refusal) => {
                    report.refused.push(refuse(refusal.to_string()));
                    continue;
                }
            };
            let Some(change) = readable else {
                report.unreadable += 1;
                continue;
            };
            let stored = stored_bytes(&tx, cipher, &sealed, &path)?;
            let existing = stored
                .as_deref()
                .or_else(|| seen.get(&(sealed.author, sealed.seq)).copied());
            match (existing, refused_before(&tx, &sealed, bytes, &path)?) {
                (_, Some(true)) => continue,
                (Some(existing), _) if existing == bytes.as_slice() => {
                    report.duplicates += 1;
                    continue;
                }
                (Some(_), _) | (None, Some(false)) => {
                    report.refused.push(refuse(different(sealed.seq)));
                    continue;
                }
                (None, None) => {}
            }
            seen.insert((sealed.author, sealed.seq), bytes);
            let change = match change {
                Content::Change(change) => change,
                Content::Record(edition) => {
                    records.push((sealed, bytes, edition));
                    continue;
                }
            };
            by_case
                .entry(Uuid::from_bytes(sealed.case_id))
                .or_default()
                .push(Received {
                    sealed,
                    bytes,
                    change,
                    team,
                });
        }
        let merge = Merge {
            cipher,
            me: &me,
            office: &deciders,
            now,
            path: &path,
        };
        let cases: Vec<(Uuid, Vec<Received<'_>>)> = by_case.into_iter().collect();
        let mut start = 0;
        while start < cases.len() {
            // A case's merge needs only its snapshot and its changes: work out a window of
            // cases on all cores first (their snapshots bounded in memory), then store each
            // in the transaction. A case with changes held back for it, or one the model
            // refuses, goes the careful way below.
            let mut snapshots = Vec::new();
            let mut held = 0;
            while start + snapshots.len() < cases.len() && held < AHEAD_BYTES {
                let (id, changes) = &cases[start + snapshots.len()];
                let snapshot =
                    if has_waiting(&tx, id, &path)? || !batch_fits(&tx, id, changes, &path)? {
                        None
                    } else {
                        let snapshot = snapshot_of(&tx, id, &path)?;
                        held += snapshot.as_ref().map_or(0, Vec::len);
                        Some(snapshot)
                    };
                snapshots.push(snapshot);
            }
            let window = &cases[start..start + snapshots.len()];
            start += window.len();
            let ahead = on_all_cores(
                &window.iter().zip(&snapshots).collect::<Vec<_>>(),
                |((id, changes), snapshot)| {
                    let snapshot = snapshot.as_ref()?;
                    #[cfg(test)]
                    tests::merged_ahead(id);
                    merge_alone(&merge, *id, snapshot.as_deref(), changes).ok()
                },
                || None,
            );
            for ((id, changes), ahead) in window.iter().zip(ahead) {
                if let Some(merged) = ahead {
                    if store_ahead(&mut tx, &merge, *id, changes, &merged)? {
                        report.applied += changes.len();
                        continue;
                    }
                }
                apply_case(&mut tx, keyring, &merge, *id, changes, roster, &mut report)?;
            }
        }
        for (sealed, bytes, edition) in &records {
            insert_record(&tx, cipher, sealed, bytes, now, &path)?;
            if crate::editions::keep_received(&tx, cipher, edition, &path)? {
                report.editions += 1;
            }
            report.applied += 1;
        }
        crate::failpoint::hit("apply:stored");
        let mut state: SyncState =
            store::read_meta(&tx, cipher, SYNC_KEY, &path)?.unwrap_or_default();
        state.cursor = cursor;
        store::write_meta(&tx, cipher, SYNC_KEY, &state, &path)?;
        crate::head::commit(&tx, &path)?;
        Ok(report)
    }
}

/// Why a second change under a number already judged is refused.
fn different(seq: u64) -> String {
    format!("a different change {seq} of this device is already here or was refused: a replay or a forgery")
}

fn refused_for(change: &Received<'_>, reason: String) -> Refused {
    Refused {
        author: change.sealed.author.short(),
        seq: change.sealed.seq,
        reason,
    }
}

/// Why merging a case's changes stopped.
enum Failure {
    /// The changes do not fit the case: refuse them, go on with the page.
    Refuse(String),
    /// The vault itself failed: stop.
    Fatal(VaultError),
}

impl From<VaultError> for Failure {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Model(cairn_model::ModelError::Refused(reason)) => Failure::Refuse(reason),
            VaultError::Model(m) => {
                Failure::Refuse(format!("its content does not fit the case: {m}"))
            }
            other => Failure::Fatal(other),
        }
    }
}

/// The most sealed bytes one case may hold: far beyond any real case, small enough that a
/// peer cannot make every device load a giant document.
pub const MAX_CASE_BYTES: i64 = 32 << 20;
/// The most Automerge operations one case may hold (run-length encoding makes operations
/// far cheaper in bytes than in memory).
pub const MAX_CASE_OPS: i64 = 2_000_000;
/// The most operations one device may add to a case: one device alone cannot fill it. Each
/// device's changes arrive in its own order everywhere, so this verdict never depends on
/// arrival order.
pub const MAX_AUTHOR_OPS: i64 = 500_000;

/// Whether `author` may add `bytes` and `ops` to case `id`; why not, if not.
pub(crate) fn within_budget(
    conn: &rusqlite::Connection,
    id: &Uuid,
    author: &cairn_crypto::DeviceId,
    bytes: i64,
    ops: i64,
    path: &std::path::Path,
) -> Result<Result<(), String>, VaultError> {
    Ok(stored_totals(conn, id, author, path)?
        .add(bytes, ops)
        .map(|_| ()))
}

/// What case `id` holds: its sealed bytes and operations, and the operations of one author.
#[derive(Clone, Copy)]
struct Totals {
    case_bytes: i64,
    case_ops: i64,
    author_ops: i64,
}

impl Totals {
    /// Adds a change of the author's, or says why it does not fit.
    fn add(mut self, bytes: i64, ops: i64) -> Result<Self, String> {
        self.case_bytes += bytes;
        self.case_ops += ops;
        self.author_ops += ops;
        if self.case_bytes > MAX_CASE_BYTES {
            Err(format!(
                "the case would hold more than {} MiB of changes",
                MAX_CASE_BYTES >> 20
            ))
        } else if self.case_ops > MAX_CASE_OPS {
            Err(format!(
                "the case would hold more than {MAX_CASE_OPS} operations"
            ))
        } else if self.author_ops > MAX_AUTHOR_OPS {
            Err(format!(
                "its device would have written more than {MAX_AUTHOR_OPS} operations to the case"
            ))
        } else {
            Ok(self)
        }
    }
}

fn stored_totals(
    conn: &rusqlite::Connection,
    id: &Uuid,
    author: &cairn_crypto::DeviceId,
    path: &std::path::Path,
) -> Result<Totals, VaultError> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(length(sealed) - ?3), 0), COALESCE(SUM(ops), 0),
                COALESCE(SUM(CASE WHEN author = ?2 THEN ops END), 0)
         FROM changes WHERE case_id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                id.as_bytes().as_slice(),
                author.0.as_slice(),
                crate::at_rest::CHANGE_OVERHEAD
            ],
            |r| {
                Ok(Totals {
                    case_bytes: r.get(0)?,
                    case_ops: r.get(1)?,
                    author_ops: r.get(2)?,
                })
            },
        )
    })
    .map_err(|e| VaultError::sqlite(path, e))
}

/// Whether a whole batch fits its case's and its authors' budgets, as inserting it change
/// by change will find: nothing is merged ahead that the budget refuses (the budget is what
/// bounds a case's memory).
fn batch_fits(
    conn: &rusqlite::Connection,
    id: &Uuid,
    changes: &[Received<'_>],
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    // Each author's operations, and the case's totals, as the batch goes.
    let mut authors: HashMap<cairn_crypto::DeviceId, i64> = HashMap::new();
    let mut case: Option<(i64, i64)> = None;
    for c in changes {
        let stored = match (authors.get(&c.sealed.author), case) {
            (Some(&author_ops), Some((case_bytes, case_ops))) => Totals {
                case_bytes,
                case_ops,
                author_ops,
            },
            (author_ops, case) => {
                let stored = stored_totals(conn, id, &c.sealed.author, path)?;
                let (case_bytes, case_ops) = case.unwrap_or((stored.case_bytes, stored.case_ops));
                Totals {
                    case_bytes,
                    case_ops,
                    author_ops: author_ops.copied().unwrap_or(stored.author_ops),
                }
            }
        };
        let Ok(after) = stored.add(c.bytes.len() as i64, c.change.screened().ops as i64) else {
            return Ok(false);
        };
        case = Some((after.case_bytes, after.case_ops));
        authors.insert(c.sealed.author, after.author_ops);
    }
    Ok(true)
}

/// Snapshots worked on ahead of the transaction at once, at most: a page of giant cases
/// does not hold them all in memory.
const AHEAD_BYTES: usize = 64 << 20;

/// Stores a case's changes and the merge worked out ahead for it, in a savepoint; false if
/// its author's budget refuses them (the careful way then says why).
fn store_ahead(
    tx: &mut rusqlite::Transaction<'_>,
    merge: &Merge<'_>,
    id: Uuid,
    changes: &[Received<'_>],
    merged: &Merged,
) -> Result<bool, VaultError> {
    let savepoint = tx
        .savepoint()
        .map_err(|e| VaultError::sqlite(merge.path, e))?;
    match insert_changes(&savepoint, merge, id, changes) {
        Ok(()) => {}
        // Dropping the savepoint rolls it back.
        Err(Failure::Refuse(_)) => return Ok(false),
        Err(Failure::Fatal(e)) => return Err(e),
    }
    merged.store(&savepoint, merge.cipher, id, merge.path)?;
    savepoint
        .commit()
        .map_err(|e| VaultError::sqlite(merge.path, e))?;
    Ok(true)
}

/// Merges a case's changes in the transaction: all at once; if that is refused, one at a
/// time in the server's order, so one bad change never takes honest ones down with it.
fn apply_case(
    tx: &mut rusqlite::Transaction<'_>,
    keyring: &cairn_crypto::Keyring,
    merge: &Merge<'_>,
    id: Uuid,
    changes: &[Received<'_>],
    roster: &Roster,
    report: &mut ApplyReport,
) -> Result<(), VaultError> {
    let path = merge.path;
    let mut attempt = |tx: &mut rusqlite::Transaction<'_>, batch: &[Received<'_>]| {
        let savepoint = tx.savepoint().map_err(|e| VaultError::sqlite(path, e))?;
        let case = Case {
            conn: &savepoint,
            keyring,
            merge,
            id,
        };
        match merge_case(&case, batch, roster) {
            Ok(held) => {
                savepoint
                    .commit()
                    .map_err(|e| VaultError::sqlite(path, e))?;
                report.refused.extend(held);
                Ok(None)
            }
            // Dropping the savepoint rolls it back.
            Err(Failure::Refuse(reason)) => Ok(Some(reason)),
            Err(Failure::Fatal(e)) => Err(e),
        }
    };
    let outcomes: Vec<(&Received<'_>, Option<String>)> = match attempt(tx, changes)? {
        None => {
            report.applied += changes.len();
            return Ok(());
        }
        Some(reason) if changes.len() == 1 => vec![(&changes[0], Some(reason))],
        Some(_) => {
            let mut outcomes = Vec::with_capacity(changes.len());
            for single in changes.chunks(1) {
                outcomes.push((&single[0], attempt(tx, single)?));
            }
            outcomes
        }
    };
    for (change, outcome) in outcomes {
        match outcome {
            None => report.applied += 1,
            Some(reason) => {
                remember_refused(tx, &change.sealed, change.bytes, path)?;
                report.refused.push(refused_for(change, reason));
            }
        }
    }
    Ok(())
}

/// What merging needs besides the database: the same for every case of a page.
struct Merge<'a> {
    cipher: &'a cairn_crypto::LocalCipher,
    me: &'a cairn_crypto::DeviceId,
    /// The actors deciding for the office (the office and its staff devices): the only ones
    /// that confirm, reject and review.
    office: &'a [[u8; 32]],
    now: time::OffsetDateTime,
    path: &'a std::path::Path,
}

/// One case of the vault, inside a page's transaction.
struct Case<'a> {
    conn: &'a rusqlite::Connection,
    keyring: &'a cairn_crypto::Keyring,
    merge: &'a Merge<'a>,
    id: Uuid,
}

/// A case merged with its changes, ready to store.
struct Merged {
    /// Its new row; none while its creation has not arrived.
    row: Option<CaseRow>,
    /// Whether it waits for a change it depends on.
    waiting: bool,
}

impl Merged {
    fn store(
        &self,
        conn: &rusqlite::Connection,
        cipher: &cairn_crypto::LocalCipher,
        id: Uuid,
        path: &std::path::Path,
    ) -> Result<(), VaultError> {
        set_waiting(conn, &id, self.waiting, path)?;
        // What has arrived is saved even while a dependency is missing, so the case stays
        // visible.
        match &self.row {
            Some(row) => row.store(conn, cipher, path),
            None => Ok(()),
        }
    }
}

/// Records a case's received changes in the log, within their authors' budgets.
fn insert_changes(
    conn: &rusqlite::Connection,
    merge: &Merge<'_>,
    id: Uuid,
    changes: &[Received<'_>],
) -> Result<(), Failure> {
    let path = merge.path;
    let received_at = (merge.now.unix_timestamp_nanos() / 1_000_000) as i64;
    for c in changes {
        let (bytes, ops) = (c.bytes.len() as i64, c.change.screened().ops as i64);
        within_budget(conn, &id, &c.sealed.author, bytes, ops, path)?.map_err(Failure::Refuse)?;
        let stored = crate::at_rest::seal_change(
            merge.cipher,
            &c.sealed.author,
            c.sealed.seq,
            Some(received_at),
            c.bytes,
        )?;
        conn.prepare_cached(
            "INSERT INTO changes (author, seq, case_id, sealed, received, draft, ops)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                c.sealed.author.0.as_slice(),
                c.sealed.seq as i64,
                id.as_bytes().as_slice(),
                stored,
                c.sealed.epoch == 0,
                ops
            ])
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    }
    Ok(())
}

/// Merges a batch into a case with nothing held back for it, from the case's encrypted
/// snapshot (none for a case not seen before); needs nothing of the database.
fn merge_alone(
    merge: &Merge<'_>,
    id: Uuid,
    snapshot: Option<&[u8]>,
    changes: &[Received<'_>],
) -> Result<Merged, Failure> {
    let screened = || changes.iter().map(|c| &*c.change);
    let office = merge.office;
    let judged = match snapshot {
        None => match CaseDoc::from_screened(screened(), &merge.me.0, office) {
            Err(cairn_model::ModelError::Incomplete) => {
                return Ok(Merged {
                    row: None,
                    waiting: true,
                })
            }
            other => other,
        },
        Some(sealed) => {
            let mut doc = open_snapshot(merge.cipher, &id, sealed, &merge.me.0, merge.office)?;
            doc.apply_screened(screened()).map(|()| doc)
        }
    };
    let doc = judged.map_err(|e| match e {
        cairn_model::ModelError::RefusedChange { reason, .. } => Failure::Refuse(reason),
        e => VaultError::from(e).into(),
    })?;
    let authors: Vec<Author<'_>> = changes
        .iter()
        .map(|c| (&c.sealed, Ok(c.team.as_deref())))
        .collect();
    settle(merge, id, doc, snapshot.is_none(), &authors)
}

/// A change offered to a case, with the roster's word on its author: the author's team
/// (`None` for the office) or why the author is refused.
type Author<'a> = (&'a SealedChange, Result<Option<&'a str>, &'a str>);

/// The checks a merged case must pass whatever was offered to it, then its new row.
fn settle(
    merge: &Merge<'_>,
    id: Uuid,
    mut doc: CaseDoc,
    is_new: bool,
    authors: &[Author<'_>],
) -> Result<Merged, Failure> {
    if doc.id() != id {
        return Err(Failure::Refuse(
            "it files a case under another case's id".into(),
        ));
    }
    // Only its team and the office write to a case: the reference's team decides whom the
    // office encrypts the case to. Changes held for a case not seen before were never checked.
    let team = &doc.reference().team;
    for (sealed, verdict) in authors {
        match verdict {
            Err(reason) => return Err(Failure::Refuse((*reason).to_owned())),
            // The server relays a change by the team it is sealed for: one sealed for another
            // team than its case's (the office's or a staff device's, whose verdict names no
            // team) would reach the office but never the case's team, leaving replicas apart.
            _ if !sealed.team.eq_ignore_ascii_case(team) => {
                return Err(Failure::Refuse(format!(
                    "it is sealed for team {}, not for its case's team {team}: the case's team would never receive it",
                    sealed.team
                )))
            }
            Ok(Some(other)) if !other.eq_ignore_ascii_case(team) => {
                return Err(Failure::Refuse(format!(
                    "a device of team {other} may not write to a case of team {team}"
                )))
            }
            Ok(_) => {}
        }
    }
    if is_new {
        creation_fits_author(&doc, authors.iter().map(|(s, _)| *s))?;
    }
    let waiting = !doc.missing_deps().is_empty();
    let row = case_row(merge.cipher, id, &mut doc, merge.now, merge.path)?;
    Ok(Merged {
        row: Some(row),
        waiting,
    })
}

/// Stores a case's received changes and merges them into its snapshot, with any change held
/// back for it earlier that they release. Returns the held-back changes refused on release
/// (dropped from the log alone: the batch goes on without them).
fn merge_case(
    case: &Case<'_>,
    changes: &[Received<'_>],
    roster: &Roster,
) -> Result<Vec<Refused>, Failure> {
    let Case {
        conn, merge, id, ..
    } = *case;
    let path = merge.path;
    insert_changes(conn, merge, id, changes)?;
    if !has_waiting(conn, &id, path)? {
        let merged = merge_alone(merge, id, snapshot_of(conn, &id, path)?.as_deref(), changes)?;
        merged.store(conn, merge.cipher, id, path)?;
        return Ok(Vec::new());
    }
    let mut before = match load(conn, merge.cipher, &id, &merge.me.0, merge.office, path) {
        Ok(doc) => Some(doc),
        Err(VaultError::UnknownCase(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let is_new = before.is_none();
    // A case with changes held back for a dependency (or stored before its creation
    // arrived) is offered everything stored for it, in the order it arrived (the model
    // skips what it has).
    let mut offered = case_log(case)?;
    let in_batch = |s: &Stored| {
        changes
            .iter()
            .any(|c| c.sealed.author == s.sealed.author && c.sealed.seq == s.sealed.seq)
    };
    let mut held_refused = Vec::new();
    // The model judges each change on the merged case: identity, append-only lists, values.
    let merged = loop {
        let raw: Vec<Vec<u8>> = offered.iter().map(|s| s.plain.clone()).collect();
        let result = if is_new {
            match CaseDoc::from_changes(&raw, &merge.me.0, merge.office) {
                Err(cairn_model::ModelError::Incomplete) => Ok(None),
                other => other.map(Some),
            }
        } else {
            // A refused apply leaves the case as it was, ready for the next try.
            match before.as_mut() {
                Some(doc) => doc.apply_changes(&raw).map(|()| before.take()),
                None => return Err(VaultError::UnknownCase(id.to_string()).into()),
            }
        };
        let (hash, reason) = match result {
            Ok(doc) => break doc,
            Err(cairn_model::ModelError::RefusedChange { hash, reason }) => (hash, reason),
            Err(e) => return Err(VaultError::from(e).into()),
        };
        let culprit = offered
            .iter()
            .position(|s| cairn_model::screen_change(&s.plain).is_ok_and(|c| c.hash == hash));
        match culprit {
            Some(i) if !in_batch(&offered[i]) => {
                // Held back earlier and refused now it applies: it goes, the batch stays.
                let held = offered.remove(i);
                conn.execute(
                    "DELETE FROM changes WHERE author = ?1 AND seq = ?2",
                    params![held.sealed.author.0.as_slice(), held.sealed.seq as i64],
                )
                .map_err(|e| VaultError::sqlite(path, e))?;
                remember_refused(conn, &held.sealed, &held.bytes, path)?;
                held_refused.push(Refused {
                    author: held.sealed.author.short(),
                    seq: held.sealed.seq,
                    reason,
                });
            }
            _ => return Err(Failure::Refuse(reason)),
        }
    };
    let Some(doc) = merged else {
        set_waiting(conn, &id, true, path)?;
        return Ok(held_refused);
    };
    let verdicts: Vec<_> = offered
        .iter()
        .map(|s| {
            roster
                .verdict(&s.sealed.author, s.sealed.seq, &s.sealed.team)
                .map_err(|refusal| refusal.to_string())
        })
        .collect();
    let authors: Vec<Author<'_>> = offered
        .iter()
        .zip(&verdicts)
        .map(|(s, v)| (&s.sealed, v.as_ref().copied().map_err(String::as_str)))
        .collect();
    settle(merge, id, doc, is_new, &authors)?.store(conn, merge.cipher, id, path)?;
    Ok(held_refused)
}

/// A creation carries its author's own tag (and, for a field device, its team) in its
/// reference, so that no device mints references in another's name.
fn creation_fits_author<'a>(
    doc: &CaseDoc,
    mut authors: impl Iterator<Item = &'a SealedChange>,
) -> Result<(), Failure> {
    let creator = doc.creator();
    let Some(author) = authors.find(|s| creator.as_deref() == Some(s.author.0.as_slice())) else {
        return Err(Failure::Refuse(
            "the case's creation is not signed by its author".into(),
        ));
    };
    let reference = doc.reference();
    let tag = author.author.tag();
    if reference.device_tag != tag {
        return Err(Failure::Refuse(format!(
            "it creates {reference} under tag {}, but its author's tag is {tag}",
            reference.device_tag
        )));
    }
    Ok(())
}

/// Whether a change under this author and number was refused before: `Some(true)` for these
/// very bytes (judged already, say nothing), `Some(false)` for other bytes (a replay or a
/// forgery), `None` if not.
fn refused_before(
    tx: &rusqlite::Connection,
    sealed: &SealedChange,
    bytes: &[u8],
    path: &std::path::Path,
) -> Result<Option<bool>, VaultError> {
    let digest: Option<Vec<u8>> = tx
        .prepare_cached("SELECT digest FROM refused WHERE author = ?1 AND seq = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(
                params![sealed.author.0.as_slice(), sealed.seq as i64],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    Ok(digest.map(|d| d == Sha256::digest(bytes).as_slice()))
}

pub(crate) fn remember_refused(
    tx: &rusqlite::Connection,
    sealed: &SealedChange,
    bytes: &[u8],
    path: &std::path::Path,
) -> Result<(), VaultError> {
    tx.execute(
        "INSERT OR IGNORE INTO refused (author, seq, digest) VALUES (?1, ?2, ?3)",
        params![
            sealed.author.0.as_slice(),
            sealed.seq as i64,
            Sha256::digest(bytes).as_slice()
        ],
    )
    .map(|_| ())
    .map_err(|e| VaultError::sqlite(path, e))
}

fn stored_bytes(
    tx: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    sealed: &SealedChange,
    path: &std::path::Path,
) -> Result<Option<Vec<u8>>, VaultError> {
    let stored: Option<Vec<u8>> = tx
        .prepare_cached("SELECT sealed FROM changes WHERE author = ?1 AND seq = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(
                params![sealed.author.0.as_slice(), sealed.seq as i64],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    stored
        .map(|s| crate::at_rest::open_change(cipher, &sealed.author, sealed.seq, &s).map(|o| o.0))
        .transpose()
}

/// Every stored change of a case, opened, in the order they arrived.
fn case_log(case: &Case<'_>) -> Result<Vec<Stored>, VaultError> {
    let sql = |e| VaultError::sqlite(case.merge.path, e);
    let mut stmt = case
        .conn
        .prepare("SELECT author, seq, sealed FROM changes WHERE case_id = ?1 ORDER BY rowid")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![case.id.as_bytes().as_slice()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (author, seq, stored) = row.map_err(sql)?;
        let (bytes, _) = crate::at_rest::open_stored(case.merge.cipher, &author, seq, &stored)?;
        let sealed = SealedChange::from_bytes(&bytes)?;
        let plain = sealed.open(case.keyring)?;
        out.push(Stored {
            sealed,
            bytes,
            plain,
        });
    }
    Ok(out)
}

/// A change as stored in the log, opened.
struct Stored {
    sealed: SealedChange,
    bytes: Vec<u8>,
    plain: Vec<u8>,
}

/// Stores a received office record in the log, so that its author's numbers stay whole here
/// (a restored office numbers its next change after it) and it is a duplicate when it comes
/// again.
fn insert_record(
    tx: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    sealed: &SealedChange,
    bytes: &[u8],
    now: time::OffsetDateTime,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let received_at = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let stored =
        crate::at_rest::seal_change(cipher, &sealed.author, sealed.seq, Some(received_at), bytes)?;
    tx.prepare_cached(
        "INSERT INTO changes (author, seq, case_id, sealed, received, draft, ops)
         VALUES (?1, ?2, ?3, ?4, 1, 0, 0)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            sealed.author.0.as_slice(),
            sealed.seq as i64,
            sealed.case_id.as_slice(),
            stored,
        ])
    })
    .map(|_| ())
    .map_err(|e| VaultError::sqlite(path, e))
}

/// A change to apply.
struct Received<'a> {
    sealed: SealedChange,
    /// As received (and stored): borrowed from the page, never copied.
    bytes: &'a [u8],
    /// The Automerge change, screened when it was opened.
    change: Box<cairn_model::ScreenedChange>,
    /// Its author's team, as the roster says (`None` for the office).
    team: Option<String>,
}

/// What examining one received change found.
enum Opened {
    Readable(SealedChange, Content),
    Unreadable(SealedChange),
    /// Refused; with the change when its author's signature held.
    Refused(Refused, Option<SealedChange>),
}

/// What a readable change carries, checked.
enum Content {
    /// An Automerge change to a case, screened.
    Change(Box<cairn_model::ScreenedChange>),
    /// An office record: an edition signed by the office.
    Record(Box<crate::SignedEdition>),
}

/// Parses, verifies, decrypts and checks the inner author of every change, on all cores.
fn open_all(
    page: &[Vec<u8>],
    keys: &cairn_crypto::Keyring,
    office: Option<&[u8; 32]>,
) -> Vec<Opened> {
    on_all_cores(
        page,
        |bytes| open_one(bytes, keys, office),
        || {
            Opened::Refused(
                Refused {
                    author: "?".into(),
                    seq: 0,
                    reason: "internal error while opening".into(),
                },
                None,
            )
        },
    )
}

/// `work` on every item, spread over the cores, the answers in the items' order; `lost`
/// stands in for each answer of a worker that died, so answers stay in step.
fn on_all_cores<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    lost: impl Fn() -> R,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let worker = scope.spawn(move || part.iter().map(work).collect::<Vec<_>>());
                (part.len(), worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(len, worker)| {
                worker
                    .join()
                    .unwrap_or_else(|_| (0..len).map(|_| lost()).collect())
            })
            .collect()
    })
}

fn open_one(bytes: &[u8], keys: &cairn_crypto::Keyring, office: Option<&[u8; 32]>) -> Opened {
    let mut sealed = match SealedChange::from_bytes(bytes) {
        Ok(s) => s,
        Err(e) => {
            return Opened::Refused(
                Refused {
                    author: "?".into(),
                    seq: 0,
                    reason: e.to_string(),
                },
                None,
            )
        }
    };
    let refused = |reason: String| Refused {
        author: sealed.author.short(),
        seq: sealed.seq,
        reason,
    };
    let opened = sealed.open(keys);
    // The received bytes are kept whole beside it: a second copy of the ciphertext would only
    // add to what a batch holds in memory.
    drop(std::mem::take(&mut sealed.ciphertext));
    let plain = match opened {
        Ok(p) => p,
        Err(CryptoError::NotARecipient { .. }) => return Opened::Unreadable(sealed),
        Err(e) => return Opened::Refused(refused(e.to_string()), None),
    };
    // The signature held: from here on the author answers for the content.
    if sealed.kind == SealedKind::OfficeRecord {
        return match crate::editions::received_edition(&sealed, &plain, office) {
            Ok(edition) => Opened::Readable(sealed, Content::Record(Box::new(edition))),
            Err(reason) => Opened::Refused(refused(reason), Some(sealed)),
        };
    }
    let reason = match cairn_model::ScreenedChange::new(&plain) {
        Ok(change) if change.screened().actor == sealed.author.0 => {
            return Opened::Readable(sealed, Content::Change(Box::new(change)))
        }
        Ok(_) => "its content claims another author than its signature".to_string(),
        Err(e) => e.to_string(),
    };
    Opened::Refused(refused(reason), Some(sealed))
}

pub(crate) fn has_waiting(
    tx: &rusqlite::Connection,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    tx.prepare_cached("SELECT 1 FROM waiting WHERE case_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![id.as_bytes().as_slice()], |_| Ok(()))
                .optional()
        })
        .map(|r| r.is_some())
        .map_err(|e| VaultError::sqlite(path, e))
}

pub(crate) fn set_waiting(
    tx: &rusqlite::Connection,
    id: &Uuid,
    waiting: bool,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let sql = if waiting {
        "INSERT OR IGNORE INTO waiting (case_id) VALUES (?1)"
    } else {
        "DELETE FROM waiting WHERE case_id = ?1"
    };
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(params![id.as_bytes().as_slice()]))
        .map(|_| ())
        .map_err(|e| VaultError::sqlite(path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use std::sync::Mutex;

    use cairn_crypto::{KeyFileCost, SecretString, TeamKey};
    use cairn_model::{Edit, Kind};

    use super::*;
    use crate::{Home, NewVault, Role};

    /// The case whose merges ahead are counted, and how many there were.
    static WATCHED: Mutex<Option<(Uuid, usize)>> = Mutex::new(None);

    pub(super) fn merged_ahead(id: &Uuid) {
        if let Ok(mut watched) = WATCHED.lock() {
            if let Some((_, count)) = watched.as_mut().filter(|(c, _)| c == id) {
                *count += 1;
            }
        }
    }

    fn vault(dir: &std::path::Path, name: &str) -> Vault {
        let mut v = Home::new(dir.join(name))
            .create(
                &SecretString::from("pass".to_owned()),
                KeyFileCost::LogN(4),
                NewVault {
                    team: "T03".into(),
                    name: None,
                    role: Role::Field,
                },
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
        v.add_keys([&TeamKey::from_bytes("T03", 1, [3; 32])])
            .unwrap();
        v
    }

    /// The budget bounds what a case costs in memory: a batch it refuses is never merged,
    /// ahead or in the transaction; a batch that fits is merged ahead.
    #[test]
    fn a_batch_over_budget_is_never_merged_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, mut b) = (vault(dir.path(), "a"), vault(dir.path(), "b"));
        let now = time::OffsetDateTime::now_utc();
        let roster =
            cairn_testkit::roster(&cairn_crypto::DeviceKeys::generate(), &[(a.keys(), "T03")]);
        let created = a.create_case(Kind::Killed, "KHR", &[], now).unwrap();
        let id = a.case(&created.reference).unwrap().id();
        let sent = |v: &Vault, after: u64| -> Vec<Vec<u8>> {
            v.outbox(after, 100)
                .unwrap()
                .into_iter()
                .map(|(_, b)| b)
                .collect()
        };
        b.apply_pulled(&sent(&a, 0), 1, &roster).unwrap();
        let note = |a: &mut Vault| {
            let edit = [Edit::Note { text: "n".into() }];
            a.edit_case(&created.reference, &edit, now).unwrap();
        };

        *WATCHED.lock().unwrap() = Some((id, 0));
        note(&mut a);
        let fits = b.apply_pulled(&sent(&a, 1), 2, &roster).unwrap();
        assert_eq!(fits.applied, 1);
        assert_eq!(WATCHED.lock().unwrap().map(|(_, n)| n), Some(1));

        b.execute_as_owner(
            "UPDATE changes SET ops = ?1 WHERE seq = 1",
            params![MAX_AUTHOR_OPS - 1],
        )
        .unwrap();
        note(&mut a);
        let over = b.apply_pulled(&sent(&a, 2), 3, &roster).unwrap();
        assert_eq!(over.applied, 0);
        assert!(
            over.refused[0].reason.contains("operations"),
            "{:?}",
            over.refused
        );
        assert_eq!(
            WATCHED.lock().unwrap().take().map(|(_, n)| n),
            Some(1),
            "not merged ahead"
        );
    }
}
