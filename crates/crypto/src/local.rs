//! Encryption of the vault's own records (snapshots, settings) under the per-vault key.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce; the caller passes associated data naming the
//! record's slot (table and row), so a ciphertext moved to another slot fails to decrypt.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;

use crate::CryptoError;

const NONCE: usize = 24;

/// Encrypts and decrypts local records. Holds the key; never printed.
pub struct LocalCipher {
    aead: XChaCha20Poly1305,
}

impl LocalCipher {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        LocalCipher {
            aead: XChaCha20Poly1305::new(key.into()),
        }
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

/// A keyed digest of local facts (HMAC-SHA256 under a key derived from the vault key with
/// HKDF-SHA256 for one purpose): the vault can ask "have I seen this?" of what it keeps,
/// and whoever reads the file without the key learns nothing from it, not even whether
/// two vaults saw the same thing.
pub struct LocalDigest {
    key: zeroize::Zeroizing<[u8; 32]>,
}

impl LocalDigest {
    pub(crate) fn new(vault_key: &[u8; 32], purpose: &str) -> Self {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        // A 32-byte output is far below HKDF's limit of 255 blocks: expand cannot fail.
        let _ = hkdf::Hkdf::<sha2::Sha256>::new(None, vault_key).expand(
            format!("cairn local digest: {purpose}").as_bytes(),
            key.as_mut(),
        );
        LocalDigest { key }
    }

    /// The digest of `data`.
    pub fn digest(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(self.key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for LocalDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalDigest(..)")
    }
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
    fn digests_depend_on_key_purpose_and_data() {
        let d = LocalDigest::new(&[7u8; 32], "imported rows");
        assert_eq!(d.digest(b"row 1"), d.digest(b"row 1"));
        assert_ne!(d.digest(b"row 1"), d.digest(b"row 2"));
        assert_ne!(
            d.digest(b"row 1"),
            LocalDigest::new(&[8u8; 32], "imported rows").digest(b"row 1")
        );
        assert_ne!(
            d.digest(b"row 1"),
            LocalDigest::new(&[7u8; 32], "something else").digest(b"row 1")
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
}
