//! Attachments: files kept as the sealed chunks that travel, never as plaintext.
//!
//! Attaching streams the file 16 KiB at a time: each chunk is hashed (SHA-256 of the whole
//! plaintext, taken while sealing), sealed under the case's team key (the draft key, epoch 0,
//! before `join`; sealed again at join like changes) and inserted as one row, so memory does
//! not grow with the file. The file's facts (hash, name, media type, size, chunk count) are
//! one signed case change in the case's append-only attachment list, in the same
//! transaction. The same file attached twice to a case is stored once.
//!
//! The `blobs` table holds routing facts only (the blob's random id, its case, team, size and
//! chunk count, which a server learns too) and this device's progress; the plaintext's hash
//! is kept only inside the encrypted case. Every attachment listed in a case is registered
//! here when the case is written ([`register`]), so the office knows what it lacks without
//! loading every case.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cairn_crypto::{chunk_count, chunk_len, BlobId, DeviceId, SealedChunk, CHUNK_SIZE};
use cairn_model::{Attachment, CaseDoc, Edit};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Role, Vault, VaultError};

/// The attachment tables, made by `init` and, in a vault made before attachments, at `open`.
pub(crate) const SCHEMA: &str = "
-- Every attachment listed in this vault's cases, and this device's progress with it.
CREATE TABLE IF NOT EXISTS blobs (
    blob      BLOB    PRIMARY KEY,
    case_id   BLOB    NOT NULL,
    team      TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    -- 1: attached here (this device uploads it).
    own       INTEGER NOT NULL DEFAULT 0,
    -- 1: every chunk is here and the plaintext's hash checked.
    complete  INTEGER NOT NULL DEFAULT 0,
    -- Chunks 0..uploaded the server is known to hold; 1 once it holds them all.
    uploaded  INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    -- 1: asked for (a field device fetches only those).
    wanted    INTEGER NOT NULL DEFAULT 0,
    -- 1: taken out of the outbox (`cairn case attachment drop`), with a note in the case.
    dropped   INTEGER NOT NULL DEFAULT 0
) STRICT;
-- The sealed chunks themselves, one row each, as they travel.
CREATE TABLE IF NOT EXISTS blob_chunks (
    blob   BLOB    NOT NULL,
    idx    INTEGER NOT NULL,
    sealed BLOB    NOT NULL,
    PRIMARY KEY (blob, idx)
) STRICT;
";

/// The epoch of a sealed chunk sits at bytes 85..=88 (SQLite counts from 1).
const DRAFT_CHUNK: &str = "substr(sealed, 85, 4) = x'00000000'";

/// What to attach: the file and what the caller (the CLI) read of it.
#[derive(Clone, Debug)]
pub struct NewAttachment {
    /// The file to read.
    pub path: PathBuf,
    /// The name to record (the file's own name, without its directory).
    pub name: String,
    /// The media type detected from the content.
    pub media_type: String,
    /// A caption.
    pub caption: Option<String>,
    /// The EXIF capture time, if any.
    pub exif_time: Option<String>,
    /// The EXIF position (latitude, longitude), if any.
    pub gps: Option<(f64, f64)>,
    /// The largest file accepted, in bytes.
    pub limit: u64,
}

/// What [`Vault::attach`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Attached {
    /// The attachment as the case lists it (the earlier entry, for a file already attached).
    pub entry: Attachment,
    /// `false` when the case already listed the same file: nothing was stored again.
    pub new: bool,
    /// The number of the change that listed it, if it is new.
    pub seq: Option<u64>,
}

/// A blob this device attached and the server does not hold whole yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxBlob {
    /// The blob.
    pub blob: BlobId,
    /// Its case.
    pub case: Uuid,
    /// The team whose key seals it.
    pub team: String,
    /// How many chunks it has.
    pub count: u32,
    /// Its plaintext size.
    pub size: u64,
    /// How many chunks, from the first, the server is known to hold: resume from here.
    pub held_by_server: u32,
}

