//! Where the server keeps what it relays: the office's roster statements, receipts, sealed
//! changes, the sealed chunks of blobs (attachments) and the office's checkpoint parts.
//!
//! Everything the server stores is either signed public metadata (statements, receipts) or
//! opaque sealed bytes with the routing ids from their header (author, seq, case id, team;
//! for a chunk: blob id, index, count, plaintext size; for a checkpoint part: team,
//! generation, place).
//! One trait, [`Storage`], with two backends that pass one shared test suite: SQLite
//! (default, embedded) and PostgreSQL. [`AnyStorage`] picks one at run time from the
//! configured database.

mod postgres;
mod sqlite;

use std::future::Future;
use std::path::PathBuf;

use cairn_crypto::DeviceId;
use cairn_protocol::{Receipt, Statement};

pub use self::postgres::PostgresStorage;
pub use self::sqlite::SqliteStorage;

/// The schema both backends write. 3: protocol v2 (a roster chain by counter, joins,
/// receipts, a team per change); 4: blobs and their chunks; 5: blobs keyed by author and
/// id (so no device can take another's blob id); 6: one receipt per team (the single
/// receipt of schemas 3 to 5 named every team's counts; it is dropped, and the office hands
/// the server its teams' receipts at its next sync); 7: the office's checkpoint parts (a new
/// table, empty after the upgrade); 8: an index on the changes' case, so one case's changes
/// are served without a scan. Schemas 3 to 7 are upgraded in place; databases of protocol v1
/// (schemas 1 and 2) are refused.
pub const SCHEMA_VERSION: i64 = 8;

/// What names a blob on the server: its author and its id.
pub type BlobKey = (DeviceId, [u8; 16]);

/// The oldest schema a database may have to be opened (and upgraded).
pub(crate) const OLDEST_SCHEMA: i64 = 3;

/// One sealed chunk of a blob ready to store: its bytes plus the routing ids copied from
/// its header (which the caller parsed and whose signature it verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChunk {
    /// The blob's random id.
    pub blob: [u8; 16],
    /// The chunk's index, 0 to `count - 1`.
    pub index: u32,
    /// The blob's shape and owner, the same in every chunk of it.
    pub info: BlobInfo,
    /// The whole sealed chunk, as received.
    pub bytes: Vec<u8>,
}

/// What the server knows of a blob, fixed by its first chunk stored: every later chunk
/// must agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// The device that sealed it (the only one that may upload its chunks).
    pub author: DeviceId,
    /// The case's opaque id.
    pub case_id: [u8; 16],
    /// The team whose key sealed it: who may download it.
    pub team: String,
    /// How many chunks it has.
    pub count: u32,
    /// Its plaintext size in bytes.
    pub size: u64,
}

/// A blob as stored: its shape and how many chunks, from index 0, are held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// What every chunk of it agrees on.
    pub info: BlobInfo,
    /// Chunks `0..held` are stored; no other.
    pub held: u32,
}

/// What storing one chunk did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Newly stored.
    Stored,
    /// This index was already stored with the same bytes.
    Duplicate,
    /// This index was already stored with different bytes: nothing was changed.
    Conflict,
    /// Its author, case, team, count or size differ from the blob's first chunk, or its
    /// index is not below its count.
    Mismatch,
    /// Its index is beyond the chunks held: chunks are stored in order, without a gap.
    Gap {
        /// How many chunks are held (the index expected next).
        held: u32,
    },
}

/// A sealed change ready to store: its bytes plus the routing ids copied from its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChange {
    /// The author (checked against the signature and the requester before storing).
    pub author: DeviceId,
    /// The author's change number (1, 2, 3...; at most `i64::MAX`).
    pub seq: u64,
    /// The case's opaque id.
    pub case_id: [u8; 16],
    /// The team whose key sealed it: who may pull it.
    pub team: String,
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

/// A checkpoint part ready to store: its bytes plus where it sits, copied from its header
/// (which the caller parsed and whose signature it verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCheckpointPart {
    /// The team whose cases it holds.
    pub team: String,
    /// Its generation (1 or more, at most `i64::MAX`).
    pub generation: u64,
    /// Its index in the generation, below `parts`.
    pub part: u32,
    /// How many parts its generation has for this team.
    pub parts: u32,
    /// Whether its generation holds every case of the team.
    pub full: bool,
    /// The whole sealed part, as received.
    pub bytes: Vec<u8>,
}

