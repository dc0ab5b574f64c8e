//! Office checkpoints in the vault (the format is `cairn_protocol::checkpoint`).
//!
//! The office seals, at each of its syncs, the compacted documents of the cases changed since
//! its last checkpoint, team by team, with the changes each holds; it keeps the sealed parts
//! until the server has them. A device starting cold loads its team's parts: each document as
//! its case, each change it holds recorded as received (`checkpointed`), so that delivery
//! checks, budgets and duplicates count it as any pulled change.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cairn_crypto::{DeviceId, SealedChange, SealedKind};
use cairn_model::CaseDoc;
use cairn_protocol::checkpoint::{
    Covered, Entry, Judged, Loaded, Part, PartBody, Place, PART_BYTES,
};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cases::{case_row_saved, open_snapshot, snapshot_of, CaseRow};
use crate::transactions::begin;
use crate::{store, Vault, VaultError};

pub(crate) const SCHEMA: &str = "
-- Changes a case holds because an office checkpoint brought its document (never their bytes):
-- received, as far as delivery checks, budgets and duplicates go.
CREATE TABLE IF NOT EXISTS checkpointed (
    author  BLOB    NOT NULL,
    seq     INTEGER NOT NULL,
    case_id BLOB    NOT NULL,
    bytes   INTEGER NOT NULL,
    ops     INTEGER NOT NULL,
    PRIMARY KEY (author, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS checkpointed_by_case ON checkpointed (case_id);
-- Cases whose first changes came in a checkpoint: the heads of its newest document, from
-- which the log replays (`cairn check`, a revocation's cut).
CREATE TABLE IF NOT EXISTS bases (
    case_id BLOB PRIMARY KEY,
    heads   BLOB NOT NULL
) STRICT;
-- At the office: cases stored since its last checkpoint (kept by triggers once it publishes).
CREATE TABLE IF NOT EXISTS unpublished (
    case_id BLOB PRIMARY KEY
) STRICT;
";

/// Kept by SQLite itself, so that no write of a case can forget it: created with the office's
/// first checkpoint, which holds every case. (No `OR IGNORE`: inside a trigger the outer
/// statement's conflict rule wins, and a case's upsert has none that ignores.)
const UNPUBLISHED_TRIGGERS: &str = "
CREATE TRIGGER IF NOT EXISTS cases_unpublished_insert AFTER INSERT ON cases
BEGIN INSERT INTO unpublished (case_id) SELECT NEW.case_id
      WHERE NOT EXISTS (SELECT 1 FROM unpublished WHERE case_id = NEW.case_id); END;
CREATE TRIGGER IF NOT EXISTS cases_unpublished_update AFTER UPDATE ON cases
BEGIN INSERT INTO unpublished (case_id) SELECT NEW.case_id
      WHERE NOT EXISTS (SELECT 1 FROM unpublished WHERE case_id = NEW.case_id); END;
";

const PUBLISHED_KEY: &str = "checkpoints published";
const LOADED_KEY: &str = "checkpoints loaded";

/// What the office published: its generations, team by team, and the parts not yet posted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Published {
    generation: u64,
    /// The highest row of the log at the last generation: office records after it are new.
    mark: i64,
    /// The highest row of `refused` at the last generation.
    #[serde(default)]
    refused_mark: i64,
    teams: BTreeMap<String, TeamPublished>,
    /// Sealed parts of the newest generation the server has not confirmed.
    pending: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct TeamPublished {
    /// The team's newest generation.
    last: u64,
    /// Bytes of its newest full generation, and of the generations after it: once these
    /// outweigh that, the next one is full again (a cold device never fetches more than about
    /// twice what one full generation holds).
    full_bytes: u64,
    since_full: u64,
    /// A digest of the team's changes still waiting when it was last published.
    #[serde(default)]
    waiting: Vec<u8>,
}

/// What a device loaded of one team's checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamLoaded {
    /// The last part loaded.
    pub loaded: Loaded,
    /// The cursor of the last generation loaded whole (0 before one is).
    pub cursor: u64,
    /// The teams that generation has parts for.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// A generation the office sealed.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    /// Its number.
    pub generation: u64,
    /// Its sealed parts.
    pub parts: Vec<Vec<u8>>,
    /// Cases it holds.
    pub cases: usize,
}

/// What loading one part did.
#[derive(Clone, Debug, Default)]
pub struct Loading {
    /// Cases stored from its documents that this device did not hold.
    pub cases: usize,
    /// Changes those documents hold.
    pub changes: usize,
}

impl Vault {
    /// At the office: seals the next checkpoint generation, one or more parts per team with
    /// anything new since the last (every case of a team the first time, and again whenever
    /// the generations since its last full one outweigh it), and keeps its parts until
    /// [`Vault::checkpoint_posted`]. `cursor` is the server cursor up to which this office has
    /// pulled everything. `None` when nothing changed.
    pub fn make_checkpoint(
        &mut self,
        cursor: u64,
        now: time::OffsetDateTime,
    ) -> Result<Option<Generation>, VaultError> {
        if self.settings().role != crate::Role::Office {
            return Err(VaultError::OfficeOnly("makes checkpoints"));
        }
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let me = self.keys.id();
        let office = self.office_devices()?;
        let Vault {
            conn,
            cipher,
            keyring,
            keys,
            ..
        } = self;
        let tx = begin(conn, &path)?;
        let mut published: Published =
            store::read_meta(&tx, cipher, PUBLISHED_KEY, &path)?.unwrap_or_default();
        if !published.pending.is_empty() {
            // Posted first, then a new one: the server takes generations in order.
            return Ok(None);
        }
        let unpublished: BTreeSet<Uuid> = ids(&tx, "SELECT case_id FROM unpublished", &path)?;
        let mark: i64 = tx
            .query_row("SELECT COALESCE(MAX(rowid), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        // No case stored and nothing logged since the last: a sync with nothing to do stays
        // a look at two indexes.
        if published.generation > 0 && unpublished.is_empty() && mark == published.mark {
            return Ok(None);
        }
        let waiting: BTreeSet<Uuid> = ids(&tx, "SELECT case_id FROM waiting", &path)?;
        let refused_mark: i64 = tx
            .query_row("SELECT COALESCE(MAX(rowid), 0) FROM refused", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        // Every case by team, named as its key is (a reference writes it in capitals); a
        // case of a team never published, or due a full generation, goes in whatever changed.
        let key_team = |team: &str| {
            keyring
                .iter()
                .find(|k| k.team().eq_ignore_ascii_case(team))
                .map_or_else(|| team.to_owned(), |k| k.team().to_owned())
        };
        let mut teams: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
        crate::cases::each_summary(&tx, cipher, &path, |s| {
            teams.entry(key_team(&s.team)).or_default().push(s.id);
            Ok::<(), VaultError>(())
        })?;
        // Cases still waiting for a change they depend on travel as sealed changes, in every
        // generation while they wait; so do the office's records (editions).
        let mut logs: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for id in &waiting {
            for bytes in stored_log(&tx, cipher, id, &path)? {
                let team = SealedChange::from_bytes(&bytes)?.team;
                logs.entry(team).or_default().push(bytes);
            }
        }
        let mut all_teams: BTreeSet<String> = teams.keys().cloned().collect();
        all_teams.extend(logs.keys().cloned());
        all_teams.insert(cairn_protocol::OFFICE_TEAM.to_owned());
        let generation = published.generation + 1;
        // What each team would publish, and whether any has news: then every team with
        // anything gets a part of the generation (an empty one when nothing of it changed),
        // so that a device reading several teams knows it holds the generation whole.
        let mut planned = Vec::new();
        let mut any_news = false;
        for team in &all_teams {
            let state = published.teams.get(team);
            let full = state.is_none_or(|t| t.since_full > t.full_bytes);
            let mut log = logs.remove(team).unwrap_or_default();
            // Changes still waiting are news only when they are not those published.
            let waiting_digest = log_digest(&log);
            let mut news = state.is_none_or(|t| t.waiting != waiting_digest);
            if team == cairn_protocol::OFFICE_TEAM {
                let new_records = stored_records(&tx, cipher, published.mark, &path)?;
                news |= !new_records.is_empty();
                log.extend(match full {
                    true => stored_records(&tx, cipher, 0, &path)?,
                    false => new_records,
                });
            }
            let of_team = teams.get(team).map(Vec::as_slice).unwrap_or_default();
            news |= of_team.iter().any(|id| unpublished.contains(id));
            if of_team.is_empty() && log.is_empty() {
                continue;
            }
            if keyring.newest(team).is_none() {
                tracing::warn!(
                    team,
                    "no key of this team here: its cases are left out of the checkpoint"
                );
                continue;
            }
            any_news |= news;
            planned.push((team.clone(), full, log, of_team, waiting_digest));
        }
        if !any_news {
            return Ok(None);
        }
        let listed: Vec<String> = planned.iter().map(|(t, ..)| t.clone()).collect();
        let mut sealed_parts = Vec::new();
        let mut cases = 0;
        for (team, full, log, of_team, waiting_digest) in planned {
            let team = &team;
            let state = published.teams.get(team);
            let chosen: Vec<Uuid> = of_team
                .iter()
                .filter(|id| !waiting.contains(id) && (full || unpublished.contains(id)))
                .copied()
                .collect();
            let Some(key) = keyring.newest(team) else {
                continue;
            };
            let mut bodies = vec![PartBody {
                prev: if full { None } else { state.map(|t| t.last) },
                cursor,
                made_at: now.unix_timestamp(),
                teams: listed.clone(),
                ..PartBody::default()
            }];
            let mut size = 0usize;
            let mut authors: HashMap<DeviceId, u32> = HashMap::new();
            // What the office refused travels too: every replica counts a judged change as
            // received, and a device starting after it would otherwise never judge it.
            let after = if full { 0 } else { published.refused_mark };
            for (author, seq, digest) in refused_after(&tx, after, &path)? {
                let body = &mut bodies[0];
                let index = *authors.entry(author).or_insert_with(|| {
                    body.authors.push(author);
                    body.authors.len() as u32 - 1
                });
                body.refused.push(Judged {
                    author: index,
                    seq,
                    digest,
                });
            }
            for id in &chosen {
                let Some(snapshot) = snapshot_of(&tx, id, &path)? else {
                    continue;
                };
                let doc = open_snapshot(cipher, id, &snapshot, &me.0, &office)?.save_uncompressed();
                if size > 0 && size + doc.len() > PART_BYTES {
                    let next = PartBody {
                        entries: Vec::new(),
                        authors: Vec::new(),
                        ..bodies[0].clone()
                    };
                    bodies.push(next);
                    authors.clear();
                    size = 0;
                }
                let Some(body) = bodies.last_mut() else {
                    continue;
                };
                let mut covers = Vec::new();
                for (author, seq, bytes, ops) in holds(&tx, id, &path)? {
                    let index = *authors.entry(author).or_insert_with(|| {
                        body.authors.push(author);
                        body.authors.len() as u32 - 1
                    });
                    covers.push(Covered {
                        author: index,
                        seq,
                        bytes,
                        ops,
                    });
                }
                size += doc.len();
                body.entries.push(Entry::Doc {
                    case_id: *id.as_bytes(),
                    covers,
                    doc,
                });
                cases += 1;
            }
            if !log.is_empty() {
                if let Some(body) = bodies.last_mut() {
                    body.entries.push(Entry::Log { changes: log });
                }
            }
            let parts = bodies.len() as u32;
            let mut team_bytes = 0u64;
            for (part, body) in bodies.iter().enumerate() {
                let place = Place {
                    part: part as u32,
                    parts,
                    full,
                };
                let sealed = SealedChange::seal(
                    keys,
                    key,
                    SealedKind::Checkpoint,
                    place.to_id(),
                    generation,
                    &body.encode(),
                )?
                .to_bytes();
                team_bytes += sealed.len() as u64;
                sealed_parts.push(sealed);
            }
            let entry = published.teams.entry(team.clone()).or_default();
            entry.last = generation;
            entry.waiting = waiting_digest;
            if full {
                entry.full_bytes = team_bytes;
                entry.since_full = 0;
            } else {
                entry.since_full += team_bytes;
            }
        }
        if sealed_parts.is_empty() {
            return Ok(None);
        }
        tx.execute_batch(UNPUBLISHED_TRIGGERS).map_err(sql)?;
        tx.execute("DELETE FROM unpublished", []).map_err(sql)?;
        published.generation = generation;
        published.mark = mark;
        published.refused_mark = refused_mark;
        published.pending = sealed_parts.clone();
        store::write_meta(&tx, cipher, PUBLISHED_KEY, &published, &path)?;
        crate::head::commit(&tx, &path)?;
        Ok(Some(Generation {
            generation,
            parts: sealed_parts,
            cases,
        }))
    }

    /// At the office: the sealed parts of the newest generation the server has not confirmed.
    pub fn pending_checkpoint(&self) -> Result<Vec<Vec<u8>>, VaultError> {
        let path = self.home.database();
        let published: Option<Published> =
            store::read_meta(&self.conn, &self.cipher, PUBLISHED_KEY, &path)?;
        Ok(published.map(|p| p.pending).unwrap_or_default())
    }

    /// At the office: the server holds the pending parts.
    pub fn checkpoint_posted(&mut self) -> Result<(), VaultError> {
        let path = self.home.database();
        let Vault { conn, cipher, .. } = self;
        let tx = begin(conn, &path)?;
        let mut published: Published =
            store::read_meta(&tx, cipher, PUBLISHED_KEY, &path)?.unwrap_or_default();
        published.pending.clear();
        store::write_meta(&tx, cipher, PUBLISHED_KEY, &published, &path)?;
        crate::head::commit(&tx, &path)
    }

    /// What this device loaded of each team's checkpoints.
    pub fn checkpoints_loaded(&self) -> Result<BTreeMap<String, TeamLoaded>, VaultError> {
        let path = self.home.database();
        Ok(store::read_meta(&self.conn, &self.cipher, LOADED_KEY, &path)?.unwrap_or_default())
    }

    /// Loads the documents of a part the caller opened and found to follow what this device
    /// holds (`cairn_protocol::checkpoint::follows`), in one transaction with the record of it
    /// (the pull starts after it: [`Vault::apply_pulled`] with no change moves the cursor there).
    /// Its sealed changes (a log entry) are the caller's to apply first, as
    /// pulled changes. A document is loaded whole, unjudged: the office judged every change in
    /// it. A case this device holds already takes the document's changes as any received ones.
    pub fn load_checkpoint(&mut self, part: &Part) -> Result<Loading, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let now = time::OffsetDateTime::now_utc();
        let me = self.keys.id();
        let office = self.office_devices()?;
        let team = part.header.team.clone();
        let next = Loaded {
            generation: part.header.generation,
            part: part.header.place.part,
            parts: part.header.place.parts,
        };
        let docs: Vec<(&[u8; 16], &[Covered], &Vec<u8>)> = part
            .body
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Doc {
                    case_id,
                    covers,
                    doc,
                } => Some((case_id, covers.as_slice(), doc)),
                Entry::Log { .. } => None,
            })
            .collect();
        let Vault { conn, cipher, .. } = self;
        let cipher = &*cipher;
        // Loading and summing up each document is the work: on all cores, then stored.
        let rows = crate::cores::on_all_cores(
            &docs,
            |(case_id, _, doc)| -> Result<(CaseDoc, CaseRow), String> {
                let id = Uuid::from_bytes(**case_id);
                let mut loaded = CaseDoc::load(doc, &me.0).map_err(|e| e.to_string())?;
                loaded.set_office(&office);
                if loaded.id() != id {
                    return Err(format!("its document of case {id} is another case's"));
                }
                if !loaded.reference().team.eq_ignore_ascii_case(&team) {
                    return Err(format!(
                        "its document of case {id} is of team {}, not {team}",
                        loaded.reference().team
                    ));
                }
                let row = case_row_saved(cipher, id, &mut loaded, doc, now, &path)
                    .map_err(|e| e.to_string())?;
                Ok((loaded, row))
            },
            || Err("internal error while loading".into()),
        );
        let tx = begin(conn, &path)?;
        let mut loading = Loading::default();
        for ((case_id, covers, _), row) in docs.iter().zip(rows) {
            let (loaded, row) = row.map_err(|reason| {
                VaultError::BadCheckpoint(format!(
                    "office checkpoint {} of team {team}: {reason}",
                    next.generation
                ))
            })?;
            let id = Uuid::from_bytes(**case_id);
            match snapshot_of(&tx, &id, &path)? {
                None => {
                    row.store(&tx, cipher, &path)?;
                    loading.cases += 1;
                }
                // Held here already (this device's own, or from an earlier generation):
                // what the document adds is merged in.
                Some(snapshot) => {
                    let mut doc = open_snapshot(cipher, &id, &snapshot, &me.0, &office)?;
                    doc.merge_trusted(&loaded)?;
                    crate::cases::write_case(&tx, cipher, id, &mut doc, now, &path)?;
                }
            }
            let heads: Vec<u8> = loaded.heads().iter().flat_map(|h| h.0).collect();
            // An upsert, not a replace: SQLite fires no delete trigger for a replaced row,
            // and the head's triggers must see it go.
            tx.prepare_cached(
                "INSERT INTO bases (case_id, heads) VALUES (?1, ?2)
                 ON CONFLICT (case_id) DO UPDATE SET heads = excluded.heads",
            )
            .and_then(|mut stmt| stmt.execute(params![id.as_bytes().as_slice(), heads]))
            .map_err(sql)?;
            for c in covers.iter() {
                let Some(author) = part.body.authors.get(c.author as usize) else {
                    continue;
                };
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO checkpointed (author, seq, case_id, bytes, ops)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        author.0.as_slice(),
                        c.seq as i64,
                        id.as_bytes().as_slice(),
                        c.bytes as i64,
                        c.ops as i64
                    ])
                })
                .map_err(sql)?;
            }
            loading.changes += covers.len();
        }
        for r in &part.body.refused {
            let Some(author) = part.body.authors.get(r.author as usize) else {
                continue;
            };
            tx.prepare_cached(
                "INSERT OR IGNORE INTO refused (author, seq, digest) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    author.0.as_slice(),
                    r.seq as i64,
                    r.digest.as_slice()
                ])
            })
            .map_err(sql)?;
        }
        let mut loaded: BTreeMap<String, TeamLoaded> =
            store::read_meta(&tx, cipher, LOADED_KEY, &path)?.unwrap_or_default();
        let entry = loaded.entry(team).or_insert(TeamLoaded {
            loaded: next,
            cursor: 0,
            teams: Vec::new(),
        });
        entry.loaded = next;
        if next.whole() {
            entry.cursor = part.body.cursor;
            entry.teams.clone_from(&part.body.teams);
        }
        store::write_meta(&tx, cipher, LOADED_KEY, &loaded, &path)?;
        crate::failpoint::hit("checkpoint:stored");
        crate::head::commit(&tx, &path)?;
        Ok(loading)
    }
}

