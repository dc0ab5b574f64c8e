//! Changes judged and refused before: each author and number is judged once, and a second,
//! different change under a refused number is a replay or a forgery.

use cairn_crypto::SealedChange;
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::open::Received;
use super::report::Refused;
use crate::VaultError;

/// Why a second change under a number already judged is refused.
pub(super) fn different(seq: u64) -> String {
    format!("a different change {seq} of this device is already here or was refused: a replay or a forgery")
}

pub(super) fn refused_for(change: &Received<'_>, reason: String) -> Refused {
    Refused {
        author: change.sealed.author.short(),
        seq: change.sealed.seq,
        reason,
    }
}

/// Whether a change under this author and number was refused before: `Some(true)` for these
/// very bytes (judged already, say nothing), `Some(false)` for other bytes (a replay or a
/// forgery), `None` if not.
pub(super) fn refused_before(
    tx: &rusqlite::Connection,
    sealed: &SealedChange,
    bytes: &[u8],
    path: &std::path::Path,
) -> Result<Option<bool>, VaultError> {
    let digest: Option<Vec<u8>> = tx
        .prepare_cached("SELECT digest FROM refused WHERE author = ?1 AND seq = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(
                params![sealed.author.0.as_slice(), sealed.seq as i64],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    Ok(digest.map(|d| d == Sha256::digest(bytes).as_slice()))
}

pub(crate) fn remember_refused(
    tx: &rusqlite::Connection,
    sealed: &SealedChange,
    bytes: &[u8],
    path: &std::path::Path,
) -> Result<(), VaultError> {
    tx.execute(
        "INSERT OR IGNORE INTO refused (author, seq, digest) VALUES (?1, ?2, ?3)",
        params![
            sealed.author.0.as_slice(),
            sealed.seq as i64,
            Sha256::digest(bytes).as_slice()
        ],
    )
    .map(|_| ())
    .map_err(|e| VaultError::sqlite(path, e))
}