/// A blob listed in a case here that this device should fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedBlob {
    /// The blob.
    pub blob: BlobId,
    /// The device that attached it (whose change wrote the entry): the server keeps a blob
    /// under its author, and every chunk of it must be this device's.
    pub author: DeviceId,
    /// Its case.
    pub case: Uuid,
    /// The team whose key seals it.
    pub team: String,
    /// How many chunks it has.
    pub count: u32,
    /// Its plaintext size.
    pub size: u64,
    /// SHA-256 of its plaintext (hex), as recorded at capture.
    pub sha256: String,
    /// How many chunks, from the first, are already here: resume from here.
    pub held: u32,
}

/// One attachment of a case and where this device stands with it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachmentState {
    /// What the case lists.
    pub entry: Attachment,
    /// Whether its bytes are here, whole and checked.
    pub here: bool,
    /// Whether the server holds every chunk (for an attachment made here).
    pub delivered: bool,
    /// How many chunks the server is known to hold (for an attachment made here).
    pub uploaded: u32,
    /// Whether it was dropped from the outbox.
    pub dropped: bool,
    /// Whether this device asked for it.
    pub wanted: bool,
}

/// A `blobs` row.
struct Row {
    case: Uuid,
    team: String,
    count: u32,
    size: u64,
    own: bool,
    complete: bool,
    uploaded: u32,
    delivered: bool,
    wanted: bool,
    dropped: bool,
}

impl Vault {
    /// Attaches `file` to `case`: streams it into sealed chunks and lists it in the case, in
    /// one transaction. A file over `file.limit` is refused before anything is read; a file
    /// the case already lists (same SHA-256) is not stored again. `progress` hears the bytes
    /// read so far.
    pub fn attach(
        &mut self,
        case: &str,
        file: NewAttachment,
        now: OffsetDateTime,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Attached, VaultError> {
        let mut input =
            File::open(&file.path).map_err(|e| VaultError::io("open", &file.path, e))?;
        let size = input
            .metadata()
            .map_err(|e| VaultError::io("read", &file.path, e))?
            .len();
        let too_large = || VaultError::AttachmentTooLarge {
            name: file.name.clone(),
            size,
            limit: file.limit,
        };
        if size > file.limit {
            return Err(too_large());
        }
        let count = chunk_count(size).ok_or_else(too_large)?;
        let (seq, entry) = self.in_case(case, now, |c| {
            let blob = BlobId::random();
            let case_id = *c.summary.id.as_bytes();
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK_SIZE];
            let mut insert =
                c.tx.prepare("INSERT INTO blob_chunks (blob, idx, sealed) VALUES (?1, ?2, ?3)")
                    .map_err(|e| VaultError::sqlite(c.path, e))?;
            let mut done = 0u64;
            for index in 0..count {
                let len = chunk_len(size, index).ok_or_else(too_large)?;
                let got = read_full(&mut input, &mut buf[..len])
                    .map_err(|e| VaultError::io("read", &file.path, e))?;
                if got != len {
                    return Err(VaultError::FileChanged(file.path.clone()));
                }
                hasher.update(&buf[..len]);
                let chunk = SealedChunk::seal(
                    c.keys,
                    c.key,
                    case_id,
                    blob,
                    index,
                    count,
                    size,
                    &buf[..len],
                )?;
                insert
                    .execute(params![blob.0.as_slice(), index, chunk.to_bytes()])
                    .map_err(|e| VaultError::sqlite(c.path, e))?;
                done += len as u64;
                progress(done);
            }
            // The file must end where its size said it would.
            if read_full(&mut input, &mut [0u8; 1])
                .map_err(|e| VaultError::io("read", &file.path, e))?
                != 0
            {
                return Err(VaultError::FileChanged(file.path.clone()));
            }
            let sha256 = hex(&hasher.finalize());
            if let Some(earlier) = c
                .doc
                .attachments()?
                .into_iter()
                .find(|a| a.sha256 == sha256)
            {
                // No edit: the chunks just written are rolled back.
                return Ok((Vec::new(), earlier));
            }
            let entry = Attachment {
                at: String::new(),
                author: String::new(),
                blob: blob.to_string(),
                sha256,
                name: file.name.clone(),
                media_type: file.media_type.clone(),
                size,
                chunks: u64::from(count),
                team: c.key.team().to_owned(),
                caption: file.caption.clone(),
                exif_time: file.exif_time.clone(),
                lat: file.gps.map(|(lat, _)| lat),
                lon: file.gps.map(|(_, lon)| lon),
            };
            c.tx.execute(
                "INSERT INTO blobs (blob, case_id, team, count, size, own, complete)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, 1)",
                params![
                    blob.0.as_slice(),
                    case_id.as_slice(),
                    entry.team,
                    count,
                    size as i64
                ],
            )
            .map_err(|e| VaultError::sqlite(c.path, e))?;
            Ok((vec![Edit::Attach(Box::new(entry.clone()))], entry))
        })?;
        match seq {
            // The entry as the case now lists it, stamped.
            Some(seq) => {
                let doc = self.case(case)?;
                let entry = attachment(&doc, &entry.sha256, case)?;
                Ok(Attached {
                    entry,
                    new: true,
                    seq: Some(seq),
                })
            }
            None => Ok(Attached {
                entry,
                new: false,
                seq: None,
            }),
        }
    }

