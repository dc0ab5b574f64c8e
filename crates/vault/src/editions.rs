//! Published editions, signed by the office and kept in the vault.
//!
//! An edition ([`cairn_model::edition::Edition`]) is signed by the device that published it
//! (the office) over its compact JSON, with the domain [`EDITION_DOMAIN`]; the signed record
//! is what `cairn report verify` checks on any machine that knows the office's public key.
//! The vault keeps each one deflated and encrypted in table `editions`, bound to its id; the
//! head covers the table (`cairn check` finds an edition taken away on disk), and an edition
//! altered on disk neither decrypts nor verifies. Not in `meta`, whose every row each open
//! reads again: an edition of 100,000 cases is some 8 MB.
//!
//! Publishing also appends the signed edition to the office's own log as an office record
//! (`SealedKind::OfficeRecord`, sealed under the office team's key, numbered with its case
//! changes), in the same transaction: it travels through the server like any change, so every
//! office device holds it. A received record is kept ([`keep_received`]) only once it is
//! found signed by the office, twice over: the sealed record and the edition inside it.

use cairn_crypto::{verify_signature, DeviceId, DeviceKeys, SealedChange, SealedKind, TeamKey};
use cairn_model::edition::Edition;
use cairn_protocol::OFFICE_TEAM;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Vault, VaultError};

/// The signature domain of editions.
pub const EDITION_DOMAIN: &str = "cairn edition v1";
/// The largest office record an edition travels in: what a receiver takes of any change.
pub const RECORD_LIMIT: usize = cairn_model::MAX_CHANGE_BYTES;
/// The most a received record may inflate to (an edition of about 400,000 cases).
const MAX_EDITION_BYTES: usize = 128 << 20;
/// The table of editions kept here: the id (a random UUID, as kept in clear beside every
/// case) and the record ([`SignedEdition::record`]) encrypted under the vault key.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS editions (
    id     BLOB PRIMARY KEY,
    record BLOB NOT NULL
) STRICT;
";

/// What an edition's row is encrypted for: bound to its id.
fn slot(id: &Uuid) -> Vec<u8> {
    let mut aad = b"cairn edition row v1\0".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// Whether an edition of `id` is kept here.
fn kept(tx: &rusqlite::Connection, id: &Uuid, path: &std::path::Path) -> Result<bool, VaultError> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM editions WHERE id = ?1)",
        [id.as_bytes().as_slice()],
        |r| r.get(0),
    )
    .map_err(|e| VaultError::sqlite(path, e))
}