/// The heads of the newest checkpoint document case `id` was loaded from, if it was.
pub(crate) fn base_heads(
    conn: &rusqlite::Connection,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<Option<Vec<cairn_model::ChangeHash>>, VaultError> {
    use rusqlite::OptionalExtension;
    let heads: Option<Vec<u8>> = conn
        .prepare_cached("SELECT heads FROM bases WHERE case_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![id.as_bytes().as_slice()], |r| r.get(0))
                .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    Ok(heads.map(|h| {
        h.chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .map(cairn_model::ChangeHash)
            .collect()
    }))
}

/// Replays case `id`'s log as [`CaseDoc::from_log`] does, from the checkpoint document it
/// was loaded from when it was (`current` holds that document).
pub(crate) fn replay_log(
    conn: &rusqlite::Connection,
    id: &Uuid,
    current: Option<&CaseDoc>,
    raw: &[Vec<u8>],
    actor: &[u8; 32],
    path: &std::path::Path,
) -> Result<CaseDoc, VaultError> {
    match (base_heads(conn, id, path)?, current) {
        (Some(heads), Some(doc)) => Ok(doc.from_log_at(&heads, raw, actor)?),
        _ => Ok(CaseDoc::from_log(raw, actor)?),
    }
}

/// A digest of sealed changes, to tell whether a log entry would publish anything new.
fn log_digest(log: &[Vec<u8>]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for change in log {
        hash.update((change.len() as u64).to_be_bytes());
        hash.update(change);
    }
    hash.finalize().to_vec()
}

/// The cases loaded from a checkpoint.
pub(crate) fn based_cases(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
) -> Result<BTreeSet<Uuid>, VaultError> {
    ids(conn, "SELECT case_id FROM bases", path)
}

/// Whether `author`'s change `seq` came here inside an office checkpoint.
pub(crate) fn is_checkpointed(
    conn: &rusqlite::Connection,
    author: &DeviceId,
    seq: u64,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT 1 FROM checkpointed WHERE author = ?1 AND seq = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![author.0.as_slice(), seq as i64], |_| Ok(()))
                .optional()
        })
        .map(|r| r.is_some())
        .map_err(|e| VaultError::sqlite(path, e))
}

