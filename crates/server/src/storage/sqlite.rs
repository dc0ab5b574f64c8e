//! SQLite backend: the default, embedded, zero set-up.
//!
//! One writer connection and one reader connection to a WAL-mode file with
//! `synchronous=FULL`, so a batch the server acknowledged survives a crash or power loss.
//! rusqlite is blocking, so every call runs on tokio's blocking pool. SQLite has one writer
//! at a time, so server sequence numbers become visible in order.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_crypto::DeviceId;
use cairn_protocol::{Receipt, Statement};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    check_numbering, checkpoint_page_len, device_from_bytes, judge_checkpoint_part, judge_chunk,
    judge_receipt, parse_receipt, parse_statement, receipt_rows, statement_json, to_i64, to_u64,
    BlobInfo, BlobKey, CheckpointOutcome, CheckpointPlace, ChunkOutcome, InsertOutcome, Joined,
    NewChange, NewCheckpointPart, NewChunk, ReceiptOutcome, Storage, StorageError, StoredBlob,
    OLDEST_SCHEMA, SCHEMA_VERSION,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS statements (
    counter INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS joins (
    device BLOB PRIMARY KEY,
    counter INTEGER NOT NULL REFERENCES statements (counter),
    joined_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS team_receipts (
    team TEXT PRIMARY KEY,
    counter INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    server_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    case_id BLOB NOT NULL,
    team TEXT NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (author, seq)
);
CREATE INDEX IF NOT EXISTS changes_team ON changes (team, server_seq);
CREATE INDEX IF NOT EXISTS changes_case ON changes (case_id, server_seq);
CREATE TABLE IF NOT EXISTS acks (
    author BLOB PRIMARY KEY,
    acked INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_usage (
    author BLOB PRIMARY KEY,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    author BLOB NOT NULL,
    blob BLOB NOT NULL,
    case_id BLOB NOT NULL,
    team TEXT NOT NULL,
    count INTEGER NOT NULL,
    size INTEGER NOT NULL,
    held INTEGER NOT NULL,
    PRIMARY KEY (author, blob)
);
CREATE TABLE IF NOT EXISTS blob_chunks (
    author BLOB NOT NULL,
    blob BLOB NOT NULL,
    idx INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (author, blob, idx),
    FOREIGN KEY (author, blob) REFERENCES blobs (author, blob)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    team TEXT NOT NULL,
    generation INTEGER NOT NULL,
    part INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    full INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (team, generation, part)
);
";

/// The team's newest full generation whose parts are all stored.
const NEWEST_WHOLE_FULL: &str = "
SELECT MAX(generation) FROM (
    SELECT generation FROM checkpoints WHERE team = ?1 AND full = 1
    GROUP BY generation HAVING COUNT(*) = MAX(parts)
)";

/// Schema 4 keyed blobs by id alone, so a device that learnt another's blob id (from the
/// case that lists it) could store its own chunks under it first. Schema 5 keys them by
/// author and id; this carries schema 4's blobs over.
const BLOBS_FROM_SCHEMA_4: &str = "
ALTER TABLE blob_chunks RENAME TO blob_chunks_v4;
ALTER TABLE blobs RENAME TO blobs_v4;
";
const BLOBS_FROM_SCHEMA_4_COPY: &str = "
INSERT INTO blobs (author, blob, case_id, team, count, size, held)
    SELECT author, blob, case_id, team, count, size, held FROM blobs_v4;
INSERT INTO blob_chunks (author, blob, idx, bytes)
    SELECT b.author, c.blob, c.idx, c.bytes FROM blob_chunks_v4 c JOIN blobs_v4 b ON b.blob = c.blob;
DROP TABLE blob_chunks_v4;
DROP TABLE blobs_v4;
";

/// Schemas 3 to 5 kept one receipt naming every team's counts, which every member could
/// fetch; schema 6 keeps one per team. The old one is dropped: the office hands the server
/// its teams' receipts at its next sync (the server then reports no receipt, so it does).
const RECEIPTS_FROM_SCHEMA_5: &str = "DROP TABLE IF EXISTS receipt;";

/// The SQLite backend. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

fn lock(m: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>, StorageError> {
    m.lock().map_err(|_| {
        StorageError::Backend("a database task failed earlier; restart the server".into())
    })
}

fn connect(path: &Path) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)
        .map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStorage {
    /// Opens or creates the database file and its tables.
    pub async fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            crate::files::prepare_sqlite(&path).map_err(|e| {
                StorageError::Backend(format!("cannot make {} owner-only: {e}", path.display()))
            })?;
            let mut writer = connect(&path)?;
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(StorageError::Corrupt(format!(
                    "schema version {version}; this cairn-server knows {SCHEMA_VERSION}"
                )));
            }
            if (1..OLDEST_SCHEMA).contains(&version) {
                return Err(StorageError::OldSchema);
            }
            if version == 4 {
                tx.execute_batch(BLOBS_FROM_SCHEMA_4)?;
            }
            tx.execute_batch(SCHEMA)?;
            if version == 4 {
                tx.execute_batch(BLOBS_FROM_SCHEMA_4_COPY)?;
            }
            if (OLDEST_SCHEMA..6).contains(&version) {
                tx.execute_batch(RECEIPTS_FROM_SCHEMA_5)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            let reader = connect(&path)?;
            Ok(SqliteStorage {
                inner: Arc::new(Inner {
                    writer: Mutex::new(writer),
                    reader: Mutex::new(reader),
                }),
            })
        })
        .await
        .map_err(|e| StorageError::Backend(format!("database task failed: {e}")))?
    }

    /// The file's size and its WAL's.
    pub async fn size(&self) -> Result<u64, StorageError> {
        self.run(|inner| {
            let conn = lock(&inner.reader)?;
            let Some(path) = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from) else {
                return Ok(0);
            };
            let mut wal = path.clone().into_os_string();
            wal.push("-wal");
            let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
            Ok(len(&path) + len(Path::new(&wal)))
        })
        .await
    }

    /// Answers a trivial query that reads the file (readiness).
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|inner| {
            let conn = lock(&inner.reader)?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StorageError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StorageError::Backend(format!("database task failed: {e}")))?
    }
}

