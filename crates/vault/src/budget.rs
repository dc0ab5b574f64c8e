//! What one case may hold, and what one device may write to it: bounds that keep a case's
//! memory small whatever a peer sends.

use std::collections::HashMap;

use rusqlite::params;
use uuid::Uuid;

use crate::VaultError;

/// The most sealed bytes one case may hold: far beyond any real case, small enough that a
/// peer cannot make every device load a giant document.
pub const MAX_CASE_BYTES: i64 = 32 << 20;

/// The most Automerge operations one case may hold (run-length encoding makes operations
/// far cheaper in bytes than in memory).
pub const MAX_CASE_OPS: i64 = 2_000_000;

/// The most operations one device may add to a case: one device alone cannot fill it. Each
/// device's changes arrive in its own order everywhere, so this verdict never depends on
/// arrival order.
pub const MAX_AUTHOR_OPS: i64 = 500_000;

/// Whether `author` may add `bytes` and `ops` to case `id`; why not, if not.
pub(crate) fn within_budget(
    conn: &rusqlite::Connection,
    id: &Uuid,
    author: &cairn_crypto::DeviceId,
    bytes: i64,
    ops: i64,
    path: &std::path::Path,
) -> Result<Result<(), String>, VaultError> {
    Ok(stored_totals(conn, id, author, path)?
        .add(bytes, ops)
        .map(|_| ()))
}

/// What case `id` holds: its sealed bytes and operations, and the operations of one author.
#[derive(Clone, Copy)]
struct Totals {
    case_bytes: i64,
    case_ops: i64,
    author_ops: i64,
}

impl Totals {
    /// Adds a change of the author's, or says why it does not fit.
    fn add(mut self, bytes: i64, ops: i64) -> Result<Self, String> {
        self.case_bytes += bytes;
        self.case_ops += ops;
        self.author_ops += ops;
        if self.case_bytes > MAX_CASE_BYTES {
            Err(format!(
                "the case would hold more than {} MiB of changes",
                MAX_CASE_BYTES >> 20
            ))
        } else if self.case_ops > MAX_CASE_OPS {
            Err(format!(
                "the case would hold more than {MAX_CASE_OPS} operations"
            ))
        } else if self.author_ops > MAX_AUTHOR_OPS {
            Err(format!(
                "its device would have written more than {MAX_AUTHOR_OPS} operations to the case"
            ))
        } else {
            Ok(self)
        }
    }
}

fn stored_totals(
    conn: &rusqlite::Connection,
    id: &Uuid,
    author: &cairn_crypto::DeviceId,
    path: &std::path::Path,
) -> Result<Totals, VaultError> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(ops), 0),
                COALESCE(SUM(CASE WHEN author = ?2 THEN ops END), 0)
         FROM (SELECT author, length(sealed) - ?3 AS bytes, ops FROM changes WHERE case_id = ?1
               UNION ALL SELECT author, bytes, ops FROM checkpointed WHERE case_id = ?1)",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                id.as_bytes().as_slice(),
                author.0.as_slice(),
                crate::at_rest::CHANGE_OVERHEAD
            ],
            |r| {
                Ok(Totals {
                    case_bytes: r.get(0)?,
                    case_ops: r.get(1)?,
                    author_ops: r.get(2)?,
                })
            },
        )
    })
    .map_err(|e| VaultError::sqlite(path, e))
}

/// Whether a whole batch fits its case's and its authors' budgets, as inserting it change
/// by change will find: nothing is merged ahead that the budget refuses (the budget is what
/// bounds a case's memory).
///
/// `changes` gives each change's author, sealed bytes and operations.
pub(crate) fn batch_fits(
    conn: &rusqlite::Connection,
    id: &Uuid,
    changes: impl IntoIterator<Item = (cairn_crypto::DeviceId, i64, i64)>,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    // Each author's operations, and the case's totals, as the batch goes.
    let mut authors: HashMap<cairn_crypto::DeviceId, i64> = HashMap::new();
    let mut case: Option<(i64, i64)> = None;
    for (author, bytes, ops) in changes {
        let stored = match (authors.get(&author), case) {
            (Some(&author_ops), Some((case_bytes, case_ops))) => Totals {
                case_bytes,
                case_ops,
                author_ops,
            },
            (author_ops, case) => {
                let stored = stored_totals(conn, id, &author, path)?;
                let (case_bytes, case_ops) = case.unwrap_or((stored.case_bytes, stored.case_ops));
                Totals {
                    case_bytes,
                    case_ops,
                    author_ops: author_ops.copied().unwrap_or(stored.author_ops),
                }
            }
        };
        let Ok(after) = stored.add(bytes, ops) else {
            return Ok(false);
        };
        case = Some((after.case_bytes, after.case_ops));
        authors.insert(author, after.author_ops);
    }
    Ok(true)
}
