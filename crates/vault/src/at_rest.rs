//! What `vault.db` keeps of sealed changes, attachment chunks and attachment facts: each
//! encrypted once more under the vault's own key ([`LocalCipher`]) and bound to its row, so
//! that a thief without the passphrase reads no team name (a sealed change or chunk names its
//! team in clear), no arrival time, and no attachment's size or chunk count from the file.
//!
//! What the vault must query on stays in columns that reveal nothing: random ids, and a
//! `draft` flag instead of the epoch in a sealed header. Every chunk is stored padded to the
//! largest sealed chunk, so the last one no longer gives a file's exact size. What still
//! shows: how many rows there are (so how many chunks, a file's size to within 16 KiB), the
//! length of each sealed change, and its count of Automerge operations.

use std::path::Path;

use cairn_crypto::{DeviceId, LocalCipher, SealedChunk, SealedHeader, MAX_SEALED_CHUNK};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::VaultError;

/// What the local cipher adds to a record (nonce and tag).
const LOCAL_OVERHEAD: usize = 24 + 16;
/// What a stored change holds beside the sealed change: whether it was received, and when.
const CHANGE_PREFIX: usize = 9;
/// How many bytes a stored change is longer than the sealed change it holds (the case budget
/// counts sealed bytes, as every other replica does).
pub const CHANGE_OVERHEAD: i64 = (LOCAL_OVERHEAD + CHANGE_PREFIX) as i64;
/// Every stored chunk's plaintext: its length, the sealed chunk, zeros up to the largest.
const CHUNK_PADDED: usize = 4 + MAX_SEALED_CHUNK;
/// Every stored facts record's plaintext length (JSON padded with spaces), so that the
/// length of a team's name does not show.
const FACTS_PADDED: usize = 256;

fn corrupt(what: &str) -> VaultError {
    VaultError::Corrupt {
        path: std::path::PathBuf::from("vault.db"),
        detail: format!("{what} does not decrypt with this key file, or was moved"),
    }
}

/// [`open_change`] for a row as SQLite gives it (author bytes, number).
pub(crate) fn open_stored(
    cipher: &LocalCipher,
    author: &[u8],
    seq: i64,
    stored: &[u8],
) -> Result<(Vec<u8>, Option<i64>), VaultError> {
    let author = <[u8; 32]>::try_from(author)
        .map(DeviceId)
        .map_err(|_| corrupt("a change whose author is not 32 bytes"))?;
    open_change(cipher, &author, seq as u64, stored)
}

fn change_slot(author: &DeviceId, seq: u64) -> Vec<u8> {
    let mut slot = b"cairn change v3\0".to_vec();
    slot.extend_from_slice(&author.0);
    slot.extend_from_slice(&seq.to_be_bytes());
    slot
}

/// The stored form of this sealed change `seq` of `author`, with the time it arrived here
/// (ms since the epoch; `None` for this device's own).
pub fn seal_change(
    cipher: &LocalCipher,
    author: &DeviceId,
    seq: u64,
    received_at: Option<i64>,
    sealed: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let mut plain = Vec::with_capacity(CHANGE_PREFIX + sealed.len());
    plain.push(u8::from(received_at.is_some()));
    plain.extend_from_slice(&received_at.unwrap_or(0).to_be_bytes());
    plain.extend_from_slice(sealed);
    Ok(cipher.encrypt(&change_slot(author, seq), &plain)?)
}

/// The sealed change stored as `stored` for `seq` of `author`, and when it arrived here.
pub fn open_change(
    cipher: &LocalCipher,
    author: &DeviceId,
    seq: u64,
    stored: &[u8],
) -> Result<(Vec<u8>, Option<i64>), VaultError> {
    let what = || corrupt(&format!("change {seq} of device {}", author.short()));
    let mut plain = cipher
        .decrypt(&change_slot(author, seq), stored)
        .map_err(|_| what())?;
    if plain.len() < CHANGE_PREFIX {
        return Err(what());
    }
    let mut at = [0u8; 8];
    at.copy_from_slice(&plain[1..CHANGE_PREFIX]);
    let received = (plain[0] == 1).then_some(i64::from_be_bytes(at));
    plain.drain(..CHANGE_PREFIX);
    Ok((plain, received))
}

