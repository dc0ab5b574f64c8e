//! The vault's head: what lets a rolled-back `vault.db` (an older copy put back, or one case's
//! rows put back and its last change deleted) be told from the one cairn last wrote.
//!
//! Every row of the covered tables has a keyed tag (`LocalCipher::tag` over its table, column
//! names and values); the tags are summed modulo 2^256 into buckets (one per case for the rows
//! that name a case, one for `meta`, one for everything else), kept in `cairn_head_buckets` by
//! temporary triggers in the same transaction as every write, so no call site can forget them.
//! The sum of all buckets and a generation counted up by every commit form the vault's state.
//! Without the vault key nobody can compute a tag, so nobody can make rows add up to a sum.
//!
//! The state is also kept in `vault.head`, beside the key file, encrypted and authenticated with
//! the vault key: before each commit it names the state before and the state the commit makes
//! (a kill between the two leaves either), after the commit only the new one. Opening refuses a
//! database whose state is not one the head names, and recomputes the `meta` bucket; loading a
//! case recomputes its bucket; `cairn check` recomputes every bucket.
//!
//! Commits take an exclusive lock on the vault's directory from before the head is written
//! until it is settled, so two cairn processes never write it out of order.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_crypto::{DeviceKeys, LocalCipher};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::VaultError;

/// The head file, beside `keys.age`.
pub(crate) const FILE: &str = crate::files::HEAD_FILE;
/// The encrypted `meta` record that says this vault keeps a head: a vault with it and without
/// its head tables or file was tampered with.
pub(crate) const MARKER: &str = "head";

/// What a row's tag is taken for.
const ROW_TAG: &str = "cairn vault row v1";
/// What the head file is encrypted for.
const HEAD_SLOT: &[u8] = b"cairn vault head v1";

/// The bucket of `meta` rows, and of every other row that names no case. A case's bucket is
/// its 16-byte id, so neither can be taken for one.
const META_BUCKET: &[u8] = b"meta";
const VAULT_BUCKET: &[u8] = b"vault";

/// The tables the head covers, with the column that names a row's case, if any.
const COVERED: [(&str, Option<&str>); 13] = [
    ("meta", None),
    ("changes", Some("case_id")),
    ("refused", None),
    ("cases", Some("case_id")),
    ("waiting", Some("case_id")),
    ("blobs", Some("case_id")),
    ("blob_chunks", None),
    ("imported", None),
    ("editions", None),
    ("drafts", None),
    ("checkpointed", Some("case_id")),
    ("unpublished", Some("case_id")),
    ("bases", Some("case_id")),
];

pub(crate) const SCHEMA: &str = "
-- The generation of the vault's state: counted up by every commit.
CREATE TABLE IF NOT EXISTS cairn_head (
    id         INTEGER PRIMARY KEY CHECK (id = 0),
    generation INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO cairn_head (id, generation) VALUES (0, 0);
-- The sum modulo 2^256 of the keyed tags of a bucket's rows (see head.rs).
CREATE TABLE IF NOT EXISTS cairn_head_buckets (
    bucket BLOB PRIMARY KEY,
    acc    BLOB NOT NULL
) STRICT, WITHOUT ROWID;
";

type Acc = [u8; 32];

/// `a + b` modulo 2^256, both little-endian.
fn add(a: &Acc, b: &Acc) -> Acc {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        let sum = u16::from(*x) + u16::from(*y) + carry;
        *o = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// `-a` modulo 2^256.
fn neg(a: &Acc) -> Acc {
    let inverted = a.map(|x| !x);
    let mut one = [0u8; 32];
    one[0] = 1;
    add(&inverted, &one)
}

fn acc_from(bytes: &[u8]) -> Option<Acc> {
    bytes.try_into().ok()
}

/// The keyed tag of one row: its table, then each non-NULL column's name, type and value (a
/// column added later, NULL in old rows, leaves their tags as they were).
fn row_tag<'a>(
    cipher: &LocalCipher,
    table: &str,
    columns: impl Iterator<Item = (&'a str, ValueRef<'a>)>,
) -> Acc {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(table.as_bytes());
    buf.push(0);
    for (name, value) in columns {
        let (kind, bytes): (u8, std::borrow::Cow<'_, [u8]>) = match value {
            ValueRef::Null => continue,
            ValueRef::Integer(n) => (b'i', n.to_be_bytes().to_vec().into()),
            ValueRef::Real(x) => (b'r', x.to_bits().to_be_bytes().to_vec().into()),
            ValueRef::Text(t) => (b't', t.into()),
            ValueRef::Blob(b) => (b'b', b.into()),
        };
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        buf.push(kind);
        buf.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        buf.extend_from_slice(&bytes);
    }
    cipher.tag(ROW_TAG, &buf)
}

/// One state of the vault: its generation and the sum of its buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    generation: u64,
    acc: Acc,
}

