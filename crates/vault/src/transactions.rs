//! Transactions as the vault takes them, shared by every module that reads or writes: below
//! all of them, so that none imports another's module for them.

use std::path::Path;

use rusqlite::Connection;

use crate::VaultError;

/// Takes the write lock up front, so two cairn processes never interleave a read and a write.
pub(crate) fn begin<'c>(
    conn: &'c mut Connection,
    path: &Path,
) -> Result<rusqlite::Transaction<'c>, VaultError> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| VaultError::sqlite(path, e))
}

/// Runs `read` in one read transaction, so that it sees one state of the database (WAL mode
/// gives each transaction a snapshot): reading `versions` and then a record never straddles
/// another process's write. Inside the caller's transaction it just runs.
pub(crate) fn one_snapshot<T>(
    conn: &Connection,
    path: &Path,
    read: impl FnOnce() -> Result<T, VaultError>,
) -> Result<T, VaultError> {
    if !conn.is_autocommit() {
        return read();
    }
    conn.execute_batch("BEGIN DEFERRED")
        .map_err(|e| VaultError::sqlite(path, e))?;
    let done = read();
    // Nothing was written: ending it either way is the same.
    if conn.execute_batch("COMMIT").is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    done
}
