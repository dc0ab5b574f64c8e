//! Files only the server's own user may read: the database (with its WAL and shared-memory
//! files), the TLS private key and the configuration. They hold no case content, but the
//! database maps who joined, when, from which team and how much each device sent, and the
//! key lets whoever reads it pose as the server to any device that pins its certificate.

use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Makes `path` readable and writable by its owner only, if it exists and others (or the
/// group) may touch it; says so in the log, since someone loosened it or an older
/// cairn-server made it so.
pub(crate) fn restrict(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            tracing::warn!(path = %path.display(), "others could read this file; it is owner-only now");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The SQLite file `db` and the files SQLite keeps beside it.
fn sqlite_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// Before SQLite opens `db`: made owner-only if it is new (SQLite gives its WAL and
/// shared-memory files the database's mode), and every one of the three restricted if
/// it is there already.
pub(crate) fn prepare_sqlite(db: &Path) -> io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    sqlite_files(db).iter().try_for_each(|path| restrict(path))
}