    /// Every attachment `case` lists, with where this device stands with each.
    pub fn attachments(&self, case: &str) -> Result<Vec<AttachmentState>, VaultError> {
        let doc = self.case(case)?;
        let path = self.home.database();
        let mut out = Vec::new();
        for entry in doc.attachments()? {
            let row = BlobId::from_hex(&entry.blob)
                .ok()
                .map(|blob| row(&self.conn, &blob, &path))
                .transpose()?
                .flatten();
            out.push(AttachmentState {
                here: row.as_ref().is_some_and(|r| r.complete),
                delivered: row.as_ref().is_some_and(|r| r.delivered),
                uploaded: row.as_ref().map_or(0, |r| r.uploaded),
                dropped: row.as_ref().is_some_and(|r| r.dropped),
                wanted: row.as_ref().is_some_and(|r| r.wanted),
                entry,
            });
        }
        Ok(out)
    }

    /// Decrypts the attachment of `case` whose SHA-256 is (or starts with) `sha256` to `out`.
    /// The plaintext goes to a temporary file beside `out`, and is renamed to `out` only when
    /// its hash is the one recorded at capture: nothing damaged is ever written at `out`. An
    /// attachment whose bytes are not here is asked for (the next sync fetches it).
    pub fn attachment_get(
        &mut self,
        case: &str,
        sha256: &str,
        out: &Path,
    ) -> Result<Attachment, VaultError> {
        let doc = self.case(case)?;
        let entry = attachment(&doc, sha256, case)?;
        let blob = blob_id(&entry)?;
        let path = self.home.database();
        let here = row(&self.conn, &blob, &path)?.is_some_and(|r| r.complete);
        if !here {
            self.request_blob(&blob)?;
            return Err(VaultError::AttachmentNotHere {
                name: entry.name.clone(),
                sha256: entry.sha256.clone(),
            });
        }
        if out.exists() {
            return Err(VaultError::io(
                "write",
                out,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file exists"),
            ));
        }
        let temp = Partial::create(out)?;
        let mut file = &temp.file;
        let written = stream_plaintext(self, &doc, &entry, &blob, &mut |bytes| {
            file.write_all(bytes)
                .map_err(|e| VaultError::io("write", &temp.path, e))
        });
        written?;
        temp.file
            .sync_all()
            .map_err(|e| VaultError::io("write", &temp.path, e))?;
        temp.keep_as(out)?;
        Ok(entry)
    }

