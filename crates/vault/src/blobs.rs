//! Attachments: files kept as the sealed chunks that travel, never as plaintext.
//!
//! Attaching streams the file 16 KiB at a time: each chunk is hashed (SHA-256 of the whole
//! plaintext, taken while sealing), sealed under the case's team key (the draft key, epoch 0,
//! before `join`; sealed again at join like changes) and inserted as one row, so memory does
//! not grow with the file. The file's facts (hash, name, media type, size, chunk count) are
//! one signed case change in the case's append-only attachment list, in the same
//! transaction. The same file attached twice to a case is stored once.
//!
//! The `blobs` table holds one row per attachment entry, with routing facts only (the blob's
//! random id, the device that wrote the entry, its case, team, size and chunk count, which a
//! server learns too) and this device's progress. A row is keyed by the blob id, the entry's
//! writer (from its signed change, never the entry's own text) and the entry's SHA-256 as a
//! keyed digest (the hash itself is kept only inside the encrypted case): a teammate who
//! lists another's blob id gets a row, and chunks, of its own, and never hides the genuine
//! file. Every attachment listed in a case is registered here when the case is written
//! ([`register`]), so the office knows what it lacks without loading every case.

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

use crate::at_rest::{self, Facts};
use crate::{Vault, VaultError};

/// The attachment tables, made by `init` and, in a vault made before attachments, at `open`.
/// (No statement but `CREATE TABLE`: a vault of the layout before
/// [`upgrade`](crate::blob_layout::upgrade) keeps its tables through this, and is carried over
/// once its keys are at hand.)
pub(crate) const SCHEMA: &str = "
-- Every attachment entry listed in this vault's cases, and this device's progress with it.
CREATE TABLE IF NOT EXISTS blobs (
    slot      INTEGER PRIMARY KEY,
    blob      BLOB    NOT NULL,
    -- The device whose signed change wrote the entry: the server keeps the blob under it.
    author    BLOB    NOT NULL,
    -- A keyed digest of the entry's SHA-256 (`LocalCipher::tag`), never the hash itself.
    entry     BLOB    NOT NULL,
    case_id   BLOB    NOT NULL,
    -- Its team, chunk count, size and upload progress, encrypted (`at_rest::seal_facts`).
    facts     BLOB    NOT NULL,
    -- 1: attached here (this device uploads it).
    own       INTEGER NOT NULL DEFAULT 0,
    -- 1: every chunk is here and the plaintext's hash checked.
    complete  INTEGER NOT NULL DEFAULT 0,
    -- 1 once the server holds every chunk.
    delivered INTEGER NOT NULL DEFAULT 0,
    -- 1: asked for (a field device fetches only those).
    wanted    INTEGER NOT NULL DEFAULT 0,
    -- 1: taken out of the outbox (`cairn case attachment drop`), with a note in the case.
    dropped   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (blob, author, entry)
) STRICT;
-- The sealed chunks themselves, one row each, as they travel, encrypted under the vault key
-- and padded to one length (`at_rest::seal_chunk`).
CREATE TABLE IF NOT EXISTS blob_chunks (
    slot   INTEGER NOT NULL REFERENCES blobs (slot),
    idx    INTEGER NOT NULL,
    sealed BLOB    NOT NULL,
    -- 1: sealed under this device's draft key (epoch 0), to be sealed again at join.
    draft  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (slot, idx)
) STRICT;
";

/// What a row's `entry` digest is taken for.
const ENTRY_TAG: &str = "cairn attachment entry v1";

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

/// One attachment entry's place in this vault (its row): what a fetched chunk is stored
/// under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobSlot(i64);

