//! The SQLite file: schema, pragmas and encrypted settings.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_crypto::LocalCipher;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::transactions::one_snapshot;
use crate::{Settings, VaultError};

/// Bumped when the schema changes; a newer file is refused rather than misread. Format 3 keeps
/// team names, sizes and arrival times sealed (at_rest.rs); format 4 keeps a head (head.rs).
/// An older vault is carried over when it is first opened with its keys.
const FORMAT: i64 = 4;

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
    -- The sealed change (whose header names its team) with the time it arrived here,
    -- encrypted under the vault key (`at_rest::seal_change`).
    sealed  BLOB    NOT NULL,
    -- 1: from another device (its arrival time is inside `sealed`).
    received INTEGER NOT NULL DEFAULT 0,
    -- 1: sealed under this device's draft key (epoch 0), to be sealed again at join.
    draft   INTEGER NOT NULL DEFAULT 0,
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

/// Makes the file with the store's tables, then `tables` (the other modules' schemas, given by
/// the caller so that the store imports none of them).
pub(crate) fn create(path: &Path, tables: &[&str]) -> Result<Connection, VaultError> {
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
    for schema in tables {
        conn.execute_batch(schema).map_err(sql)?;
    }
    conn.execute(
        "INSERT INTO meta (key, version, value) VALUES ('format', 0, ?1)",
        params![FORMAT.to_be_bytes().to_vec()],
    )
    .map_err(sql)?;
    Ok(conn)
}

/// Opens the file, adding `tables` (each `IF NOT EXISTS`) to a vault made before them.
pub(crate) fn open(path: &Path, tables: &[&str]) -> Result<Connection, VaultError> {
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
        // Attachments came within format 2, editions and drafts later: their tables
        // (`tables`) are added to a vault made before.
        // Format 2 kept team names, sizes and arrival times in clear: it is carried over to
        // format 3 once its keys are at hand (`at_rest::upgrade`), and format 3 gets its head
        // (`head_carry::carry_over`).
        2 | 3 | FORMAT => {
            for schema in tables {
                conn.execute_batch(schema).map_err(sql)?;
            }
            Ok(conn)
        }
        n if n > FORMAT => Err(corrupt(&format!(
            "format {n} was written by a newer cairn; upgrade cairn"
        ))),
        n => Err(corrupt(&format!("unknown format {n}"))),
    }
}

/// Marks the vault as being of the current format (after carrying it over).
pub(crate) fn set_format(conn: &Connection, path: &Path) -> Result<(), VaultError> {
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'format'",
        params![FORMAT.to_be_bytes().to_vec()],
    )
    .map(|_| ())
    .map_err(|e| VaultError::sqlite(path, e))
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
pub(crate) fn versions(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<(u64, BTreeMap<String, u64>), VaultError> {
    Ok(read_row(conn, cipher, VERSIONS, path)?.unwrap_or_default())
}

pub(crate) fn write_row<T: serde::Serialize>(
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
    let (current, row) = one_snapshot(conn, path, || {
        Ok((
            versions(conn, cipher, path)?.1,
            read_row(conn, cipher, key, path)?,
        ))
    })?;
    let finding = match (row, current.get(key)) {
        (Some((version, value)), Some(expected)) if version == *expected => return Ok(Some(value)),
        (None, None) => return Ok(None),
        (Some((version, _)), Some(expected)) if version < *expected => Finding::Older(key.into()),
        (Some((version, _)), _) => Finding::Newer {
            key: key.into(),
            version,
        },
        (None, Some(_)) => Finding::Missing(key.into()),
    };
    Err(finding.tampered(path))
}

/// Writes an encrypted value to `meta` at the next version, and records that version: both
/// or neither (see [`atomic`]), so that no crash leaves a record its versions do not name.
pub(crate) fn write_meta<T: serde::Serialize>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    value: &T,
    path: &Path,
) -> Result<(), VaultError> {
    atomic(conn, path, || {
        let (generation, mut current) = versions(conn, cipher, path)?;
        let next = generation + 1;
        write_row(conn, cipher, key, next, value, path)?;
        crate::failpoint::hit_keyed("meta:", key);
        current.insert(key.to_string(), next);
        write_row(conn, cipher, VERSIONS, next, &current, path)
    })
}