    /// Drops an attachment made here from the outbox: it is never uploaded, and a note in the
    /// case records which and why (a signed change like every other).
    pub fn drop_attachment(
        &mut self,
        case: &str,
        sha256: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Attachment, VaultError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(cairn_model::ModelError::InvalidValue {
                key: "reason".into(),
                value: reason.into(),
                expected: "why the attachment is dropped".into(),
            }
            .into());
        }
        let (_, entry) = self.in_case(case, now, |c| {
            let entry = attachment(c.doc, sha256, case)?;
            let blob = blob_id(&entry)?;
            match row(c.tx, &blob, c.path)? {
                Some(r) if r.own && !r.delivered && !r.dropped => {}
                _ => {
                    return Err(VaultError::NotInOutbox {
                        name: entry.name.clone(),
                    })
                }
            }
            c.tx.execute(
                "UPDATE blobs SET dropped = 1 WHERE blob = ?1",
                params![blob.0.as_slice()],
            )
            .map_err(|e| VaultError::sqlite(c.path, e))?;
            let note = Edit::Note {
                text: format!(
                    "Attachment {} (SHA-256 {}) dropped from the outbox, never sent: {reason}",
                    entry.name, entry.sha256
                ),
            };
            Ok((vec![note], entry))
        })?;
        Ok(entry)
    }

    /// The blobs this device attached that the server does not hold whole, not dropped.
    pub fn blob_outbox(&self) -> Result<Vec<OutboxBlob>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT blob, case_id, team, count, size, uploaded FROM blobs
                 WHERE own = 1 AND complete = 1 AND delivered = 0 AND dropped = 0 ORDER BY rowid",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (blob, case, team, count, size, uploaded) = row.map_err(sql)?;
            out.push(OutboxBlob {
                blob: blob_from(&blob, &path)?,
                case: case_from(&case, &path)?,
                team,
                count,
                size: size as u64,
                held_by_server: uploaded,
            });
        }
        Ok(out)
    }

    /// Chunk `index` of `blob`, as stored (and as it travels).
    pub fn sealed_chunk(&self, blob: &BlobId, index: u32) -> Result<SealedChunk, VaultError> {
        let path = self.home.database();
        read_chunk(&self.conn, blob, index, &path)?.ok_or_else(|| VaultError::Corrupt {
            path: path.clone(),
            detail: format!("chunk {index} of attachment blob {blob} is missing"),
        })
    }

    /// At most `limit` chunks of `blob` from `from` on, in order, each one row read: an
    /// upload takes them a batch at a time, so memory stays bounded whatever the file.
    pub fn sealed_chunks(
        &self,
        blob: &BlobId,
        from: u32,
        limit: u32,
    ) -> Result<Vec<SealedChunk>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT sealed FROM blob_chunks WHERE blob = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![blob.0.as_slice(), from, limit], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(SealedChunk::from_bytes(&row.map_err(sql)?)?);
        }
        Ok(out)
    }

    /// Records that the server holds chunks `0..held` of `blob` (never moves back).
    pub fn mark_chunks_uploaded(&mut self, blob: &BlobId, held: u32) -> Result<(), VaultError> {
        let path = self.home.database();
        self.conn
            .execute(
                "UPDATE blobs SET uploaded = MAX(uploaded, MIN(?2, count)) WHERE blob = ?1",
                params![blob.0.as_slice(), held],
            )
            .map_err(|e| VaultError::sqlite(&path, e))?;
        Ok(())
    }

    /// Records that the server holds every chunk of `blob`, each seal checked: it leaves the
    /// outbox.
    pub fn mark_blob_delivered(&mut self, blob: &BlobId) -> Result<(), VaultError> {
        let path = self.home.database();
        self.conn
            .execute(
                "UPDATE blobs SET uploaded = count, delivered = 1 WHERE blob = ?1",
                params![blob.0.as_slice()],
            )
            .map_err(|e| VaultError::sqlite(&path, e))?;
        Ok(())
    }

    /// Asks for `blob`: a field device fetches only the blobs asked for.
    pub fn request_blob(&mut self, blob: &BlobId) -> Result<(), VaultError> {
        let path = self.home.database();
        self.conn
            .execute(
                "UPDATE blobs SET wanted = 1 WHERE blob = ?1",
                params![blob.0.as_slice()],
            )
            .map_err(|e| VaultError::sqlite(&path, e))?;
        Ok(())
    }

    /// Asks for every blob listed in this vault's cases (`cairn sync --with-attachments`).
    pub fn request_all_blobs(&mut self) -> Result<(), VaultError> {
        let path = self.home.database();
        self.conn
            .execute("UPDATE blobs SET wanted = 1 WHERE complete = 0", [])
            .map_err(|e| VaultError::sqlite(&path, e))?;
        Ok(())
    }

    /// The blobs to fetch: for the office every attachment its cases list that is not here
    /// whole; for a field device those asked for.
    pub fn wanted_blobs(&self) -> Result<Vec<WantedBlob>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let office = self.settings.role == Role::Office;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT blob, case_id FROM blobs
                 WHERE complete = 0 AND own = 0 AND dropped = 0 AND (wanted = 1 OR ?1)
                 ORDER BY case_id, rowid",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![office], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql)?;
        let rows: Vec<(Vec<u8>, Vec<u8>)> = rows.collect::<Result<_, _>>().map_err(sql)?;
        let mut out = Vec::new();
        let mut doc: Option<CaseDoc> = None;
        for (blob, case) in rows {
            let (blob, case) = (blob_from(&blob, &path)?, case_from(&case, &path)?);
            if doc.as_ref().is_none_or(|d| d.id() != case) {
                doc = Some(self.case(&case.to_string())?);
            }
            let Some(doc) = doc.as_ref() else { continue };
            let Some((entry, writer)) = doc
                .attachments_with_writers()?
                .into_iter()
                .find(|(a, _)| a.blob == blob.to_string())
            else {
                continue;
            };
            let Ok(author) = DeviceId::from_hex(&writer) else {
                continue; // Not a device's change: nothing to fetch it from.
            };
            let Some(r) = row(&self.conn, &blob, &path)? else {
                continue;
            };
            out.push(WantedBlob {
                blob,
                author,
                case,
                team: r.team,
                count: r.count,
                size: r.size,
                sha256: entry.sha256,
                held: held(&self.conn, &blob, &path)?,
            });
        }
        Ok(out)
    }

    /// Stores one fetched chunk, after checking its signature and that it belongs to an
    /// attachment a case here lists, with that attachment's case, team, size and count. A
    /// chunk of a blob already whole here is ignored.
    pub fn store_fetched_chunk(&mut self, chunk: &SealedChunk) -> Result<(), VaultError> {
        let path = self.home.database();
        chunk.verify()?;
        let refuse = |why: &str| VaultError::ChunkRefused {
            blob: chunk.blob.to_string(),
            index: chunk.index,
            why: why.to_string(),
        };
        let Some(r) = row(&self.conn, &chunk.blob, &path)? else {
            return Err(refuse("no case here lists that attachment"));
        };
        if r.own || r.complete {
            return Ok(());
        }
        if chunk.case_id != *r.case.as_bytes() {
            return Err(refuse("it names another case than the attachment's"));
        }
        if (chunk.count, chunk.size, chunk.team.as_str()) != (r.count, r.size, r.team.as_str()) {
            return Err(refuse(
                "its size, chunk count or team is not the attachment's",
            ));
        }
        if chunk_len(chunk.size, chunk.index).is_none() {
            return Err(refuse("the attachment has no such chunk"));
        }
        self.conn
            .execute(
                "INSERT INTO blob_chunks (blob, idx, sealed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (blob, idx) DO UPDATE SET sealed = excluded.sealed",
                params![chunk.blob.0.as_slice(), chunk.index, chunk.to_bytes()],
            )
            .map_err(|e| VaultError::sqlite(&path, e))?;
        Ok(())
    }

    /// Checks a fetched blob: every chunk here, each opening, and the plaintext's SHA-256 the
    /// one recorded at capture. Then it counts as here. While chunks are missing it is
    /// `AttachmentNotHere` (what arrived is kept). On a mismatch its chunks are deleted, so
    /// they are fetched again, and the error names the attachment.
    pub fn finish_blob(&mut self, blob: &BlobId) -> Result<(), VaultError> {
        let path = self.home.database();
        let r = row(&self.conn, blob, &path)?.ok_or_else(|| VaultError::ChunkRefused {
            blob: blob.to_string(),
            index: 0,
            why: "no case here lists that attachment".into(),
        })?;
        if r.complete {
            return Ok(());
        }
        let doc = self.case(&r.case.to_string())?;
        let entry = doc
            .attachments()?
            .into_iter()
            .find(|a| a.blob == blob.to_string())
            .ok_or_else(|| VaultError::UnknownAttachment(blob.to_string()))?;
        // Not all here yet: keep what arrived, the next fetch resumes after it.
        if held(&self.conn, blob, &path)? < r.count {
            return Err(VaultError::AttachmentNotHere {
                name: entry.name,
                sha256: entry.sha256,
            });
        }
        match stream_plaintext(self, &doc, &entry, blob, &mut |_| Ok(())) {
            Ok(()) => {
                self.conn
                    .execute(
                        "UPDATE blobs SET complete = 1 WHERE blob = ?1",
                        params![blob.0.as_slice()],
                    )
                    .map_err(|e| VaultError::sqlite(&path, e))?;
                Ok(())
            }
            Err(e @ VaultError::AttachmentMismatch { .. }) => {
                self.conn
                    .execute(
                        "DELETE FROM blob_chunks WHERE blob = ?1",
                        params![blob.0.as_slice()],
                    )
                    .map_err(|e| VaultError::sqlite(&path, e))?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// Registers every attachment a case lists (called wherever a case is written).
pub(crate) fn register(
    conn: &Connection,
    case: Uuid,
    attachments: &[cairn_model::Attachment],
    path: &Path,
) -> Result<(), VaultError> {
    for entry in attachments {
        let (Ok(blob), Ok(count)) = (BlobId::from_hex(&entry.blob), u32::try_from(entry.chunks))
        else {
            continue;
        };
        conn.execute(
            "INSERT INTO blobs (blob, case_id, team, count, size) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (blob) DO NOTHING",
            params![
                blob.0.as_slice(),
                case.as_bytes().as_slice(),
                entry.team,
                count,
                entry.size as i64
            ],
        )
        .map_err(|e| VaultError::sqlite(path, e))?;
    }
    Ok(())
}

/// Seals again under `key` this device's chunks sealed under its draft key, a batch at a
/// time (memory stays bounded), inside the caller's transaction. Returns how many.
pub(crate) fn reseal_drafts(
    tx: &Connection,
    keys: &cairn_crypto::DeviceKeys,
    keyring: &cairn_crypto::Keyring,
    key: &cairn_crypto::TeamKey,
    path: &Path,
) -> Result<u64, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let me = keys.id();
    let mut count = 0;
    loop {
        let batch: Vec<Vec<u8>> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT sealed FROM blob_chunks WHERE {DRAFT_CHUNK} LIMIT 64"
                ))
                .map_err(sql)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)?
        };
        if batch.is_empty() {
            return Ok(count);
        }
        for bytes in batch {
            let old = SealedChunk::from_bytes(&bytes)?;
            if old.author != me {
                // Only this device ever holds its draft key.
                return Err(VaultError::ChunkRefused {
                    blob: old.blob.to_string(),
                    index: old.index,
                    why: "a draft chunk of another device".into(),
                });
            }
            let plain = old.open(keyring)?;
            let new = SealedChunk::seal(
                keys,
                key,
                old.case_id,
                old.blob,
                old.index,
                old.count,
                old.size,
                &plain,
            )?;
            tx.execute(
                "UPDATE blob_chunks SET sealed = ?1 WHERE blob = ?2 AND idx = ?3",
                params![new.to_bytes(), old.blob.0.as_slice(), old.index],
            )
            .map_err(sql)?;
            count += 1;
        }
    }
}