/// Adds `bytes` to `author`'s usage; refuses (the caller's transaction then rolls back)
/// when that takes it over `quota`.
fn add_usage(
    conn: &Connection,
    author: &[u8],
    bytes: u64,
    quota: Option<u64>,
) -> Result<(), StorageError> {
    let total: i64 = conn.query_row(
        "INSERT INTO device_usage (author, bytes) VALUES (?1, ?2)
         ON CONFLICT (author) DO UPDATE SET bytes = bytes + excluded.bytes
         RETURNING bytes",
        params![author, to_i64(bytes)?],
        |r| r.get(0),
    )?;
    let total = to_u64(total)?;
    match quota {
        Some(quota) if total > quota => Err(StorageError::QuotaFull {
            used: total - bytes,
            quota,
        }),
        _ => Ok(()),
    }
}

fn read_blob(
    conn: &Connection,
    author: &DeviceId,
    blob: &[u8],
) -> Result<Option<StoredBlob>, StorageError> {
    let row = conn
        .query_row(
            "SELECT author, case_id, team, count, size, held FROM blobs
             WHERE author = ?1 AND blob = ?2",
            params![&author.0[..], blob],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?;
    row.map(|(author, case_id, team, count, size, held)| {
        let narrow = |v: i64| {
            u32::try_from(v)
                .map_err(|_| StorageError::Corrupt("a stored chunk count is out of range".into()))
        };
        Ok(StoredBlob {
            info: BlobInfo {
                author: device_from_bytes(&author)?,
                case_id: case_id.try_into().map_err(|_| {
                    StorageError::Corrupt("a stored case id is not 16 bytes".into())
                })?,
                team,
                count: narrow(count)?,
                size: to_u64(size)?,
            },
            held: narrow(held)?,
        })
    })
    .transpose()
}

fn newest_whole_full(conn: &Connection, team: &str) -> Result<Option<i64>, StorageError> {
    Ok(conn
        .prepare_cached(NEWEST_WHOLE_FULL)?
        .query_row([team], |r| r.get(0))?)
}

/// Stores one checkpoint part in `tx` if [`judge_checkpoint_part`] says so (its answer is
/// this one's), then deletes its team's older generations if it made a full one whole.
fn store_checkpoint_part(
    tx: &Connection,
    p: &NewCheckpointPart,
) -> Result<Result<bool, CheckpointOutcome>, StorageError> {
    let generation = to_i64(p.generation)?;
    let stored: Option<Vec<u8>> = tx
        .prepare_cached(
            "SELECT bytes FROM checkpoints WHERE team = ?1 AND generation = ?2 AND part = ?3",
        )?
        .query_row(params![p.team, generation, p.part], |r| r.get(0))
        .optional()?;
    let shape: Option<(u32, bool)> = tx
        .prepare_cached(
            "SELECT parts, full FROM checkpoints WHERE team = ?1 AND generation = ?2 LIMIT 1",
        )?
        .query_row(params![p.team, generation], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let held = CheckpointPlace {
        newest_full: newest_whole_full(tx, &p.team)?.map(to_u64).transpose()?,
        shape,
        stored: stored.as_deref(),
    };
    match judge_checkpoint_part(p, &held) {
        Ok(true) => {}
        other => return Ok(other),
    }
    tx.prepare_cached(
        "INSERT INTO checkpoints (team, generation, part, parts, full, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        p.team, generation, p.part, p.parts, p.full, p.bytes
    ])?;
    if p.full {
        let held: u32 = tx
            .prepare_cached("SELECT COUNT(*) FROM checkpoints WHERE team = ?1 AND generation = ?2")?
            .query_row(params![p.team, generation], |r| r.get(0))?;
        if held == p.parts {
            tx.prepare_cached("DELETE FROM checkpoints WHERE team = ?1 AND generation < ?2")?
                .execute(params![p.team, generation])?;
        }
    }
    Ok(Ok(true))
}

/// Advances `acks` for `author` past every stored change that follows it without a gap.
fn advance_ack(conn: &Connection, author: &[u8]) -> Result<(), StorageError> {
    let acked: i64 = conn
        .query_row("SELECT acked FROM acks WHERE author = ?1", [author], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    let next_exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM changes WHERE author = ?1 AND seq = ?2)",
        params![author, acked + 1],
        |r| r.get(0),
    )?;
    if !next_exists {
        return Ok(());
    }
    // The end of the run that starts at acked + 1: the first stored seq above `acked`
    // whose successor is missing.
    let end: i64 = conn.query_row(
        "SELECT MIN(c.seq) FROM changes c WHERE c.author = ?1 AND c.seq > ?2
           AND NOT EXISTS (SELECT 1 FROM changes d WHERE d.author = ?1 AND d.seq = c.seq + 1)",
        params![author, acked],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO acks (author, acked) VALUES (?1, ?2)
         ON CONFLICT (author) DO UPDATE SET acked = excluded.acked",
        params![author, end],
    )?;
    Ok(())
}