/// What `vault.head` holds: the settled state, and while a commit is under way the state it
/// makes (exactly one generation on).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Head {
    settled: State,
    next: Option<State>,
}

impl Head {
    fn accepts(&self, state: &State) -> bool {
        self.settled == *state || self.next.as_ref() == Some(state)
    }
}

/// The head file of one vault and this connection's hold on it during a commit.
struct HeadFile {
    dir: PathBuf,
    cipher: LocalCipher,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// A covered row was written since the last commit or rollback.
    dirty: bool,
    /// The directory, locked from before the head names a commit until it is settled.
    lock: Option<File>,
    /// The head as the commit under way wrote it.
    sealing: Option<Head>,
}

impl HeadFile {
    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn read(&self) -> Result<Option<Head>, String> {
        let path = self.path();
        let sealed = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "its head file {} cannot be read: {e}",
                    path.display()
                ))
            }
        };
        let plain = self.cipher.decrypt(HEAD_SLOT, &sealed).map_err(|_| {
            format!(
                "its head file {} does not verify with this key file",
                path.display()
            )
        })?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| format!("its head file {} is unreadable: {e}", path.display()))
    }

    /// Replaces the head file: a synced temporary file renamed over it, then the directory
    /// synced, so that a crash leaves the old head or the new one.
    fn write(&self, head: &Head) -> Result<(), VaultError> {
        let plain = serde_json::to_vec(head).map_err(|e| VaultError::Corrupt {
            path: self.path(),
            detail: e.to_string(),
        })?;
        let sealed = self.cipher.encrypt(HEAD_SLOT, &plain)?;
        let pending = self.dir.join(format!("{FILE}.tmp"));
        crate::files::write_synced(&pending, &sealed)?;
        std::fs::rename(&pending, self.path())
            .map_err(|e| VaultError::io("rename", &pending, e))?;
        crate::files::sync_dir(&self.dir)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> Result<File, VaultError> {
        let dir = File::open(&self.dir).map_err(|e| VaultError::io("open", &self.dir, e))?;
        dir.lock()
            .map_err(|e| VaultError::io("lock", &self.dir, e))?;
        Ok(dir)
    }

    /// Before a commit that makes `next`: the head names the state before it and `next`.
    fn seal(&self, next: State) -> Result<(), VaultError> {
        let mut held = self.held();
        if held.lock.is_none() {
            held.lock = Some(self.lock()?);
        }
        let done = self.seal_locked(next);
        match done {
            Ok(head) => {
                held.sealing = Some(head);
                held.dirty = false;
                Ok(())
            }
            Err(e) => {
                held.lock = None;
                held.sealing = None;
                Err(e)
            }
        }
    }

    fn seal_locked(&self, next: State) -> Result<Head, VaultError> {
        let refused = |detail: String| VaultError::RolledBack {
            path: self.dir.join(crate::files::DATABASE),
            detail,
        };
        let before = next.generation.checked_sub(1);
        let settled = match self.read().map_err(refused)? {
            // The vault's first head: made with the vault, or when it is first opened by a
            // cairn that keeps one.
            None if next.generation == 1 => State {
                generation: 0,
                acc: [0; 32],
            },
            None => return Err(refused(format!("its head file {FILE} is missing"))),
            Some(head) => match (head.settled, head.next) {
                (s, _) if Some(s.generation) == before => s,
                (_, Some(n)) if Some(n.generation) == before => n,
                (s, _) => {
                    return Err(refused(format!(
                        "it is at generation {}, its head file at {}",
                        next.generation.saturating_sub(1),
                        s.generation
                    )))
                }
            },
        };
        let head = Head {
            settled,
            next: Some(next),
        };
        self.write(&head)?;
        Ok(head)
    }

    /// After the commit: the head names only what it made. Then the lock goes.
    fn settle(&self, committed: bool) -> Result<(), VaultError> {
        let mut held = self.held();
        let sealing = held.sealing.take();
        let done = match (committed, sealing) {
            (
                true,
                Some(Head {
                    next: Some(next), ..
                }),
            ) => self.write(&Head {
                settled: next,
                next: None,
            }),
            // Not committed: the database is the state before, which the head still names.
            _ => Ok(()),
        };
        held.lock = None;
        done
    }
}