/// Opens every chunk of `entry`'s blob in order, checking each belongs where it sits, hands
/// the plaintext to `sink` and checks the SHA-256 at the end (`AttachmentMismatch` names the
/// attachment on any damage).
fn stream_plaintext(
    vault: &Vault,
    doc: &CaseDoc,
    entry: &Attachment,
    blob: &BlobId,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    let path = vault.home.database();
    let mismatch = |why: String| VaultError::AttachmentMismatch {
        name: entry.name.clone(),
        sha256: entry.sha256.clone(),
        case: doc.reference().to_string(),
        why,
    };
    let count = u32::try_from(entry.chunks).map_err(|_| mismatch("no such chunk count".into()))?;
    let mut hasher = Sha256::new();
    for index in 0..count {
        let chunk = read_chunk(&vault.conn, blob, index, &path)
            .map_err(|e| mismatch(e.to_string()))?
            .ok_or_else(|| mismatch(format!("chunk {index} is missing")))?;
        let fits = chunk.blob == *blob
            && chunk.index == index
            && chunk.count == count
            && chunk.size == entry.size
            && chunk.case_id == *doc.id().as_bytes();
        if !fits {
            return Err(mismatch(format!("chunk {index} belongs elsewhere")));
        }
        let plain = chunk
            .open(&vault.keyring)
            .map_err(|e| mismatch(e.to_string()))?;
        hasher.update(&plain);
        sink(&plain)?;
    }
    let sha256 = hex(&hasher.finalize());
    if sha256 != entry.sha256 {
        return Err(mismatch(format!("its bytes hash to {sha256}")));
    }
    Ok(())
}

