//! Sealed changes: the only form in which case content leaves a device or rests in a log.
//!
//! Wire layout, version 1 (all integers big-endian), frozen by the golden test below:
//!
//! ```text
//! "CSC1" | kind u8 | case id 16 | author 32 | seq u64 | ciphertext length u32 | ciphertext | signature 64
//! ```
//!
//! The ciphertext is an age file encrypted to every recipient (always including the author).
//! The Ed25519 signature covers a domain label and every byte before it, so nobody (a server
//! included) can move a change to another case, author or number, or swap its ciphertext.
//! Opening verifies the signature before decrypting anything.

use std::io::Write;

use ed25519_dalek::{Signature, Signer, VerifyingKey};

use crate::{CryptoError, DeviceId, DeviceKeys};

const MAGIC: &[u8; 4] = b"CSC1";
const DOMAIN: &[u8] = b"cairn sealed change v1\0";
const HEADER: usize = 4 + 1 + 16 + 32 + 8 + 4;
const SIGNATURE: usize = 64;

/// What a sealed change carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealedKind {
    /// Automerge change bytes for one case.
    CaseChange,
}

impl SealedKind {
    fn code(self) -> u8 {
        match self {
            SealedKind::CaseChange => 1,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(SealedKind::CaseChange),
            _ => None,
        }
    }
}

/// A change encrypted to its recipients and signed by its author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedChange {
    /// What the plaintext is.
    pub kind: SealedKind,
    /// The case (a random UUID's bytes): an opaque routing id.
    pub case_id: [u8; 16],
    /// The author device.
    pub author: DeviceId,
    /// The author's change number: 1, 2, 3... without gaps.
    pub seq: u64,
    /// An age file.
    pub ciphertext: Vec<u8>,
    /// Ed25519 signature over [`DOMAIN`] and the header and ciphertext.
    pub signature: [u8; 64],
}

impl SealedChange {
    /// Encrypts `plaintext` to `recipients` and the author, then signs.
    pub fn seal(
        keys: &DeviceKeys,
        recipients: &[age::x25519::Recipient],
        kind: SealedKind,
        case_id: [u8; 16],
        seq: u64,
        plaintext: &[u8],
    ) -> Result<Self, CryptoError> {
        let own = keys.identity.to_public();
        let mut all: Vec<&age::x25519::Recipient> = vec![&own];
        for r in recipients {
            if !all.iter().any(|have| have.to_string() == r.to_string()) {
                all.push(r);
            }
        }
        let ciphertext = encrypt(&all, plaintext)?;
        let mut change = SealedChange {
            kind,
            case_id,
            author: keys.id(),
            seq,
            ciphertext,
            signature: [0; 64],
        };
        let signed = change.signed_bytes();
        change.signature = keys.signing.sign(&signed).to_bytes();
        Ok(change)
    }

    /// Checks the signature against the key the change claims as its author.
    ///
    /// Whether that author may write at all is the roster's question, not this one's.
    pub fn verify(&self) -> Result<(), CryptoError> {
        let bad = || CryptoError::BadSignature {
            author: self.author.short(),
            seq: self.seq,
        };
        let key = VerifyingKey::from_bytes(&self.author.0).map_err(|_| bad())?;
        // Strict: a small-order key or a non-canonical signature would let anyone forge.
        key.verify_strict(
            &self.signed_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| bad())
    }

    /// Verifies, then decrypts with this device's identity.
    pub fn open(&self, keys: &DeviceKeys) -> Result<Vec<u8>, CryptoError> {
        self.verify()?;
        age::decrypt(&keys.identity, &self.ciphertext).map_err(|_| CryptoError::NotARecipient {
            author: self.author.short(),
            seq: self.seq,
        })
    }

