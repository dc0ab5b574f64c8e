//! The push body and its answer.
//!
//! Body: sealed changes, each as `[u32 big-endian length][sealed change bytes]`, back to back.
//! Four bytes of framing per change keep the wire within a few percent of the sealed bytes.

use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::ProtocolError;

/// The largest frame a decoder accepts (64 MiB); servers set a lower limit on whole bodies.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Frames sealed changes for `POST /v1/push`. Each change must be at most [`MAX_FRAME`]
/// bytes; a longer one produces a body every decoder refuses.
pub fn encode_push<B: AsRef<[u8]>>(changes: &[B]) -> Vec<u8> {
    let total: usize = changes.iter().map(|c| 4 + c.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for change in changes {
        let bytes = change.as_ref();
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Splits a push body into its frames. Refuses empty frames, frames longer than
/// [`MAX_FRAME`] and a body that ends inside a frame.
pub fn decode_push(body: &[u8]) -> Result<Vec<&[u8]>, ProtocolError> {
    let mut frames = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let index = frames.len();
        let (len, after) = rest.split_first_chunk::<4>().ok_or_else(|| {
            malformed(format!("push body: frame {index} is cut inside its length"))
        })?;
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 {
            return Err(malformed(format!("push body: frame {index} is empty")));
        }
        if len > MAX_FRAME {
            return Err(malformed(format!(
                "push body: frame {index} claims {len} bytes, more than the {MAX_FRAME} allowed"
            )));
        }
        if after.len() < len {
            return Err(malformed(format!(
                "push body: frame {index} is cut short ({} of {len} bytes)",
                after.len()
            )));
        }
        let (frame, next) = after.split_at(len);
        frames.push(frame);
        rest = next;
    }
    Ok(frames)
}

/// What became of one pushed change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Stored now.
    Stored,
    /// Already stored with the same bytes: nothing to do (a resent batch).
    Duplicate,
    /// Refused; `reason` says why. The client reports it and does not resend it.
    Refused,
}

/// The answer for one pushed change, in the order they were sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResult {
    /// The change's number (0 if the change did not even parse).
    pub seq: u64,
    /// What happened to it.
    pub outcome: Outcome,
    /// For a refused change: one sentence saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The JSON answer to `POST /v1/push`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One result per frame, in order.
    pub results: Vec<PushResult>,
    /// The highest `n` such that the caller's changes `1..=n` are all stored: the client's
    /// outbox starts after it.
    pub acked: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let changes = vec![b"one".to_vec(), vec![7u8; 300], b"x".to_vec()];
        let body = encode_push(&changes);
        assert_eq!(body.len(), 3 * 4 + 3 + 300 + 1);
        let frames = decode_push(&body).unwrap();
        assert_eq!(frames, vec![&b"one"[..], &[7u8; 300][..], &b"x"[..]]);
        assert!(decode_push(&[]).unwrap().is_empty());
        assert!(encode_push::<Vec<u8>>(&[]).is_empty());
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error() {
        let body = encode_push(&[b"hello".to_vec(), b"world!".to_vec()]);
        for cut in 1..body.len() {
            if cut == 9 {
                assert_eq!(decode_push(&body[..cut]).unwrap().len(), 1);
                continue;
            }
            assert!(decode_push(&body[..cut]).is_err(), "cut {cut}");
        }
        assert!(decode_push(&[0, 0, 0, 0]).is_err());
        assert!(decode_push(&[0xff, 0xff, 0xff, 0xff, 1]).is_err());
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let err = decode_push(&huge).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
        // Pseudo-random garbage never panics.
        let mut x: u32 = 12345;
        for _ in 0..2_000 {
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8 % 8
                })
                .collect();
            let _ = decode_push(&bytes);
        }
    }

    #[test]
    fn response_json() {
        let r = PushResponse {
            results: vec![
                PushResult {
                    seq: 1,
                    outcome: Outcome::Stored,
                    reason: None,
                },
                PushResult {
                    seq: 2,
                    outcome: Outcome::Refused,
                    reason: Some("no".into()),
                },
            ],
            acked: 1,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"results":[{"seq":1,"outcome":"stored"},{"seq":2,"outcome":"refused","reason":"no"}],"acked":1}"#
        );
        assert_eq!(serde_json::from_str::<PushResponse>(&json).unwrap(), r);
    }
}