/// The attachment of the case whose SHA-256 is `sha256` or starts with it (8 hex digits or
/// more, naming one attachment).
fn attachment(doc: &CaseDoc, sha256: &str, case: &str) -> Result<Attachment, VaultError> {
    let wanted = sha256.trim().to_ascii_lowercase();
    let unknown = || VaultError::UnknownAttachment(format!("{wanted} in case {case}"));
    if wanted.len() < 8 {
        return Err(unknown());
    }
    let mut found: Vec<Attachment> = doc
        .attachments()?
        .into_iter()
        .filter(|a| a.sha256.starts_with(&wanted))
        .collect();
    found.dedup_by(|a, b| a.sha256 == b.sha256);
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(unknown()),
        _ => Err(VaultError::AmbiguousAttachment(wanted)),
    }
}

fn blob_id(entry: &Attachment) -> Result<BlobId, VaultError> {
    Ok(BlobId::from_hex(&entry.blob)?)
}

fn row(conn: &Connection, blob: &BlobId, path: &Path) -> Result<Option<Row>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let found = conn
        .query_row(
            "SELECT case_id, team, count, size, own, complete, uploaded, delivered, wanted, dropped
             FROM blobs WHERE blob = ?1",
            params![blob.0.as_slice()],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, i64>(3)?,
                    [r.get::<_, bool>(4)?, r.get::<_, bool>(5)?],
                    r.get::<_, u32>(6)?,
                    [
                        r.get::<_, bool>(7)?,
                        r.get::<_, bool>(8)?,
                        r.get::<_, bool>(9)?,
                    ],
                ))
            },
        )
        .optional()
        .map_err(sql)?;
    let Some((case, team, count, size, [own, complete], uploaded, [delivered, wanted, dropped])) =
        found
    else {
        return Ok(None);
    };
    Ok(Some(Row {
        case: case_from(&case, path)?,
        team,
        count,
        size: size as u64,
        own,
        complete,
        uploaded,
        delivered,
        wanted,
        dropped,
    }))
}

