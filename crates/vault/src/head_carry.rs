//! Carrying a vault made before vaults kept a head (format 3, or 2 through at_rest) over to
//! one that keeps it. Apart from head.rs, because it makes the tables of other modules (the
//! head covers `imported` from the start) and writes `meta` records: head.rs stays below them.

use std::path::Path;

use cairn_crypto::DeviceKeys;
use rusqlite::Connection;

use crate::{head, import, store, Home, VaultError};

/// Makes a vault carried over from format 3 (or 2, through at_rest) keep a head: its head
/// tables, every bucket computed from its rows as found (trust on first use), the marker
/// record, format 4, and the first head file, in one transaction. Refuses a database older than a head already
/// here, or one whose marker says it kept a head before.
pub(crate) fn carry_over(
    conn: &Connection,
    keys: &DeviceKeys,
    dir: &Path,
    path: &Path,
) -> Result<(), VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let cipher = keys.local_cipher();
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)?;
    // Another process may have done it meanwhile.
    if head::headed(&tx, path)? {
        return Ok(());
    }
    let refused = |detail: String| VaultError::RolledBack {
        path: path.to_path_buf(),
        detail,
    };
    if store::read_meta::<u64>(&tx, &cipher, head::MARKER, path)?.is_some() {
        return Err(refused("its head tables were removed".into()));
    }
    if let Some(generation) = head::file_generation(dir, keys).map_err(refused)? {
        // Only a carry-over killed before its commit leaves a head at generation 0.
        if generation > 0 {
            return Err(refused(format!(
                "it is older than its head file (it was made before the head, which is at generation {})",
                generation
            )));
        }
    }
    tx.execute_batch(head::SCHEMA).map_err(sql)?;
    tx.execute_batch(import::IMPORTED).map_err(sql)?;
    head::seed(&tx, &cipher, path)?;
    head::install_triggers(&tx, path)?;
    store::write_meta(&tx, &cipher, head::MARKER, &1u64, path)?;
    store::set_format(&tx, path)?;
    head::commit(&tx, path)
}

/// Turns a vault into one made before vaults kept a head, as an earlier cairn left it: format
/// 3, without head tables, head record or head file. For tests of carrying such a vault over
/// (and of what earlier cairn left behind); never called by cairn itself.
#[doc(hidden)]
pub fn as_made_before_heads(home: &Home, keys: &DeviceKeys) -> Result<(), VaultError> {
    let path = home.database();
    let sql = |e| VaultError::sqlite(&path, e);
    let cipher = keys.local_cipher();
    let conn = Connection::open(&path).map_err(sql)?;
    conn.execute_batch(
        "DROP TABLE cairn_head; DROP TABLE cairn_head_buckets;
         DELETE FROM meta WHERE key = 'head';
         UPDATE meta SET value = x'0000000000000003' WHERE key = 'format';",
    )
    .map_err(sql)?;
    let (generation, mut current) = store::versions(&conn, &cipher, &path)?;
    current.remove(head::MARKER);
    store::write_row(&conn, &cipher, "versions", generation, &current, &path)?;
    let file = home.dir().join(head::FILE);
    std::fs::remove_file(&file).map_err(|e| VaultError::io("remove", &file, e))
}