    /// The wire and log form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the wire form. Checks structure only; call [`SealedChange::verify`] before trusting it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bad = |what: &str| CryptoError::Malformed(what.to_string());
        if bytes.len() < HEADER + SIGNATURE {
            return Err(bad("too short"));
        }
        if &bytes[..4] != MAGIC {
            return Err(bad("not a sealed change (bad magic)"));
        }
        let kind = SealedKind::from_code(bytes[4]).ok_or_else(|| bad("unknown kind"))?;
        let mut case_id = [0u8; 16];
        case_id.copy_from_slice(&bytes[5..21]);
        let mut author = [0u8; 32];
        author.copy_from_slice(&bytes[21..53]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[53..61]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[61..65]);
        let len = u32::from_be_bytes(len) as usize;
        if bytes.len() != HEADER + len + SIGNATURE {
            return Err(bad("length does not match its header"));
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[HEADER + len..]);
        Ok(SealedChange {
            kind,
            case_id,
            author: DeviceId(author),
            seq: u64::from_be_bytes(seq),
            ciphertext: bytes[HEADER..HEADER + len].to_vec(),
            signature,
        })
    }

    fn signed_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.ciphertext.len() + SIGNATURE);
        out.extend_from_slice(MAGIC);
        out.push(self.kind.code());
        out.extend_from_slice(&self.case_id);
        out.extend_from_slice(&self.author.0);
        out.extend_from_slice(&self.seq.to_be_bytes());
        // Ciphertexts are bounded far below 4 GiB by every caller (request limits, one change).
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

fn encrypt(
    recipients: &[&age::x25519::Recipient],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let err = |e: &dyn std::fmt::Display| CryptoError::Encrypt(e.to_string());
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| *r as &dyn age::Recipient))
            .map_err(|e| err(&e))?;
    let mut out = Vec::with_capacity(plaintext.len() + 200 * recipients.len());
    let mut writer = encryptor.wrap_output(&mut out).map_err(|e| err(&e))?;
    writer.write_all(plaintext).map_err(|e| err(&e))?;
    writer.finish().map_err(|e| err(&e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identity point: a small-order "public key" under which the all-identity signature
    /// (R = identity, s = 0) passes a lax check for every message.
    #[test]
    fn a_small_order_key_cannot_sign_anything() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut signature = [0u8; 64];
        signature[0] = 1;
        let forged = SealedChange {
            kind: SealedKind::CaseChange,
            case_id: [1; 16],
            author: DeviceId(identity),
            seq: 1,
            ciphertext: b"anything".to_vec(),
            signature,
        };
        let key = VerifyingKey::from_bytes(&identity).unwrap();
        let sig = Signature::from_bytes(&signature);
        use ed25519_dalek::Verifier;
        assert!(
            key.verify(&forged.signed_bytes(), &sig).is_ok(),
            "lax check accepts"
        );
        assert!(forged.verify().is_err());
        assert!(
            crate::verify_signature(&DeviceId(identity), "any", b"message", &signature).is_err()
        );
    }

    #[test]
    fn seal_open_round_trip_and_recipients() {
        let author = DeviceKeys::generate();
        let office = DeviceKeys::generate();
        let stranger = DeviceKeys::generate();
        let sealed = SealedChange::seal(
            &author,
            &[office.public().recipient],
            SealedKind::CaseChange,
            [9; 16],
            3,
            b"change bytes",
        )
        .unwrap();
        let parsed = SealedChange::from_bytes(&sealed.to_bytes()).unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!(parsed.open(&author).unwrap(), b"change bytes");
        assert_eq!(parsed.open(&office).unwrap(), b"change bytes");
        assert!(matches!(
            parsed.open(&stranger),
            Err(CryptoError::NotARecipient { .. })
        ));
    }

    #[test]
    fn any_relabel_breaks_the_signature() {
        let author = DeviceKeys::generate();
        let sealed =
            SealedChange::seal(&author, &[], SealedKind::CaseChange, [1; 16], 1, b"x").unwrap();
        let mut moved = sealed.clone();
        moved.case_id = [2; 16];
        let mut renumbered = sealed.clone();
        renumbered.seq = 2;
        let mut reauthored = sealed.clone();
        reauthored.author = DeviceKeys::generate().id();
        let mut swapped = sealed.clone();
        swapped.ciphertext[40] ^= 1;
        for forged in [moved, renumbered, reauthored, swapped] {
            assert!(matches!(
                forged.verify(),
                Err(CryptoError::BadSignature { .. })
            ));
            assert!(matches!(
                forged.open(&author),
                Err(CryptoError::BadSignature { .. })
            ));
        }
    }

    #[test]
    fn every_truncation_is_malformed_not_a_panic() {
        let author = DeviceKeys::generate();
        let bytes = SealedChange::seal(&author, &[], SealedKind::CaseChange, [1; 16], 1, b"x")
            .unwrap()
            .to_bytes();
        for cut in 0..bytes.len() {
            assert!(SealedChange::from_bytes(&bytes[..cut]).is_err());
        }
    }
}