/// A blob listed in a case here that this device should fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedBlob {
    /// Where its chunks go.
    pub slot: BlobSlot,
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
    slot: BlobSlot,
    blob: BlobId,
    author: DeviceId,
    tag: [u8; 32],
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
            let me = c.keys.id();
            // The row first, so its chunks have a slot; its entry digest once the hash is
            // known (until then the blob id, which no digest equals).
            let facts = Facts {
                team: c.key.team().to_owned(),
                count,
                size,
                uploaded: 0,
            };
            let facts = at_rest::seal_facts(c.cipher, &blob.0, &me.0, &facts)?;
            c.tx.execute(
                "INSERT INTO blobs (blob, author, entry, case_id, facts, own, complete)
                 VALUES (?1, ?2, ?1, ?3, ?4, 1, 1)",
                params![
                    blob.0.as_slice(),
                    me.0.as_slice(),
                    case_id.as_slice(),
                    facts
                ],
            )
            .map_err(|e| VaultError::sqlite(c.path, e))?;
            let slot = c.tx.last_insert_rowid();
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK_SIZE];
            let draft = c.key.epoch() == 0;
            let mut insert =
                c.tx.prepare(
                    "INSERT INTO blob_chunks (slot, idx, sealed, draft) VALUES (?1, ?2, ?3, ?4)",
                )
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
                let stored = at_rest::seal_chunk(c.cipher, slot, index, &chunk.to_bytes())?;
                insert
                    .execute(params![slot, index, stored, draft])
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
                "UPDATE blobs SET entry = ?1 WHERE slot = ?2",
                params![entry_tag(c.cipher, &entry.sha256).as_slice(), slot],
            )
            .map_err(|e| VaultError::sqlite(c.path, e))?;
            Ok((vec![Edit::Attach(Box::new(entry.clone()))], entry))
        })?;
        match seq {
            // The entry as the case now lists it, stamped.
            Some(seq) => {
                let doc = self.case(case)?;
                let me = self.keys.id().to_string();
                let entry = doc
                    .attachments_with_writers()?
                    .into_iter()
                    .find(|(a, writer)| a.blob == entry.blob && *writer == me)
                    .map(|(a, _)| a)
                    .ok_or_else(|| VaultError::UnknownAttachment(entry.sha256.clone()))?;
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
        for (entry, writer) in doc.attachments_with_writers()? {
            let row = entry_row(&self.conn, &self.cipher, &entry, &writer, &path)?;
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

    /// Decrypts the attachment of `case` named by `wanted` (its SHA-256 or its blob id, or 8
    /// hex digits or more of either) to `out`. The plaintext goes to a temporary file beside
    /// `out`, and is renamed to `out` only when its hash is the one recorded at capture:
    /// nothing damaged is ever written at `out`. An attachment whose bytes are not here is
    /// asked for (the next sync fetches it).
    pub fn attachment_get(
        &mut self,
        case: &str,
        wanted: &str,
        out: &Path,
    ) -> Result<Attachment, VaultError> {
        let doc = self.case(case)?;
        let path = self.home.database();
        let found = attachment(&self.conn, &self.cipher, &doc, wanted, case, &path)?;
        let entry = found.entry.clone();
        let here = match &found.row {
            Some(r) if r.complete => true,
            // Every chunk here but not checked yet (carried over from an older vault).
            Some(r) if held(&self.conn, r.slot, &path)? >= r.count => {
                self.finish_blob(r.slot).is_ok()
            }
            _ => false,
        };
        if !here {
            for candidate in &found.rows {
                self.request_blob(*candidate)?;
            }
            return Err(VaultError::AttachmentNotHere {
                name: entry.name.clone(),
                sha256: entry.sha256.clone(),
            });
        }
        let Some(slot) = found.row.as_ref().map(|r| r.slot) else {
            return Err(VaultError::UnknownAttachment(wanted.to_string()));
        };
        if out.exists() {
            return Err(VaultError::io(
                "write",
                out,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file exists"),
            ));
        }
        let temp = Partial::create(out)?;
        let mut file = &temp.file;
        let written = stream_plaintext(self, &doc, &entry, slot, &mut |bytes| {
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

    /// The plaintext of the attachment of `case` named by `wanted` (as for
    /// [`Vault::attachment_get`]), in memory, for a page that shows it: returned only once its
    /// hash is the one recorded at capture. Reads only: an attachment whose bytes are not here
    /// is [`VaultError::AttachmentNotHere`] and is not asked for; one over `limit` bytes is
    /// [`VaultError::AttachmentTooLarge`] before anything is decrypted.
    pub fn attachment_bytes(
        &self,
        case: &str,
        wanted: &str,
        limit: u64,
    ) -> Result<(Attachment, Vec<u8>), VaultError> {
        let doc = self.case(case)?;
        let path = self.home.database();
        let found = attachment(&self.conn, &self.cipher, &doc, wanted, case, &path)?;
        let entry = found.entry.clone();
        let slot = match &found.row {
            Some(r) if r.complete => r.slot,
            _ => {
                return Err(VaultError::AttachmentNotHere {
                    name: entry.name,
                    sha256: entry.sha256,
                })
            }
        };
        if entry.size > limit {
            return Err(VaultError::AttachmentTooLarge {
                name: entry.name,
                size: entry.size,
                limit,
            });
        }
        // The size recorded at capture bounds what is held; a chunk past it fails the check.
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        stream_plaintext(self, &doc, &entry, slot, &mut |plain| {
            if (bytes.len() + plain.len()) as u64 > entry.size {
                return Err(VaultError::AttachmentMismatch {
                    name: entry.name.clone(),
                    sha256: entry.sha256.clone(),
                    case: doc.reference().to_string(),
                    why: "its chunks hold more than its recorded size".into(),
                });
            }
            bytes.extend_from_slice(plain);
            Ok(())
        })?;
        Ok((entry, bytes))
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
                suggestion: None,
            }
            .into());
        }
        let (_, entry) = self.in_case(case, now, |c| {
            let found = attachment(c.tx, c.cipher, c.doc, sha256, case, c.path)?;
            let entry = found.entry;
            let slot = match found.row {
                Some(r) if r.own && !r.delivered && !r.dropped => r.slot,
                _ => {
                    return Err(VaultError::NotInOutbox {
                        name: entry.name.clone(),
                    })
                }
            };
            c.tx.execute(
                "UPDATE blobs SET dropped = 1 WHERE slot = ?1",
                params![slot.0],
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
                "SELECT blob, case_id, facts FROM blobs
                 WHERE own = 1 AND author = ?1 AND complete = 1 AND delivered = 0 AND dropped = 0
                 ORDER BY slot",
            )
            .map_err(sql)?;
        let me = self.keys.id();
        let rows = stmt
            .query_map(params![me.0.as_slice()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (blob, case, facts) = row.map_err(sql)?;
            let facts = at_rest::open_facts(&self.cipher, &blob, &me.0, &facts)?;
            out.push(OutboxBlob {
                blob: blob_from(&blob, &path)?,
                case: case_from(&case, &path)?,
                team: facts.team,
                count: facts.count,
                size: facts.size,
                held_by_server: facts.uploaded,
            });
        }
        Ok(out)
    }

    /// Chunk `index` of `blob`, a blob this device attached, as stored (and as it travels).
    pub fn sealed_chunk(&self, blob: &BlobId, index: u32) -> Result<SealedChunk, VaultError> {
        let path = self.home.database();
        let missing = || VaultError::Corrupt {
            path: path.clone(),
            detail: format!("chunk {index} of attachment blob {blob} is missing"),
        };
        let slot = own_slot(&self.conn, blob, &self.keys.id(), &path)?.ok_or_else(missing)?;
        read_chunk(&self.conn, &self.cipher, slot, index, &path)?.ok_or_else(missing)
    }

    /// At most `limit` chunks of `blob` (a blob this device attached) from `from` on, in
    /// order, each one row read: an upload takes them a batch at a time, so memory stays
    /// bounded whatever the file.
    pub fn sealed_chunks(
        &self,
        blob: &BlobId,
        from: u32,
        limit: u32,
    ) -> Result<Vec<SealedChunk>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let Some(slot) = own_slot(&self.conn, blob, &self.keys.id(), &path)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT idx, sealed FROM blob_chunks WHERE slot = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![slot.0, from, limit], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (index, stored) = row.map_err(sql)?;
            let bytes = at_rest::open_chunk(&self.cipher, slot.0, index, &stored)?;
            out.push(SealedChunk::from_bytes(&bytes)?);
        }
        Ok(out)
    }

    /// Records that the server holds chunks `0..held` of `blob`, a blob this device attached
    /// (never moves back).
    pub fn mark_chunks_uploaded(&mut self, blob: &BlobId, held: u32) -> Result<(), VaultError> {
        self.update_own_facts(blob, false, |f| {
            f.uploaded = f.uploaded.max(held.min(f.count))
        })
    }

    /// Records that the server holds every chunk of `blob` (a blob this device attached),
    /// each seal checked: it leaves the outbox.
    pub fn mark_blob_delivered(&mut self, blob: &BlobId) -> Result<(), VaultError> {
        self.update_own_facts(blob, true, |f| f.uploaded = f.count)
    }

    /// Rewrites the facts of every row of `blob` this device attached (and marks them
    /// delivered if asked), in one transaction: the facts are encrypted, so SQL cannot.
    fn update_own_facts(
        &mut self,
        blob: &BlobId,
        delivered: bool,
        change: impl Fn(&mut Facts),
    ) -> Result<(), VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let me = self.keys.id();
        let cipher = &self.cipher;
        crate::store::atomic(&self.conn, &path, || {
            let rows: Vec<(i64, Vec<u8>)> = {
                let mut stmt = self
                    .conn
                    .prepare(
                        "SELECT slot, facts FROM blobs WHERE blob = ?1 AND author = ?2 AND own = 1",
                    )
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(params![blob.0.as_slice(), me.0.as_slice()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(sql)?;
                rows.collect::<Result<_, _>>().map_err(sql)?
            };
            for (slot, stored) in rows {
                let mut facts = at_rest::open_facts(cipher, &blob.0, &me.0, &stored)?;
                change(&mut facts);
                let stored = at_rest::seal_facts(cipher, &blob.0, &me.0, &facts)?;
                self.conn
                    .execute(
                        "UPDATE blobs SET facts = ?2, delivered = MAX(delivered, ?3) WHERE slot = ?1",
                        params![slot, stored, delivered],
                    )
                    .map_err(sql)?;
            }
            Ok(())
        })
    }

    /// Asks for the attachment at `slot`: a field device fetches only the blobs asked for.
    pub fn request_blob(&mut self, slot: BlobSlot) -> Result<(), VaultError> {
        let path = self.home.database();
        crate::store::atomic(&self.conn, &path, || {
            self.conn
                .execute(
                    "UPDATE blobs SET wanted = 1 WHERE slot = ?1",
                    params![slot.0],
                )
                .map_err(|e| VaultError::sqlite(&path, e))
        })?;
        Ok(())
    }

    /// Asks for every blob listed in this vault's cases (`cairn sync --with-attachments`).
    pub fn request_all_blobs(&mut self) -> Result<(), VaultError> {
        let path = self.home.database();
        crate::store::atomic(&self.conn, &path, || {
            self.conn
                .execute("UPDATE blobs SET wanted = 1 WHERE complete = 0", [])
                .map_err(|e| VaultError::sqlite(&path, e))
        })?;
        Ok(())
    }

    /// The blobs to fetch: for the office every attachment its cases list that is not here
    /// whole; for a field device those asked for. Each from the device that wrote its entry.
    pub fn wanted_blobs(&self) -> Result<Vec<WantedBlob>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let office = self.speaks_for_office();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT slot, case_id FROM blobs
                 WHERE complete = 0 AND own = 0 AND dropped = 0 AND (wanted = 1 OR ?1)
                 ORDER BY case_id, slot",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![office], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql)?;
        let rows: Vec<(i64, Vec<u8>)> = rows.collect::<Result<_, _>>().map_err(sql)?;
        let mut out = Vec::new();
        let mut doc: Option<(CaseDoc, Vec<Listed>)> = None;
        for (slot, case) in rows {
            let case = case_from(&case, &path)?;
            if doc.as_ref().is_none_or(|(d, _)| d.id() != case) {
                let d = self.case(&case.to_string())?;
                let listed = listed(&self.cipher, &d)?;
                doc = Some((d, listed));
            }
            let Some((_, listed)) = doc.as_ref() else {
                continue;
            };
            let Some(r) = row_at(&self.conn, &self.cipher, BlobSlot(slot), &path)? else {
                continue;
            };
            // The entry this row stands for, as the case lists it now.
            let Some(entry) = listed.iter().find(|l| l.fits(&r)) else {
                continue;
            };
            out.push(WantedBlob {
                slot: r.slot,
                blob: entry.blob,
                author: r.author,
                case,
                team: r.team,
                count: r.count,
                size: r.size,
                sha256: entry.entry.sha256.clone(),
                held: held(&self.conn, r.slot, &path)?,
            });
        }
        Ok(out)
    }

    /// Stores one fetched chunk of `wanted`, after checking its signature and that it belongs
    /// to that attachment: its blob, author, case, team, size and count. A chunk of a blob
    /// already whole here is ignored.
    pub fn store_fetched_chunk(
        &mut self,
        wanted: &WantedBlob,
        chunk: &SealedChunk,
    ) -> Result<(), VaultError> {
        let path = self.home.database();
        chunk.verify()?;
        let refuse = |why: &str| VaultError::ChunkRefused {
            blob: chunk.blob.to_string(),
            index: chunk.index,
            why: why.to_string(),
        };
        let Some(r) = row_at(&self.conn, &self.cipher, wanted.slot, &path)? else {
            return Err(refuse("no case here lists that attachment"));
        };
        if r.own || r.complete {
            return Ok(());
        }
        if chunk.blob != wanted.blob {
            return Err(refuse("it belongs to another blob"));
        }
        if chunk.author != r.author {
            return Err(refuse(
                "it is sealed by another device than the one that listed the attachment",
            ));
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
        crate::store::atomic(&self.conn, &path, || {
            store_chunk(
                &self.conn,
                &self.cipher,
                r.slot.0,
                chunk.index,
                &chunk.to_bytes(),
                &path,
            )
        })
    }

    /// Checks a fetched blob: every chunk here, each opening, and the plaintext's SHA-256 the
    /// one recorded at capture. Then it counts as here. While chunks are missing it is
    /// `AttachmentNotHere` (what arrived is kept). On a mismatch its chunks are deleted, so
    /// they are fetched again, and the error names the attachment.
    pub fn finish_blob(&mut self, slot: BlobSlot) -> Result<(), VaultError> {
        let path = self.home.database();
        let r = row_at(&self.conn, &self.cipher, slot, &path)?.ok_or_else(|| {
            VaultError::ChunkRefused {
                blob: String::new(),
                index: 0,
                why: "no case here lists that attachment".into(),
            }
        })?;
        if r.complete {
            return Ok(());
        }
        let doc = self.case(&r.case.to_string())?;
        let entry = listed(&self.cipher, &doc)?
            .into_iter()
            .find(|l| l.fits(&r))
            .map(|l| l.entry)
            .ok_or_else(|| VaultError::UnknownAttachment(format!("in case {}", r.case)))?;
        // Not all here yet: keep what arrived, the next fetch resumes after it.
        if held(&self.conn, slot, &path)? < r.count {
            return Err(VaultError::AttachmentNotHere {
                name: entry.name,
                sha256: entry.sha256,
            });
        }
        match stream_plaintext(self, &doc, &entry, slot, &mut |_| Ok(())) {
            Ok(()) => {
                crate::store::atomic(&self.conn, &path, || {
                    self.conn
                        .execute(
                            "UPDATE blobs SET complete = 1 WHERE slot = ?1",
                            params![slot.0],
                        )
                        .map_err(|e| VaultError::sqlite(&path, e))
                })?;
                Ok(())
            }
            Err(e @ VaultError::AttachmentMismatch { .. }) => {
                crate::store::atomic(&self.conn, &path, || {
                    self.conn
                        .execute("DELETE FROM blob_chunks WHERE slot = ?1", params![slot.0])
                        .map_err(|e| VaultError::sqlite(&path, e))
                })?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// One attachment entry of a case as the blob table keys it: its blob id, the device whose
/// signed change wrote it, and the keyed digest of its SHA-256.
pub(crate) struct Listed {
    entry: Attachment,
    blob: BlobId,
    author: DeviceId,
    tag: [u8; 32],
}

impl Listed {
    /// Whether `row` is this entry's.
    fn fits(&self, row: &Row) -> bool {
        row.blob == self.blob && row.author == self.author && row.tag == self.tag
    }
}

/// Every attachment entry `doc` lists that names a blob and a device (an entry the judge let
/// in always does).
pub(crate) fn listed(
    cipher: &cairn_crypto::LocalCipher,
    doc: &CaseDoc,
) -> Result<Vec<Listed>, VaultError> {
    let mut out = Vec::new();
    for (entry, writer) in doc.attachments_with_writers()? {
        let (Ok(blob), Ok(author)) = (BlobId::from_hex(&entry.blob), DeviceId::from_hex(&writer))
        else {
            continue;
        };
        out.push(Listed {
            tag: entry_tag(cipher, &entry.sha256),
            entry,
            blob,
            author,
        });
    }
    Ok(out)
}

fn entry_tag(cipher: &cairn_crypto::LocalCipher, sha256: &str) -> [u8; 32] {
    cipher.tag(ENTRY_TAG, sha256.to_ascii_lowercase().as_bytes())
}

/// Registers every attachment entry a case lists (called wherever a case is written).
pub(crate) fn register(
    conn: &Connection,
    cipher: &cairn_crypto::LocalCipher,
    case: Uuid,
    attachments: &[Listed],
    path: &Path,
) -> Result<(), VaultError> {
    for l in attachments {
        let Ok(count) = u32::try_from(l.entry.chunks) else {
            continue;
        };
        let known: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE blob = ?1 AND author = ?2 AND entry = ?3)",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![l.blob.0.as_slice(), l.author.0.as_slice(), l.tag.as_slice()],
                    |r| r.get(0),
                )
            })
            .map_err(|e| VaultError::sqlite(path, e))?;
        if known {
            continue;
        }
        let facts = Facts {
            team: l.entry.team.clone(),
            count,
            size: l.entry.size,
            uploaded: 0,
        };
        let facts = at_rest::seal_facts(cipher, &l.blob.0, &l.author.0, &facts)?;
        conn.prepare_cached(
            "INSERT INTO blobs (blob, author, entry, case_id, facts) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                l.blob.0.as_slice(),
                l.author.0.as_slice(),
                l.tag.as_slice(),
                case.as_bytes().as_slice(),
                facts
            ])
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    }
    Ok(())
}

/// Stores (or replaces) sealed chunk `index` of row `slot`, encrypted and padded, with its
/// draft flag read from its header (a header that does not parse is stored as it comes:
/// reading it finds the damage).
pub(crate) fn store_chunk(
    conn: &Connection,
    cipher: &cairn_crypto::LocalCipher,
    slot: i64,
    index: u32,
    sealed: &[u8],
    path: &Path,
) -> Result<(), VaultError> {
    let draft = SealedChunk::from_bytes(sealed).is_ok_and(|c| c.epoch == 0);
    let stored = at_rest::seal_chunk(cipher, slot, index, sealed)?;
    conn.prepare_cached(
        "INSERT INTO blob_chunks (slot, idx, sealed, draft) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (slot, idx) DO UPDATE SET sealed = excluded.sealed, draft = excluded.draft",
    )
    .and_then(|mut stmt| stmt.execute(params![slot, index, stored, draft]))
    .map_err(|e| VaultError::sqlite(path, e))?;
    Ok(())
}

/// Seals again under `key` this device's chunks sealed under its draft key, a batch at a
/// time (memory stays bounded), inside the caller's transaction. Returns how many.
pub(crate) fn reseal_drafts(
    tx: &Connection,
    cipher: &cairn_crypto::LocalCipher,
    keys: &cairn_crypto::DeviceKeys,
    keyring: &cairn_crypto::Keyring,
    key: &cairn_crypto::TeamKey,
    path: &Path,
) -> Result<u64, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let me = keys.id();
    let mut count = 0;
    loop {
        let batch: Vec<(i64, u32, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT slot, idx, sealed FROM blob_chunks WHERE draft = 1 LIMIT 64")
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(sql)?;
            rows.collect::<Result<_, _>>().map_err(sql)?
        };
        if batch.is_empty() {
            return Ok(count);
        }
        for (slot, index, stored) in batch {
            let bytes = at_rest::open_chunk(cipher, slot, index, &stored)?;
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
            store_chunk(tx, cipher, slot, index, &new.to_bytes(), path)?;
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
    slot: BlobSlot,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    let blob = &blob_id(entry)?;
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
        let chunk = read_chunk(&vault.conn, &vault.cipher, slot, index, &path)
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

/// An attachment a person named, with its row here and the rows of every entry listing the
/// same file.
struct Found {
    /// The entry (the first one listing the file, or the one whose bytes are here).
    entry: Attachment,
    /// Its row, if registered.
    row: Option<Row>,
    /// The rows of every entry listing this file (its SHA-256) under the name given.
    rows: Vec<BlobSlot>,
}

/// The attachment of the case that `wanted` names: its SHA-256 or its blob id, or the first
/// 8 hex digits or more of either. Entries listing the same file (one SHA-256) are one
/// attachment, and the one whose bytes are here is taken, so a copy listed by someone else
/// never stands in the way of the genuine one. Several files are refused, naming each.
fn attachment(
    conn: &Connection,
    cipher: &cairn_crypto::LocalCipher,
    doc: &CaseDoc,
    wanted: &str,
    case: &str,
    path: &Path,
) -> Result<Found, VaultError> {
    let wanted = wanted.trim().to_ascii_lowercase();
    let unknown = || VaultError::UnknownAttachment(format!("{wanted} in case {case}"));
    if wanted.len() < 8 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let matching: Vec<Listed> = listed(cipher, doc)?
        .into_iter()
        .filter(|l| l.entry.sha256.starts_with(&wanted) || l.entry.blob.starts_with(&wanted))
        .collect();
    let mut files: Vec<&str> = matching.iter().map(|l| l.entry.sha256.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    match files.len() {
        0 => return Err(unknown()),
        1 => {}
        _ => {
            let candidates = matching
                .iter()
                .map(|l| {
                    format!(
                        "{} (SHA-256 {}, blob {})",
                        l.entry.name,
                        &l.entry.sha256[..l.entry.sha256.len().min(16)],
                        l.entry.blob
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(VaultError::AmbiguousAttachment { wanted, candidates });
        }
    }
    let mut found: Option<Found> = None;
    let mut rows = Vec::new();
    for l in matching {
        let row = entry_row(conn, cipher, &l.entry, &l.author.to_string(), path)?;
        rows.extend(row.as_ref().map(|r| r.slot));
        let here = row.as_ref().is_some_and(|r| r.complete);
        if found.is_none() || here {
            let better = found
                .as_ref()
                .is_none_or(|f| !f.row.as_ref().is_some_and(|r| r.complete));
            if better {
                found = Some(Found {
                    entry: l.entry,
                    row,
                    rows: Vec::new(),
                });
            }
        }
    }
    let mut found = found.ok_or_else(unknown)?;
    found.rows = rows;
    Ok(found)
}

/// The row of `entry`, written by the device `writer` (hex).
fn entry_row(
    conn: &Connection,
    cipher: &cairn_crypto::LocalCipher,
    entry: &Attachment,
    writer: &str,
    path: &Path,
) -> Result<Option<Row>, VaultError> {
    let (Ok(blob), Ok(author)) = (BlobId::from_hex(&entry.blob), DeviceId::from_hex(writer)) else {
        return Ok(None);
    };
    let slot: Option<i64> = conn
        .prepare_cached("SELECT slot FROM blobs WHERE blob = ?1 AND author = ?2 AND entry = ?3")
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    blob.0.as_slice(),
                    author.0.as_slice(),
                    entry_tag(cipher, &entry.sha256).as_slice()
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    match slot {
        Some(slot) => row_at(conn, cipher, BlobSlot(slot), path),
        None => Ok(None),
    }
}

/// The row of a blob this device attached.
fn own_slot(
    conn: &Connection,
    blob: &BlobId,
    me: &DeviceId,
    path: &Path,
) -> Result<Option<BlobSlot>, VaultError> {
    conn.prepare_cached(
        "SELECT slot FROM blobs WHERE blob = ?1 AND author = ?2 AND own = 1 ORDER BY slot LIMIT 1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![blob.0.as_slice(), me.0.as_slice()], |r| r.get(0))
            .optional()
    })
    .map(|slot| slot.map(BlobSlot))
    .map_err(|e| VaultError::sqlite(path, e))
}

fn blob_id(entry: &Attachment) -> Result<BlobId, VaultError> {
    Ok(BlobId::from_hex(&entry.blob)?)
}

fn row_at(
    conn: &Connection,
    cipher: &cairn_crypto::LocalCipher,
    slot: BlobSlot,
    path: &Path,
) -> Result<Option<Row>, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    type Raw = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, [bool; 5]);
    let found: Option<Raw> = conn
        .prepare_cached(
            "SELECT blob, author, entry, case_id, facts,
                    own, complete, delivered, wanted, dropped
             FROM blobs WHERE slot = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![slot.0], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    [r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
                ))
            })
            .optional()
        })
        .map_err(sql)?;
    let Some((blob, author, tag, case, facts, flags)) = found else {
        return Ok(None);
    };
    let [own, complete, delivered, wanted, dropped] = flags;
    let corrupt = |detail: &str| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let facts = at_rest::open_facts(cipher, &blob, &author, &facts)?;
    Ok(Some(Row {
        slot,
        blob: blob_from(&blob, path)?,
        author: <[u8; 32]>::try_from(author.as_slice())
            .map(DeviceId)
            .map_err(|_| corrupt("an attachment's author is not 32 bytes"))?,
        // A row written before its hash was known (never committed so) has no digest.
        tag: <[u8; 32]>::try_from(tag.as_slice()).unwrap_or([0; 32]),
        case: case_from(&case, path)?,
        team: facts.team,
        count: facts.count,
        size: facts.size,
        own,
        complete,
        uploaded: facts.uploaded,
        delivered,
        wanted,
        dropped,
    }))
}

fn read_chunk(
    conn: &Connection,
    cipher: &cairn_crypto::LocalCipher,
    slot: BlobSlot,
    index: u32,
    path: &Path,
) -> Result<Option<SealedChunk>, VaultError> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT sealed FROM blob_chunks WHERE slot = ?1 AND idx = ?2",
            params![slot.0, index],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| VaultError::sqlite(path, e))?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let bytes = at_rest::open_chunk(cipher, slot.0, index, &stored)?;
    Ok(Some(SealedChunk::from_bytes(&bytes)?))
}

/// How many chunks at `slot`, from the first, are here without a gap.
fn held(conn: &Connection, slot: BlobSlot, path: &Path) -> Result<u32, VaultError> {
    let sql = |e| VaultError::sqlite(path, e);
    let mut stmt = conn
        .prepare_cached("SELECT idx FROM blob_chunks WHERE slot = ?1 ORDER BY idx")
        .map_err(sql)?;
    let indices = stmt
        .query_map(params![slot.0], |r| r.get::<_, u32>(0))
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

pub(crate) fn case_from(bytes: &[u8], path: &Path) -> Result<Uuid, VaultError> {
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
