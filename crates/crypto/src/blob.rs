//! Sealed chunks: the only form in which an attachment's bytes rest in a vault or travel.
//!
//! An attachment (a photo, a recording, a document) is cut into [`CHUNK_SIZE`] plaintext
//! chunks; chunk `i` is bytes `[i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)` of the file, and a blob
//! of `size` bytes has [`chunk_count`]`(size)` chunks (an empty file: one empty chunk). Each
//! chunk is sealed and signed on its own, so an upload or a download cut anywhere resumes
//! from the last whole chunk, and a server checks each chunk's signature as it arrives.
//!
//! Wire layout, version 1 (all integers big-endian), frozen by the golden test:
//!
//! ```text
//! "CBK1" | blob id 16 | case id 16 | author 32 | index u32 | count u32 | size u64 |
//!   epoch u32 | team length u8 | team | sealed length u32 | sealed | signature 64
//! ```
//!
//! `sealed` is [`TeamKey::seal`] of the chunk's plaintext with every header byte before it
//! as associated data; the Ed25519 signature covers a domain label and every byte before it.
//! So nobody (a server included) can move a chunk to another blob, case, index or team,
//! change the blob's stated size or chunk count, or swap ciphertexts between chunks. The
//! blob id is random, chosen at the first attach, never the plaintext's hash: a server must
//! not be able to test a guess of a known file. The plaintext's SHA-256 lives only inside
//! the (sealed) case document, and is checked after the last chunk is opened.

use std::fmt;

use ed25519_dalek::{Signature, Signer, VerifyingKey};
use rand::RngCore;

use crate::{CryptoError, DeviceId, DeviceKeys, Keyring, TeamKey, MAX_TEAM, TEAM_SEAL_OVERHEAD};

const MAGIC: &[u8; 4] = b"CBK1";
const DOMAIN: &[u8] = b"cairn sealed chunk v1\0";
/// Fixed part of the header: magic, blob, case, author, index, count, size, epoch, team length.
const FIXED: usize = 4 + 16 + 16 + 32 + 4 + 4 + 8 + 4 + 1;
const SIGNATURE: usize = 64;

/// Plaintext bytes per chunk (the last chunk of a blob may be shorter).
///
/// Small on purpose: a link that cuts every connection after 256 KB loses at most the chunk
/// in flight, and the overhead (header, seal, signature: about 270 bytes) stays under 2 %.
pub const CHUNK_SIZE: usize = 16 * 1024;

/// The longest a sealed chunk's bytes can be; [`SealedChunk::from_bytes`] refuses more.
pub const MAX_SEALED_CHUNK: usize =
    FIXED + MAX_TEAM + 4 + CHUNK_SIZE + TEAM_SEAL_OVERHEAD + SIGNATURE;

/// How many chunks a blob of `size` plaintext bytes has (at least one), or `None` when the
/// count would not fit the header.
pub fn chunk_count(size: u64) -> Option<u32> {
    let chunk = CHUNK_SIZE as u64;
    u32::try_from(size.div_ceil(chunk).max(1)).ok()
}

/// The plaintext length of chunk `index` of a blob of `size` bytes, or `None` when the blob
/// has no such chunk.
pub fn chunk_len(size: u64, index: u32) -> Option<usize> {
    if index >= chunk_count(size)? {
        return None;
    }
    let start = u64::from(index) * CHUNK_SIZE as u64;
    // At most CHUNK_SIZE, so the conversion cannot truncate.
    Some((size - start).min(CHUNK_SIZE as u64) as usize)
}

/// A blob's identifier: 16 random bytes, printed as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobId(pub [u8; 16]);

impl BlobId {
    /// A fresh random id (for the first attach of a file to a case).
    pub fn random() -> BlobId {
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        BlobId(id)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Result<BlobId, CryptoError> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s.trim(), &mut id)
            .map_err(|_| CryptoError::Malformed("a blob id is 32 hex digits".into()))?;
        Ok(BlobId(id))
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({self})")
    }
}

