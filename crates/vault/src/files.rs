//! The vault's files on disk: their names, and writing them so that a crash leaves the old
//! file or the new one, readable by their owner only. Used by `home` and `head`; uses neither.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::VaultError;

/// The passphrase-locked key file.
pub(crate) const KEY_FILE: &str = "keys.age";
/// The database.
pub(crate) const DATABASE: &str = "vault.db";
/// The head file (see `head.rs`).
pub(crate) const HEAD_FILE: &str = "vault.head";

/// Writes a new file, owner-only, and syncs it (a leftover of the same name is replaced).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        // A leftover from an interrupted init holds no usable secret: replace it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            fs::remove_file(path).map_err(|e| VaultError::io("remove", path, e))?;
            options
                .open(path)
                .map_err(|e| VaultError::io("create", path, e))?
        }
        Err(e) => return Err(VaultError::io("create", path, e)),
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| VaultError::io("write", path, e))
}

/// Overwrites a file in place and syncs it.
pub(crate) fn write_in_place(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| VaultError::io("open", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| VaultError::io("overwrite", path, e))
}

/// Syncs a directory, so that a rename or a new file in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VaultError::io("sync", dir, e))?;
    Ok(())
}

/// Makes the key file, the database and its WAL readable by their owner only.
pub(crate) fn restrict_files(dir: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    for name in [
        KEY_FILE,
        DATABASE,
        "vault.db-wal",
        "vault.db-shm",
        HEAD_FILE,
    ] {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        match fs::metadata(&path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(|e| VaultError::io("restrict", &path, e))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Makes the vault's directory its owner's only.
pub(crate) fn restrict_dir(dir: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| VaultError::io("restrict", dir, e))?;
    }
    Ok(())
}
