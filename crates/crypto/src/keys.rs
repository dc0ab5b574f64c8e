//! Device identities: an age X25519 identity for confidentiality and an Ed25519 key for authorship.

use std::fmt;

use age::secrecy::ExposeSecret as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::local::LocalCipher;
use crate::CryptoError;

/// A device's identifier: its Ed25519 public key. Printed as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub [u8; 32]);

impl DeviceId {
    /// The first 12 hex digits, enough for a person to tell devices apart.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }

    /// The device's reference tag (see [`device_tag`]).
    pub fn tag(&self) -> String {
        device_tag(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(s.trim()).map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidKey("a device id is 64 hex digits".into()))?;
        Ok(DeviceId(arr))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.short())
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Four Crockford base32 characters (20 bits) from SHA-256 of a device's Ed25519 public key.
///
/// Case references carry this tag so that two devices of one team, offline, never mint the
/// same reference; anyone holding the roster can check which device minted a reference.
pub fn device_tag(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    let bits = (u32::from(digest[0]) << 16) | (u32::from(digest[1]) << 8) | u32::from(digest[2]);
    (0..4)
        .map(|i| CROCKFORD[((bits >> (19 - 5 * i)) & 0x1f) as usize] as char)
        .collect()
}

fn labelled(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 1 + message.len());
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

/// Checks a signature made by [`DeviceKeys::sign`] with the same domain label.
pub fn verify_signature(
    signer: &DeviceId,
    domain: &str,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), CryptoError> {
    let bad =
        || CryptoError::BadStatement(format!("signature by {} does not verify", signer.short()));
    let key = VerifyingKey::from_bytes(&signer.0).map_err(|_| bad())?;
    // Strict: a small-order key or a non-canonical signature would let anyone forge.
    key.verify_strict(
        &labelled(domain, message),
        &ed25519_dalek::Signature::from_bytes(signature),
    )
    .map_err(|_| bad())
}

/// The public half of a device: what others need to encrypt to it and verify it.
#[derive(Clone)]
pub struct PublicKeys {
    /// Ed25519 key that verifies the device's signatures.
    pub signing: VerifyingKey,
    /// age recipient that others encrypt to.
    pub recipient: age::x25519::Recipient,
}

impl PublicKeys {
    /// The device id (its Ed25519 public key).
    pub fn id(&self) -> DeviceId {
        DeviceId(self.signing.to_bytes())
    }

    /// Parses a device's public keys from their text forms.
    pub fn parse(signing_hex: &str, recipient: &str) -> Result<Self, CryptoError> {
        let id = DeviceId::from_hex(signing_hex)?;
        let signing = VerifyingKey::from_bytes(&id.0)
            .map_err(|_| CryptoError::InvalidKey("not an Ed25519 public key".into()))?;
        let recipient = recipient
            .trim()
            .parse::<age::x25519::Recipient>()
            .map_err(|e| CryptoError::InvalidKey(format!("not an age recipient: {e}")))?;
        Ok(PublicKeys { signing, recipient })
    }
}

/// A device's secret keys. Zeroized on drop; never printed.
pub struct DeviceKeys {
    pub(crate) identity: age::x25519::Identity,
    pub(crate) signing: SigningKey,
    pub(crate) vault_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKeys({})", self.id().short())
    }
}

impl DeviceKeys {
    /// Generates fresh keys from the operating system's random source.
    pub fn generate() -> Self {
        let mut vault_key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(vault_key.as_mut());
        DeviceKeys {
            identity: age::x25519::Identity::generate(),
            signing: SigningKey::generate(&mut OsRng),
            vault_key,
        }
    }

    /// The device id (its Ed25519 public key).
    pub fn id(&self) -> DeviceId {
        DeviceId(self.signing.verifying_key().to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            signing: self.signing.verifying_key(),
            recipient: self.identity.to_public(),
        }
    }

    /// Signs `message` under a domain label (so a signature for one purpose is never valid
    /// for another). Used for roster statements, receipts and request authentication.
    pub fn sign(&self, domain: &str, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(&labelled(domain, message)).to_bytes()
    }

    /// The cipher for this vault's local records.
    pub fn local_cipher(&self) -> LocalCipher {
        LocalCipher::new(&self.vault_key)
    }

    /// The unlocked secrets as the key file holds them inside its encryption: for the key
    /// file, and for handing to the unlock agent over a socket only this user can reach.
    /// Zeroized when dropped; never write them to disk unencrypted.
    pub fn to_unlocked_bytes(&self) -> Zeroizing<Vec<u8>> {
        let age_secret = self.identity.to_string();
        let text = Zeroizing::new(format!(
            "cairn-keys v1\nage {}\ned25519 {}\nvault {}\n",
            age_secret.expose_secret(),
            hex::encode(self.signing.to_bytes()),
            hex::encode(self.vault_key.as_ref()),
        ));
        Zeroizing::new(text.as_bytes().to_vec())
    }