fn chunk_slot(slot: i64, index: u32) -> Vec<u8> {
    let mut aad = b"cairn chunk v3\0".to_vec();
    aad.extend_from_slice(&slot.to_be_bytes());
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

/// The stored form of sealed chunk `index` in the attachment row `slot`: padded to the
/// largest sealed chunk, so every stored chunk has the same length.
pub fn seal_chunk(
    cipher: &LocalCipher,
    slot: i64,
    index: u32,
    sealed: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let len = u32::try_from(sealed.len())
        .ok()
        .filter(|_| sealed.len() <= MAX_SEALED_CHUNK)
        .ok_or_else(|| corrupt("a chunk larger than any sealed chunk"))?;
    let mut plain = Vec::with_capacity(CHUNK_PADDED);
    plain.extend_from_slice(&len.to_be_bytes());
    plain.extend_from_slice(sealed);
    plain.resize(CHUNK_PADDED, 0);
    Ok(cipher.encrypt(&chunk_slot(slot, index), &plain)?)
}

/// The sealed chunk stored as `stored` at `index` of the attachment row `slot`.
pub fn open_chunk(
    cipher: &LocalCipher,
    slot: i64,
    index: u32,
    stored: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let what = || corrupt(&format!("chunk {index} of an attachment"));
    let mut plain = cipher
        .decrypt(&chunk_slot(slot, index), stored)
        .map_err(|_| what())?;
    let len = plain
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_be_bytes(b) as usize)
        .filter(|len| 4 + len <= plain.len())
        .ok_or_else(what)?;
    plain.truncate(4 + len);
    plain.drain(..4);
    Ok(plain)
}

/// What the vault knows of one attachment entry that a server learns too, kept encrypted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The team whose key seals it.
    pub team: String,
    /// How many chunks it has.
    pub count: u32,
    /// Its plaintext size.
    pub size: u64,
    /// Chunks 0..uploaded the server is known to hold.
    pub uploaded: u32,
}

fn facts_slot(blob: &[u8], author: &[u8]) -> Vec<u8> {
    let mut aad = b"cairn blob facts v3\0".to_vec();
    aad.extend_from_slice(blob);
    aad.extend_from_slice(author);
    aad
}

/// The stored form of an attachment row's facts, bound to its blob id and author.
pub fn seal_facts(
    cipher: &LocalCipher,
    blob: &[u8],
    author: &[u8],
    facts: &Facts,
) -> Result<Vec<u8>, VaultError> {
    let mut plain = serde_json::to_vec(facts).map_err(|e| VaultError::Corrupt {
        path: "vault.db".into(),
        detail: e.to_string(),
    })?;
    // JSON allows trailing white space: padded, every record has one length.
    if plain.len() < FACTS_PADDED {
        plain.resize(FACTS_PADDED, b' ');
    }
    Ok(cipher.encrypt(&facts_slot(blob, author), &plain)?)
}

/// The facts of the attachment row of `blob` by `author` stored as `stored`.
pub fn open_facts(
    cipher: &LocalCipher,
    blob: &[u8],
    author: &[u8],
    stored: &[u8],
) -> Result<Facts, VaultError> {
    let plain = cipher
        .decrypt(&facts_slot(blob, author), stored)
        .map_err(|_| corrupt("an attachment's facts"))?;
    serde_json::from_slice(&plain).map_err(|_| corrupt("an attachment's facts"))
}

/// The vault format whose changes, chunks and attachment facts are stored as above.
const FORMAT: i64 = 3;
/// The format before, which kept them in clear.
const CLEAR: i64 = 2;
/// Rows carried over per statement batch: memory stays bounded whatever the vault.
const BATCH: i64 = 256;

fn format(conn: &Connection, path: &Path) -> Result<Option<i64>, VaultError> {
    let value: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| VaultError::sqlite(path, e))?;
    Ok(value
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(i64::from_be_bytes))
}

fn has_column(
    conn: &Connection,
    table: &str,
    column: &str,
    path: &Path,
) -> Result<bool, VaultError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        params![table, column],
        |r| r.get(0),
    )
    .map_err(|e| VaultError::sqlite(path, e))
}

/// Carries a format-2 vault over to format 3: every sealed change, attachment chunk and
/// attachment's facts encrypted under the vault key, the arrival times moved inside, in
/// one transaction (a kill midway leaves format 2 whole, and the next open does it again).
/// Attachment tables of the layout before entries (no `author`) are left to
/// `blob_layout::upgrade`, which writes them in this format. Nothing to do is one read.
pub(crate) fn upgrade(
    conn: &Connection,
    cipher: &LocalCipher,
    path: &Path,
) -> Result<(), VaultError> {
    if format(conn, path)? != Some(CLEAR) {
        return Ok(());
    }
    let sql = |e| VaultError::sqlite(path, e);
    crate::store::atomic(conn, path, || {
        // Again under the write lock: another process may have done it meanwhile.
        if format(conn, path)? != Some(CLEAR) {
            return Ok(());
        }
        conn.execute_batch(
            "ALTER TABLE changes ADD COLUMN received INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE changes ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;",
        )
        .map_err(sql)?;
        let mut after = 0i64;
        loop {
            type Old = (i64, Vec<u8>, i64, Vec<u8>, Option<i64>);
            let batch: Vec<Old> = {
                let mut stmt = conn
                    .prepare(
                        "SELECT rowid, author, seq, sealed, received_at FROM changes
                         WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                    )
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(params![after, BATCH], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .map_err(sql)?;
                rows.collect::<Result<_, _>>().map_err(sql)?
            };
            let Some(last) = batch.last() else { break };
            after = last.0;
            for (rowid, author, seq, sealed, received_at) in batch {
                let author = <[u8; 32]>::try_from(author.as_slice())
                    .map(DeviceId)
                    .map_err(|_| corrupt("a change whose author is not 32 bytes"))?;
                let draft = SealedHeader::parse(&sealed).is_ok_and(|c| c.epoch == 0);
                let stored = seal_change(cipher, &author, seq as u64, received_at, &sealed)?;
                conn.prepare_cached(
                    "UPDATE changes SET sealed = ?2, received = ?3, draft = ?4 WHERE rowid = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![rowid, stored, received_at.is_some(), draft])
                })
                .map_err(sql)?;
            }
        }
        conn.execute_batch("ALTER TABLE changes DROP COLUMN received_at")
            .map_err(sql)?;
        crate::failpoint::hit("upgrade:changes");
        if has_column(conn, "blobs", "author", path)? && has_column(conn, "blobs", "team", path)? {
            upgrade_blobs(conn, cipher, path)?;
        }
        crate::failpoint::hit("upgrade:blobs");
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'format'",
            params![FORMAT.to_be_bytes().to_vec()],
        )
        .map_err(sql)?;
        Ok(())
    })?;
    // The file is rebuilt without the pages that held them in clear, and the WAL emptied
    // (best effort: another process may be reading; secure_delete zeroed what was freed).
    let _ = conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
    Ok(())
}