/// Deletes a record from `meta` and from `versions`, both or neither (see [`atomic`]).
pub(crate) fn delete_meta(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    path: &Path,
) -> Result<(), VaultError> {
    atomic(conn, path, || {
        let (generation, mut current) = versions(conn, cipher, path)?;
        conn.execute("DELETE FROM meta WHERE key = ?1", params![key])
            .map_err(|e| VaultError::sqlite(path, e))?;
        current.remove(key);
        write_row(conn, cipher, VERSIONS, generation + 1, &current, path)
    })
}

/// Whether `meta` holds a row for `key` (read without decrypting it).
pub(crate) fn has_meta(conn: &Connection, key: &str, path: &Path) -> Result<bool, VaultError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key = ?1)",
        params![key],
        |r| r.get(0),
    )
    .map_err(|e| VaultError::sqlite(path, e))
}

/// Runs `write` all or nothing: in a savepoint inside the caller's transaction, else in an
/// IMMEDIATE transaction of its own. Immediate, because the write lock is then taken before
/// the first read: two processes cannot interleave a read-modify-write (of `versions`), and a
/// deferred read-then-write in WAL mode could fail with SQLITE_BUSY_SNAPSHOT.
pub(crate) fn atomic<T>(
    conn: &Connection,
    path: &Path,
    write: impl FnOnce() -> Result<T, VaultError>,
) -> Result<T, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let outermost = conn.is_autocommit();
    let (begin, undo) = if outermost {
        ("BEGIN IMMEDIATE", "ROLLBACK")
    } else {
        (
            "SAVEPOINT cairn_atomic",
            "ROLLBACK TO cairn_atomic; RELEASE cairn_atomic",
        )
    };
    conn.execute_batch(begin).map_err(sql)?;
    let done = write().and_then(|value| {
        match outermost {
            true => crate::head::commit(conn, path),
            false => conn.execute_batch("RELEASE cairn_atomic").map_err(sql),
        }
        .map(|()| value)
    });
    if done.is_err() && !conn.is_autocommit() {
        // Whatever was written goes (a failed COMMIT may leave its transaction open).
        let _ = conn.execute_batch(undo);
    }
    done
}

/// How a record of `meta` disagrees with the versions the vault recorded.
#[derive(Debug)]
enum Finding {
    /// Written at a version older than the one recorded: an older copy put back.
    Older(String),
    /// Written at a version newer than the one recorded.
    Newer { key: String, version: u64 },
    /// Recorded, but not there.
    Missing(String),
}

impl Finding {
    fn tampered(&self, path: &Path) -> VaultError {
        let (record, detail) = match self {
            Finding::Older(key) => (key, "is an older copy put back over the current one"),
            Finding::Newer { key, .. } => (key, "is newer than the version the vault recorded"),
            Finding::Missing(key) => (key, "is missing"),
        };
        VaultError::Tampered {
            path: path.to_path_buf(),
            record: record.clone(),
            detail: detail.to_string(),
        }
    }
}

