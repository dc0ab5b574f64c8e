//! Where the server keeps what it relays: roster statements, used invites and sealed changes.
//!
//! Everything the server stores is either signed public metadata (statements) or opaque
//! sealed bytes with the routing ids from their header (author, seq, case id). One trait,
//! [`Storage`], with two backends that pass one shared test suite: SQLite (default, embedded)
//! and PostgreSQL. [`AnyStorage`] picks one at run time from the configured database.

mod postgres;
mod sqlite;

use std::future::Future;
use std::path::PathBuf;

use cairn_crypto::DeviceId;
use cairn_protocol::{Enrollment, Revocation, Statement};

pub use self::postgres::PostgresStorage;
pub use self::sqlite::SqliteStorage;

/// A sealed change ready to store: its bytes plus the routing ids copied from its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChange {
    /// The author (checked against the signature and the requester before storing).
    pub author: DeviceId,
    /// The author's change number (1, 2, 3...; at most `i64::MAX`).
    pub seq: u64,
    /// The case's opaque id.
    pub case_id: [u8; 16],
    /// The whole sealed change, as received.
    pub bytes: Vec<u8>,
}

/// What storing one change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Newly stored.
    Stored,
    /// The same `(author, seq)` was already stored with the same bytes.
    Duplicate,
    /// The same `(author, seq)` was already stored with different bytes: a replay or a
    /// device reusing numbers. Nothing was changed.
    Conflict,
}

/// A successful enrollment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// Recorded now.
    Enrolled,
    /// This device had already enrolled with this invite: nothing changed.
    Repeated,
}

/// A storage failure.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The invite was used by another device.
    #[error("this invite was already used by another device")]
    InviteUsed,
    /// The device is already enrolled with another invite.
    #[error("this device is already enrolled with another invite")]
    DeviceAlreadyEnrolled,
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(String),
    /// Storing the batch would take its author over its storage quota: nothing was stored.
    #[error("the device's storage quota is full ({used} of {quota} bytes stored)")]
    QuotaFull {
        /// Bytes the author has stored.
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// The database holds something this version cannot read.
    #[error("the database is damaged or was written by a newer cairn-server: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Backend(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        StorageError::Backend(e.to_string())
    }
}

/// The server's storage. Every method is atomic: it either happens whole or not at all.
pub trait Storage: Send + Sync + 'static {
    /// Records an enrollment whose signatures the caller checked. Atomic: if the invite is
    /// unused, records the statement and marks the invite used; the same device presenting
    /// the same invite again is [`EnrollOutcome::Repeated`]; another device gets
    /// [`StorageError::InviteUsed`]; a device already enrolled with another invite gets
    /// [`StorageError::DeviceAlreadyEnrolled`].
    fn enroll(
        &self,
        enrollment: &Enrollment,
    ) -> impl Future<Output = Result<EnrollOutcome, StorageError>> + Send;

    /// The device that used this invite, if any.
    fn invite_holder(
        &self,
        invite_id: &str,
    ) -> impl Future<Output = Result<Option<DeviceId>, StorageError>> + Send;

    /// Records a revocation whose signature the caller checked. Storing the same one twice
    /// keeps one.
    fn revoke(
        &self,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Every statement, in the order they were recorded.
    fn statements(&self) -> impl Future<Output = Result<Vec<Statement>, StorageError>> + Send;

    /// Stores a batch in one transaction; one outcome per change, in order. No quota.
    fn insert_changes(
        &self,
        changes: Vec<NewChange>,
    ) -> impl Future<Output = Result<Vec<InsertOutcome>, StorageError>> + Send {
        self.insert_changes_within(changes, None)
    }

    /// Stores a batch in one transaction; one outcome per change, in order. With a quota,
    /// if the bytes newly stored (duplicates do not count) would take an author's total
    /// over it, nothing is stored and the answer is [`StorageError::QuotaFull`].
    fn insert_changes_within(
        &self,
        changes: Vec<NewChange>,
        quota: Option<u64>,
    ) -> impl Future<Output = Result<Vec<InsertOutcome>, StorageError>> + Send;

    /// The bytes of sealed changes stored for `author` (0 if none).
    fn stored_bytes(
        &self,
        author: &DeviceId,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// The highest `n` such that changes `1..=n` of `author` are all stored (0 if none).
    fn acked(&self, author: &DeviceId) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Up to `limit` changes with a server sequence number above `after`, in increasing
    /// order, authored by one of `allowed_authors` (`None`: anyone): their server sequence
    /// numbers and sizes in bytes, without loading them, so a caller can choose how many
    /// fit its byte budget. Never returns a change numbered below one it returned earlier:
    /// numbers become visible in order.
    fn pull_lengths(
        &self,
        after: u64,
        allowed_authors: Option<&[DeviceId]>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, u64)>, StorageError>> + Send;

    /// The sealed bytes of the changes with these server sequence numbers, in increasing
    /// order; numbers not stored are skipped.
    fn load_changes(
        &self,
        server_seqs: &[u64],
    ) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, StorageError>> + Send;

    /// [`Storage::pull_lengths`], then those changes loaded: `(server_seq, sealed bytes)`.
    /// Holds every change in memory: the server itself loads only what fits a page.
    fn pull(
        &self,
        after: u64,
        allowed_authors: Option<&[DeviceId]>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, StorageError>> + Send {
        async move {
            let plan = self.pull_lengths(after, allowed_authors, limit).await?;
            let seqs: Vec<u64> = plan.iter().map(|(seq, _)| *seq).collect();
            self.load_changes(&seqs).await
        }
    }
}

/// Which database to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://...`).
    Postgres(String),
}

impl Database {
    /// Reads a database setting: a `postgres://` or `postgresql://` URL, or an SQLite path
    /// (optionally `sqlite://` prefixed) taken relative to `base`.
    pub fn parse(setting: &str, base: &std::path::Path) -> Database {
        let s = setting.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Database::Postgres(s.to_owned());
        }
        let path = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
            .unwrap_or(s);
        Database::Sqlite(base.join(path))
    }

    /// A description safe to log (no password).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite {}", path.display()),
            Database::Postgres(url) => match url.split_once('@') {
                Some((_, host)) => format!("postgres {}", host),
                None => "postgres".to_owned(),
            },
        }
    }
}

