//! Blob transfer: the framing of sealed chunks on the wire and the JSON status of a blob.
//!
//! An upload body (`POST /v2/blobs/{blob}`) and a download answer (`GET /v2/blobs/{blob}`)
//! are the same framing: sealed chunks (`CBK1`, see `cairn_crypto::SealedChunk`), each as
//! `[u32 big-endian length][sealed chunk bytes]`, back to back, in increasing index. The
//! framing is read incrementally with [`FrameReader`], so neither side holds more than one
//! chunk it has not yet handled, and a connection cut mid-way loses only the chunk in
//! flight: every whole chunk before it can be kept.

use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::ProtocolError;

/// The largest frame a blob decoder accepts: comfortably above a sealed chunk's largest
/// size (about 16.7 KiB), far below anything that could hurt. Each side then parses the
/// frame with the bounded `SealedChunk::from_bytes`.
pub const MAX_CHUNK_FRAME: usize = 64 * 1024;

/// Header of a download answer and of a status: how many chunks, from index 0 without a
/// gap, the server holds.
pub const BLOB_HELD: &str = "x-cairn-blob-held";

/// Content type of an upload body and of a download answer.
pub const BLOB_CONTENT_TYPE: &str = "application/vnd.cairn.chunks.v1";

/// The path of `author`'s blob: `POST` uploads chunks (only its author may), `GET ?from=N`
/// downloads them. Blobs are named by author and id, so that no device can take another's
/// blob id.
pub fn blob_path(author_hex: &str, blob_hex: &str) -> String {
    format!("/v2/blobs/{author_hex}/{blob_hex}")
}

/// The path and query of a download from chunk `from`, exactly as it is signed.
pub fn blob_download_path(author_hex: &str, blob_hex: &str, from: u32) -> String {
    format!("/v2/blobs/{author_hex}/{blob_hex}?from={from}")
}

/// The path and query of a download of at most `limit` chunks from chunk `from`: what a
/// client that keeps each chunk as it arrives asks for, so that what is in flight when it is
/// cut off stays small. (A server that predates `limit` sends what fits its byte budget.)
pub fn blob_page_path(author_hex: &str, blob_hex: &str, from: u32, limit: u32) -> String {
    format!(
        "{}&limit={limit}",
        blob_download_path(author_hex, blob_hex, from)
    )
}

/// The path of a blob's status.
pub fn blob_status_path(author_hex: &str, blob_hex: &str) -> String {
    format!("/v2/blobs/{author_hex}/{blob_hex}/status")
}

/// The query of a download.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobQuery {
    /// The first chunk index wanted (0: from the start).
    #[serde(default)]
    pub from: u32,
    /// The most chunks wanted (none: as many as fit the server's byte budget).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Frames one sealed chunk: its length (u32 big-endian), then its bytes.
pub fn encode_frame(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + chunk.len());
    out.extend_from_slice(&u32::try_from(chunk.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(chunk);
    out
}

/// Splits a stream of frames as its bytes arrive, in whatever pieces the network gives.
///
/// Bounded: it holds at most one frame's bytes plus the piece being pushed, and refuses a
/// frame that claims 0 or more than [`MAX_CHUNK_FRAME`] bytes before reading it.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    frames: u64,
}

impl FrameReader {
    /// A reader at the start of a stream.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Adds bytes that arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if its bytes have all arrived (`Ok(None)`: wait for more).
    /// After an error the stream is unusable.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(len) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 || len > MAX_CHUNK_FRAME {
            return Err(malformed(format!(
                "chunk stream: frame {} claims {len} bytes (1 to {MAX_CHUNK_FRAME} allowed)",
                self.frames
            )));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let frame = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        self.frames += 1;
        Ok(Some(frame))
    }

    /// Called when the stream ended: an error if it ended inside a frame.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "chunk stream: it ends inside frame {} ({} bytes of it arrived)",
                self.frames,
                self.buf.len()
            )))
        }
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// The JSON answer of `GET /v2/blobs/{blob}/status` and of an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobStatus {
    /// How many chunks the server holds from index 0 without a gap: an upload resumes at
    /// this index. 0 for a blob the server does not know.
    pub held: u32,
    /// The blob's chunk count, once the server holds a chunk of it.
    pub count: Option<u32>,
    /// Chunks newly stored by this upload (0 in a status answer).
    #[serde(default)]
    pub stored: u32,
}

