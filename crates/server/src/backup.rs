//! `cairn-server backup`: a consistent copy of the SQLite database, taken while the server
//! runs, with SQLite's online backup API.
//!
//! The copy is written to a temporary file beside the destination, checked, synced, then
//! linked to its name: a reader sees no file or a whole one, and an existing file is never
//! replaced. A PostgreSQL database is backed up with PostgreSQL's own tools (pg_dump or base
//! backups, see docs/RELIABILITY.md), so it is refused here.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::storage::Database;

/// How long to wait, in all, for the source's lock (a moment, in WAL mode).
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// What a backup wrote.
#[derive(Debug, serde::Serialize)]
pub struct BackupDone {
    /// The database copied.
    pub database: PathBuf,
    /// The copy.
    pub out: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Copies the database of the server directory `dir` to `out`, which must not exist.
pub fn backup(dir: &Path, out: &Path) -> Result<BackupDone, ServerError> {
    let config = ServerConfig::load(dir)?;
    let source = match config.database(dir) {
        Database::Sqlite(path) => path,
        Database::Postgres(_) => {
            return Err(ServerError::Config(
                "this server's database is PostgreSQL: back it up with pg_dump (or a base backup with pg_basebackup); see docs/RELIABILITY.md".into(),
            ))
        }
    };
    if !source.is_file() {
        return Err(ServerError::Config(format!(
            "{} does not exist: there is no database to back up",
            source.display()
        )));
    }
    if out.exists() {
        return Err(exists(out));
    }
    let name = out
        .file_name()
        .ok_or_else(|| ServerError::Config(format!("{} names no file", out.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let result = copy(&source, &tmp, out);
    // Whatever happened, no partial copy is left behind.
    let _ = std::fs::remove_file(&tmp);
    let bytes = result?;
    Ok(BackupDone {
        database: source,
        out: out.to_path_buf(),
        bytes,
    })
}

fn exists(out: &Path) -> ServerError {
    ServerError::Config(format!(
        "{} exists already; a backup never replaces a file: choose another --out",
        out.display()
    ))
}

fn failed(e: rusqlite::Error) -> ServerError {
    ServerError::Config(format!("the backup failed: {e}; nothing was written"))
}

/// Copies `source` into `tmp`, checks and syncs it, and links it to `out`; the copy's size.
fn copy(source: &Path, tmp: &Path, out: &Path) -> Result<u64, ServerError> {
    // Owner-only from the start, as the database is (see files.rs).
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| ServerError::io("create", tmp, e))?;
    // Without CREATE: a database that vanished is an error, never an empty copy.
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    from.busy_timeout(Duration::from_secs(10)).map_err(failed)?;
    let mut to = Connection::open(tmp).map_err(failed)?;
    {
        // Every page in one step (-1), within one read snapshot. Copying in several steps
        // restarts the copy whenever the server writes between two of them, so under a
        // steady stream of pushes it never ended (measured: 100 MB, 50 writes a second, not
        // done in 20 s). The server's database is in WAL mode, where a reader blocks no
        // writer: the server keeps storing meanwhile; only its checkpoints wait for the copy.
        let copy = Backup::new(&from, &mut to).map_err(failed)?;
        let started = std::time::Instant::now();
        loop {
            match copy.step(-1).map_err(failed)? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(ServerError::Config(format!(
                        "the database stayed locked for {} s; nothing was written: try again",
                        LOCK_WAIT.as_secs()
                    )))
                }
                _ => {
                    return Err(ServerError::Config(
                        "the backup stopped for a reason this cairn-server does not know; nothing was written".into(),
                    ))
                }
            }
        }
    }
    drop(from);
    // One self-contained file (the server turns WAL back on when it opens it), then checked
    // before it is given its name.
    to.pragma_update(None, "journal_mode", "DELETE")
        .map_err(failed)?;
    let check: String = to
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(failed)?;
    if check != "ok" {
        return Err(ServerError::Config(format!(
            "the copy does not pass SQLite's integrity check ({check}); nothing was written"
        )));
    }
    to.close().map_err(|(_, e)| failed(e))?;
    let file = std::fs::File::open(tmp).map_err(|e| ServerError::io("open", tmp, e))?;
    file.sync_all()
        .map_err(|e| ServerError::io("sync", tmp, e))?;
    let bytes = file
        .metadata()
        .map_err(|e| ServerError::io("read", tmp, e))?
        .len();
    // A link fails if `out` appeared meanwhile, where a rename would replace it.
    match std::fs::hard_link(tmp, out) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists(out)),
        Err(e) => return Err(ServerError::io("write", out, e)),
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let _ = std::fs::remove_file(tmp);
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| ServerError::io("sync", parent, e))?;
    Ok(bytes)
}