    /// Keys from what [`DeviceKeys::to_unlocked_bytes`] returned; damaged bytes are refused.
    pub fn from_unlocked_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bad = |what: &str| CryptoError::CorruptKeyFile(what.to_string());
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not text"))?;
        let mut lines = text.lines();
        if lines.next() != Some("cairn-keys v1") {
            return Err(bad("unknown key format"));
        }
        let mut field = |name: &str| -> Result<&str, CryptoError> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| bad(&format!("missing {name} key")))
        };
        let identity = field("age")?
            .parse::<age::x25519::Identity>()
            .map_err(|_| bad("invalid age identity"))?;
        let signing =
            Zeroizing::new(hex::decode(field("ed25519")?).map_err(|_| bad("invalid ed25519 key"))?);
        let signing: [u8; 32] = signing
            .as_slice()
            .try_into()
            .map_err(|_| bad("invalid ed25519 key length"))?;
        let vault =
            Zeroizing::new(hex::decode(field("vault")?).map_err(|_| bad("invalid vault key"))?);
        let mut vault_key = Zeroizing::new([0u8; 32]);
        if vault.len() != 32 {
            return Err(bad("invalid vault key length"));
        }
        vault_key.copy_from_slice(&vault);
        Ok(DeviceKeys {
            identity,
            signing: SigningKey::from_bytes(&signing),
            vault_key,
        })
    }
}

/// Length of [`DeviceKeys::to_identity_bytes`]: the Ed25519 seed, then the X25519 secret.
pub const IDENTITY_BYTES: usize = 64;

/// The age X25519 identity's text form is Bech32 of the 32-byte secret under this prefix.
const AGE_SECRET_PREFIX: &str = "age-secret-key-";

impl DeviceKeys {
    /// The two secrets that make a device who it is, and nothing else: the Ed25519 seed (its
    /// id, its signatures) and the X25519 secret of its age identity (what is sealed to it).
    /// The vault key is left out: it protects only one vault's own records, and a vault
    /// rebuilt from these bytes starts empty with a key of its own. What the office key's
    /// shares (`shares/`) carry. Zeroized when dropped.
    pub fn to_identity_bytes(&self) -> Result<Zeroizing<[u8; IDENTITY_BYTES]>, CryptoError> {
        let mut out = Zeroizing::new([0u8; IDENTITY_BYTES]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        let secret = age_secret(self.identity.to_string().expose_secret())?;
        out[32..].copy_from_slice(secret.as_ref());
        Ok(out)
    }

    /// Keys from [`DeviceKeys::to_identity_bytes`], with a fresh vault key.
    pub fn from_identity_bytes(bytes: &[u8; IDENTITY_BYTES]) -> Result<Self, CryptoError> {
        use bech32::ToBase32 as _;
        let seed: &[u8; 32] = bytes[..32]
            .try_into()
            .map_err(|_| CryptoError::InvalidKey("an Ed25519 seed is 32 bytes".into()))?;
        let data = (&bytes[32..]).to_base32();
        let text = Zeroizing::new(
            bech32::encode(AGE_SECRET_PREFIX, data, bech32::Variant::Bech32)
                .map_err(|e| CryptoError::InvalidKey(format!("not an age identity: {e}")))?
                .to_uppercase(),
        );
        let identity = text
            .parse::<age::x25519::Identity>()
            .map_err(|e| CryptoError::InvalidKey(format!("not an age identity: {e}")))?;
        let mut vault_key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(vault_key.as_mut());
        Ok(DeviceKeys {
            identity,
            signing: SigningKey::from_bytes(seed),
            vault_key,
        })
    }
}

/// The 32-byte secret inside an age identity's text form (Bech32, as age writes it).
fn age_secret(text: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    use bech32::FromBase32 as _;
    let bad = || CryptoError::InvalidKey("not an age identity".into());
    let lower = Zeroizing::new(text.to_lowercase());
    let (prefix, data, _) = bech32::decode(&lower).map_err(|_| bad())?;
    if prefix != AGE_SECRET_PREFIX {
        return Err(bad());
    }
    let bytes = Zeroizing::new(Vec::<u8>::from_base32(&data).map_err(|_| bad())?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(bad());
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_four_crockford_chars_and_stable() {
        let tag = device_tag(&[0u8; 32]);
        assert_eq!(tag.len(), 4);
        assert!(tag.bytes().all(|b| CROCKFORD.contains(&b)));
        // Frozen: SHA-256 of 32 zero bytes starts 66 68 7a.
        assert_eq!(tag, "CSM7");
    }

    #[test]
    fn domain_separated_signatures() {
        let keys = DeviceKeys::generate();
        let sig = keys.sign("invite", b"m");
        assert!(verify_signature(&keys.id(), "invite", b"m", &sig).is_ok());
        assert!(verify_signature(&keys.id(), "revoke", b"m", &sig).is_err());
        assert!(verify_signature(&keys.id(), "invite", b"n", &sig).is_err());
        assert!(verify_signature(&DeviceKeys::generate().id(), "invite", b"m", &sig).is_err());
    }

    #[test]
    fn secret_bytes_round_trip() {
        let keys = DeviceKeys::generate();
        let back = DeviceKeys::from_unlocked_bytes(&keys.to_unlocked_bytes()).unwrap();
        assert_eq!(back.id(), keys.id());
        assert_eq!(
            back.public().recipient.to_string(),
            keys.public().recipient.to_string()
        );
        assert_eq!(*back.vault_key, *keys.vault_key);
    }

    #[test]
    fn identity_bytes_round_trip_with_a_fresh_vault_key() {
        let keys = DeviceKeys::generate();
        let bytes = keys.to_identity_bytes().unwrap();
        assert_ne!(bytes[32..], [0u8; 32]);
        let back = DeviceKeys::from_identity_bytes(&bytes).unwrap();
        assert_eq!(back.id(), keys.id());
        assert_eq!(
            back.public().recipient.to_string(),
            keys.public().recipient.to_string()
        );
        assert_eq!(
            back.identity.to_string().expose_secret(),
            keys.identity.to_string().expose_secret()
        );
        assert_ne!(*back.vault_key, *keys.vault_key);
    }
}