impl Storage for SqliteStorage {
    async fn statements(&self) -> Result<Vec<Statement>, StorageError> {
        self.run(|inner| {
            let conn = lock(&inner.reader)?;
            let mut stmt = conn.prepare_cached("SELECT body FROM statements ORDER BY counter")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(parse_statement(&row?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn append_statements(
        &self,
        after: u64,
        statements: &[Statement],
        joined: Option<Joined>,
    ) -> Result<bool, StorageError> {
        check_numbering(after, statements)?;
        let rows = statements
            .iter()
            .map(|s| Ok((to_i64(s.counter)?, statement_json(s)?)))
            .collect::<Result<Vec<(i64, String)>, StorageError>>()?;
        let after = to_i64(after)?;
        let joined = joined
            .map(|j| Ok::<_, StorageError>((j.device, to_i64(j.counter)?, to_i64(j.at)?)))
            .transpose()?;
        self.run(move |inner| {
            let mut conn = lock(&inner.writer)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !rows.is_empty() {
                let head: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(counter), 0) FROM statements",
                    [],
                    |r| r.get(0),
                )?;
                if head != after {
                    return Ok(false);
                }
                let mut insert =
                    tx.prepare_cached("INSERT INTO statements (counter, body) VALUES (?1, ?2)")?;
                for (counter, body) in &rows {
                    insert.execute(params![counter, body])?;
                }
            }
            if let Some((device, counter, at)) = joined {
                tx.execute(
                    "INSERT INTO joins (device, counter, joined_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (device) DO NOTHING",
                    params![&device.0[..], counter, at],
                )?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn joined(&self, device: &DeviceId) -> Result<Option<u64>, StorageError> {
        let device = *device;
        self.run(move |inner| {
            let counter: Option<i64> = lock(&inner.reader)?
                .query_row(
                    "SELECT counter FROM joins WHERE device = ?1",
                    [&device.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            counter.map(to_u64).transpose()
        })
        .await
    }

    async fn store_receipts(&self, receipts: &[Receipt]) -> Result<ReceiptOutcome, StorageError> {
        let rows = receipt_rows(receipts)?;
        self.run(move |inner| {
            let mut conn = lock(&inner.writer)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut outcome = ReceiptOutcome::Same;
            for row in &rows {
                let held: Option<(i64, String)> = tx
                    .query_row(
                        "SELECT counter, body FROM team_receipts WHERE team = ?1",
                        [&row.team],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match judge_receipt(held.as_ref().map(|(c, b)| (*c, b.as_str())), row)? {
                    Some(ReceiptOutcome::Same) => continue,
                    // Dropping the transaction rolls back what this set stored so far.
                    Some(stale) => return Ok(stale),
                    None => {}
                }
                tx.execute(
                    "INSERT INTO team_receipts (team, counter, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (team) DO UPDATE SET counter = excluded.counter, body = excluded.body",
                    params![row.team, row.counter, row.body],
                )?;
                outcome = ReceiptOutcome::Stored;
            }
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn receipt(&self, team: &str) -> Result<Option<Receipt>, StorageError> {
        let team = team.to_owned();
        self.run(move |inner| {
            let body: Option<String> = lock(&inner.reader)?
                .query_row(
                    "SELECT body FROM team_receipts WHERE team = ?1",
                    [&team],
                    |r| r.get(0),
                )
                .optional()?;
            body.as_deref().map(parse_receipt).transpose()
        })
        .await
    }

    async fn receipt_counter(&self, team: Option<&str>) -> Result<Option<u64>, StorageError> {
        let team = team.map(str::to_owned);
        self.run(move |inner| {
            let counter: Option<i64> = lock(&inner.reader)?.query_row(
                "SELECT MAX(counter) FROM team_receipts WHERE ?1 IS NULL OR team = ?1",
                [&team],
                |r| r.get(0),
            )?;
            counter.map(to_u64).transpose()
        })
        .await
    }

    async fn insert_changes_within(
        &self,
        changes: Vec<NewChange>,
        quota: Option<u64>,
    ) -> Result<Vec<InsertOutcome>, StorageError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |inner| {
            let mut conn = lock(&inner.writer)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut outcomes = Vec::with_capacity(changes.len());
            // Bytes newly stored per author, in first-seen order.
            let mut added: Vec<(&[u8], u64)> = Vec::new();
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO changes (author, seq, case_id, team, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (author, seq) DO NOTHING",
                )?;
                let mut existing =
                    tx.prepare_cached("SELECT bytes FROM changes WHERE author = ?1 AND seq = ?2")?;
                for c in &changes {
                    let seq = to_i64(c.seq)?;
                    let author = &c.author.0[..];
                    if insert.execute(params![author, seq, &c.case_id[..], &c.team, &c.bytes])? == 1
                    {
                        outcomes.push(InsertOutcome::Stored);
                        let len = c.bytes.len() as u64;
                        match added.iter_mut().find(|(a, _)| *a == author) {
                            Some((_, n)) => *n += len,
                            None => added.push((author, len)),
                        }
                        continue;
                    }
                    let stored: Vec<u8> = existing.query_row(params![author, seq], |r| r.get(0))?;
                    outcomes.push(if stored == c.bytes {
                        InsertOutcome::Duplicate
                    } else {
                        InsertOutcome::Conflict
                    });
                }
            }
            for (author, bytes) in added {
                // Over the quota, dropping the transaction rolls the whole batch back.
                add_usage(&tx, author, bytes, quota)?;
                advance_ack(&tx, author)?;
            }
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    async fn insert_chunks(
        &self,
        chunks: Vec<NewChunk>,
        quota: Option<u64>,
    ) -> Result<Vec<ChunkOutcome>, StorageError> {
        if chunks.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |inner| {
            let mut conn = lock(&inner.writer)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut outcomes = Vec::with_capacity(chunks.len());
            let mut added: Vec<(DeviceId, u64)> = Vec::new();
            // The blob read last, as this transaction has changed it.
            let mut current: Option<(BlobKey, Option<StoredBlob>)> = None;
            for c in &chunks {
                let key = (c.info.author, c.blob);
                let blob = match &mut current {
                    Some((k, blob)) if *k == key => blob,
                    _ => &mut current.insert((key, read_blob(&tx, &key.0, &c.blob)?)).1,
                };
                let was_new = blob.is_none();
                let outcome = judge_chunk(blob, c, || {
                    Ok(tx
                        .query_row(
                            "SELECT bytes FROM blob_chunks
                             WHERE author = ?1 AND blob = ?2 AND idx = ?3",
                            params![&c.info.author.0[..], &c.blob[..], c.index],
                            |r| r.get(0),
                        )
                        .optional()?)
                })?;
                if outcome == ChunkOutcome::Stored {
                    let i = &c.info;
                    if was_new {
                        tx.execute(
                            "INSERT INTO blobs (author, blob, case_id, team, count, size, held)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                            params![
                                &i.author.0[..],
                                &c.blob[..],
                                &i.case_id[..],
                                &i.team,
                                i.count,
                                to_i64(i.size)?
                            ],
                        )?;
                    }
                    tx.execute(
                        "INSERT INTO blob_chunks (author, blob, idx, bytes) VALUES (?1, ?2, ?3, ?4)",
                        params![&i.author.0[..], &c.blob[..], c.index, &c.bytes],
                    )?;
                    tx.execute(
                        "UPDATE blobs SET held = ?3 WHERE author = ?1 AND blob = ?2",
                        params![&i.author.0[..], &c.blob[..], c.index + 1],
                    )?;
                    let len = c.bytes.len() as u64;
                    match added.iter_mut().find(|(a, _)| *a == i.author) {
                        Some((_, n)) => *n += len,
                        None => added.push((i.author, len)),
                    }
                }
                outcomes.push(outcome);
            }
            for (author, bytes) in added {
                add_usage(&tx, &author.0, bytes, quota)?;
            }
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    async fn blob(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
    ) -> Result<Option<StoredBlob>, StorageError> {
        let (author, blob) = (*author, *blob);
        self.run(move |inner| read_blob(&*lock(&inner.reader)?, &author, &blob))
            .await
    }

    async fn load_chunks(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
        from: u32,
        max_count: u32,
        max_bytes: usize,
    ) -> Result<Vec<(u32, Vec<u8>)>, StorageError> {
        let (author, blob) = (*author, *blob);
        self.run(move |inner| {
            let conn = lock(&inner.reader)?;
            let mut stmt = conn.prepare_cached(
                "SELECT idx, bytes FROM blob_chunks WHERE author = ?1 AND blob = ?2 AND idx >= ?3
                 ORDER BY idx LIMIT ?4",
            )?;
            let mut rows = stmt.query(params![&author.0[..], &blob[..], from, max_count])?;
            let mut out = Vec::new();
            let mut used = 0usize;
            while let Some(row) = rows.next()? {
                let bytes: Vec<u8> = row.get(1)?;
                if !out.is_empty() && used + bytes.len() > max_bytes {
                    break;
                }
                used += bytes.len();
                out.push((row.get::<_, u32>(0)?, bytes));
            }
            Ok(out)
        })
        .await
    }

    async fn stored_bytes(&self, author: &DeviceId) -> Result<u64, StorageError> {
        let author = *author;
        self.run(move |inner| {
            let bytes: Option<i64> = lock(&inner.reader)?
                .query_row(
                    "SELECT bytes FROM device_usage WHERE author = ?1",
                    [&author.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            to_u64(bytes.unwrap_or(0))
        })
        .await
    }

    async fn acked(&self, author: &DeviceId) -> Result<u64, StorageError> {
        let author = *author;
        self.run(move |inner| {
            let acked: Option<i64> = lock(&inner.reader)?
                .query_row(
                    "SELECT acked FROM acks WHERE author = ?1",
                    [&author.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            to_u64(acked.unwrap_or(0))
        })
        .await
    }

    async fn pull_lengths(
        &self,
        after: u64,
        team: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let team = team.map(str::to_owned);
        let after = to_i64(after.min(i64::MAX as u64))?;
        self.run(move |inner| {
            let conn = lock(&inner.reader)?;
            let mut out = Vec::new();
            // length() of a blob reads the record header, not the blob's pages.
            let mut push = |row: Result<(i64, i64), rusqlite::Error>| -> Result<(), StorageError> {
                let (seq, len) = row?;
                out.push((to_u64(seq)?, to_u64(len)?));
                Ok(())
            };
            let pair = |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?));
            match &team {
                None => {
                    let mut stmt = conn.prepare_cached(
                        "SELECT server_seq, length(bytes) FROM changes WHERE server_seq > ?1
                         ORDER BY server_seq LIMIT ?2",
                    )?;
                    for row in stmt.query_map(params![after, i64::from(limit)], pair)? {
                        push(row)?;
                    }
                }
                Some(team) => {
                    let mut stmt = conn.prepare_cached(
                        "SELECT server_seq, length(bytes) FROM changes
                         WHERE team = ?3 AND server_seq > ?1
                         ORDER BY server_seq LIMIT ?2",
                    )?;
                    for row in stmt.query_map(params![after, i64::from(limit), team], pair)? {
                        push(row)?;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn case_lengths(
        &self,
        case_id: [u8; 16],
        after: u64,
        team: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let team = team.map(str::to_owned);
        let after = to_i64(after.min(i64::MAX as u64))?;
        self.run(move |inner| {
            let conn = lock(&inner.reader)?;
            // `?3 IS NULL`: every team's changes, for the office and its staff.
            let mut stmt = conn.prepare_cached(
                "SELECT server_seq, length(bytes) FROM changes
                 WHERE case_id = ?1 AND server_seq > ?2 AND (?3 IS NULL OR team = ?3)
                 ORDER BY server_seq LIMIT ?4",
            )?;
            let rows = stmt
                .query_map(params![&case_id[..], after, team, i64::from(limit)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, len) = row?;
                out.push((to_u64(seq)?, to_u64(len)?));
            }
            Ok(out)
        })
        .await
    }

    async fn load_changes(&self, server_seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let seqs = server_seqs
            .iter()
            .map(|s| to_i64(*s))
            .collect::<Result<Vec<i64>, _>>()?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |inner| {
            let conn = lock(&inner.reader)?;
            let mut out = Vec::with_capacity(seqs.len());
            // Few enough numbers per statement for any SQLite's variable limit.
            for chunk in seqs.chunks(500) {
                let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
                let sql = format!(
                    "SELECT server_seq, bytes FROM changes WHERE server_seq IN ({})
                     ORDER BY server_seq",
                    marks.join(",")
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(chunk), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?;
                for row in rows {
                    let (seq, bytes) = row?;
                    out.push((to_u64(seq)?, bytes));
                }
            }
            out.sort_by_key(|(seq, _)| *seq);
            Ok(out)
        })
        .await
    }

    async fn store_checkpoint_parts(
        &self,
        parts: Vec<NewCheckpointPart>,
    ) -> Result<CheckpointOutcome, StorageError> {
        self.run(move |inner| {
            let mut conn = lock(&inner.writer)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (mut new_parts, mut new_bytes) = (0, 0);
            for p in &parts {
                match store_checkpoint_part(&tx, p)? {
                    Ok(true) => {
                        new_parts += 1;
                        new_bytes += p.bytes.len();
                    }
                    Ok(false) => {}
                    // Dropping the transaction rolls back what this batch stored so far.
                    Err(refused) => return Ok(refused),
                }
            }
            tx.commit()?;
            Ok(CheckpointOutcome::Stored {
                parts: new_parts,
                bytes: new_bytes,
            })
        })
        .await
    }

    async fn checkpoint_parts(
        &self,
        team: &str,
        after: Option<(u64, u32)>,
        max_bytes: usize,
    ) -> Result<(Vec<Vec<u8>>, bool), StorageError> {
        let team = team.to_owned();
        let after = after
            .map(|(g, p)| Ok::<_, StorageError>((to_i64(g.min(i64::MAX as u64))?, i64::from(p))))
            .transpose()?;
        self.run(move |inner| {
            let mut conn = lock(&inner.reader)?;
            // One snapshot: a generation made whole meanwhile deletes none of the parts chosen.
            let tx = conn.transaction()?;
            let (generation, part) = match after {
                Some(after) => after,
                None => match newest_whole_full(&tx, &team)? {
                    Some(g) => (g, -1),
                    None => return Ok((Vec::new(), false)),
                },
            };
            let mut places = Vec::new();
            let mut lengths = Vec::new();
            {
                // length() of a blob reads the record header, not the blob's pages.
                let mut stmt = tx.prepare_cached(
                    "SELECT generation, part, length(bytes) FROM checkpoints
                     WHERE team = ?1 AND (generation > ?2 OR (generation = ?2 AND part > ?3))
                     ORDER BY generation, part",
                )?;
                let mut rows = stmt.query(params![team, generation, part])?;
                while let Some(row) = rows.next()? {
                    places.push((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?));
                    lengths.push(to_u64(row.get(2)?)?);
                }
            }
            let (keep, more) = checkpoint_page_len(&lengths, max_bytes);
            let Some(&(last_generation, last_part)) = places[..keep].last() else {
                return Ok((Vec::new(), false));
            };
            let mut stmt = tx.prepare_cached(
                "SELECT bytes FROM checkpoints
                 WHERE team = ?1 AND (generation > ?2 OR (generation = ?2 AND part > ?3))
                   AND (generation < ?4 OR (generation = ?4 AND part <= ?5))
                 ORDER BY generation, part",
            )?;
            let rows = stmt.query_map(
                params![team, generation, part, last_generation, last_part],
                |r| r.get::<_, Vec<u8>>(0),
            )?;
            let parts = rows.collect::<Result<Vec<_>, _>>()?;
            Ok((parts, more))
        })
        .await
    }
}