/// Registers the head's SQL functions on a vault connection and, if the vault keeps a head,
/// the triggers that keep its buckets. Every connection cairn writes through has them: one
/// without cannot commit to a vault that keeps a head.
pub(crate) fn attach(conn: &Connection, keys: &DeviceKeys, dir: &Path) -> Result<(), VaultError> {
    let db = dir.join(crate::files::DATABASE);
    let sql = |e| VaultError::sqlite(&db, e);
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let cipher = keys.local_cipher();
    let file = Arc::new(HeadFile {
        dir: dir.to_path_buf(),
        cipher: keys.local_cipher(),
        held: Mutex::new(Held::default()),
    });
    // cairn_row(table, name1, value1, name2, value2, ...): the row's tag. Only the triggers
    // call it: a call means a covered row was written.
    let writes = Arc::clone(&file);
    conn.create_scalar_function("cairn_row", -1, pure, move |ctx| {
        writes.held().dirty = true;
        let table = ctx.get::<String>(0)?;
        let mut names = Vec::with_capacity(ctx.len() / 2);
        for i in (1..ctx.len()).step_by(2) {
            names.push(ctx.get::<String>(i)?);
        }
        let columns = names
            .iter()
            .enumerate()
            .map(|(n, name)| (name.as_str(), ctx.get_raw(2 + 2 * n)));
        Ok(row_tag(&cipher, &table, columns).to_vec())
    })
    .map_err(sql)?;
    let acc_arg = |ctx: &rusqlite::functions::Context<'_>, i: usize| {
        let bytes = ctx.get::<Vec<u8>>(i)?;
        acc_from(&bytes).ok_or_else(|| {
            rusqlite::Error::UserFunctionError("a head sum is 32 bytes".to_string().into())
        })
    };
    conn.create_scalar_function("cairn_add", 2, pure, move |ctx| {
        Ok(add(&acc_arg(ctx, 0)?, &acc_arg(ctx, 1)?).to_vec())
    })
    .map_err(sql)?;
    conn.create_scalar_function("cairn_neg", 1, pure, move |ctx| {
        Ok(neg(&acc_arg(ctx, 0)?).to_vec())
    })
    .map_err(sql)?;
    // Through SQLite an error travels as text: a refusal keeps its detail behind a prefix.
    let user = |e: VaultError| {
        let text = match e {
            VaultError::RolledBack { detail, .. } => format!("{REFUSED}{detail}"),
            other => other.to_string(),
        };
        rusqlite::Error::UserFunctionError(text.into())
    };
    let sealer = Arc::clone(&file);
    conn.create_scalar_function(
        "cairn_head_seal",
        2,
        FunctionFlags::SQLITE_UTF8,
        move |ctx| {
            let generation = ctx.get::<i64>(0)? as u64;
            let acc = acc_arg(ctx, 1)?;
            sealer.seal(State { generation, acc }).map_err(user)?;
            Ok(0i64)
        },
    )
    .map_err(sql)?;
    let settler = Arc::clone(&file);
    conn.create_scalar_function(
        "cairn_head_settle",
        1,
        FunctionFlags::SQLITE_UTF8,
        move |ctx| {
            settler.settle(ctx.get::<bool>(0)?).map_err(user)?;
            Ok(0i64)
        },
    )
    .map_err(sql)?;
    // A commit of covered rows that did not go through [`commit`] would leave the head behind
    // the database (a vault every later open refuses): it is turned into a rollback.
    let guard = Arc::clone(&file);
    conn.commit_hook(Some(move || {
        let mut held = guard.held();
        let unsealed = held.dirty && held.sealing.is_none();
        held.dirty = false;
        if unsealed {
            tracing::error!("a vault write bypassed the head and was rolled back");
        }
        unsealed
    }));
    conn.rollback_hook(Some(move || file.held().dirty = false));
    if headed(conn, &db)? {
        install_triggers(conn, &db)?;
    }
    Ok(())
}