fn read_chunk(
    conn: &Connection,
    blob: &BlobId,
    index: u32,
    path: &Path,
) -> Result<Option<SealedChunk>, VaultError> {
    let bytes: Option<Vec<u8>> = conn
        .query_row(
            "SELECT sealed FROM blob_chunks WHERE blob = ?1 AND idx = ?2",
            params![blob.0.as_slice(), index],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| VaultError::sqlite(path, e))?;
    bytes
        .map(|b| SealedChunk::from_bytes(&b))
        .transpose()
        .map_err(Into::into)
}

/// How many chunks of `blob`, from the first, are here without a gap.
fn held(conn: &Connection, blob: &BlobId, path: &Path) -> Result<u32, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn
        .prepare("SELECT idx FROM blob_chunks WHERE blob = ?1 ORDER BY idx")
        .map_err(sql)?;
    let indices = stmt
        .query_map(params![blob.0.as_slice()], |r| r.get::<_, u32>(0))
        .map_err(sql)?;
    let mut next = 0;
    for index in indices {
        if index.map_err(sql)? != next {
            break;
        }
        next += 1;
    }
    Ok(next)
}

fn blob_from(bytes: &[u8], path: &Path) -> Result<BlobId, VaultError> {
    <[u8; 16]>::try_from(bytes)
        .map(BlobId)
        .map_err(|_| VaultError::Corrupt {
            path: path.to_path_buf(),
            detail: "a blob id is not 16 bytes".into(),
        })
}

fn case_from(bytes: &[u8], path: &Path) -> Result<Uuid, VaultError> {
    Uuid::from_slice(bytes).map_err(|_| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: "a case id is not 16 bytes".into(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A temporary file beside the output, owner-only, removed unless kept.
struct Partial {
    path: PathBuf,
    file: File,
    kept: bool,
}

impl Partial {
    fn create(out: &Path) -> Result<Partial, VaultError> {
        let mut tag = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut tag);
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = out.with_file_name(format!(".{name}.{}.partial", hex(&tag)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| VaultError::io("create", &path, e))?;
        Ok(Partial {
            path,
            file,
            kept: false,
        })
    }

    fn keep_as(mut self, out: &Path) -> Result<(), VaultError> {
        std::fs::rename(&self.path, out).map_err(|e| VaultError::io("write", out, e))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