impl BlobStatus {
    /// Whether the server holds every chunk.
    pub fn complete(&self) -> bool {
        self.count.is_some_and(|c| self.held >= c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(frames: &[&[u8]]) -> Vec<u8> {
        frames.iter().flat_map(|f| encode_frame(f)).collect()
    }

    fn read_all(bytes: &[u8], piece: usize) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut r = FrameReader::new();
        let mut out = Vec::new();
        for p in bytes.chunks(piece.max(1)) {
            r.push(p);
            while let Some(f) = r.next_frame()? {
                out.push(f);
            }
        }
        r.finish()?;
        Ok(out)
    }

    #[test]
    fn frames_arrive_whole_in_any_pieces() {
        let big = vec![9u8; MAX_CHUNK_FRAME];
        let bytes = stream(&[b"one", &big, b"x"]);
        for piece in [1, 3, 4, 5, 1000, bytes.len()] {
            let frames = read_all(&bytes, piece).unwrap();
            assert_eq!(frames, vec![b"one".to_vec(), big.clone(), b"x".to_vec()]);
        }
        assert!(read_all(&[], 1).unwrap().is_empty());
    }

    #[test]
    fn a_cut_keeps_the_whole_frames_before_it() {
        let bytes = stream(&[b"hello", b"world!"]);
        for cut in 0..bytes.len() {
            let mut r = FrameReader::new();
            r.push(&bytes[..cut]);
            let mut whole = 0;
            while r.next_frame().unwrap().is_some() {
                whole += 1;
            }
            // Frame 0 ends at byte 9.
            assert_eq!(whole, usize::from(cut >= 9), "cut {cut}");
            assert_eq!(r.finish().is_ok(), cut == 0 || cut == 9, "cut {cut}");
        }
    }

    #[test]
    fn empty_oversized_and_garbage_frames_are_refused() {
        assert!(read_all(&[0, 0, 0, 0], 4).is_err());
        let over = ((MAX_CHUNK_FRAME + 1) as u32).to_be_bytes();
        let err = read_all(&over, 4).unwrap_err().to_string();
        assert!(err.contains("claims"), "{err}");
        // A huge claim is refused from its 4 bytes, before anything is buffered for it.
        let mut r = FrameReader::new();
        r.push(&u32::MAX.to_be_bytes());
        assert!(r.next_frame().is_err());
        let mut x: u32 = 777;
        for _ in 0..2_000 {
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8 % 4
                })
                .collect();
            let _ = read_all(&bytes, (x % 7) as usize);
        }
    }

    #[test]
    fn status_json_and_paths() {
        let s = BlobStatus {
            held: 3,
            count: Some(5),
            stored: 2,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"held":3,"count":5,"stored":2}"#);
        assert_eq!(serde_json::from_str::<BlobStatus>(&json).unwrap(), s);
        assert!(!s.complete());
        let unknown: BlobStatus = serde_json::from_str(r#"{"held":0,"count":null}"#).unwrap();
        assert!(!unknown.complete() && unknown.stored == 0);
        assert!(serde_json::from_str::<BlobStatus>(r#"{"held":1,"count":1,"x":1}"#).is_err());
        assert!(serde_json::from_str::<BlobStatus>(r#"{"held":-1,"count":1}"#).is_err());
        assert!(BlobStatus {
            held: 5,
            count: Some(5),
            stored: 0
        }
        .complete());
        let id = "00ff".repeat(8);
        let a = "ab".repeat(32);
        assert_eq!(blob_path(&a, &id), format!("/v2/blobs/{a}/{id}"));
        assert_eq!(
            blob_download_path(&a, &id, 7),
            format!("/v2/blobs/{a}/{id}?from=7")
        );
        assert_eq!(
            blob_status_path(&a, &id),
            format!("/v2/blobs/{a}/{id}/status")
        );
    }
}