/// What storing a batch of checkpoint parts did: all of it, or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// Every part is stored (some may have been stored already, with the same bytes).
    Stored {
        /// Parts newly stored.
        parts: usize,
        /// Their bytes.
        bytes: usize,
    },
    /// A different part is stored at this place: nothing was stored.
    Conflict {
        /// The team.
        team: String,
        /// The generation.
        generation: u64,
        /// The part's index.
        part: u32,
    },
    /// The team's newest whole full generation is newer than this part's: nothing was stored.
    Stale {
        /// The team.
        team: String,
        /// The part's generation.
        generation: u64,
        /// The team's newest whole full generation.
        newest: u64,
    },
    /// The generation's parts stored so far say another count of parts, or another `full`
    /// flag: nothing was stored.
    Mismatch {
        /// The team.
        team: String,
        /// The generation.
        generation: u64,
    },
}

/// What a backend knows of a part's place before storing it.
pub(crate) struct CheckpointPlace<'a> {
    /// The team's newest whole full generation, if any.
    pub(crate) newest_full: Option<u64>,
    /// `(parts, full)` of the generation's parts stored so far, if any.
    pub(crate) shape: Option<(u32, bool)>,
    /// The part stored at this very place, if any.
    pub(crate) stored: Option<&'a [u8]>,
}

/// Judges one checkpoint part against what is stored: `Ok(true)` to store it, `Ok(false)` if
/// the same bytes are stored already, or the refusal for the whole batch. Both backends
/// decide with this one function.
pub(crate) fn judge_checkpoint_part(
    part: &NewCheckpointPart,
    held: &CheckpointPlace<'_>,
) -> Result<bool, CheckpointOutcome> {
    match held.stored {
        Some(bytes) if bytes == part.bytes => return Ok(false),
        Some(_) => {
            return Err(CheckpointOutcome::Conflict {
                team: part.team.clone(),
                generation: part.generation,
                part: part.part,
            })
        }
        None => {}
    }
    if let Some(newest) = held.newest_full.filter(|n| part.generation < *n) {
        return Err(CheckpointOutcome::Stale {
            team: part.team.clone(),
            generation: part.generation,
            newest,
        });
    }
    if held
        .shape
        .is_some_and(|shape| shape != (part.parts, part.full))
        || part.part >= part.parts
    {
        return Err(CheckpointOutcome::Mismatch {
            team: part.team.clone(),
            generation: part.generation,
        });
    }
    Ok(true)
}

/// Which parts of `lengths` (in order) one answer of at most `max_bytes` carries: at least one
/// if any, and whether some were left for the next.
pub(crate) fn checkpoint_page_len(lengths: &[u64], max_bytes: usize) -> (usize, bool) {
    let mut used = 0u64;
    let mut keep = 0;
    for len in lengths {
        // Each part travels with its 4-byte length.
        let size = len.saturating_add(4);
        if keep > 0 && used.saturating_add(size) > max_bytes as u64 {
            break;
        }
        used = used.saturating_add(size);
        keep += 1;
    }
    (keep, keep < lengths.len())
}

/// A device that registered with this server through `/v2/join`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined {
    /// The device.
    pub device: DeviceId,
    /// The counter of the roster statement admitting it.
    pub counter: u64,
    /// When it joined, in Unix seconds.
    pub at: u64,
}

/// What storing a set of team receipts did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// At least one is newer than its team's held (or the first): those replaced them.
    Stored,
    /// The very same receipts are held already.
    Same,
    /// For one team a receipt with this counter (another one) or a higher one is held
    /// (`held`): nothing changed, for no team.
    Stale {
        /// The counter of the receipt held.
        held: u64,
    },
}

