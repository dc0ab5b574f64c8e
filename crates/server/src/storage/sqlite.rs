//! SQLite backend: the default, embedded, zero set-up.
//!
//! One writer connection and one reader connection to a WAL-mode file with
//! `synchronous=FULL`, so a batch the server acknowledged survives a crash or power loss.
//! rusqlite is blocking, so every call runs on tokio's blocking pool. SQLite has one writer
//! at a time, so server sequence numbers become visible in order.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_crypto::DeviceId;
use cairn_protocol::{Enrollment, Revocation, Statement};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    device_from_bytes, parse_statement, statement_record, to_i64, to_u64, EnrollOutcome,
    InsertOutcome, NewChange, Storage, StorageError,
};

/// 1: the tables; 2: `device_usage`, the bytes each author has stored (for quotas).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS statements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS used_invites (
    invite_id TEXT PRIMARY KEY,
    device BLOB NOT NULL,
    statement_id INTEGER NOT NULL REFERENCES statements (id)
);
CREATE INDEX IF NOT EXISTS used_invites_device ON used_invites (device);
CREATE TABLE IF NOT EXISTS changes (
    server_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    case_id BLOB NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (author, seq)
);
CREATE TABLE IF NOT EXISTS acks (
    author BLOB PRIMARY KEY,
    acked INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_usage (
    author BLOB PRIMARY KEY,
    bytes INTEGER NOT NULL
);
";

/// Fills `device_usage` from the changes stored before it existed (schema 1).
const BACKFILL_USAGE: &str = "
INSERT OR REPLACE INTO device_usage (author, bytes)
    SELECT author, SUM(length(bytes)) FROM changes GROUP BY author;
";

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
            let mut writer = connect(&path)?;
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(StorageError::Corrupt(format!(
                    "schema version {version}; this cairn-server knows {SCHEMA_VERSION}"
                )));
            }
            tx.execute_batch(SCHEMA)?;
            if version < 2 {
                tx.execute_batch(BACKFILL_USAGE)?;
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

fn holder(conn: &Connection, invite_id: &str) -> Result<Option<DeviceId>, StorageError> {
    let device: Option<Vec<u8>> = conn
        .query_row(
            "SELECT device FROM used_invites WHERE invite_id = ?1",
            [invite_id],
            |r| r.get(0),
        )
        .optional()?;
    device.as_deref().map(device_from_bytes).transpose()
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
    async fn enroll(&self, enrollment: &Enrollment) -> Result<EnrollOutcome, StorageError> {
        let statement = Statement::Enrollment(enrollment.clone());
        let invite_id = enrollment.invite.id().to_owned();
        let device = enrollment.device_id();
        self.run(move |inner| {
            let mut conn = lock(&inner.writer)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(holder) = holder(&tx, &invite_id)? {
                return if holder == device {
                    Ok(EnrollOutcome::Repeated)
                } else {
                    Err(StorageError::InviteUsed)
                };
            }
            let elsewhere: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM used_invites WHERE device = ?1)",
                [&device.0[..]],
                |r| r.get(0),
            )?;
            if elsewhere {
                return Err(StorageError::DeviceAlreadyEnrolled);
            }
            let (kind, digest, json) = statement_record(&statement)?;
            tx.execute(
                "INSERT INTO statements (kind, digest, body) VALUES (?1, ?2, ?3)",
                params![kind, digest, json],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO used_invites (invite_id, device, statement_id) VALUES (?1, ?2, ?3)",
                params![invite_id, &device.0[..], id],
            )?;
            tx.commit()?;
            Ok(EnrollOutcome::Enrolled)
        })
        .await
    }

    async fn invite_holder(&self, invite_id: &str) -> Result<Option<DeviceId>, StorageError> {
        let invite_id = invite_id.to_owned();
        self.run(move |inner| holder(&*lock(&inner.reader)?, &invite_id))
            .await
    }

    async fn revoke(&self, revocation: &Revocation) -> Result<(), StorageError> {
        let (kind, digest, json) = statement_record(&Statement::Revocation(revocation.clone()))?;
        self.run(move |inner| {
            lock(&inner.writer)?.execute(
                "INSERT INTO statements (kind, digest, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (digest) DO NOTHING",
                params![kind, digest, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn statements(&self) -> Result<Vec<Statement>, StorageError> {
        self.run(|inner| {
            let conn = lock(&inner.reader)?;
            let mut stmt = conn.prepare_cached("SELECT body FROM statements ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(parse_statement(&row?)?);
            }
            Ok(out)
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
                    "INSERT INTO changes (author, seq, case_id, bytes) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (author, seq) DO NOTHING",
                )?;
                let mut existing =
                    tx.prepare_cached("SELECT bytes FROM changes WHERE author = ?1 AND seq = ?2")?;
                for c in &changes {
                    let seq = to_i64(c.seq)?;
                    let author = &c.author.0[..];
                    if insert.execute(params![author, seq, &c.case_id[..], &c.bytes])? == 1 {
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
                let total: i64 = tx.query_row(
                    "INSERT INTO device_usage (author, bytes) VALUES (?1, ?2)
                     ON CONFLICT (author) DO UPDATE SET bytes = bytes + excluded.bytes
                     RETURNING bytes",
                    params![author, to_i64(bytes)?],
                    |r| r.get(0),
                )?;
                let total = to_u64(total)?;
                if let Some(quota) = quota {
                    if total > quota {
                        // Dropping the transaction rolls the whole batch back.
                        return Err(StorageError::QuotaFull {
                            used: total - bytes,
                            quota,
                        });
                    }
                }
                advance_ack(&tx, author)?;
            }
            tx.commit()?;
            Ok(outcomes)
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
        allowed_authors: Option<&[DeviceId]>,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        let allowed: Option<Vec<DeviceId>> = allowed_authors.map(<[DeviceId]>::to_vec);
        if allowed.as_ref().is_some_and(Vec::is_empty) || limit == 0 {
            return Ok(Vec::new());
        }
        let after = to_i64(after.min(i64::MAX as u64))?;
        self.run(move |inner| {
            let conn = lock(&inner.reader)?;
            let mut values: Vec<rusqlite::types::Value> =
                vec![after.into(), i64::from(limit).into()];
            let filter = match &allowed {
                None => String::new(),
                Some(authors) => {
                    let marks: Vec<String> =
                        (0..authors.len()).map(|i| format!("?{}", i + 3)).collect();
                    let marks = marks.join(",");
                    values.extend(authors.iter().map(|a| a.0.to_vec().into()));
                    format!("AND author IN ({marks})")
                }
            };
            // length() of a blob reads the record header, not the blob's pages.
            let sql = format!(
                "SELECT server_seq, length(bytes) FROM changes WHERE server_seq > ?1 {filter}
                 ORDER BY server_seq LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
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
}