/// Whether this vault keeps a head (its tables are there).
pub(crate) fn headed(conn: &Connection, path: &Path) -> Result<bool, VaultError> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'cairn_head'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| VaultError::sqlite(path, e))
}

/// The columns of a table, in order (none if it does not exist).
fn columns(conn: &Connection, table: &str, path: &Path) -> Result<Vec<String>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(sql)?;
    let rows = stmt.query_map([table], |r| r.get(0)).map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

/// The SQL that names a row's bucket, for `NEW` or `OLD`.
fn bucket_sql(case_column: Option<&str>, table: &str, row: &str) -> String {
    match (case_column, table) {
        (Some(column), _) => format!("{row}.{column}"),
        (None, "meta") => "CAST('meta' AS BLOB)".into(),
        (None, _) => "CAST('vault' AS BLOB)".into(),
    }
}

/// Temporary triggers (this connection's own) that add every row written to a covered table
/// to its bucket and take every row removed out of it.
pub(crate) fn install_triggers(conn: &Connection, path: &Path) -> Result<(), VaultError> {
    let mut script = String::new();
    for (table, case_column) in COVERED {
        let names = columns(conn, table, path)?;
        if names.is_empty() {
            continue;
        }
        let tag = |row: &str| {
            let args: Vec<String> = names.iter().map(|n| format!("'{n}', {row}.{n}")).collect();
            format!("cairn_row('{table}', {})", args.join(", "))
        };
        let upsert = |row: &str, value: String| {
            format!(
                "INSERT INTO cairn_head_buckets (bucket, acc) VALUES ({}, {value})
                 ON CONFLICT (bucket) DO UPDATE SET acc = cairn_add(acc, excluded.acc);",
                bucket_sql(case_column, table, row)
            )
        };
        let added = upsert("NEW", tag("NEW"));
        let removed = upsert("OLD", format!("cairn_neg({})", tag("OLD")));
        script.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS cairn_head_{table}_insert AFTER INSERT ON {table}
             BEGIN {added} END;
             CREATE TEMP TRIGGER IF NOT EXISTS cairn_head_{table}_update AFTER UPDATE ON {table}
             BEGIN {removed} {added} END;
             CREATE TEMP TRIGGER IF NOT EXISTS cairn_head_{table}_delete AFTER DELETE ON {table}
             BEGIN {removed} END;"
        ));
    }
    conn.execute_batch(&script)
        .map_err(|e| VaultError::sqlite(path, e))
}

