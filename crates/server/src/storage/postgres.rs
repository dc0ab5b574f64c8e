//! PostgreSQL backend, for when one machine's SQLite is outgrown.
//!
//! tokio-postgres through a deadpool pool. The connection has no TLS: run the database on the
//! same host (or a private link) as the server. Inserts of changes hold an exclusive lock on
//! the `changes` table until they commit, so server sequence numbers become visible in
//! increasing order; without it a reader could see number 12 committed while 11 is still in
//! flight, advance its cursor past 11 and never receive it. Readers are not blocked.

use cairn_crypto::DeviceId;
use cairn_protocol::{Enrollment, Revocation, Statement};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{
    device_from_bytes, parse_statement, statement_record, to_i64, to_u64, EnrollOutcome,
    InsertOutcome, NewChange, Storage, StorageError,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS statements (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS used_invites (
    invite_id TEXT PRIMARY KEY,
    device BYTEA NOT NULL,
    statement_id BIGINT NOT NULL REFERENCES statements (id)
);
CREATE INDEX IF NOT EXISTS used_invites_device ON used_invites (device);
CREATE TABLE IF NOT EXISTS changes (
    server_seq BIGSERIAL PRIMARY KEY,
    author BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    case_id BYTEA NOT NULL,
    bytes BYTEA NOT NULL,
    UNIQUE (author, seq)
);
CREATE TABLE IF NOT EXISTS acks (
    author BYTEA PRIMARY KEY,
    acked BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS device_usage (
    author BYTEA PRIMARY KEY,
    bytes BIGINT NOT NULL
);
";

/// Fills `device_usage` from the changes stored before it existed.
const BACKFILL_USAGE: &str = "
INSERT INTO device_usage (author, bytes)
    SELECT author, SUM(octet_length(bytes)) FROM changes GROUP BY author
    ON CONFLICT (author) DO NOTHING;
";

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
        // A database made before quotas existed gets its usage table filled once.
        let new_usage: bool = client
            .query_one("SELECT to_regclass('device_usage') IS NULL", &[])
            .await?
            .get(0);
        client.batch_execute(SCHEMA).await?;
        if new_usage {
            client.batch_execute(BACKFILL_USAGE).await?;
        }
        Ok(storage)
    }

    async fn client(&self) -> Result<Object, StorageError> {
        self.pool
            .get()
            .await
            .map_err(|e| StorageError::Backend(format!("cannot reach PostgreSQL: {e}")))
    }
}

async fn holder(
    client: &impl deadpool_postgres::GenericClient,
    invite_id: &str,
) -> Result<Option<DeviceId>, StorageError> {
    let row = client
        .query_opt(
            "SELECT device FROM used_invites WHERE invite_id = $1",
            &[&invite_id],
        )
        .await?;
    row.map(|r| device_from_bytes(r.get::<_, &[u8]>(0)))
        .transpose()
}

impl Storage for PostgresStorage {
    async fn enroll(&self, enrollment: &Enrollment) -> Result<EnrollOutcome, StorageError> {
        let (kind, digest, json) = statement_record(&Statement::Enrollment(enrollment.clone()))?;
        let invite_id = enrollment.invite.id();
        let device = enrollment.device_id();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Enrollments are rare: serialize them so the checks below see every committed one.
        tx.batch_execute("LOCK TABLE used_invites IN EXCLUSIVE MODE")
            .await?;
        if let Some(holder) = holder(&tx, invite_id).await? {
            return if holder == device {
                Ok(EnrollOutcome::Repeated)
            } else {
                Err(StorageError::InviteUsed)
            };
        }
        let elsewhere = tx
            .query_opt(
                "SELECT 1 FROM used_invites WHERE device = $1",
                &[&&device.0[..]],
            )
            .await?
            .is_some();
        if elsewhere {
            return Err(StorageError::DeviceAlreadyEnrolled);
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO statements (kind, digest, body) VALUES ($1, $2, $3) RETURNING id",
                &[&kind, &digest, &json],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO used_invites (invite_id, device, statement_id) VALUES ($1, $2, $3)",
            &[&invite_id, &&device.0[..], &id],
        )
        .await?;
        tx.commit().await?;
        Ok(EnrollOutcome::Enrolled)
    }

    async fn invite_holder(&self, invite_id: &str) -> Result<Option<DeviceId>, StorageError> {
        holder(&self.client().await?, invite_id).await
    }

    async fn revoke(&self, revocation: &Revocation) -> Result<(), StorageError> {
        let (kind, digest, json) = statement_record(&Statement::Revocation(revocation.clone()))?;
        self.client()
            .await?
            .execute(
                "INSERT INTO statements (kind, digest, body) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO NOTHING",
                &[&kind, &digest, &json],
            )
            .await?;
        Ok(())
    }

    async fn statements(&self) -> Result<Vec<Statement>, StorageError> {
        let rows = self
            .client()
            .await?
            .query("SELECT body FROM statements ORDER BY id", &[])
            .await?;
        rows.iter()
            .map(|r| parse_statement(r.get::<_, &str>(0)))
            .collect()
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
        let bytes: Vec<&[u8]> = unique.iter().map(|&i| &changes[i].bytes[..]).collect();

        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE changes IN EXCLUSIVE MODE")
            .await?;
        let inserted = tx
            .query(
                "INSERT INTO changes (author, seq, case_id, bytes)
                 SELECT * FROM UNNEST($1::bytea[], $2::int8[], $3::bytea[], $4::bytea[])
                 ON CONFLICT (author, seq) DO NOTHING
                 RETURNING author, seq",
                &[&authors, &seqs, &case_ids, &bytes],
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
            let total: i64 = tx
                .query_one(
                    "INSERT INTO device_usage (author, bytes) VALUES ($1, $2)
                     ON CONFLICT (author) DO UPDATE SET bytes = device_usage.bytes + excluded.bytes
                     RETURNING bytes",
                    &[author, &to_i64(*bytes)?],
                )
                .await?
                .get(0);
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
        allowed_authors: Option<&[DeviceId]>,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        if allowed_authors.is_some_and(<[DeviceId]>::is_empty) || limit == 0 {
            return Ok(Vec::new());
        }
        let after = to_i64(after.min(i64::MAX as u64))?;
        let limit = i64::from(limit);
        let client = self.client().await?;
        // octet_length() of a stored bytea reads its size, not its (TOASTed) content.
        let rows = match allowed_authors {
            None => {
                client
                    .query(
                        "SELECT server_seq, octet_length(bytes)::int8 FROM changes
                         WHERE server_seq > $1 ORDER BY server_seq LIMIT $2",
                        &[&after, &limit],
                    )
                    .await?
            }
            Some(authors) => {
                let authors: Vec<&[u8]> = authors.iter().map(|a| &a.0[..]).collect();
                client
                    .query(
                        "SELECT server_seq, octet_length(bytes)::int8 FROM changes
                         WHERE server_seq > $1 AND author = ANY($3)
                         ORDER BY server_seq LIMIT $2",
                        &[&after, &limit, &authors],
                    )
                    .await?
            }
        };
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