/// Keeps `signed` (its `record`, the deflated JSON) under `id`.
fn keep(
    tx: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    id: &Uuid,
    record: &[u8],
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let sealed = cipher.encrypt(&slot(id), record)?;
    tx.execute(
        "INSERT INTO editions (id, record) VALUES (?1, ?2)",
        rusqlite::params![id.as_bytes().as_slice(), sealed],
    )
    .map(|_| ())
    .map_err(|e| VaultError::sqlite(path, e))
}

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

    /// What its office record carries: its compact JSON, deflated (editions repeat their
    /// keys on every case: a fifth of the size travels).
    pub fn record(&self) -> Result<Vec<u8>, VaultError> {
        use std::io::Write;
        let json = serde_json::to_vec(self).map_err(|e| bad(e.to_string()))?;
        let mut out =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        out.write_all(&json)
            .and_then(|()| out.finish())
            .map_err(|e| bad(e.to_string()))
    }

    /// Whether it travels to the server as an office record: its record is at most
    /// [`RECORD_LIMIT`] bytes.
    pub fn travels(&self) -> Result<bool, VaultError> {
        Ok(self.record()?.len() <= RECORD_LIMIT)
    }

    /// Reads what [`SignedEdition::record`] wrote (not yet verified), inflating at most
    /// [`MAX_EDITION_BYTES`].
    pub fn from_record(record: &[u8]) -> Result<SignedEdition, VaultError> {
        use std::io::Read;
        let mut json = Vec::new();
        flate2::read::DeflateDecoder::new(record)
            .take(MAX_EDITION_BYTES as u64 + 1)
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("its record does not inflate ({e})")))?;
        if json.len() > MAX_EDITION_BYTES {
            return Err(bad(format!(
                "its record inflates to more than {MAX_EDITION_BYTES} bytes"
            )));
        }
        SignedEdition::from_file(&json)
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
    /// Signs `edition` as this office and keeps it, with its office record in the log (to
    /// send at the next sync), in one transaction. Only the office publishes.
    pub fn publish(&mut self, edition: Edition) -> Result<SignedEdition, VaultError> {
        if self.settings().role != crate::Role::Office {
            return Err(VaultError::OfficeOnly("publishes editions"));
        }
        self.refuse_while_restoring()?;
        let signed = SignedEdition::sign(self.keys(), edition)?;
        signed.verify(&self.keys().id())?;
        let id = record_id(&signed)?;
        // What the office's own cases are sealed under; never a draft key, which nobody
        // else could open.
        let team_key = self
            .keyring
            .newest(OFFICE_TEAM)
            .filter(|k| k.epoch() > 0)
            .map(|k| TeamKey::from_bytes(k.team(), k.epoch(), *k.bytes()))
            .ok_or_else(|| VaultError::NoTeamKey(OFFICE_TEAM.to_owned()))?;
        let plain = signed.record()?;
        let path = self.home.database();
        let Vault {
            conn, keys, cipher, ..
        } = self;
        let tx = crate::transactions::begin(conn, &path)?;
        if kept(&tx, &id, &path)? {
            return Err(bad(format!(
                "an edition {} is already kept here",
                signed.edition.id
            )));
        }
        keep(&tx, cipher, &id, &plain, &path)?;
        crate::failpoint::hit("publish:edition");
        // An edition too large for one record stays here only: a change the server refuses
        // would hold up every later change of the office.
        if plain.len() > RECORD_LIMIT {
            crate::head::commit(&tx, &path)?;
            return Ok(signed);
        }
        crate::failpoint::hit("publish:record");
        let author = keys.id();
        let seq = crate::cases::last_own_seq(&tx, &author.0, &path)? + 1;
        let sealed = SealedChange::seal(
            keys,
            &team_key,
            SealedKind::OfficeRecord,
            *id.as_bytes(),
            seq,
            &plain,
        )?;
        crate::cases::insert_own(
            &tx,
            cipher,
            &author,
            seq,
            id,
            &sealed.to_bytes(),
            false,
            0,
            &path,
        )?;
        crate::head::commit(&tx, &path)?;
        Ok(signed)
    }

    /// Whether this vault's own log holds the office record of `signed` (to send, or sent).
    pub fn holds_record(&self, signed: &SignedEdition) -> Result<bool, VaultError> {
        let path = self.home.database();
        let id = record_id(signed)?;
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM changes WHERE case_id = ?1 AND author = ?2)",
                rusqlite::params![id.as_bytes().as_slice(), self.keys.id().0.as_slice()],
                |r| r.get(0),
            )
            .map_err(|e| VaultError::sqlite(&path, e))
    }

    /// Every edition this vault keeps, oldest first.
    pub fn editions(&self) -> Result<Vec<SignedEdition>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let mut stmt = self
            .conn
            .prepare("SELECT id, record FROM editions")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, sealed) = row.map_err(sql)?;
            let damaged = || VaultError::Corrupt {
                path: path.clone(),
                detail: "a published edition does not decrypt".into(),
            };
            let id = Uuid::from_slice(&id).map_err(|_| damaged())?;
            let record = self
                .cipher
                .decrypt(&slot(&id), &sealed)
                .map_err(|_| damaged())?;
            out.push(SignedEdition::from_record(&record)?);
        }
        out.sort_by(|a, b| {
            (&a.edition.published_at, &a.edition.id).cmp(&(&b.edition.published_at, &b.edition.id))
        });
        Ok(out)
    }
}

/// An edition's id as the 16 bytes its office record is filed under.
fn record_id(signed: &SignedEdition) -> Result<Uuid, VaultError> {
    Uuid::parse_str(&signed.edition.id)
        .map_err(|_| bad(format!("its id {:?} is not a UUID", signed.edition.id)))
}

/// The edition inside a received office record, if it may be kept: the record written by
/// `office` in team `office`, filed under the edition's own id, and the edition signed by the
/// office with figures that follow from its cases. Why not, otherwise (one sentence).
pub(crate) fn received_edition(
    sealed: &SealedChange,
    plain: &[u8],
    office: Option<&[u8; 32]>,
) -> Result<SignedEdition, String> {
    let Some(office) = office.map(|o| DeviceId(*o)) else {
        return Err("it is an office record, and this device does not know the office yet".into());
    };
    if sealed.author != office {
        return Err(format!(
            "it is an office record written by device {}, not by the office: only the office publishes",
            sealed.author.short()
        ));
    }
    if sealed.team != OFFICE_TEAM {
        return Err(format!(
            "it is an office record sealed for team {}, not for team {OFFICE_TEAM}",
            sealed.team
        ));
    }
    let signed = SignedEdition::from_record(plain).map_err(|e| e.to_string())?;
    signed.verify(&office).map_err(|e| e.to_string())?;
    if *record_id(&signed).map_err(|e| e.to_string())?.as_bytes() != sealed.case_id {
        return Err("it files an edition under another id than the edition's own".into());
    }
    Ok(signed)
}

/// Keeps a received edition unless one of its id is already kept (its own record
/// coming back, or a second copy): whether it was new.
pub(crate) fn keep_received(
    tx: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    signed: &SignedEdition,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    let id = record_id(signed)?;
    if kept(tx, &id, path)? {
        return Ok(false);
    }
    keep(tx, cipher, &id, &signed.record()?, path)?;
    Ok(true)
}
