//! Encryption of the vault's own records (snapshots, settings) under the per-vault key.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce; the caller passes associated data naming the
//! record's slot (table and row), so a ciphertext moved to another slot fails to decrypt.
//!
//! Some facts must be looked up without being shown (an attachment's SHA-256 would let a
//! thief holding the database test whether a known file is in it): [`LocalCipher::tag`]
//! gives a keyed digest of them (HMAC-SHA-256 under a key derived from the vault key).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CryptoError;

const NONCE: usize = 24;

/// Encrypts and decrypts local records. Holds the key; never printed.
pub struct LocalCipher {
    aead: XChaCha20Poly1305,
    /// The key of [`LocalCipher::tag`], derived from the vault key, never the key itself.
    tag_key: Zeroizing<[u8; 32]>,
}

/// What the tag key is derived for.
const TAG_KEY_LABEL: &[u8] = b"cairn local tag key v1";

impl LocalCipher {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        LocalCipher {
            aead: XChaCha20Poly1305::new(key.into()),
            tag_key: Zeroizing::new(hmac_sha256(key, &[TAG_KEY_LABEL])),
        }
    }

    /// A keyed digest of `data` for `label` (its purpose): equal inputs give equal tags in
    /// this vault, and nobody without the vault key can tell what a tag stands for.
    pub fn tag(&self, label: &str, data: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.tag_key, &[label.as_bytes(), &[0], data])
    }

    /// Returns nonce || ciphertext.
    pub fn encrypt(&self, slot: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: slot,
                },
            )
            .map_err(|_| CryptoError::Encrypt("local record".into()))?;
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`LocalCipher::encrypt`] returned for the same slot.
    pub fn decrypt(&self, slot: &[u8], record: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if record.len() < NONCE {
            return Err(CryptoError::CorruptRecord("truncated".into()));
        }
        let (nonce, sealed) = record.split_at(NONCE);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: slot,
                },
            )
            .map_err(|_| CryptoError::CorruptRecord(String::from_utf8_lossy(slot).into_owned()))
    }
}

fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length: this one cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl std::fmt::Debug for LocalCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalCipher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_key_purpose_and_data() {
        let c = LocalCipher::new(&[7u8; 32]);
        assert_eq!(
            c.tag("imported rows", b"row 1"),
            c.tag("imported rows", b"row 1")
        );
        assert_ne!(
            c.tag("imported rows", b"row 1"),
            c.tag("imported rows", b"row 2")
        );
        assert_ne!(
            c.tag("imported rows", b"row 1"),
            LocalCipher::new(&[8u8; 32]).tag("imported rows", b"row 1")
        );
        assert_ne!(
            c.tag("imported rows", b"row 1"),
            c.tag("something else", b"row 1")
        );
    }

    #[test]
    fn round_trip_and_slot_binding() {
        let c = LocalCipher::new(&[7u8; 32]);
        let ct = c.encrypt(b"snapshot:1", b"hello").unwrap();
        assert_eq!(c.decrypt(b"snapshot:1", &ct).unwrap(), b"hello");
        assert!(c.decrypt(b"snapshot:2", &ct).is_err());
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(c.decrypt(b"snapshot:1", &bad).is_err());
        assert!(c.decrypt(b"snapshot:1", &ct[..10]).is_err());
    }

    #[test]
    fn tags_are_keyed_and_labelled() {
        let (a, b) = (LocalCipher::new(&[7u8; 32]), LocalCipher::new(&[8u8; 32]));
        assert_eq!(a.tag("x", b"data"), a.tag("x", b"data"));
        assert_ne!(a.tag("x", b"data"), b.tag("x", b"data"));
        assert_ne!(a.tag("x", b"data"), a.tag("y", b"data"));
        assert_ne!(a.tag("x", b"data"), a.tag("x", b"datb"));
        // Not the digest of the data, nor one under the vault key itself.
        assert_ne!(
            a.tag("x", b"data"),
            hmac_sha256(&[7u8; 32], &[b"x", &[0], b"data"])
        );
    }
}