/// The attachment part of [`upgrade`], inside its transaction.
fn upgrade_blobs(conn: &Connection, cipher: &LocalCipher, path: &Path) -> Result<(), VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    conn.execute_batch(
        "ALTER TABLE blobs ADD COLUMN facts BLOB NOT NULL DEFAULT x'';
         ALTER TABLE blob_chunks ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;",
    )
    .map_err(sql)?;
    type Old = (i64, Vec<u8>, Vec<u8>, String, u32, i64, u32);
    let rows: Vec<Old> = {
        let mut stmt = conn
            .prepare("SELECT slot, blob, author, team, count, size, uploaded FROM blobs")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    for (slot, blob, author, team, count, size, uploaded) in rows {
        let facts = Facts {
            team,
            count,
            size: size as u64,
            uploaded,
        };
        conn.execute(
            "UPDATE blobs SET facts = ?2 WHERE slot = ?1",
            params![slot, seal_facts(cipher, &blob, &author, &facts)?],
        )
        .map_err(sql)?;
    }
    conn.execute_batch(
        "ALTER TABLE blobs DROP COLUMN team;
         ALTER TABLE blobs DROP COLUMN count;
         ALTER TABLE blobs DROP COLUMN size;
         ALTER TABLE blobs DROP COLUMN uploaded;",
    )
    .map_err(sql)?;
    let mut after = 0i64;
    loop {
        let batch: Vec<(i64, i64, u32, Vec<u8>)> = {
            let mut stmt = conn
                .prepare(
                    "SELECT rowid, slot, idx, sealed FROM blob_chunks WHERE rowid > ?1
                     ORDER BY rowid LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![after, BATCH], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)?
        };
        let Some(last) = batch.last() else { break };
        after = last.0;
        for (rowid, slot, index, sealed) in batch {
            let draft = SealedChunk::from_bytes(&sealed).is_ok_and(|c| c.epoch == 0);
            let stored = seal_chunk(cipher, slot, index, &sealed)?;
            conn.prepare_cached("UPDATE blob_chunks SET sealed = ?2, draft = ?3 WHERE rowid = ?1")
                .and_then(|mut stmt| stmt.execute(params![rowid, stored, draft]))
                .map_err(sql)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use super::*;

    fn cipher() -> LocalCipher {
        let keys = cairn_crypto::DeviceKeys::generate();
        keys.local_cipher()
    }

    #[test]
    fn the_overhead_is_what_the_cipher_adds() {
        let c = cipher();
        let me = DeviceId([7; 32]);
        let stored = seal_change(&c, &me, 3, Some(1_700_000_000_000), b"abc").unwrap();
        assert_eq!(stored.len() as i64, 3 + CHANGE_OVERHEAD);
        assert_eq!(
            open_change(&c, &me, 3, &stored).unwrap(),
            (b"abc".to_vec(), Some(1_700_000_000_000))
        );
        // Bound to its row: under another number it does not open.
        assert!(open_change(&c, &me, 4, &stored).is_err());
        let short = seal_chunk(&c, 1, 0, b"xyz").unwrap();
        let long = seal_chunk(&c, 1, 1, &vec![1; MAX_SEALED_CHUNK]).unwrap();
        assert_eq!(short.len(), long.len());
        assert_eq!(open_chunk(&c, 1, 0, &short).unwrap(), b"xyz");
        assert!(open_chunk(&c, 1, 1, &short).is_err());
        let facts = Facts {
            team: "T03".into(),
            count: 2,
            size: 20_000,
            uploaded: 1,
        };
        let a = seal_facts(&c, b"b", b"a", &facts).unwrap();
        let b = seal_facts(&c, b"b", b"a", &Facts::default()).unwrap();
        assert_eq!(a.len(), b.len());
        assert_eq!(open_facts(&c, b"b", b"a", &a).unwrap(), facts);
    }
}
