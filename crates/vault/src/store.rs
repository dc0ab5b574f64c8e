//! The SQLite file: schema, pragmas and encrypted settings.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_crypto::LocalCipher;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::{Settings, VaultError};

/// Bumped when the schema changes; a newer file is refused rather than misread.
const FORMAT: i64 = 2;

const SCHEMA: &str = "
-- Encrypted records, each bound to its key and to the version it was written at; the
-- `versions` record names the current version of every other, so an older copy put back
-- is detected.
CREATE TABLE meta (
    key     TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    value   BLOB NOT NULL
) STRICT;
-- Every sealed change this vault holds, its own and (after sync) others'. A device's own
-- changes are numbered 1, 2, 3... without gaps; (author, seq) is stored once.
CREATE TABLE changes (
    author  BLOB    NOT NULL,
    seq     INTEGER NOT NULL,
    case_id BLOB    NOT NULL,
    sealed  BLOB    NOT NULL,
    -- When a change from another device arrived here (ms since the epoch); NULL for own.
    received_at INTEGER,
    -- Automerge operations in the change, to bound what one case may cost to load.
    ops     INTEGER NOT NULL,
    PRIMARY KEY (author, seq)
) STRICT;
-- Signed changes refused once (by the digest of their sealed bytes), so that they are not
-- judged and reported again. No reason is kept: it could quote case content.
CREATE TABLE refused (
    author BLOB    NOT NULL,
    seq    INTEGER NOT NULL,
    digest BLOB    NOT NULL,
    PRIMARY KEY (author, seq)
) STRICT;
CREATE INDEX changes_by_case ON changes (case_id);
-- A cache rebuilt from the log: the encrypted Automerge document and an encrypted summary.
CREATE TABLE cases (
    case_id  BLOB PRIMARY KEY,
    snapshot BLOB NOT NULL,
    summary  BLOB NOT NULL
) STRICT;
-- Cases holding received changes whose dependencies have not arrived yet.
CREATE TABLE waiting (
    case_id BLOB PRIMARY KEY
) STRICT;
";

pub(crate) fn create(path: &Path) -> Result<Connection, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    // Made owner-only before SQLite opens it; SQLite gives its WAL the same mode.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| VaultError::io("create", path, e))?;
    let conn = Connection::open(path).map_err(sql)?;
    configure(&conn, path)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    conn.execute_batch(crate::blobs::SCHEMA).map_err(sql)?;
    conn.execute(
        "INSERT INTO meta (key, version, value) VALUES ('format', 0, ?1)",
        params![FORMAT.to_be_bytes().to_vec()],
    )
    .map_err(sql)?;
    Ok(conn)
}

pub(crate) fn open(path: &Path) -> Result<Connection, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    configure(&conn, path)?;
    let format: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql)?;
    let corrupt = |detail: &str| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let format: [u8; 8] = format
        .ok_or_else(|| corrupt("no format marker"))?
        .try_into()
        .map_err(|_| corrupt("bad format marker"))?;
    match i64::from_be_bytes(format) {
        // Attachments came within format 2: their tables are added to a vault made before.
        FORMAT => {
            conn.execute_batch(crate::blobs::SCHEMA).map_err(sql)?;
            Ok(conn)
        }
        n if n > FORMAT => Err(corrupt(&format!(
            "format {n} was written by a newer cairn; upgrade cairn"
        ))),
        n => Err(corrupt(&format!("unknown format {n}"))),
    }
}

fn configure(conn: &Connection, path: &Path) -> Result<(), VaultError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| VaultError::sqlite(path, e))?;
    // WAL for crash safety without blocking readers; FULL so a reported success is on disk;
    // secure_delete so superseded ciphertext pages are zeroed rather than left behind.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;",
    )
    .map_err(|e| VaultError::sqlite(path, e))
}

const VERSIONS: &str = "versions";

/// Reads and decrypts one `meta` row as written at its version.
fn read_row<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    path: &Path,
) -> Result<Option<(u64, T)>, VaultError> {
    let corrupt = |detail: String| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT version, value FROM meta WHERE key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| VaultError::sqlite(path, e))?;
    let Some((version, sealed)) = row else {
        return Ok(None);
    };
    let plain = cipher
        .decrypt(slot(key, version).as_bytes(), &sealed)
        .map_err(|_| corrupt(format!("its {key} do not decrypt with this key file")))?;
    serde_json::from_slice(&plain)
        .map(|v| Some((version as u64, v)))
        .map_err(|e| corrupt(format!("unreadable {key}: {e}")))
}

fn slot(key: &str, version: i64) -> String {
    format!("meta:{key}:{version}")
}

/// The current version of every record, and the generation last written.
fn versions(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<(u64, BTreeMap<String, u64>), VaultError> {
    Ok(read_row(conn, cipher, VERSIONS, path)?.unwrap_or_default())
}

fn write_row<T: serde::Serialize>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    version: u64,
    value: &T,
    path: &Path,
) -> Result<(), VaultError> {
    let plain = serde_json::to_vec(value).map_err(|e| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let version = version as i64;
    let sealed = cipher.encrypt(slot(key, version).as_bytes(), &plain)?;
    conn.execute(
        "INSERT INTO meta (key, version, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value",
        params![key, version, sealed],
    )
    .map_err(|e| VaultError::sqlite(path, e))?;
    Ok(())
}

/// Reads an encrypted value from `meta`, refusing an older copy of it put back.
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    path: &Path,
) -> Result<Option<T>, VaultError> {
    let (_, current) = versions(conn, cipher, path)?;
    let row = read_row(conn, cipher, key, path)?;
    let tampered = || VaultError::Tampered {
        path: path.to_path_buf(),
        record: key.to_string(),
    };
    match (row, current.get(key)) {
        (Some((version, value)), Some(expected)) if version == *expected => Ok(Some(value)),
        (None, None) => Ok(None),
        _ => Err(tampered()),
    }
}

/// Writes an encrypted value to `meta` at the next version, and records that version.
pub(crate) fn write_meta<T: serde::Serialize>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    value: &T,
    path: &Path,
) -> Result<(), VaultError> {
    let (generation, mut current) = versions(conn, cipher, path)?;
    let next = generation + 1;
    write_row(conn, cipher, key, next, value, path)?;
    current.insert(key.to_string(), next);
    write_row(conn, cipher, VERSIONS, next, &current, path)
}

pub(crate) fn read_settings(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<Settings, VaultError> {
    read_meta(conn, cipher, "settings", path)?.ok_or_else(|| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: "no settings".into(),
    })
}

pub(crate) fn write_settings(
    conn: &Connection,
    cipher: &LocalCipher,
    settings: &Settings,
    path: &Path,
) -> Result<(), VaultError> {
    write_meta(conn, cipher, "settings", settings, path)
}
