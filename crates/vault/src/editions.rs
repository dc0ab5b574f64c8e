//! Published editions, signed by the office and kept in the vault.
//!
//! An edition ([`cairn_model::edition::Edition`]) is signed by the device that published it
//! (the office) over its compact JSON, with the domain [`EDITION_DOMAIN`]; the signed record
//! is what `cairn report verify` checks on any machine that knows the office's public key.
//! The vault keeps each one encrypted in `meta` (under `edition:ID`), where the head covers
//! it: an edition altered or taken away on disk is found like any other record.

use cairn_crypto::{verify_signature, DeviceId, DeviceKeys};
use cairn_model::edition::Edition;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{store, Vault, VaultError};

/// The signature domain of editions.
pub const EDITION_DOMAIN: &str = "cairn edition v1";
/// What the `meta` key of an edition starts with.
const KEY: &str = "edition:";

/// An edition with its publisher's signature: what is stored, and what a published file
/// holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEdition {
    /// The edition.
    pub edition: Edition,
    /// Who signed it (hex Ed25519 public key): the office.
    pub signer: String,
    /// The signature (hex) over the edition's compact JSON, domain [`EDITION_DOMAIN`].
    pub signature: String,
}

/// Why a signed edition does not check.
fn bad(detail: impl Into<String>) -> VaultError {
    VaultError::BadEdition(detail.into())
}

impl SignedEdition {
    /// Signs `edition` with `keys`.
    pub fn sign(keys: &DeviceKeys, edition: Edition) -> Result<SignedEdition, VaultError> {
        let bytes = signed_bytes(&edition)?;
        Ok(SignedEdition {
            signature: hex::encode(keys.sign(EDITION_DOMAIN, &bytes)),
            signer: hex::encode(keys.id().0),
            edition,
        })
    }

    /// Checks that `office` signed it, and that its figures follow from its cases.
    pub fn verify(&self, office: &DeviceId) -> Result<(), VaultError> {
        let signer =
            DeviceId::from_hex(&self.signer).map_err(|_| bad("its signer is not a device id"))?;
        if signer != *office {
            return Err(bad(format!(
                "it is signed by device {}, not by the office {}",
                signer.short(),
                office.short()
            )));
        }
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("its signature is not 64 bytes of hex"))?;
        verify_signature(
            &signer,
            EDITION_DOMAIN,
            &signed_bytes(&self.edition)?,
            &signature,
        )
        .map_err(|_| bad("its signature does not verify: it was altered after it was signed"))?;
        self.edition.figures()?;
        Ok(())
    }

    /// SHA-256 of its signed bytes and signature, hex: what names this exact edition.
    pub fn hash(&self) -> Result<String, VaultError> {
        let mut h = Sha256::new();
        h.update(EDITION_DOMAIN.as_bytes());
        h.update([0]);
        h.update(signed_bytes(&self.edition)?);
        h.update(self.signature.as_bytes());
        Ok(hex::encode(h.finalize()))
    }

    /// The first 12 hex digits of [`SignedEdition::hash`]: enough to tell editions apart
    /// when read aloud.
    pub fn short_hash(&self) -> Result<String, VaultError> {
        Ok(self.hash()?[..12].to_owned())
    }

    /// The file `cairn report show --format signed` writes (pretty JSON; whitespace does
    /// not matter to the signature).
    pub fn to_file(&self) -> Result<String, VaultError> {
        let mut s = serde_json::to_string_pretty(self).map_err(|e| bad(e.to_string()))?;
        s.push('\n');
        Ok(s)
    }

    /// Reads a file written by [`SignedEdition::to_file`] (not yet verified).
    pub fn from_file(bytes: &[u8]) -> Result<SignedEdition, VaultError> {
        serde_json::from_slice(bytes).map_err(|e| bad(format!("it is not a signed edition ({e})")))
    }
}

/// The bytes an edition's signature covers: its compact JSON.
fn signed_bytes(edition: &Edition) -> Result<Vec<u8>, VaultError> {
    serde_json::to_vec(edition).map_err(|e| bad(e.to_string()))
}

impl Vault {
    /// Signs `edition` as this office and keeps it. Only the office publishes.
    pub fn publish(&mut self, edition: Edition) -> Result<SignedEdition, VaultError> {
        if self.settings().role != crate::Role::Office {
            return Err(VaultError::OfficeOnly("publishes editions"));
        }
        let signed = SignedEdition::sign(self.keys(), edition)?;
        signed.verify(&self.keys().id())?;
        let key = format!("{KEY}{}", signed.edition.id);
        let path = self.home.database();
        if store::read_meta::<SignedEdition>(&self.conn, &self.cipher, &key, &path)?.is_some() {
            return Err(bad(format!(
                "an edition {} is already kept here",
                signed.edition.id
            )));
        }
        store::write_meta(&self.conn, &self.cipher, &key, &signed, &path)?;
        Ok(signed)
    }

    /// Every edition this vault keeps, oldest first.
    pub fn editions(&self) -> Result<Vec<SignedEdition>, VaultError> {
        let path = self.home.database();
        let keys: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT key FROM meta WHERE key LIKE 'edition:%' ORDER BY key")
                .map_err(|e| VaultError::sqlite(&path, e))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(|e| VaultError::sqlite(&path, e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| VaultError::sqlite(&path, e))?
        };
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(e) =
                store::read_meta::<SignedEdition>(&self.conn, &self.cipher, &key, &path)?
            {
                out.push(e);
            }
        }
        out.sort_by(|a, b| {
            (&a.edition.published_at, &a.edition.id).cmp(&(&b.edition.published_at, &b.edition.id))
        });
        Ok(out)
    }
}