/// Every record of `meta` (besides the format marker and `versions`) against `versions`:
/// each must decrypt at the version it was written at, which must be the one recorded.
/// Returns the generation `versions` was written at, and what disagrees.
fn audit(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<(u64, Vec<Finding>), VaultError> {
    one_snapshot(conn, path, || audit_in(conn, cipher, path))
}

fn audit_in(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<(u64, Vec<Finding>), VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let (generation, mut recorded) = versions(conn, cipher, path)?;
    let rows: Vec<(String, i64, Vec<u8>)> = {
        let mut stmt = conn
            .prepare(
                "SELECT key, version, value FROM meta WHERE key NOT IN ('format', ?1) ORDER BY key",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![VERSIONS], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    let mut findings = Vec::new();
    for (key, version, sealed) in rows {
        cipher
            .decrypt(slot(&key, version).as_bytes(), &sealed)
            .map_err(|_| VaultError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("its {key} do not decrypt with this key file"),
            })?;
        let version = version as u64;
        match recorded.remove(&key) {
            Some(expected) if expected == version => {}
            Some(expected) if expected > version => findings.push(Finding::Older(key)),
            _ => findings.push(Finding::Newer { key, version }),
        }
    }
    findings.extend(recorded.into_keys().map(Finding::Missing));
    Ok((generation, findings))
}

/// Checks every record against `versions` (as [`audit`]): an error naming the first that
/// disagrees.
pub(crate) fn check_records(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<(), VaultError> {
    match audit(conn, cipher, path)?.1.first() {
        Some(finding) => Err(finding.tampered(path)),
        None => Ok(()),
    }
}

/// What opening checks: every record against `versions` (as [`check_records`]), after
/// completing a write that earlier cairn could leave half done. It wrote a record and then
/// `versions` as two separate statements, so a crash between them left exactly one record
/// written at generation g + 1 while `versions` is still at g, and nothing else ahead. That
/// state is the honest one minus the update of `versions` (the record decrypts at its own
/// version), so recording that version restores exactly the honest state. Anything else that
/// disagrees is refused. Returns the record whose write was completed.
pub(crate) fn open_records(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<Option<String>, VaultError> {
    if refuse_tampered(conn, cipher, path)?.is_none() {
        return Ok(None);
    }
    atomic(conn, path, || {
        // Again under the lock: another process may have completed it meanwhile.
        let found = audit(conn, cipher, path)?;
        let Some((key, version)) = cut_write(&found) else {
            return match found.1.first() {
                Some(finding) => Err(finding.tampered(path)),
                None => Ok(None),
            };
        };
        let (_, mut current) = versions(conn, cipher, path)?;
        current.insert(key.clone(), version);
        write_row(conn, cipher, VERSIONS, version, &current, path)?;
        Ok(Some(key))
    })
}

/// Every record against `versions`, read without the write lock: an error naming the first
/// that disagrees unless all that disagrees is a write earlier cairn cut off (returned).
pub(crate) fn refuse_tampered(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<Option<(String, u64)>, VaultError> {
    let found = audit(conn, cipher, path)?;
    if found.1.is_empty() {
        return Ok(None);
    }
    match cut_write(&found) {
        Some(cut) => Ok(Some(cut)),
        None => Err(found.1[0].tampered(path)),
    }
}

/// The one record written one generation ahead of `versions`, if that is all that disagrees.
fn cut_write((generation, findings): &(u64, Vec<Finding>)) -> Option<(String, u64)> {
    match findings.as_slice() {
        [Finding::Newer { key, version }] if *version == generation + 1 => {
            Some((key.clone(), *version))
        }
        _ => None,
    }
}

/// Reads an encrypted value from `meta` as it is found, whatever `versions` says: for reading
/// out a vault that does not check, never for acting on it.
pub(crate) fn read_meta_as_found<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    cipher: &LocalCipher,
    key: &str,
    path: &Path,
) -> Result<Option<T>, VaultError> {
    Ok(read_row(conn, cipher, key, path)?.map(|(_, value)| value))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use cairn_crypto::{KeyFileCost, SecretString};

    use super::*;
    use crate::{Home, NewVault, PullProgress, Role, Vault};

    fn pass() -> SecretString {
        SecretString::from("pass".to_owned())
    }

    /// A field vault whose `versions` record is at generation 26 and whose progress record was
    /// written at 26 with cursor 26.
    fn at_generation_26(home: &Home) -> Vault {
        let new = NewVault {
            team: "T03".into(),
            name: None,
            role: Role::Field,
        };
        let now = time::OffsetDateTime::now_utc();
        let vault = home
            .create(&pass(), KeyFileCost::LogN(4), new, now)
            .unwrap();
        // Creation wrote settings (1), the keyring (2) and the head record (3).
        for cursor in 4..=26 {
            set_cursor(&vault, cursor).unwrap();
        }
        let (generation, _) = versions(&vault.conn, &vault.cipher, &home.database()).unwrap();
        assert_eq!(generation, 26);
        vault
    }

    /// Writes the pull cursor straight to its record: these tests are about records, not pulls.
    fn set_cursor(vault: &Vault, cursor: u64) -> Result<(), VaultError> {
        let progress = PullProgress { cursor };
        write_meta(
            &vault.conn,
            &vault.cipher,
            "progress",
            &progress,
            &vault.home.database(),
        )
    }

    /// Writes `key` at `version` as earlier cairn did before it was killed: the record
    /// alone, `versions` left as it was (on a connection of its own, which keeps no head).
    fn cut_write<T: serde::Serialize>(vault: &Vault, key: &str, version: u64, value: &T) {
        let db = vault.home.database();
        let conn = Connection::open(&db).unwrap();
        write_row(&conn, &vault.cipher, key, version, value, &db).unwrap();
    }

    fn meta(home: &Home) -> Vec<(String, i64)> {
        let conn = Connection::open(home.database()).unwrap();
        let mut stmt = conn
            .prepare("SELECT key, version FROM meta ORDER BY key")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// The vault of issue #20: `sync|27` and `versions|26` (here on the progress record) after
    /// a crash between the two writes. Opening completes the write, once, and says so; the vault then works and
    /// checks.
    #[test]
    fn a_vault_bricked_by_a_cut_write_is_completed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        let vault = at_generation_26(&home);
        crate::head_carry::as_made_before_heads(&home, &vault.keys).unwrap();
        let state = PullProgress { cursor: 27 };
        cut_write(&vault, "progress", 27, &state);
        drop(vault);
        let rows = meta(&home);
        assert!(rows.contains(&("progress".into(), 27)), "{rows:?}");
        assert!(rows.contains(&("versions".into(), 26)), "{rows:?}");

        let vault = home.open(&pass()).unwrap();
        let said = vault.completed().unwrap();
        assert!(
            said.contains("progress record") && said.contains("nothing was lost"),
            "{said}"
        );
        assert_eq!(vault.pull_cursor().unwrap(), 27);
        // Carried over: it keeps a head from now on.
        assert!(meta(&home).contains(&("versions".into(), 28)));
        assert!(home.dir().join(crate::head::FILE).exists());
        vault.check().unwrap();
        set_cursor(&vault, 29).unwrap();
        drop(vault);
        let vault = home.open(&pass()).unwrap();
        assert!(vault.completed().is_none(), "completed once only");
        vault.check().unwrap();
    }

    /// Anything but that one pattern is refused as before, and never repaired.
    #[test]
    fn every_other_disagreement_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let state = PullProgress::default();
        type Spoil = fn(&Vault, &PullProgress);
        let cases: [(&str, Spoil, &str); 4] = [
            // Two generations ahead: not what a cut write leaves.
            ("two ahead", |v, s| cut_write(v, "progress", 28, s), "newer"),
            // Two records ahead of `versions`.
            (
                "two records",
                |v, s| {
                    cut_write(v, "progress", 27, s);
                    let settings = read_settings(&v.conn, &v.cipher, &v.home.database()).unwrap();
                    cut_write(v, "settings", 27, &settings);
                },
                "newer",
            ),
            // An older copy put back.
            (
                "older",
                |v, s| cut_write(v, "progress", 20, s),
                "older copy",
            ),
            // A record `versions` names, gone.
            (
                "missing",
                |v, _| {
                    Connection::open(v.home.database())
                        .unwrap()
                        .execute("DELETE FROM meta WHERE key = 'progress'", [])
                        .unwrap();
                },
                "missing",
            ),
        ];
        for (name, spoil, said) in cases {
            let home = Home::new(dir.path().join(name));
            let vault = at_generation_26(&home);
            spoil(&vault, &state);
            drop(vault);
            let before = meta(&home);
            match home.open(&pass()) {
                Err(e @ VaultError::Tampered { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(said), "{name}: {text}");
                    assert!(text.contains("cases in it are kept"), "{name}: {text}");
                    assert!(!text.contains("wipe"), "{name}: {text}");
                }
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(meta(&home), before, "{name}: nothing was written");
            // What it holds can still be read out, as found.
            let keys = home.unlock(&pass()).unwrap();
            let (vault, problem) = home.open_as_found(keys).unwrap();
            assert!(problem.is_some(), "{name}");
            vault.sync_state().unwrap();
            assert!(vault.list().unwrap().is_empty());
        }
    }

    /// Another process writes the progress record twice between a read of `versions` and a read
    /// of the record: both reads still see one state of the database (as `read_meta` and
    /// opening read them), so the write never reads as tampering.
    #[test]
    fn reads_never_straddle_another_process_s_write() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        let reader = at_generation_26(&home);
        let writer = home.open(&pass()).unwrap();
        let db = home.database();
        let (recorded, row) = one_snapshot(&reader.conn, &db, || {
            let recorded = versions(&reader.conn, &reader.cipher, &db)?.1;
            for cursor in [27, 28] {
                set_cursor(&writer, cursor)?;
            }
            let row = read_row::<PullProgress>(&reader.conn, &reader.cipher, "progress", &db)?;
            Ok((recorded, row))
        })
        .unwrap();
        let (version, state) = row.unwrap();
        assert_eq!(recorded["progress"], version);
        assert_eq!(state.cursor, 26);
        assert!(reader.conn.is_autocommit(), "the read transaction ended");
        assert_eq!(reader.pull_cursor().unwrap(), 28);
    }

    /// `write_meta` called outside a transaction writes its record and `versions` together:
    /// a failure between them (here: `versions` cannot be written) leaves neither.
    #[test]
    fn a_record_and_its_version_are_written_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        let vault = at_generation_26(&home);
        let db = home.database();
        vault
            .conn
            .execute_batch(
                "CREATE TRIGGER no_versions BEFORE UPDATE ON meta WHEN NEW.key = 'versions'
                 BEGIN SELECT RAISE(ABORT, 'versions refused'); END;",
            )
            .unwrap();
        let before = meta(&home);
        let state = PullProgress { cursor: 99 };
        assert!(write_meta(&vault.conn, &vault.cipher, "progress", &state, &db).is_err());
        assert!(vault.conn.is_autocommit(), "no transaction left open");
        assert_eq!(meta(&home), before);
        vault
            .conn
            .execute_batch("DROP TRIGGER no_versions")
            .unwrap();
        check_records(&vault.conn, &vault.cipher, &db).unwrap();
        assert_eq!(vault.pull_cursor().unwrap(), 26);
    }

    /// The abuse the completion at open would allow without a head: the progress record put back
    /// one write older and `versions` two, which reads as a write cut off. A vault that keeps
    /// a head refuses it (its records are not the ones its head vouches for), writing nothing;
    /// the same pattern made by a connection that keeps the head would be completed.
    #[test]
    fn a_forged_cut_write_that_would_roll_a_record_back_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("v"));
        let vault = at_generation_26(&home);
        let raw = |key: &str| -> (i64, Vec<u8>) {
            Connection::open(home.database())
                .unwrap()
                .query_row(
                    "SELECT version, value FROM meta WHERE key = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap()
        };
        let versions_26 = raw(VERSIONS);
        let mut progress_27 = None;
        for cursor in [27, 28] {
            set_cursor(&vault, cursor).unwrap();
            progress_27.get_or_insert_with(|| raw("progress"));
        }
        drop(vault);
        let conn = Connection::open(home.database()).unwrap();
        for (key, (version, value)) in [("progress", progress_27.unwrap()), (VERSIONS, versions_26)]
        {
            conn.execute(
                "UPDATE meta SET version = ?2, value = ?3 WHERE key = ?1",
                params![key, version, value],
            )
            .unwrap();
        }
        let before = meta(&home);
        match home.open(&pass()) {
            Err(e @ VaultError::RolledBack { .. }) => {
                let text = e.to_string();
                assert!(text.contains("encrypted records"), "{text}");
                assert!(text.contains("cases in it are kept"), "{text}");
                assert!(!text.contains("wipe"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(meta(&home), before, "nothing was written");
        let keys = home.unlock(&pass()).unwrap();
        let (vault, problem) = home.open_as_found(keys).unwrap();
        assert!(matches!(problem, Some(VaultError::RolledBack { .. })));
        assert!(vault.completed().is_none());
        assert_eq!(vault.pull_cursor().unwrap(), 27, "read as found");
    }
}