fn ids(
    conn: &rusqlite::Connection,
    query: &str,
    path: &std::path::Path,
) -> Result<BTreeSet<Uuid>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn.prepare(query).map_err(sql)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(sql)?;
    let mut out = BTreeSet::new();
    for row in rows {
        if let Ok(id) = Uuid::from_slice(&row.map_err(sql)?) {
            out.insert(id);
        }
    }
    Ok(out)
}

/// The changes case `id` holds: from the log and from checkpoints, with what budgets count.
fn holds(
    conn: &rusqlite::Connection,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<Vec<(DeviceId, u64, u64, u64)>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT author, seq, length(sealed) - ?2, ops FROM changes WHERE case_id = ?1
             UNION ALL SELECT author, seq, bytes, ops FROM checkpointed WHERE case_id = ?1",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map(
            params![id.as_bytes().as_slice(), crate::at_rest::CHANGE_OVERHEAD],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (author, seq, bytes, ops) = row.map_err(sql)?;
        let Ok(author) = <[u8; 32]>::try_from(author.as_slice()) else {
            continue;
        };
        out.push((
            DeviceId(author),
            seq as u64,
            bytes.max(0) as u64,
            ops.max(0) as u64,
        ));
    }
    Ok(out)
}

/// The changes refused here after row `after` of `refused`.
fn refused_after(
    conn: &rusqlite::Connection,
    after: i64,
    path: &std::path::Path,
) -> Result<Vec<(DeviceId, u64, [u8; 32])>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn
        .prepare("SELECT author, seq, digest FROM refused WHERE rowid > ?1 ORDER BY rowid")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![after], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (author, seq, digest) = row.map_err(sql)?;
        if let (Ok(author), Ok(digest)) = (
            <[u8; 32]>::try_from(author.as_slice()),
            <[u8; 32]>::try_from(digest.as_slice()),
        ) {
            out.push((DeviceId(author), seq as u64, digest));
        }
    }
    Ok(out)
}

