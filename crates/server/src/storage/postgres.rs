//! PostgreSQL backend, for when one machine's SQLite is outgrown.
//!
//! tokio-postgres through a deadpool pool. The connection has no TLS: run the database on the
//! same host (or a private link) as the server. Inserts of changes hold an exclusive lock on
//! the `changes` table until they commit, so server sequence numbers become visible in
//! increasing order; without it a reader could see number 12 committed while 11 is still in
//! flight, advance its cursor past 11 and never receive it. Readers are not blocked.

use cairn_crypto::DeviceId;
use cairn_protocol::{Receipt, Statement};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{
    check_numbering, checkpoint_page_len, device_from_bytes, judge_checkpoint_part, judge_chunk,
    judge_receipt, parse_receipt, parse_statement, receipt_rows, statement_json, to_i64, to_u64,
    BlobInfo, BlobKey, CheckpointOutcome, CheckpointPlace, ChunkOutcome, InsertOutcome, Joined,
    NewChange, NewCheckpointPart, NewChunk, ReceiptOutcome, Storage, StorageError, StoredBlob,
    OLDEST_SCHEMA, SCHEMA_VERSION,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cairn_schema (
    version BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS statements (
    counter BIGINT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS joins (
    device BYTEA PRIMARY KEY,
    counter BIGINT NOT NULL REFERENCES statements (counter),
    joined_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS team_receipts (
    team TEXT PRIMARY KEY,
    counter BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    server_seq BIGSERIAL PRIMARY KEY,
    author BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    case_id BYTEA NOT NULL,
    team TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    UNIQUE (author, seq)
);
CREATE INDEX IF NOT EXISTS changes_team ON changes (team, server_seq);
CREATE INDEX IF NOT EXISTS changes_case ON changes (case_id, server_seq);
CREATE TABLE IF NOT EXISTS acks (
    author BYTEA PRIMARY KEY,
    acked BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS device_usage (
    author BYTEA PRIMARY KEY,
    bytes BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    author BYTEA NOT NULL,
    blob BYTEA NOT NULL,
    case_id BYTEA NOT NULL,
    team TEXT NOT NULL,
    count BIGINT NOT NULL,
    size BIGINT NOT NULL,
    held BIGINT NOT NULL,
    PRIMARY KEY (author, blob)
);
CREATE TABLE IF NOT EXISTS blob_chunks (
    author BYTEA NOT NULL,
    blob BYTEA NOT NULL,
    idx BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (author, blob, idx),
    FOREIGN KEY (author, blob) REFERENCES blobs (author, blob)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    team TEXT NOT NULL,
    generation BIGINT NOT NULL,
    part BIGINT NOT NULL,
    parts BIGINT NOT NULL,
    full_generation BOOLEAN NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (team, generation, part)
);
";

/// The team's newest full generation whose parts are all stored.
const NEWEST_WHOLE_FULL: &str = "
SELECT MAX(generation) FROM (
    SELECT generation FROM checkpoints WHERE team = $1 AND full_generation
    GROUP BY generation HAVING COUNT(*) = MAX(parts)
) AS whole";

/// Schema 4 keyed blobs by id alone, so a device that learnt another's blob id (from the
/// case that lists it) could store its own chunks under it first. Schema 5 keys them by
/// author and id: the keys of schema 4's tables are changed in place.
const BLOBS_FROM_SCHEMA_4: &str = "
ALTER TABLE blob_chunks ADD COLUMN author BYTEA;
UPDATE blob_chunks c SET author = b.author FROM blobs b WHERE b.blob = c.blob;
ALTER TABLE blob_chunks ALTER COLUMN author SET NOT NULL;
ALTER TABLE blob_chunks DROP CONSTRAINT blob_chunks_blob_fkey;
ALTER TABLE blob_chunks DROP CONSTRAINT blob_chunks_pkey;
ALTER TABLE blobs DROP CONSTRAINT blobs_pkey;
ALTER TABLE blobs ADD PRIMARY KEY (author, blob);
ALTER TABLE blob_chunks ADD PRIMARY KEY (author, blob, idx);
ALTER TABLE blob_chunks ADD FOREIGN KEY (author, blob) REFERENCES blobs (author, blob);
";

/// Schemas 3 to 5 kept one receipt naming every team's counts, which every member could
/// fetch; schema 6 keeps one per team. The old one is dropped: the office hands the server
/// its teams' receipts at its next sync (the server then reports no receipt, so it does).
const RECEIPTS_FROM_SCHEMA_5: &str = "DROP TABLE IF EXISTS receipt;";

/// The PostgreSQL backend. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStorage {
    pool: Pool,
}

impl PostgresStorage {
    /// Connects to `url` and creates the tables if needed.
    pub async fn open(url: &str) -> Result<PostgresStorage, StorageError> {
        Self::open_in_schema(url, None).await
    }

    /// Like [`PostgresStorage::open`], but keeps every table in `schema` (created if
    /// missing). Tests use a fresh schema each so runs never collide. `schema` must be a
    /// plain identifier (letters, digits, `_`).
    pub async fn open_in_schema(
        url: &str,
        schema: Option<&str>,
    ) -> Result<PostgresStorage, StorageError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StorageError::Backend(format!("the PostgreSQL URL does not parse: {e}"))
        })?;
        if let Some(schema) = schema {
            if schema.is_empty()
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(StorageError::Backend(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        let storage = PostgresStorage { pool };
        let client = storage.client().await?;
        if let Some(schema) = schema {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
        // Protocol v1 left `used_invites` and no `cairn_schema`; nothing of it carries over.
        let v1: bool = client
            .query_one(
                "SELECT to_regclass('used_invites') IS NOT NULL
                     OR (to_regclass('changes') IS NOT NULL AND to_regclass('cairn_schema') IS NULL)",
                &[],
            )
            .await?
            .get(0);
        if v1 {
            return Err(StorageError::OldSchema);
        }
        client.batch_execute(SCHEMA).await?;
        // Two servers opening one new database at once must agree on one row.
        let mut client = client;
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE cairn_schema IN EXCLUSIVE MODE")
            .await?;
        let versions: Vec<i64> = tx
            .query("SELECT version FROM cairn_schema", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        match versions.as_slice() {
            [] => {
                tx.execute(
                    "INSERT INTO cairn_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .await?;
            }
            [v] if *v == SCHEMA_VERSION => {}
            [4] => {
                tx.batch_execute(BLOBS_FROM_SCHEMA_4).await?;
                tx.batch_execute(RECEIPTS_FROM_SCHEMA_5).await?;
                tx.execute("UPDATE cairn_schema SET version = $1", &[&SCHEMA_VERSION])
                    .await?;
            }
            // The blob tables (schema 3), the team receipts and the checkpoints were just created.
            [v] if *v >= OLDEST_SCHEMA && *v < SCHEMA_VERSION => {
                tx.batch_execute(RECEIPTS_FROM_SCHEMA_5).await?;
                tx.execute("UPDATE cairn_schema SET version = $1", &[&SCHEMA_VERSION])
                    .await?;
            }
            [v] if *v < SCHEMA_VERSION => return Err(StorageError::OldSchema),
            other => {
                return Err(StorageError::Corrupt(format!(
                    "schema version {other:?}; this cairn-server knows {SCHEMA_VERSION}"
                )))
            }
        }
        tx.commit().await?;
        drop(client);
        Ok(storage)
    }

    /// `pg_database_size` of the database in use.
    pub async fn size(&self) -> Result<u64, StorageError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        to_u64(row.get::<_, i64>(0))
    }

    /// Answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn client(&self) -> Result<Object, StorageError> {
        self.pool
            .get()
            .await
            .map_err(|e| StorageError::Backend(format!("cannot reach PostgreSQL: {e}")))
    }
}

/// Adds `bytes` to `author`'s usage; refuses (the caller's transaction then rolls back)
/// when that takes it over `quota`.
async fn add_usage(
    tx: &tokio_postgres::Transaction<'_>,
    author: &[u8],
    bytes: u64,
    quota: Option<u64>,
) -> Result<(), StorageError> {
    let total: i64 = tx
        .query_one(
            "INSERT INTO device_usage (author, bytes) VALUES ($1, $2)
             ON CONFLICT (author) DO UPDATE SET bytes = device_usage.bytes + excluded.bytes
             RETURNING bytes",
            &[&author, &to_i64(bytes)?],
        )
        .await?
        .get(0);
    let total = to_u64(total)?;
    match quota {
        Some(quota) if total > quota => Err(StorageError::QuotaFull {
            used: total - bytes,
            quota,
        }),
        _ => Ok(()),
    }
}

/// The blob's row; `lock` takes it for the transaction (`FOR UPDATE`).
async fn read_blob(
    client: &impl deadpool_postgres::GenericClient,
    author: &DeviceId,
    blob: &[u8],
    lock: bool,
) -> Result<Option<StoredBlob>, StorageError> {
    let sql = if lock {
        "SELECT author, case_id, team, count, size, held FROM blobs
         WHERE author = $1 AND blob = $2 FOR UPDATE"
    } else {
        "SELECT author, case_id, team, count, size, held FROM blobs
         WHERE author = $1 AND blob = $2"
    };
    let Some(row) = client.query_opt(sql, &[&&author.0[..], &blob]).await? else {
        return Ok(None);
    };
    let narrow = |v: i64| {
        u32::try_from(v)
            .map_err(|_| StorageError::Corrupt("a stored chunk count is out of range".into()))
    };
    Ok(Some(StoredBlob {
        info: BlobInfo {
            author: device_from_bytes(row.get::<_, &[u8]>(0))?,
            case_id: row
                .get::<_, &[u8]>(1)
                .try_into()
                .map_err(|_| StorageError::Corrupt("a stored case id is not 16 bytes".into()))?,
            team: row.get(2),
            count: narrow(row.get(3))?,
            size: to_u64(row.get(4))?,
        },
        held: narrow(row.get(5))?,
    }))
}

async fn newest_whole_full(
    tx: &tokio_postgres::Transaction<'_>,
    team: &str,
) -> Result<Option<i64>, StorageError> {
    Ok(tx
        .query_one(NEWEST_WHOLE_FULL, &[&team])
        .await?
        .get::<_, Option<i64>>(0))
}

/// Stores one checkpoint part in `tx` if [`judge_checkpoint_part`] says so (its answer is
/// this one's), then deletes its team's older generations if it made a full one whole.
async fn store_checkpoint_part(
    tx: &tokio_postgres::Transaction<'_>,
    p: &NewCheckpointPart,
) -> Result<Result<bool, CheckpointOutcome>, StorageError> {
    let generation = to_i64(p.generation)?;
    let (part, parts) = (i64::from(p.part), i64::from(p.parts));
    let stored: Option<Vec<u8>> = tx
        .query_opt(
            "SELECT bytes FROM checkpoints WHERE team = $1 AND generation = $2 AND part = $3",
            &[&p.team, &generation, &part],
        )
        .await?
        .map(|r| r.get(0));
    let shape = tx
        .query_opt(
            "SELECT parts, full_generation FROM checkpoints
             WHERE team = $1 AND generation = $2 LIMIT 1",
            &[&p.team, &generation],
        )
        .await?
        .map(|r| {
            let parts = u32::try_from(r.get::<_, i64>(0)).map_err(|_| {
                StorageError::Corrupt("a stored checkpoint's part count is out of range".into())
            })?;
            Ok::<_, StorageError>((parts, r.get::<_, bool>(1)))
        })
        .transpose()?;
    let held = CheckpointPlace {
        newest_full: newest_whole_full(tx, &p.team)
            .await?
            .map(to_u64)
            .transpose()?,
        shape,
        stored: stored.as_deref(),
    };
    match judge_checkpoint_part(p, &held) {
        Ok(true) => {}
        other => return Ok(other),
    }
    tx.execute(
        "INSERT INTO checkpoints (team, generation, part, parts, full_generation, bytes)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&p.team, &generation, &part, &parts, &p.full, &p.bytes],
    )
    .await?;
    if p.full {
        let held: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM checkpoints WHERE team = $1 AND generation = $2",
                &[&p.team, &generation],
            )
            .await?
            .get(0);
        if held == parts {
            tx.execute(
                "DELETE FROM checkpoints WHERE team = $1 AND generation < $2",
                &[&p.team, &generation],
            )
            .await?;
        }
    }
    Ok(Ok(true))
}

impl Storage for PostgresStorage {
    async fn store_checkpoint_parts(
        &self,
        parts: Vec<NewCheckpointPart>,
    ) -> Result<CheckpointOutcome, StorageError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Posts are rare (the office's): serialize them so each judges what the last stored.
        tx.batch_execute("LOCK TABLE checkpoints IN EXCLUSIVE MODE")
            .await?;
        let (mut new_parts, mut new_bytes) = (0, 0);
        for p in &parts {
            match store_checkpoint_part(&tx, p).await? {
                Ok(true) => {
                    new_parts += 1;
                    new_bytes += p.bytes.len();
                }
                Ok(false) => {}
                // Dropping the transaction rolls back what this batch stored so far.
                Err(refused) => return Ok(refused),
            }
        }
        tx.commit().await?;
        Ok(CheckpointOutcome::Stored {
            parts: new_parts,
            bytes: new_bytes,
        })
    }

    async fn checkpoint_parts(
        &self,
        team: &str,
        after: Option<(u64, u32)>,
        max_bytes: usize,
    ) -> Result<(Vec<Vec<u8>>, bool), StorageError> {
        let mut client = self.client().await?;
        // One snapshot: a generation made whole meanwhile deletes none of the parts chosen.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let (generation, part) = match after {
            Some((g, p)) => (to_i64(g.min(i64::MAX as u64))?, i64::from(p)),
            None => match newest_whole_full(&tx, team).await? {
                Some(g) => (g, -1),
                None => return Ok((Vec::new(), false)),
            },
        };
        // octet_length() of a stored bytea reads its size, not its (TOASTed) content.
        let rows = tx
            .query(
                "SELECT generation, part, octet_length(bytes)::int8 FROM checkpoints
                 WHERE team = $1 AND (generation > $2 OR (generation = $2 AND part > $3))
                 ORDER BY generation, part",
                &[&team, &generation, &part],
            )
            .await?;
        let lengths = rows
            .iter()
            .map(|r| to_u64(r.get::<_, i64>(2)))
            .collect::<Result<Vec<u64>, _>>()?;
        let (keep, more) = checkpoint_page_len(&lengths, max_bytes);
        let Some(last) = rows[..keep].last() else {
            return Ok((Vec::new(), false));
        };
        let (last_generation, last_part) = (last.get::<_, i64>(0), last.get::<_, i64>(1));
        let parts = tx
            .query(
                "SELECT bytes FROM checkpoints
                 WHERE team = $1 AND (generation > $2 OR (generation = $2 AND part > $3))
                   AND (generation < $4 OR (generation = $4 AND part <= $5))
                 ORDER BY generation, part",
                &[&team, &generation, &part, &last_generation, &last_part],
            )
            .await?
            .iter()
            .map(|r| r.get::<_, Vec<u8>>(0))
            .collect();
        tx.commit().await?;
        Ok((parts, more))
    }

    async fn insert_chunks(
        &self,
        chunks: Vec<NewChunk>,
        quota: Option<u64>,
    ) -> Result<Vec<ChunkOutcome>, StorageError> {
        if chunks.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut outcomes = Vec::with_capacity(chunks.len());
        let mut added: Vec<(DeviceId, u64)> = Vec::new();
        // The blob read last (and locked), as this transaction has changed it.
        let mut current: Option<(BlobKey, Option<StoredBlob>)> = None;
        for c in &chunks {
            let author = c.info.author;
            let key = (author, c.blob);
            if current.as_ref().is_none_or(|(k, _)| *k != key) {
                // Two first chunks at once: one creates the row, the other then waits on it.
                let mut blob = read_blob(&tx, &author, &c.blob, true).await?;
                if blob.is_none() && c.index == 0 {
                    let i = &c.info;
                    tx.execute(
                        "INSERT INTO blobs (author, blob, case_id, team, count, size, held)
                         VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (author, blob) DO NOTHING",
                        &[
                            &&i.author.0[..],
                            &&c.blob[..],
                            &&i.case_id[..],
                            &i.team,
                            &i64::from(i.count),
                            &to_i64(i.size)?,
                        ],
                    )
                    .await?;
                    blob = read_blob(&tx, &author, &c.blob, true).await?;
                    if blob
                        .as_ref()
                        .is_some_and(|b| b.held == 0 && b.info == c.info)
                    {
                        // Created here: judged below as the blob's first chunk.
                        blob = None;
                    }
                }
                current = Some((key, blob));
            }
            let Some((_, blob)) = current.as_mut() else {
                continue;
            };
            let existing = if blob.as_ref().is_some_and(|b| c.index < b.held) {
                tx.query_opt(
                    "SELECT bytes FROM blob_chunks WHERE author = $1 AND blob = $2 AND idx = $3",
                    &[&&author.0[..], &&c.blob[..], &i64::from(c.index)],
                )
                .await?
                .map(|r| r.get::<_, Vec<u8>>(0))
            } else {
                None
            };
            let outcome = judge_chunk(blob, c, || Ok(existing))?;
            if outcome == ChunkOutcome::Stored {
                tx.execute(
                    "INSERT INTO blob_chunks (author, blob, idx, bytes) VALUES ($1, $2, $3, $4)",
                    &[&&author.0[..], &&c.blob[..], &i64::from(c.index), &c.bytes],
                )
                .await?;
                tx.execute(
                    "UPDATE blobs SET held = $3 WHERE author = $1 AND blob = $2",
                    &[&&author.0[..], &&c.blob[..], &(i64::from(c.index) + 1)],
                )
                .await?;
                let len = c.bytes.len() as u64;
                match added.iter_mut().find(|(a, _)| *a == author) {
                    Some((_, n)) => *n += len,
                    None => added.push((author, len)),
                }
            }
            outcomes.push(outcome);
        }
        for (author, bytes) in &added {
            add_usage(&tx, &author.0, *bytes, quota).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn blob(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
    ) -> Result<Option<StoredBlob>, StorageError> {
        read_blob(&self.client().await?, author, blob, false).await
    }

    async fn load_chunks(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
        from: u32,
        max_count: u32,
        max_bytes: usize,
    ) -> Result<Vec<(u32, Vec<u8>)>, StorageError> {
        // Sizes first, so that only what fits is loaded.
        let client = self.client().await?;
        let sizes = client
            .query(
                "SELECT idx, octet_length(bytes)::int8 FROM blob_chunks
                 WHERE author = $1 AND blob = $2 AND idx >= $3 ORDER BY idx LIMIT $4",
                &[
                    &&author.0[..],
                    &&blob[..],
                    &i64::from(from),
                    &i64::from(max_count),
                ],
            )
            .await?;
        let mut used = 0usize;
        let mut last = None;
        for row in &sizes {
            let len = usize::try_from(row.get::<_, i64>(1)).unwrap_or(usize::MAX);
            if last.is_some() && used.saturating_add(len) > max_bytes {
                break;
            }
            used = used.saturating_add(len);
            last = Some(row.get::<_, i64>(0));
        }
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        let rows = client
            .query(
                "SELECT idx, bytes FROM blob_chunks
                 WHERE author = $1 AND blob = $2 AND idx >= $3 AND idx <= $4 ORDER BY idx",
                &[&&author.0[..], &&blob[..], &i64::from(from), &last],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let idx = u32::try_from(r.get::<_, i64>(0)).map_err(|_| {
                    StorageError::Corrupt("a stored chunk index is out of range".into())
                })?;
                Ok((idx, r.get::<_, Vec<u8>>(1)))
            })
            .collect()
    }

    async fn statements(&self) -> Result<Vec<Statement>, StorageError> {
        let rows = self
            .client()
            .await?
            .query("SELECT body FROM statements ORDER BY counter", &[])
            .await?;
        rows.iter()
            .map(|r| parse_statement(r.get::<_, &str>(0)))
            .collect()
    }

    async fn append_statements(
        &self,
        after: u64,
        statements: &[Statement],
        joined: Option<Joined>,
    ) -> Result<bool, StorageError> {
        check_numbering(after, statements)?;
        let counters = statements
            .iter()
            .map(|s| to_i64(s.counter))
            .collect::<Result<Vec<i64>, _>>()?;
        let bodies = statements
            .iter()
            .map(statement_json)
            .collect::<Result<Vec<String>, _>>()?;
        let after = to_i64(after)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if !counters.is_empty() {
            // Appends are rare: serialize them so the head read below is the head written after.
            tx.batch_execute("LOCK TABLE statements IN EXCLUSIVE MODE")
                .await?;
            let head: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(counter), 0)::int8 FROM statements",
                    &[],
                )
                .await?
                .get(0);
            if head != after {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO statements (counter, body)
                 SELECT * FROM UNNEST($1::int8[], $2::text[])",
                &[&counters, &bodies],
            )
            .await?;
        }
        if let Some(j) = joined {
            tx.execute(
                "INSERT INTO joins (device, counter, joined_at) VALUES ($1, $2, $3)
                 ON CONFLICT (device) DO NOTHING",
                &[&&j.device.0[..], &to_i64(j.counter)?, &to_i64(j.at)?],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn joined(&self, device: &DeviceId) -> Result<Option<u64>, StorageError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT counter FROM joins WHERE device = $1",
                &[&&device.0[..]],
            )
            .await?;
        row.map(|r| to_u64(r.get::<_, i64>(0))).transpose()
    }

    async fn store_receipts(&self, receipts: &[Receipt]) -> Result<ReceiptOutcome, StorageError> {
        let rows = receipt_rows(receipts)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE team_receipts IN EXCLUSIVE MODE")
            .await?;
        let mut outcome = ReceiptOutcome::Same;
        for row in &rows {
            let held = tx
                .query_opt(
                    "SELECT counter, body FROM team_receipts WHERE team = $1",
                    &[&row.team],
                )
                .await?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
            match judge_receipt(held.as_ref().map(|(c, b)| (*c, b.as_str())), row)? {
                Some(ReceiptOutcome::Same) => continue,
                // Dropping the transaction rolls back what this set stored so far.
                Some(stale) => return Ok(stale),
                None => {}
            }
            tx.execute(
                "INSERT INTO team_receipts (team, counter, body) VALUES ($1, $2, $3)
                 ON CONFLICT (team) DO UPDATE SET counter = excluded.counter, body = excluded.body",
                &[&row.team, &row.counter, &row.body],
            )
            .await?;
            outcome = ReceiptOutcome::Stored;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn receipt(&self, team: &str) -> Result<Option<Receipt>, StorageError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT body FROM team_receipts WHERE team = $1", &[&team])
            .await?;
        row.map(|r| parse_receipt(r.get::<_, &str>(0))).transpose()
    }

    async fn receipt_counter(&self, team: Option<&str>) -> Result<Option<u64>, StorageError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT MAX(counter) FROM team_receipts WHERE $1::TEXT IS NULL OR team = $1",
                &[&team],
            )
            .await?;
        row.get::<_, Option<i64>>(0).map(to_u64).transpose()
    }

    async fn insert_changes_within(
        &self,
        changes: Vec<NewChange>,
        quota: Option<u64>,
    ) -> Result<Vec<InsertOutcome>, StorageError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        // A batch may repeat an (author, seq): settle repeats against their first occurrence
        // here, and send each pair to the database once.
        let mut outcomes: Vec<Option<InsertOutcome>> = vec![None; changes.len()];
        let mut first: std::collections::HashMap<(DeviceId, u64), usize> = Default::default();
        let mut unique = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            match first.get(&(c.author, c.seq)) {
                Some(&j) => {
                    outcomes[i] = Some(if changes[j].bytes == c.bytes {
                        InsertOutcome::Duplicate
                    } else {
                        InsertOutcome::Conflict
                    });
                }
                None => {
                    first.insert((c.author, c.seq), i);
                    unique.push(i);
                }
            }
        }
        let authors: Vec<&[u8]> = unique.iter().map(|&i| &changes[i].author.0[..]).collect();
        let seqs = unique
            .iter()
            .map(|&i| to_i64(changes[i].seq))
            .collect::<Result<Vec<i64>, _>>()?;
        let case_ids: Vec<&[u8]> = unique.iter().map(|&i| &changes[i].case_id[..]).collect();
        let teams: Vec<&str> = unique.iter().map(|&i| changes[i].team.as_str()).collect();
        let bytes: Vec<&[u8]> = unique.iter().map(|&i| &changes[i].bytes[..]).collect();

        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE changes IN EXCLUSIVE MODE")
            .await?;
        let inserted = tx
            .query(
                "INSERT INTO changes (author, seq, case_id, team, bytes)
                 SELECT * FROM UNNEST($1::bytea[], $2::int8[], $3::bytea[], $4::text[], $5::bytea[])
                 ON CONFLICT (author, seq) DO NOTHING
                 RETURNING author, seq",
                &[&authors, &seqs, &case_ids, &teams, &bytes],
            )
            .await?;
        let mut stored: std::collections::HashSet<(DeviceId, i64)> = Default::default();
        for row in &inserted {
            stored.insert((
                device_from_bytes(row.get::<_, &[u8]>(0))?,
                row.get::<_, i64>(1),
            ));
        }
        let mut clashes: Vec<usize> = Vec::new();
        // Bytes newly stored per author, in first-seen order.
        let mut added: Vec<(&[u8], u64)> = Vec::new();
        for (k, &i) in unique.iter().enumerate() {
            if stored.contains(&(changes[i].author, seqs[k])) {
                outcomes[i] = Some(InsertOutcome::Stored);
                let len = changes[i].bytes.len() as u64;
                match added.iter_mut().find(|(a, _)| *a == authors[k]) {
                    Some((_, n)) => *n += len,
                    None => added.push((authors[k], len)),
                }
            } else {
                clashes.push(k);
            }
        }
        if !clashes.is_empty() {
            let c_authors: Vec<&[u8]> = clashes.iter().map(|&k| authors[k]).collect();
            let c_seqs: Vec<i64> = clashes.iter().map(|&k| seqs[k]).collect();
            let rows = tx
                .query(
                    "SELECT c.author, c.seq, c.bytes FROM changes c
                     JOIN UNNEST($1::bytea[], $2::int8[]) AS w(author, seq)
                       ON c.author = w.author AND c.seq = w.seq",
                    &[&c_authors, &c_seqs],
                )
                .await?;
            let mut existing: std::collections::HashMap<(DeviceId, i64), Vec<u8>> =
                Default::default();
            for row in rows {
                existing.insert(
                    (
                        device_from_bytes(row.get::<_, &[u8]>(0))?,
                        row.get::<_, i64>(1),
                    ),
                    row.get::<_, Vec<u8>>(2),
                );
            }
            for k in clashes {
                let i = unique[k];
                let same = existing
                    .get(&(changes[i].author, seqs[k]))
                    .is_some_and(|b| *b == changes[i].bytes);
                outcomes[i] = Some(if same {
                    InsertOutcome::Duplicate
                } else {
                    InsertOutcome::Conflict
                });
            }
        }
        for (author, bytes) in &added {
            // Over the quota, dropping the transaction rolls the whole batch back.
            add_usage(&tx, author, *bytes, quota).await?;
        }
        for (author, _) in added {
            tx.execute(
                "WITH cur AS (SELECT COALESCE((SELECT acked FROM acks WHERE author = $1), 0) AS n),
                      run AS (
                        SELECT MIN(c.seq) AS end_seq FROM changes c, cur
                         WHERE c.author = $1 AND c.seq > cur.n
                           AND EXISTS (SELECT 1 FROM changes s WHERE s.author = $1 AND s.seq = cur.n + 1)
                           AND NOT EXISTS (SELECT 1 FROM changes d WHERE d.author = $1 AND d.seq = c.seq + 1))
                 INSERT INTO acks (author, acked)
                 SELECT $1, end_seq FROM run WHERE end_seq IS NOT NULL
                 ON CONFLICT (author) DO UPDATE SET acked = excluded.acked",
                &[&author],
            )
            .await?;
        }
        tx.commit().await?;
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StorageError::Backend("a change got no outcome".into())))
            .collect()
    }

    async fn acked(&self, author: &DeviceId) -> Result<u64, StorageError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT acked FROM acks WHERE author = $1",
                &[&&author.0[..]],
            )
            .await?;
        to_u64(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0))
    }

    async fn stored_bytes(&self, author: &DeviceId) -> Result<u64, StorageError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT bytes FROM device_usage WHERE author = $1",
                &[&&author.0[..]],
            )
            .await?;
        to_u64(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0))
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
        let after = to_i64(after.min(i64::MAX as u64))?;
        let limit = i64::from(limit);
        let client = self.client().await?;
        // octet_length() of a stored bytea reads its size, not its (TOASTed) content.
        let rows = match team {
            None => {
                client
                    .query(
                        "SELECT server_seq, octet_length(bytes)::int8 FROM changes
                         WHERE server_seq > $1 ORDER BY server_seq LIMIT $2",
                        &[&after, &limit],
                    )
                    .await?
            }
            Some(team) => {
                client
                    .query(
                        "SELECT server_seq, octet_length(bytes)::int8 FROM changes
                         WHERE team = $3 AND server_seq > $1
                         ORDER BY server_seq LIMIT $2",
                        &[&after, &limit, &team],
                    )
                    .await?
            }
        };
        rows.iter()
            .map(|r| Ok((to_u64(r.get::<_, i64>(0))?, to_u64(r.get::<_, i64>(1))?)))
            .collect()
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
        let after = to_i64(after.min(i64::MAX as u64))?;
        let limit = i64::from(limit);
        let case_id = case_id.to_vec();
        // `$3 IS NULL`: every team's changes, for the office and its staff.
        let rows = self
            .client()
            .await?
            .query(
                "SELECT server_seq, octet_length(bytes)::int8 FROM changes
                 WHERE case_id = $1 AND server_seq > $2 AND ($3::text IS NULL OR team = $3)
                 ORDER BY server_seq LIMIT $4",
                &[&case_id, &after, &team, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((to_u64(r.get::<_, i64>(0))?, to_u64(r.get::<_, i64>(1))?)))
            .collect()
    }

    async fn load_changes(&self, server_seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        if server_seqs.is_empty() {
            return Ok(Vec::new());
        }
        let seqs = server_seqs
            .iter()
            .map(|s| to_i64(*s))
            .collect::<Result<Vec<i64>, _>>()?;
        let rows = self
            .client()
            .await?
            .query(
                "SELECT server_seq, bytes FROM changes WHERE server_seq = ANY($1)
                 ORDER BY server_seq",
                &[&seqs],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((to_u64(r.get::<_, i64>(0))?, r.get::<_, Vec<u8>>(1))))
            .collect()
    }
}
