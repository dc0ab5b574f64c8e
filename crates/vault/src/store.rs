//! The SQLite file: schema, pragmas and encrypted settings.

use std::path::Path;

use cairn_crypto::LocalCipher;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::{Settings, VaultError};

/// Bumped when the schema changes; a newer file is refused rather than misread.
const FORMAT: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
-- Every sealed change this vault holds, its own and (after sync) others'. A device's own
-- changes are numbered 1, 2, 3... without gaps; (author, seq) is stored once.
CREATE TABLE changes (
    author  BLOB    NOT NULL,
    seq     INTEGER NOT NULL,
    case_id BLOB    NOT NULL,
    sealed  BLOB    NOT NULL,
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
    let conn = Connection::open(path).map_err(sql)?;
    configure(&conn, path)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('format', ?1)",
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
        FORMAT => Ok(conn),
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

/// Reads an encrypted value from `meta` (slot-bound to its key).
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    path: &Path,
) -> Result<Option<T>, VaultError> {
    let corrupt = |detail: String| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let sealed: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| VaultError::sqlite(path, e))?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = cipher
        .decrypt(format!("meta:{key}").as_bytes(), &sealed)
        .map_err(|_| corrupt(format!("its {key} do not decrypt with this key file")))?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| corrupt(format!("unreadable {key}: {e}")))
}

/// Writes an encrypted value to `meta`.
pub(crate) fn write_meta<T: serde::Serialize>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    value: &T,
    path: &Path,
) -> Result<(), VaultError> {
    let plain = serde_json::to_vec(value).map_err(|e| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let sealed = cipher.encrypt(format!("meta:{key}").as_bytes(), &plain)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, sealed],
    )
    .map_err(|e| VaultError::sqlite(path, e))?;
    Ok(())
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