/// A storage failure.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
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
    /// The database's disk is full (SQLite's SQLITE_FULL, PostgreSQL's SQLSTATE 53100):
    /// nothing was stored.
    #[error("the database's disk is full")]
    DiskFull,
    /// The database was made by a cairn-server of protocol v1.
    #[error("the database was made by a cairn-server speaking protocol v1, which this one replaces; start with a new, empty database (protocol v2 keeps nothing of v1)")]
    OldSchema,
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StorageError::DiskFull,
            _ => StorageError::Backend(e.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(&tokio_postgres::error::SqlState::DISK_FULL) => StorageError::DiskFull,
            _ => StorageError::Backend(e.to_string()),
        }
    }
}

/// The server's storage. Every method is atomic: it either happens whole or not at all.
pub trait Storage: Send + Sync + 'static {
    /// The roster statements, by counter. The server stores only a chain it verified, so
    /// this is statements `1..=n` without a gap.
    fn statements(&self) -> impl Future<Output = Result<Vec<Statement>, StorageError>> + Send;

    /// Appends `statements` (the caller verified them: counters `after + 1`, `after + 2`...,
    /// each linked to the one before) if the stored chain still ends at `after`, and records
    /// `joined` (kept once per device: a later join keeps the first). Answers `false`, storing
    /// nothing, if the chain no longer ends at `after` (another server process appended
    /// meanwhile). With no statements, only records `joined`, and the head is not checked.
    fn append_statements(
        &self,
        after: u64,
        statements: &[Statement],
        joined: Option<Joined>,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// The counter of the statement `device` joined with, if it ever joined.
    fn joined(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<u64>, StorageError>> + Send;

    /// Keeps each of `receipts` (team receipts whose signatures and teams the caller checked)
    /// whose counter is higher than its team's held, in one transaction: all or none.
    fn store_receipts(
        &self,
        receipts: &[Receipt],
    ) -> impl Future<Output = Result<ReceiptOutcome, StorageError>> + Send;

    /// `team`'s newest receipt, if any.
    fn receipt(
        &self,
        team: &str,
    ) -> impl Future<Output = Result<Option<Receipt>, StorageError>> + Send;

    /// The counter of `team`'s newest receipt (of any team's, for `None`), without loading it.
    fn receipt_counter(
        &self,
        team: Option<&str>,
    ) -> impl Future<Output = Result<Option<u64>, StorageError>> + Send;

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

    /// Stores chunks in one transaction, each judged on its own, in order (so a chunk may
    /// follow one stored earlier in the batch); one outcome per chunk. A chunk is stored only
    /// at index `held` of its blob, and only if it agrees with the blob's first chunk (the
    /// first one stored creates the blob). With a quota, if the bytes newly stored would take
    /// an author's total (changes and chunks) over it, nothing is stored and the answer is
    /// [`StorageError::QuotaFull`].
    fn insert_chunks(
        &self,
        chunks: Vec<NewChunk>,
        quota: Option<u64>,
    ) -> impl Future<Output = Result<Vec<ChunkOutcome>, StorageError>> + Send;

    /// `author`'s blob, if any chunk of it is stored. Blobs are keyed by author and id: one
    /// device's chunks never land in, or block, another's blob of the same id.
    fn blob(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
    ) -> impl Future<Output = Result<Option<StoredBlob>, StorageError>> + Send;

    /// The stored chunks of `blob` from index `from`, in order, as many as fit `max_bytes`
    /// (at least one, if any is held) and at most `max_count`: `(index, sealed bytes)`.
    fn load_chunks(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
        from: u32,
        max_count: u32,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<(u32, Vec<u8>)>, StorageError>> + Send;

    /// The bytes of sealed changes and chunks stored for `author` (0 if none).
    fn stored_bytes(
        &self,
        author: &DeviceId,
    ) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// The highest `n` such that changes `1..=n` of `author` are all stored (0 if none).
    fn acked(&self, author: &DeviceId) -> impl Future<Output = Result<u64, StorageError>> + Send;

    /// Up to `limit` changes with a server sequence number above `after`, in increasing
    /// order, of `team` (`None`: every team): their server sequence numbers and sizes in
    /// bytes, without loading them, so a caller can choose how many fit its byte budget.
    /// Never returns a change numbered below one it returned earlier: numbers become
    /// visible in order.
    fn pull_lengths(
        &self,
        after: u64,
        team: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, u64)>, StorageError>> + Send;

    /// [`Storage::pull_lengths`] for the changes of one case (`case_id` as in their
    /// headers): up to `limit` of them above `after`, of `team` (`None`: every team).
    fn case_lengths(
        &self,
        case_id: [u8; 16],
        after: u64,
        team: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, u64)>, StorageError>> + Send;

    /// Stores checkpoint parts (the caller checked their signatures and places) in one
    /// transaction, each judged in order against what is stored, this batch's earlier parts
    /// included: the same bytes at a place already held are accepted again; other bytes
    /// there, a generation older than its team's newest whole full generation, or a part
    /// whose generation's other parts say another shape refuse the whole batch. Once a full
    /// generation is whole, its team's older generations are deleted.
    fn store_checkpoint_parts(
        &self,
        parts: Vec<NewCheckpointPart>,
    ) -> impl Future<Output = Result<CheckpointOutcome, StorageError>> + Send;

    /// `team`'s checkpoint parts in (generation, part) order: after `after` when it is given,
    /// else from the team's newest whole full generation on (none if it has none yet); as
    /// many as fit `max_bytes` (each counted with its 4-byte length), at least one if any.
    /// Also whether more were left out.
    fn checkpoint_parts(
        &self,
        team: &str,
        after: Option<(u64, u32)>,
        max_bytes: usize,
    ) -> impl Future<Output = Result<(Vec<Vec<u8>>, bool), StorageError>> + Send;

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
        team: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, StorageError>> + Send {
        async move {
            let plan = self.pull_lengths(after, team, limit).await?;
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

    /// The database's size in bytes (SQLite: the file and its WAL; PostgreSQL:
    /// `pg_database_size`).
    pub async fn size(&self) -> Result<u64, StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.size().await,
            AnyStorage::Postgres(s) => s.size().await,
        }
    }

    /// Whether the database answers a trivial query now.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self {
            AnyStorage::Sqlite(s) => s.ping().await,
            AnyStorage::Postgres(s) => s.ping().await,
        }
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
    async fn statements(&self) -> Result<Vec<Statement>, StorageError> {
        delegate!(self, s => s.statements())
    }

    async fn append_statements(
        &self,
        after: u64,
        statements: &[Statement],
        joined: Option<Joined>,
    ) -> Result<bool, StorageError> {
        delegate!(self, s => s.append_statements(after, statements, joined))
    }

    async fn joined(&self, device: &DeviceId) -> Result<Option<u64>, StorageError> {
        delegate!(self, s => s.joined(device))
    }

    async fn store_receipts(&self, receipts: &[Receipt]) -> Result<ReceiptOutcome, StorageError> {
        delegate!(self, s => s.store_receipts(receipts))
    }

    async fn receipt(&self, team: &str) -> Result<Option<Receipt>, StorageError> {
        delegate!(self, s => s.receipt(team))
    }

    async fn receipt_counter(&self, team: Option<&str>) -> Result<Option<u64>, StorageError> {
        delegate!(self, s => s.receipt_counter(team))
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

    async fn insert_chunks(
        &self,
        chunks: Vec<NewChunk>,
        quota: Option<u64>,
    ) -> Result<Vec<ChunkOutcome>, StorageError> {
        delegate!(self, s => s.insert_chunks(chunks, quota))
    }

    async fn blob(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
    ) -> Result<Option<StoredBlob>, StorageError> {
        delegate!(self, s => s.blob(author, blob))
    }

    async fn load_chunks(
        &self,
        author: &DeviceId,
        blob: &[u8; 16],
        from: u32,
        max_count: u32,
        max_bytes: usize,
    ) -> Result<Vec<(u32, Vec<u8>)>, StorageError> {
        delegate!(self, s => s.load_chunks(author, blob, from, max_count, max_bytes))
    }

    async fn acked(&self, author: &DeviceId) -> Result<u64, StorageError> {
        delegate!(self, s => s.acked(author))
    }

    async fn pull_lengths(
        &self,
        after: u64,
        team: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        delegate!(self, s => s.pull_lengths(after, team, limit))
    }

    async fn case_lengths(
        &self,
        case_id: [u8; 16],
        after: u64,
        team: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        delegate!(self, s => s.case_lengths(case_id, after, team, limit))
    }

    async fn load_changes(&self, server_seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        delegate!(self, s => s.load_changes(server_seqs))
    }

    async fn store_checkpoint_parts(
        &self,
        parts: Vec<NewCheckpointPart>,
    ) -> Result<CheckpointOutcome, StorageError> {
        delegate!(self, s => s.store_checkpoint_parts(parts))
    }

    async fn checkpoint_parts(
        &self,
        team: &str,
        after: Option<(u64, u32)>,
        max_bytes: usize,
    ) -> Result<(Vec<Vec<u8>>, bool), StorageError> {
        delegate!(self, s => s.checkpoint_parts(team, after, max_bytes))
    }
}

/// Judges one chunk against its blob as stored so far (`None`: no chunk held yet), and
/// updates that record as if it were stored. Both backends decide with this one function.
pub(crate) fn judge_chunk(
    blob: &mut Option<StoredBlob>,
    chunk: &NewChunk,
    stored_bytes: impl FnOnce() -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<ChunkOutcome, StorageError> {
    if chunk.index >= chunk.info.count {
        return Ok(ChunkOutcome::Mismatch);
    }
    match blob {
        None => {
            if chunk.index != 0 {
                return Ok(ChunkOutcome::Gap { held: 0 });
            }
            *blob = Some(StoredBlob {
                info: chunk.info.clone(),
                held: 1,
            });
            Ok(ChunkOutcome::Stored)
        }
        Some(held) if held.info != chunk.info => Ok(ChunkOutcome::Mismatch),
        Some(held) if chunk.index > held.held => Ok(ChunkOutcome::Gap { held: held.held }),
        Some(held) if chunk.index == held.held => {
            held.held += 1;
            Ok(ChunkOutcome::Stored)
        }
        Some(_) => Ok(match stored_bytes()? {
            Some(bytes) if bytes == chunk.bytes => ChunkOutcome::Duplicate,
            _ => ChunkOutcome::Conflict,
        }),
    }
}

/// A statement as stored: its JSON.
pub(crate) fn statement_json(statement: &Statement) -> Result<String, StorageError> {
    serde_json::to_string(statement).map_err(|e| StorageError::Backend(e.to_string()))
}

/// A team receipt as stored: its team, counter and JSON.
pub(crate) struct ReceiptRow {
    pub(crate) team: String,
    pub(crate) counter: i64,
    pub(crate) body: String,
}

/// The rows of team receipts; a receipt naming no team is not stored (the caller refuses it).
pub(crate) fn receipt_rows(receipts: &[Receipt]) -> Result<Vec<ReceiptRow>, StorageError> {
    receipts
        .iter()
        .map(|r| {
            Ok(ReceiptRow {
                team: r
                    .team
                    .clone()
                    .ok_or_else(|| StorageError::Backend("a receipt names no team".into()))?,
                counter: to_i64(r.counter)?,
                body: serde_json::to_string(r).map_err(|e| StorageError::Backend(e.to_string()))?,
            })
        })
        .collect()
}

/// What to do with `row` given its team's held receipt: `None` to store it, or why not.
pub(crate) fn judge_receipt(
    held: Option<(i64, &str)>,
    row: &ReceiptRow,
) -> Result<Option<ReceiptOutcome>, StorageError> {
    Ok(match held {
        Some((c, b)) if c == row.counter && b == row.body => Some(ReceiptOutcome::Same),
        Some((c, _)) if c >= row.counter => Some(ReceiptOutcome::Stale { held: to_u64(c)? }),
        _ => None,
    })
}

pub(crate) fn parse_receipt(json: &str) -> Result<Receipt, StorageError> {
    serde_json::from_str(json)
        .map_err(|e| StorageError::Corrupt(format!("the stored receipt does not parse: {e}")))
}

/// Checks that `statements` are numbered `after + 1`, `after + 2`... as the chain needs.
pub(crate) fn check_numbering(after: u64, statements: &[Statement]) -> Result<(), StorageError> {
    for (i, s) in statements.iter().enumerate() {
        if Some(s.counter) != after.checked_add(i as u64 + 1) || s.counter > i64::MAX as u64 {
            return Err(StorageError::Backend(format!(
                "roster statement {} does not follow statement {after} without a gap",
                s.counter
            )));
        }
    }
    Ok(())
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