/// One chunk of an attachment, sealed under its team's key and signed by its author.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedChunk {
    /// The blob this chunk belongs to.
    pub blob: BlobId,
    /// The case the attachment is listed in (a random UUID's bytes).
    pub case_id: [u8; 16],
    /// The device that sealed it.
    pub author: DeviceId,
    /// Which chunk: 0 to `count - 1`.
    pub index: u32,
    /// How many chunks the blob has: [`chunk_count`]`(size)`.
    pub count: u32,
    /// The whole blob's plaintext size in bytes.
    pub size: u64,
    /// The team whose key sealed it.
    pub team: String,
    /// That key's epoch (0: the author's draft key, before it joined).
    pub epoch: u32,
    /// [`TeamKey::seal`] output.
    pub ciphertext: Vec<u8>,
    /// Ed25519 signature over [`DOMAIN`] and every byte before it.
    pub signature: [u8; 64],
}

impl fmt::Debug for SealedChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealedChunk({} {}/{} of {} bytes, {} epoch {}, by {})",
            self.blob,
            self.index,
            self.count,
            self.size,
            self.team,
            self.epoch,
            self.author.short()
        )
    }
}

impl SealedChunk {
    /// Seals chunk `index` of blob `blob` (`count` chunks, `size` plaintext bytes in all)
    /// under `key`, then signs. `plaintext` must be exactly that chunk's bytes.
    // The agreed API: every argument is a header field the signature binds.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        keys: &DeviceKeys,
        key: &TeamKey,
        case_id: [u8; 16],
        blob: BlobId,
        index: u32,
        count: u32,
        size: u64,
        plaintext: &[u8],
    ) -> Result<SealedChunk, CryptoError> {
        if key.team().is_empty() || key.team().len() > MAX_TEAM {
            return Err(CryptoError::Encrypt(format!(
                "a team name is 1 to {MAX_TEAM} bytes"
            )));
        }
        check_shape(size, count, index, plaintext.len()).map_err(CryptoError::Encrypt)?;
        let mut chunk = SealedChunk {
            blob,
            case_id,
            author: keys.id(),
            index,
            count,
            size,
            team: key.team().to_owned(),
            epoch: key.epoch(),
            ciphertext: Vec::new(),
            signature: [0; 64],
        };
        chunk.ciphertext = key.seal(&chunk.header(), plaintext)?;
        chunk.signature = keys.signing.sign(&chunk.signed_bytes()).to_bytes();
        Ok(chunk)
    }

    /// Checks the signature against the key the chunk claims as its author.
    ///
    /// Whether that author may write to the case's team is the roster's question.
    pub fn verify(&self) -> Result<(), CryptoError> {
        let bad = || CryptoError::BadChunkSignature {
            blob: self.blob.to_string(),
            index: self.index,
        };
        let key = VerifyingKey::from_bytes(&self.author.0).map_err(|_| bad())?;
        // Strict: a small-order key or a non-canonical signature would let anyone forge.
        key.verify_strict(
            &self.signed_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| bad())
    }

    /// Verifies, then decrypts with the keyring's key for this chunk's team and epoch.
    pub fn open(&self, keyring: &Keyring) -> Result<Vec<u8>, CryptoError> {
        self.verify()?;
        let unreadable = || CryptoError::ChunkUnreadable {
            blob: self.blob.to_string(),
            index: self.index,
        };
        let key = keyring.get(&self.team, self.epoch).ok_or_else(unreadable)?;
        key.open(&self.header(), &self.ciphertext)
            .map_err(|_| unreadable())
    }

    /// The wire and vault form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the wire form, bounded: refuses more than [`MAX_SEALED_CHUNK`] bytes, a
    /// truncation, another magic, and a header whose index, count, size and ciphertext
    /// length disagree. Checks structure only; call [`SealedChunk::verify`] before trusting it.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealedChunk, CryptoError> {
        let bad = |what: &str| CryptoError::Malformed(format!("sealed chunk: {what}"));
        if bytes.len() > MAX_SEALED_CHUNK {
            return Err(bad("longer than any sealed chunk"));
        }
        if bytes.len() < FIXED + 4 + SIGNATURE {
            return Err(bad("too short"));
        }
        if &bytes[..4] != MAGIC {
            return Err(bad("not a sealed chunk of this version (bad magic)"));
        }
        let mut at = 4;
        let mut take = |n: usize| {
            let field = &bytes[at..at + n];
            at += n;
            field
        };
        let blob = BlobId(array(take(16)));
        let case_id = array(take(16));
        let author = DeviceId(array(take(32)));
        let index = u32::from_be_bytes(array(take(4)));
        let count = u32::from_be_bytes(array(take(4)));
        let size = u64::from_be_bytes(array(take(8)));
        let epoch = u32::from_be_bytes(array(take(4)));
        let team_len = take(1)[0] as usize;
        if team_len == 0 || team_len > MAX_TEAM {
            return Err(bad("team name of a length no team has"));
        }
        let body = FIXED + team_len + 4;
        if bytes.len() < body + SIGNATURE {
            return Err(bad("too short"));
        }
        let team = std::str::from_utf8(&bytes[FIXED..FIXED + team_len])
            .map_err(|_| bad("team name is not text"))?
            .to_owned();
        let len = u32::from_be_bytes(array(&bytes[body - 4..body])) as usize;
        if bytes.len() - body - SIGNATURE != len {
            return Err(bad("length does not match its header"));
        }
        let plain = len
            .checked_sub(TEAM_SEAL_OVERHEAD)
            .ok_or_else(|| bad("ciphertext shorter than its seal"))?;
        check_shape(size, count, index, plain).map_err(|why| bad(&why))?;
        Ok(SealedChunk {
            blob,
            case_id,
            author,
            index,
            count,
            size,
            team,
            epoch,
            ciphertext: bytes[body..body + len].to_vec(),
            signature: array(&bytes[body + len..]),
        })
    }

    /// Magic to team: what the ciphertext binds as associated data.
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.team.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.blob.0);
        out.extend_from_slice(&self.case_id);
        out.extend_from_slice(&self.author.0);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        // Team names are checked to fit in a byte on sealing and parsing.
        out.push(self.team.len() as u8);
        out.extend_from_slice(self.team.as_bytes());
        out
    }

    fn signed_body(&self) -> Vec<u8> {
        let mut out = self.header();
        // At most CHUNK_SIZE plus the seal: checked on sealing and parsing.
        out.extend_from_slice(&(self.ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        out.extend_from_slice(&self.signed_body());
        out
    }
}

/// The header's count, index and the chunk's plaintext length agree with the blob's size.
fn check_shape(size: u64, count: u32, index: u32, plain: usize) -> Result<(), String> {
    match chunk_count(size) {
        Some(expected) if expected == count => {}
        _ => {
            return Err(format!(
                "a blob of {size} bytes does not have {count} chunks"
            ))
        }
    }
    match chunk_len(size, index) {
        Some(expected) if expected == plain => Ok(()),
        Some(expected) => Err(format!(
            "chunk {index} holds {expected} bytes of the blob, not {plain}"
        )),
        None => Err(format!("chunk {index} of {count} does not exist")),
    }
}

/// A fixed-size field; callers slice exactly `N` bytes.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SIZE: u64 = 2 * CHUNK_SIZE as u64 + 100;

    fn ring(key: &TeamKey) -> Keyring {
        let mut ring = Keyring::default();
        ring.insert(TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes()));
        ring
    }

    fn last_chunk(author: &DeviceKeys, key: &TeamKey) -> SealedChunk {
        SealedChunk::seal(author, key, [7; 16], BlobId([5; 16]), 2, 3, SIZE, &[9; 100]).unwrap()
    }

    #[test]
    fn counts_and_lengths() {
        let chunk = CHUNK_SIZE as u64;
        assert_eq!(chunk_count(0), Some(1));
        assert_eq!(chunk_len(0, 0), Some(0));
        assert_eq!(chunk_count(1), Some(1));
        assert_eq!(chunk_count(chunk), Some(1));
        assert_eq!(chunk_count(chunk + 1), Some(2));
        assert_eq!(chunk_len(chunk + 1, 0), Some(CHUNK_SIZE));
        assert_eq!(chunk_len(chunk + 1, 1), Some(1));
        assert_eq!(chunk_len(chunk + 1, 2), None);
        assert_eq!(chunk_count(chunk * u64::from(u32::MAX)), Some(u32::MAX));
        assert_eq!(chunk_count(chunk * u64::from(u32::MAX) + 1), None);
        assert_eq!(chunk_len(u64::MAX, 0), None);
    }

    #[test]
    fn seal_open_round_trip_and_only_the_team_key_opens() {
        let author = DeviceKeys::generate();
        let key = TeamKey::generate("T03", 2);
        let chunk = last_chunk(&author, &key);
        let parsed = SealedChunk::from_bytes(&chunk.to_bytes()).unwrap();
        assert_eq!(parsed, chunk);
        assert_eq!(parsed.open(&ring(&key)).unwrap(), vec![9; 100]);
        for other in [
            Keyring::default(),
            ring(&TeamKey::generate("T03", 2)),
            ring(&TeamKey::from_bytes("T03", 1, *key.bytes())),
            ring(&TeamKey::from_bytes("T04", 2, *key.bytes())),
        ] {
            assert!(matches!(
                parsed.open(&other),
                Err(CryptoError::ChunkUnreadable { index: 2, .. })
            ));
        }
    }

    #[test]
    fn a_full_chunk_fits_the_bound_and_the_overhead_is_small() {
        let author = DeviceKeys::generate();
        let key = TeamKey::generate(&"T".repeat(MAX_TEAM), 1);
        let full = SealedChunk::seal(
            &author,
            &key,
            [1; 16],
            BlobId::random(),
            0,
            3,
            SIZE,
            &[0; CHUNK_SIZE],
        )
        .unwrap()
        .to_bytes();
        assert_eq!(full.len(), MAX_SEALED_CHUNK);
        assert!(SealedChunk::from_bytes(&full).is_ok());
        // A full chunk's overhead is under 2 %.
        assert!(full.len() - CHUNK_SIZE < CHUNK_SIZE / 50);
    }

    #[test]
    fn a_chunk_that_does_not_fit_its_blob_is_not_sealed() {
        let author = DeviceKeys::generate();
        let key = TeamKey::generate("T1", 1);
        let blob = BlobId::random();
        for (index, count, size, len) in [
            (0, 1, 10, 9),                             // short
            (0, 2, SIZE, 100),                         // not the last chunk, yet short
            (3, 3, SIZE, 0),                           // past the end
            (0, 2, 10, 10),                            // wrong count
            (0, 1, 0, 1),                              // an empty blob's chunk is empty
            (1, 2, CHUNK_SIZE as u64, CHUNK_SIZE),     // count for the size is 1
            (0, 1, CHUNK_SIZE as u64 + 1, CHUNK_SIZE), // count for the size is 2
        ] {
            let plaintext = vec![0; len];
            assert!(
                SealedChunk::seal(&author, &key, [1; 16], blob, index, count, size, &plaintext)
                    .is_err(),
                "{index}/{count} of {size} with {len} bytes"
            );
        }
    }

    /// The identity point: a small-order "public key" under which the all-identity signature
    /// passes a lax check for every message.
    #[test]
    fn a_small_order_key_cannot_sign_a_chunk() {
        let author = DeviceKeys::generate();
        let mut forged = last_chunk(&author, &TeamKey::generate("T1", 1));
        forged.author.0 = [0; 32];
        forged.author.0[0] = 1;
        forged.signature = [0; 64];
        forged.signature[0] = 1;
        assert!(matches!(
            forged.verify(),
            Err(CryptoError::BadChunkSignature { .. })
        ));
    }
}