/// Commits the transaction open on `conn`, keeping the head in step: the head names the state
/// the commit makes before it, and only that state after it. A vault without a head (one
/// being made or carried over) just commits.
pub(crate) fn commit(conn: &Connection, path: &Path) -> Result<(), VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    if !headed(conn, path)? {
        return conn.execute_batch("COMMIT").map_err(sql);
    }
    let generation: i64 = conn
        .query_row(
            "UPDATE cairn_head SET generation = generation + 1 RETURNING generation",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    let acc = stored_sum(conn, path)?;
    conn.query_row(
        "SELECT cairn_head_seal(?1, ?2)",
        params![generation, acc.to_vec()],
        |r| r.get::<_, i64>(0),
    )
    .map_err(|e| head_failed(path, e))?;
    crate::failpoint::hit("head:sealed");
    let done = conn.execute_batch("COMMIT").map_err(sql);
    if done.is_ok() {
        crate::failpoint::hit("head:committed");
    }
    // A head not settled after a commit names it as `next`, which the next open settles.
    if let Err(e) = conn.query_row("SELECT cairn_head_settle(?1)", [done.is_ok()], |r| {
        r.get::<_, i64>(0)
    }) {
        tracing::warn!("the vault's head was not settled after a commit: {e}");
    }
    done
}

/// What marks a refusal's detail in the text of a head function's error.
const REFUSED: &str = "refused: ";

fn head_failed(path: &Path, e: rusqlite::Error) -> VaultError {
    let rusqlite::Error::SqliteFailure(_, Some(text)) = &e else {
        return VaultError::sqlite(path, e);
    };
    match text.strip_prefix(REFUSED) {
        Some(detail) => VaultError::RolledBack {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        },
        None => VaultError::io(
            "write",
            &path.with_file_name(FILE),
            std::io::Error::other(text.clone()),
        ),
    }
}

/// The buckets as stored.
fn stored(conn: &Connection, path: &Path) -> Result<BTreeMap<Vec<u8>, Acc>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn
        .prepare_cached("SELECT bucket, acc FROM cairn_head_buckets")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next().map_err(sql)? {
        let bucket: Vec<u8> = row.get(0).map_err(sql)?;
        let acc: Vec<u8> = row.get(1).map_err(sql)?;
        let acc = acc_from(&acc).ok_or_else(|| VaultError::RolledBack {
            path: path.to_path_buf(),
            detail: "a sum of its head is not 32 bytes".into(),
        })?;
        out.insert(bucket, acc);
    }
    Ok(out)
}

fn stored_sum(conn: &Connection, path: &Path) -> Result<Acc, VaultError> {
    Ok(stored(conn, path)?
        .values()
        .fold([0u8; 32], |sum, acc| add(&sum, acc)))
}