/// Either backend, chosen at run time.
#[derive(Clone)]
pub enum AnyStorage {
    /// SQLite.
    Sqlite(SqliteStorage),
    /// PostgreSQL.
    Postgres(PostgresStorage),
}

impl AnyStorage {
    /// Opens (creating tables if needed) the configured database.
    pub async fn open(database: &Database) -> Result<AnyStorage, StorageError> {
        Ok(match database {
            Database::Sqlite(path) => AnyStorage::Sqlite(SqliteStorage::open(path).await?),
            Database::Postgres(url) => AnyStorage::Postgres(PostgresStorage::open(url).await?),
        })
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStorage::Sqlite($s) => $call.await,
            AnyStorage::Postgres($s) => $call.await,
        }
    };
}

impl Storage for AnyStorage {
    async fn enroll(&self, enrollment: &Enrollment) -> Result<EnrollOutcome, StorageError> {
        delegate!(self, s => s.enroll(enrollment))
    }

    async fn invite_holder(&self, invite_id: &str) -> Result<Option<DeviceId>, StorageError> {
        delegate!(self, s => s.invite_holder(invite_id))
    }

    async fn revoke(&self, revocation: &Revocation) -> Result<(), StorageError> {
        delegate!(self, s => s.revoke(revocation))
    }

    async fn statements(&self) -> Result<Vec<Statement>, StorageError> {
        delegate!(self, s => s.statements())
    }

    async fn insert_changes_within(
        &self,
        changes: Vec<NewChange>,
        quota: Option<u64>,
    ) -> Result<Vec<InsertOutcome>, StorageError> {
        delegate!(self, s => s.insert_changes_within(changes, quota))
    }

    async fn stored_bytes(&self, author: &DeviceId) -> Result<u64, StorageError> {
        delegate!(self, s => s.stored_bytes(author))
    }

    async fn acked(&self, author: &DeviceId) -> Result<u64, StorageError> {
        delegate!(self, s => s.acked(author))
    }

    async fn pull_lengths(
        &self,
        after: u64,
        allowed_authors: Option<&[DeviceId]>,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        delegate!(self, s => s.pull_lengths(after, allowed_authors, limit))
    }

    async fn load_changes(&self, server_seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        delegate!(self, s => s.load_changes(server_seqs))
    }
}

/// A statement's JSON and the digest that makes storing it idempotent.
pub(crate) fn statement_record(
    statement: &Statement,
) -> Result<(&'static str, Vec<u8>, String), StorageError> {
    use sha2::{Digest, Sha256};
    let kind = match statement {
        Statement::Enrollment(_) => "enrollment",
        Statement::Revocation(_) => "revocation",
    };
    let json =
        serde_json::to_string(statement).map_err(|e| StorageError::Backend(e.to_string()))?;
    Ok((kind, Sha256::digest(json.as_bytes()).to_vec(), json))
}

pub(crate) fn parse_statement(json: &str) -> Result<Statement, StorageError> {
    serde_json::from_str(json)
        .map_err(|e| StorageError::Corrupt(format!("a stored statement does not parse: {e}")))
}

pub(crate) fn device_from_bytes(bytes: &[u8]) -> Result<DeviceId, StorageError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt("a stored device id is not 32 bytes".into()))?;
    Ok(DeviceId(arr))
}

/// Converts a stored (signed) integer back; the server never stores a negative one.
pub(crate) fn to_u64(v: i64) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt("a stored number is negative".into()))
}

/// Converts for storage; callers refuse numbers above `i64::MAX` before this.
pub(crate) fn to_i64(v: u64) -> Result<i64, StorageError> {
    i64::try_from(v).map_err(|_| StorageError::Backend("a number is too large to store".into()))
}
