//! The pull page.
//!
//! Layout, version 1 (integers big-endian), frozen by a golden test:
//!
//! ```text
//! "CPL1" | acked u64 | next u64 | more u8 (0 or 1) | count u32 |
//!     count × ( server_seq u64 | length u32 | sealed change bytes )
//! ```
//!
//! `next` is the cursor to send as `after` next time. A client advances its stored cursor to
//! `next` only after it has durably applied the page, so an interrupted pull repeats the page
//! (applying a change twice changes nothing) and never skips one.

use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::reader::Reader;
use crate::{ProtocolError, MAX_FRAME};

const MAGIC: &[u8; 4] = b"CPL1";
const HEADER: usize = 4 + 8 + 8 + 1 + 4;
const PER_CHANGE: usize = 8 + 4;

/// The query of `GET /v2/pull`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullQuery {
    /// Send changes with a server sequence number above this (0: from the start).
    #[serde(default)]
    pub after: u64,
    /// At most this many changes (the server caps it).
    pub limit: Option<u32>,
}

/// The path and query of a pull request, exactly as it is signed.
pub fn pull_path(after: u64, limit: Option<u32>) -> String {
    match limit {
        Some(limit) => format!("/v2/pull?after={after}&limit={limit}"),
        None => format!("/v2/pull?after={after}"),
    }
}

/// The query of `GET /v2/changes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseChangesQuery {
    /// The case's id, 32 hex digits.
    pub case: String,
    /// Send changes with a server sequence number above this (0: from the start).
    #[serde(default)]
    pub after: u64,
}

/// The path and query of a request for one case's changes, exactly as it is signed.
pub fn case_changes_path(case: &[u8; 16], after: u64) -> String {
    format!("/v2/changes?case={}&after={after}", hex::encode(case))
}

/// One page of `GET /v2/pull` (or of `GET /v2/changes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullPage {
    /// The caller's own acknowledged number (as in a push answer), so a device that lost its
    /// record of it learns where its outbox starts.
    pub acked: u64,
    /// The cursor to send as `after` next time.
    pub next: u64,
    /// Whether more changes were waiting when the page was cut.
    pub more: bool,
    /// `(server_seq, sealed change bytes)` in increasing `server_seq`.
    pub changes: Vec<(u64, Vec<u8>)>,
}

impl PullPage {
    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let total: usize = self.changes.iter().map(|(_, c)| PER_CHANGE + c.len()).sum();
        let mut out = Vec::with_capacity(HEADER + total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.acked.to_be_bytes());
        out.extend_from_slice(&self.next.to_be_bytes());
        out.push(u8::from(self.more));
        let count = u32::try_from(self.changes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (seq, bytes) in &self.changes {
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Parses the binary form; any truncation, excess or inconsistency is an error.
    pub fn decode(bytes: &[u8]) -> Result<PullPage, ProtocolError> {
        let mut r = Reader::new(bytes, "pull page");
        if r.take(4)? != MAGIC {
            return Err(malformed("pull page: it does not start with CPL1"));
        }
        let acked = r.u64()?;
        let next = r.u64()?;
        let more = match r.take(1)?[0] {
            0 => false,
            1 => true,
            other => {
                return Err(malformed(format!(
                    "pull page: `more` is {other}, not 0 or 1"
                )))
            }
        };
        let count = r.u32()? as usize;
        // Never trust `count` for an allocation bigger than the bytes could hold.
        let mut changes = Vec::with_capacity(count.min(r.rest.len() / PER_CHANGE));
        for _ in 0..count {
            let seq = r.u64()?;
            let len = r.u32()? as usize;
            if len == 0 || len > MAX_FRAME {
                return Err(malformed(format!("pull page: a change claims {len} bytes")));
            }
            changes.push((seq, r.take(len)?.to_vec()));
        }
        if !r.rest.is_empty() {
            return Err(malformed(
                "pull page: bytes left over after the last change",
            ));
        }
        if changes.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(malformed("pull page: changes are not in increasing order"));
        }
        Ok(PullPage {
            acked,
            next,
            more,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> PullPage {
        PullPage {
            acked: 3,
            next: 12,
            more: true,
            changes: vec![(10, b"abc".to_vec()), (12, vec![1; 40])],
        }
    }

    #[test]
    fn round_trip_and_overhead() {
        let p = page();
        let bytes = p.encode();
        assert_eq!(bytes.len(), HEADER + 2 * PER_CHANGE + 43);
        assert_eq!(PullPage::decode(&bytes).unwrap(), p);
        let empty = PullPage::default();
        assert_eq!(PullPage::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn every_truncation_excess_and_garbage_is_an_error() {
        let bytes = page().encode();
        for cut in 0..bytes.len() {
            assert!(PullPage::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(PullPage::decode(&long).is_err());
        let mut bad_more = bytes.clone();
        bad_more[20] = 2;
        assert!(PullPage::decode(&bad_more).is_err());
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert!(PullPage::decode(&bad_magic).is_err());
        // A huge count with no bytes behind it fails without allocating for it.
        let mut huge = PullPage::default().encode();
        huge[21..25].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(PullPage::decode(&huge).is_err());
        let unordered = PullPage {
            changes: vec![(5, b"a".to_vec()), (5, b"b".to_vec())],
            ..PullPage::default()
        };
        assert!(PullPage::decode(&unordered.encode()).is_err());
        let mut x: u32 = 99;
        for _ in 0..2_000 {
            let mut b = bytes.clone();
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let at = (x as usize >> 8) % b.len();
            b[at] = (x >> 3) as u8;
            let _ = PullPage::decode(&b);
        }
    }

    #[test]
    fn path() {
        assert_eq!(pull_path(5, Some(10)), "/v2/pull?after=5&limit=10");
        assert_eq!(pull_path(0, None), "/v2/pull?after=0");
    }
}