/// Recomputes buckets from the rows: every bucket, or (`only`) the rows of one case or of
/// `meta`.
fn tally(
    conn: &Connection,
    cipher: &LocalCipher,
    only: Option<&[u8]>,
    path: &Path,
) -> Result<BTreeMap<Vec<u8>, Acc>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut out: BTreeMap<Vec<u8>, Acc> = BTreeMap::new();
    for (table, case_column) in COVERED {
        let names = columns(conn, table, path)?;
        if names.is_empty() {
            continue;
        }
        let filter = match only {
            None => Some(String::new()),
            Some(META_BUCKET) => (table == "meta").then(String::new),
            Some(_) => case_column.map(|column| format!(" WHERE {column} = ?1")),
        };
        let Some(filter) = filter else { continue };
        let list = names.join(", ");
        let mut stmt = conn
            .prepare(&format!("SELECT {list} FROM {table}{filter}"))
            .map_err(sql)?;
        let mut rows = match (filter.is_empty(), only) {
            (false, Some(bucket)) => stmt.query([bucket]),
            _ => stmt.query([]),
        }
        .map_err(sql)?;
        let case_index = case_column.and_then(|c| names.iter().position(|n| n == c));
        while let Some(row) = rows.next().map_err(sql)? {
            let values = (0..names.len())
                .map(|i| row.get_ref(i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            let tag = row_tag(
                cipher,
                table,
                names.iter().map(String::as_str).zip(values.iter().copied()),
            );
            let bucket = match (case_index, table) {
                (Some(i), _) => match values[i] {
                    ValueRef::Blob(b) => b.to_vec(),
                    _ => VAULT_BUCKET.to_vec(),
                },
                (None, "meta") => META_BUCKET.to_vec(),
                (None, _) => VAULT_BUCKET.to_vec(),
            };
            let sum = out.entry(bucket).or_insert([0; 32]);
            *sum = add(sum, &tag);
        }
    }
    Ok(out)
}

/// Buckets whose stored sum is not what their rows add up to (a bucket at zero and one that
/// is absent are the same).
fn differing(stored: &BTreeMap<Vec<u8>, Acc>, tallied: &BTreeMap<Vec<u8>, Acc>) -> Vec<Vec<u8>> {
    let zero = [0u8; 32];
    let mut keys: Vec<&Vec<u8>> = stored.keys().chain(tallied.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| stored.get(*k).unwrap_or(&zero) != tallied.get(*k).unwrap_or(&zero))
        .cloned()
        .collect()
}

/// What opening checks of a vault that keeps a head: its state is one the head file names
/// (settling a commit a kill left unsettled), and its `meta` records add up to their bucket.
/// Cheap: it reads the buckets, not the rows, besides `meta`.
pub(crate) fn verify(
    conn: &Connection,
    keys: &DeviceKeys,
    dir: &Path,
    path: &Path,
) -> Result<(), VaultError> {
    let file = HeadFile {
        dir: dir.to_path_buf(),
        cipher: keys.local_cipher(),
        held: Mutex::new(Held::default()),
    };
    let refused = |detail: String| VaultError::RolledBack {
        path: path.to_path_buf(),
        detail,
    };
    // Locked: no commit lands between reading the database and the head.
    let _lock = file.lock()?;
    let (state, meta_stored, meta_rows) = crate::transactions::one_snapshot(conn, path, || {
        let generation: i64 = conn
            .query_row("SELECT generation FROM cairn_head WHERE id = 0", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| VaultError::sqlite(path, e))?
            .ok_or_else(|| refused("its head generation is missing".into()))?;
        let buckets = stored(conn, path)?;
        let acc = buckets.values().fold([0u8; 32], |sum, acc| add(&sum, acc));
        let meta = buckets.get(META_BUCKET).copied().unwrap_or([0; 32]);
        let rows = tally(conn, &file.cipher, Some(META_BUCKET), path)?;
        let state = State {
            generation: generation as u64,
            acc,
        };
        Ok((
            state,
            meta,
            rows.get(META_BUCKET).copied().unwrap_or([0; 32]),
        ))
    })?;
    let head = file.read().map_err(refused)?.ok_or_else(|| {
        refused(format!(
            "its head file {FILE} is missing; put back the {FILE} that was copied with it"
        ))
    })?;
    if !head.accepts(&state) {
        return Err(refused(if state.generation < head.settled.generation {
            format!(
                "it is older than its head file (generation {}, the head is at {}): an older copy of it was put back",
                state.generation, head.settled.generation
            )
        } else {
            format!(
                "it is not the state its head file records (generation {}, the head is at {})",
                state.generation, head.settled.generation
            )
        }));
    }
    if meta_rows != meta_stored {
        return Err(refused(
            "its encrypted records are not the ones it last wrote (an older copy was put back)"
                .into(),
        ));
    }
    if head.next == Some(state) {
        // The commit a kill left unsettled is here: the head now names it alone.
        file.write(&Head {
            settled: state,
            next: None,
        })?;
    }
    Ok(())
}

/// Recomputes one case's bucket from its rows: what loading a case for a command checks.
pub(crate) fn verify_case(
    conn: &Connection,
    cipher: &LocalCipher,
    id: &Uuid,
    reference: &str,
    path: &Path,
) -> Result<(), VaultError> {
    if !headed(conn, path)? {
        return Ok(());
    }
    let bucket = id.as_bytes().as_slice();
    let stored_sum = conn
        .query_row(
            "SELECT acc FROM cairn_head_buckets WHERE bucket = ?1",
            [bucket],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()
        .map_err(|e| VaultError::sqlite(path, e))?
        .and_then(|acc| acc_from(&acc))
        .unwrap_or([0; 32]);
    let rows = tally(conn, cipher, Some(bucket), path)?;
    if rows.get(bucket).copied().unwrap_or([0; 32]) != stored_sum {
        return Err(rolled_back_case(path, reference));
    }
    Ok(())
}

fn rolled_back_case(path: &Path, reference: &str) -> VaultError {
    VaultError::RolledBack {
        path: path.to_path_buf(),
        detail: format!(
            "case {reference} is not as the vault last wrote it (an older copy of it was put back, or a change of it removed)"
        ),
    }
}

/// Recomputes every bucket from every row (O(vault size)): what `cairn check` adds. Names
/// the cases whose rows do not add up, with `name` giving a case's reference.
pub(crate) fn check_rows(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
    name: impl Fn(&Uuid) -> String,
) -> Result<(), VaultError> {
    if !headed(conn, path)? {
        return Ok(());
    }
    let tallied = tally(conn, cipher, None, path)?;
    let stored = stored(conn, path)?;
    let differ = differing(&stored, &tallied);
    let cases: Vec<String> = differ
        .iter()
        .filter_map(|b| Uuid::from_slice(b).ok())
        .map(|id| name(&id))
        .collect();
    match (cases.first(), differ.first()) {
        (Some(_), _) => Err(rolled_back_case(path, &cases.join(", "))),
        (None, Some(bucket)) => Err(VaultError::RolledBack {
            path: path.to_path_buf(),
            detail: format!(
                "its {} rows are not the ones it last wrote",
                if bucket == META_BUCKET {
                    "encrypted records'"
                } else {
                    "attachment, refusal, import, edition or draft"
                }
            ),
        }),
        (None, None) => Ok(()),
    }
}

/// The generation the head file in `dir` names as settled, if there is one (a carry-over
/// refuses a database older than it).
pub(crate) fn file_generation(dir: &Path, keys: &DeviceKeys) -> Result<Option<u64>, String> {
    let file = HeadFile {
        dir: dir.to_path_buf(),
        cipher: keys.local_cipher(),
        held: Mutex::new(Held::default()),
    };
    Ok(file.read()?.map(|head| head.settled.generation))
}

/// Fills the buckets from the rows as they are, in a vault whose head tables were just made
/// (rows written before the triggers, such as the format marker, are counted too).
pub(crate) fn seed(conn: &Connection, cipher: &LocalCipher, path: &Path) -> Result<(), VaultError> {
    for (bucket, acc) in tally(conn, cipher, None, path)? {
        conn.execute(
            "INSERT INTO cairn_head_buckets (bucket, acc) VALUES (?1, ?2)",
            params![bucket, acc.to_vec()],
        )
        .map_err(|e| VaultError::sqlite(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use super::*;

    #[test]
    fn sums_wrap_and_negation_undoes_an_addition() {
        let mut a = [0xffu8; 32];
        a[31] = 0x7f;
        let b = [0x01u8; 32];
        assert_eq!(add(&add(&a, &b), &neg(&b)), a);
        assert_eq!(add(&a, &neg(&a)), [0u8; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(add(&[0xffu8; 32], &one), [0u8; 32]);
    }

    #[test]
    fn a_null_column_leaves_a_row_s_tag_as_it_was() {
        let keys = DeviceKeys::generate();
        let cipher = keys.local_cipher();
        let a = row_tag(&cipher, "t", [("x", ValueRef::Integer(1))].into_iter());
        let b = row_tag(
            &cipher,
            "t",
            [("x", ValueRef::Integer(1)), ("y", ValueRef::Null)].into_iter(),
        );
        assert_eq!(a, b);
        let c = row_tag(&cipher, "u", [("x", ValueRef::Integer(1))].into_iter());
        assert_ne!(a, c);
        let d = row_tag(&cipher, "t", [("x", ValueRef::Text(b"1"))].into_iter());
        assert_ne!(a, d);
    }
}
