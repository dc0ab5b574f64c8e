//! Carrying attachments stored in the layout before entries (keyed by blob id alone) over to
//! the layout of blobs.rs. Apart from blobs.rs because it reads every case's attachment list
//! (cases.rs registers attachments through blobs.rs, so blobs.rs stays below cases.rs).

use std::path::Path;

use cairn_crypto::SealedChunk;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{at_rest, blobs, cases, Vault, VaultError};

/// Carries the attachment tables of a vault made before they were keyed by entry (they were
/// keyed by blob id alone, so a teammate's entry reusing a blob id hid the genuine file on
/// every device that fetched afterwards). Every entry its cases list gets its own row; each
/// old row's chunks go to the entries under that blob id written by the device that sealed
/// them, and a fetched blob is checked against its own entry again before it counts as here.
/// Entries whose file was here or asked for stay asked for, so the genuine file is fetched
/// from its author. One transaction, once; run at open, where the vault's keys are at hand.
pub(crate) fn upgrade(vault: &Vault) -> Result<(), VaultError> {
    let path = vault.home.database();
    let sql = |e| VaultError::sqlite(&path, e);
    if !old_layout(&vault.conn, &path)? {
        return Ok(());
    }
    let tx =
        rusqlite::Transaction::new_unchecked(&vault.conn, rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
    // Another process may have done it meanwhile.
    if !old_layout(&tx, &path)? {
        return Ok(());
    }
    tx.execute_batch(
        "ALTER TABLE blob_chunks RENAME TO blob_chunks_v1;
         ALTER TABLE blobs RENAME TO blobs_v1;",
    )
    .map_err(sql)?;
    tx.execute_batch(blobs::SCHEMA).map_err(sql)?;
    let me = vault.keys.id();
    let cases: Vec<Vec<u8>> = {
        let mut stmt = tx
            .prepare("SELECT DISTINCT case_id FROM blobs_v1")
            .map_err(sql)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    for case in cases {
        let id = blobs::case_from(&case, &path)?;
        match cases::load(&tx, &vault.cipher, &id, &me.0, &[], &path) {
            Ok(doc) => blobs::register(
                &tx,
                &vault.cipher,
                id,
                &blobs::listed(&vault.cipher, &doc)?,
                &path,
            )?,
            Err(VaultError::UnknownCase(_)) => {}
            Err(e) => return Err(e),
        }
    }
    type Old = (Vec<u8>, [bool; 6], u32);
    let old: Vec<Old> = {
        let mut stmt = tx
            .prepare(
                "SELECT blob, own, complete, delivered, wanted, dropped, uploaded FROM blobs_v1",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, false],
                    r.get(6)?,
                ))
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    for (blob, flags, uploaded) in old {
        let [own, complete, delivered, wanted, dropped, _] = flags;
        let first: Option<Vec<u8>> = tx
            .query_row(
                "SELECT sealed FROM blob_chunks_v1 WHERE blob = ?1 ORDER BY idx LIMIT 1",
                params![blob],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        let sealer = match own {
            true => Some(me),
            false => first.and_then(|b| SealedChunk::from_bytes(&b).ok().map(|c| c.author)),
        };
        tx.execute(
            "UPDATE blobs SET wanted = MAX(wanted, ?2) WHERE blob = ?1",
            params![blob, wanted || complete],
        )
        .map_err(sql)?;
        let Some(sealer) = sealer else { continue };
        let slots: Vec<i64> = {
            let mut stmt = tx
                .prepare("SELECT slot FROM blobs WHERE blob = ?1 AND author = ?2")
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![blob, sealer.0.as_slice()], |r| r.get(0))
                .map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)?
        };
        for slot in slots {
            let chunks: Vec<(u32, Vec<u8>)> = {
                let mut stmt = tx
                    .prepare("SELECT idx, sealed FROM blob_chunks_v1 WHERE blob = ?1")
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(params![blob], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql)?;
                rows.collect::<Result<_, _>>().map_err(sql)?
            };
            for (index, sealed) in chunks {
                blobs::store_chunk(&tx, &vault.cipher, slot, index, &sealed, &path)?;
            }
            if own {
                tx.execute(
                    "UPDATE blobs SET own = 1, complete = ?2, delivered = ?3, dropped = ?4
                     WHERE slot = ?1",
                    params![slot, complete, delivered, dropped],
                )
                .map_err(sql)?;
                let stored: Vec<u8> = tx
                    .query_row(
                        "SELECT facts FROM blobs WHERE slot = ?1",
                        params![slot],
                        |r| r.get(0),
                    )
                    .map_err(sql)?;
                let mut facts = at_rest::open_facts(&vault.cipher, &blob, &me.0, &stored)?;
                facts.uploaded = uploaded.min(facts.count);
                let stored = at_rest::seal_facts(&vault.cipher, &blob, &me.0, &facts)?;
                tx.execute(
                    "UPDATE blobs SET facts = ?2 WHERE slot = ?1",
                    params![slot, stored],
                )
                .map_err(sql)?;
            }
        }
    }
    tx.execute_batch("DROP TABLE blob_chunks_v1; DROP TABLE blobs_v1;")
        .map_err(sql)?;
    crate::head::commit(&tx, &path)
}

/// Whether the attachment tables are those keyed by blob id alone.
fn old_layout(conn: &Connection, path: &Path) -> Result<bool, VaultError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'blobs')
            AND NOT EXISTS (SELECT 1 FROM pragma_table_info('blobs') WHERE name = 'author')",
        [],
        |r| r.get(0),
    )
    .map_err(|e| VaultError::sqlite(path, e))
}