/// The sealed changes stored for case `id`, in the order they arrived.
fn stored_log(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<Vec<Vec<u8>>, VaultError> {
    stored_where(
        conn,
        cipher,
        "SELECT author, seq, sealed FROM changes WHERE case_id = ?1 ORDER BY rowid",
        params![id.as_bytes().as_slice()],
        path,
    )
}

/// The office records (editions) stored after row `after` of the log.
fn stored_records(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    after: i64,
    path: &std::path::Path,
) -> Result<Vec<Vec<u8>>, VaultError> {
    // A record names no case: its id has no row in `cases` nor in `waiting`.
    let candidates = stored_where(
        conn,
        cipher,
        "SELECT author, seq, sealed FROM changes WHERE rowid > ?1
           AND case_id NOT IN (SELECT case_id FROM cases)
           AND case_id NOT IN (SELECT case_id FROM waiting) ORDER BY rowid",
        params![after],
        path,
    )?;
    Ok(candidates
        .into_iter()
        .filter(|bytes| {
            SealedChange::from_bytes(bytes).is_ok_and(|s| s.kind == SealedKind::OfficeRecord)
        })
        .collect())
}

fn stored_where(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    query: &str,
    args: impl rusqlite::Params,
    path: &std::path::Path,
) -> Result<Vec<Vec<u8>>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn.prepare(query).map_err(sql)?;
    let rows = stmt
        .query_map(args, |r| {
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
        out.push(crate::at_rest::open_stored(cipher, &author, seq, &stored)?.0);
    }
    Ok(out)
}
