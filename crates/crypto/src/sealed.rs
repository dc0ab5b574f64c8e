//! Sealed changes: the only form in which case content leaves a device or rests in a log.
//!
//! Wire layout, version 2 (all integers big-endian), frozen by the golden test:
//!
//! ```text
//! "CSC2" | kind u8 | case id 16 | author 32 | seq u64 | epoch u32 | team length u8 | team |
//!   sealed length u32 | sealed | signature 64
//! ```
//!
//! `sealed` is [`TeamKey::seal`] of the plaintext under the team's key for `epoch`, with
//! every header byte before it as associated data: one content key wrapped once, whatever
//! the team's size (112 bytes). Epoch 0 is a device's own draft key, for what it records
//! before it joins; such a change never leaves the device (it is sealed again at `join`).
//! The Ed25519 signature covers a domain label and every byte before it, so nobody (a server
//! included) can move a change to another case, author, number, team or epoch, or swap its
//! ciphertext. Opening verifies the signature before decrypting anything.

use ed25519_dalek::{Signature, Signer, VerifyingKey};

use crate::{CryptoError, DeviceId, DeviceKeys, Keyring, TeamKey};

const MAGIC: &[u8; 4] = b"CSC2";
const DOMAIN: &[u8] = b"cairn sealed change v2\0";
/// Fixed part of the header: magic, kind, case, author, seq, epoch, team length.
const FIXED: usize = 4 + 1 + 16 + 32 + 8 + 4 + 1;
const SIGNATURE: usize = 64;
/// The longest team name a header carries.
pub const MAX_TEAM: usize = 32;

/// What a sealed change carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealedKind {
    /// Automerge change bytes for one case.
    CaseChange,
    /// A record of the office's own (a published edition, as compact JSON), sealed under
    /// the office team's key; its id field is the record's UUID, not a case's.
    OfficeRecord,
    /// An office checkpoint part (compacted case documents of one team, see
    /// `cairn_protocol::checkpoint`): its author is the office, its number the checkpoint's
    /// generation, its id field where the part sits in the generation.
    Checkpoint,
}

impl SealedKind {
    fn code(self) -> u8 {
        match self {
            SealedKind::CaseChange => 1,
            SealedKind::OfficeRecord => 2,
            SealedKind::Checkpoint => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(SealedKind::CaseChange),
            2 => Some(SealedKind::OfficeRecord),
            3 => Some(SealedKind::Checkpoint),
            _ => None,
        }
    }
}

/// A sealed change's header read in place, the ciphertext borrowed: what routing, the
/// roster's verdict and bookkeeping need, with no copy of the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedHeader<'a> {
    /// What the plaintext is.
    pub kind: SealedKind,
    /// The case (or, for an office record, the record's) id.
    pub case_id: [u8; 16],
    /// The author device.
    pub author: DeviceId,
    /// The author's change number.
    pub seq: u64,
    /// The team whose key sealed it.
    pub team: &'a str,
    /// That key's epoch (0: the author's draft key).
    pub epoch: u32,
    ciphertext: &'a [u8],
    signature: [u8; 64],
}

impl<'a> SealedHeader<'a> {
    /// Reads the header of the wire form `bytes`, checking its structure as
    /// [`SealedChange::from_bytes`] does (the signature is not checked).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CryptoError> {
        let bad = |what: &str| CryptoError::Malformed(what.to_string());
        if bytes.len() < FIXED + 4 + SIGNATURE {
            return Err(bad("too short"));
        }
        if &bytes[..4] != MAGIC {
            return Err(bad("not a sealed change of this version (bad magic)"));
        }
        let kind = SealedKind::from_code(bytes[4]).ok_or_else(|| bad("unknown kind"))?;
        let array = |range: std::ops::Range<usize>| bytes[range].to_vec();
        let mut case_id = [0u8; 16];
        case_id.copy_from_slice(&array(5..21));
        let mut author = [0u8; 32];
        author.copy_from_slice(&array(21..53));
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&array(53..61));
        let mut epoch = [0u8; 4];
        epoch.copy_from_slice(&array(61..65));
        let team_len = bytes[65] as usize;
        if team_len == 0 || team_len > MAX_TEAM {
            return Err(bad("team name of a length no team has"));
        }
        let body = FIXED + team_len + 4;
        if bytes.len() < body + SIGNATURE {
            return Err(bad("too short"));
        }
        let team = std::str::from_utf8(&bytes[FIXED..FIXED + team_len])
            .map_err(|_| bad("team name is not text"))?;
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[body - 4..body]);
        let len = u32::from_be_bytes(len) as usize;
        if bytes.len() - body - SIGNATURE != len {
            return Err(bad("length does not match its header"));
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[body + len..]);
        Ok(SealedHeader {
            kind,
            case_id,
            author: DeviceId(author),
            seq: u64::from_be_bytes(seq),
            team,
            epoch: u32::from_be_bytes(epoch),
            ciphertext: &bytes[body..body + len],
            signature,
        })
    }
}

/// A change sealed under its team's key and signed by its author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedChange {
    /// What the plaintext is.
    pub kind: SealedKind,
    /// The case (a random UUID's bytes): an opaque routing id. For an
    /// [`SealedKind::OfficeRecord`], the record's own UUID.
    pub case_id: [u8; 16],
    /// The author device.
    pub author: DeviceId,
    /// The author's change number: 1, 2, 3... without gaps.
    pub seq: u64,
    /// The team whose key sealed it (the case's team).
    pub team: String,
    /// That key's epoch (0: the author's draft key, before it joined).
    pub epoch: u32,
    /// [`TeamKey::seal`] output.
    pub ciphertext: Vec<u8>,
    /// Ed25519 signature over [`DOMAIN`] and every byte before it.
    pub signature: [u8; 64],
}

impl SealedChange {
    /// Seals `plaintext` under `key` (its team and epoch go in the header), then signs.
    pub fn seal(
        keys: &DeviceKeys,
        key: &TeamKey,
        kind: SealedKind,
        case_id: [u8; 16],
        seq: u64,
        plaintext: &[u8],
    ) -> Result<Self, CryptoError> {
        if key.team().is_empty() || key.team().len() > MAX_TEAM {
            return Err(CryptoError::Encrypt(format!(
                "a team name is 1 to {MAX_TEAM} bytes"
            )));
        }
        let mut change = SealedChange {
            kind,
            case_id,
            author: keys.id(),
            seq,
            team: key.team().to_owned(),
            epoch: key.epoch(),
            ciphertext: Vec::new(),
            signature: [0; 64],
        };
        change.ciphertext = key.seal(&change.header(), plaintext)?;
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

    /// Verifies, then decrypts with the keyring's key for this change's team and epoch.
    pub fn open(&self, keyring: &Keyring) -> Result<Vec<u8>, CryptoError> {
        self.verify()?;
        let unreadable = || CryptoError::NotARecipient {
            author: self.author.short(),
            seq: self.seq,
        };
        let key = keyring.get(&self.team, self.epoch).ok_or_else(unreadable)?;
        key.open(&self.header(), &self.ciphertext)
            .map_err(|_| unreadable())
    }

    /// The wire and log form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the wire form. Checks structure only; call [`SealedChange::verify`] before trusting it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let header = SealedHeader::parse(bytes)?;
        Ok(SealedChange {
            kind: header.kind,
            case_id: header.case_id,
            author: header.author,
            seq: header.seq,
            team: header.team.to_owned(),
            epoch: header.epoch,
            ciphertext: header.ciphertext.to_vec(),
            signature: header.signature,
        })
    }

    /// Magic to team: what the ciphertext binds as associated data.
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.team.len());
        out.extend_from_slice(MAGIC);
        out.push(self.kind.code());
        out.extend_from_slice(&self.case_id);
        out.extend_from_slice(&self.author.0);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        // Team names are checked to fit in a byte on sealing and parsing.
        out.push(self.team.len() as u8);
        out.extend_from_slice(self.team.as_bytes());
        out
    }

    fn signed_body(&self) -> Vec<u8> {
        let mut out = self.header();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keyring(keys: &[&TeamKey]) -> Keyring {
        let mut ring = Keyring::default();
        for k in keys {
            ring.insert(TeamKey::from_bytes(k.team(), k.epoch(), *k.bytes()));
        }
        ring
    }

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
            team: "T1".into(),
            epoch: 1,
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
    fn seal_open_round_trip_and_only_the_team_key_opens() {
        let author = DeviceKeys::generate();
        let t03 = TeamKey::generate("T03", 2);
        let sealed =
            SealedChange::seal(&author, &t03, SealedKind::CaseChange, [9; 16], 3, b"change")
                .unwrap();
        let parsed = SealedChange::from_bytes(&sealed.to_bytes()).unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!((parsed.team.as_str(), parsed.epoch), ("T03", 2));
        assert_eq!(parsed.open(&keyring(&[&t03])).unwrap(), b"change");
        for ring in [
            Keyring::default(),
            keyring(&[&TeamKey::generate("T03", 2)]),
            keyring(&[&TeamKey::from_bytes("T03", 1, *t03.bytes())]),
            keyring(&[&TeamKey::from_bytes("T04", 2, *t03.bytes())]),
        ] {
            assert!(matches!(
                parsed.open(&ring),
                Err(CryptoError::NotARecipient { .. })
            ));
        }
    }

    #[test]
    fn the_header_read_in_place_says_what_the_whole_change_says() {
        let author = DeviceKeys::generate();
        let t = TeamKey::generate("T03", 2);
        let sealed =
            SealedChange::seal(&author, &t, SealedKind::CaseChange, [9; 16], 3, b"change").unwrap();
        let bytes = sealed.to_bytes();
        let header = SealedHeader::parse(&bytes).unwrap();
        assert_eq!(
            (header.kind, header.case_id, header.author, header.seq),
            (sealed.kind, sealed.case_id, sealed.author, sealed.seq)
        );
        assert_eq!((header.team, header.epoch), ("T03", 2));
        assert!(SealedHeader::parse(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn the_size_does_not_grow_with_the_team() {
        let author = DeviceKeys::generate();
        let t = TeamKey::generate("T03", 1);
        let sealed =
            SealedChange::seal(&author, &t, SealedKind::CaseChange, [1; 16], 1, &[7; 200]).unwrap();
        assert_eq!(
            sealed.to_bytes().len(),
            200 + FIXED + 3 + 4 + 112 + SIGNATURE
        );
    }

    #[test]
    fn any_relabel_breaks_the_signature() {
        let author = DeviceKeys::generate();
        let t = TeamKey::generate("T1", 1);
        let sealed =
            SealedChange::seal(&author, &t, SealedKind::CaseChange, [1; 16], 1, b"x").unwrap();
        let mut moved = sealed.clone();
        moved.case_id = [2; 16];
        let mut renumbered = sealed.clone();
        renumbered.seq = 2;
        let mut reauthored = sealed.clone();
        reauthored.author = DeviceKeys::generate().id();
        let mut reteamed = sealed.clone();
        reteamed.team = "T2".into();
        let mut re_epoched = sealed.clone();
        re_epoched.epoch = 2;
        let mut swapped = sealed.clone();
        swapped.ciphertext[40] ^= 1;
        for forged in [moved, renumbered, reauthored, reteamed, re_epoched, swapped] {
            assert!(matches!(
                forged.verify(),
                Err(CryptoError::BadSignature { .. })
            ));
            assert!(matches!(
                forged.open(&keyring(&[&t])),
                Err(CryptoError::BadSignature { .. })
            ));
        }
    }

    #[test]
    fn every_truncation_is_malformed_not_a_panic() {
        let author = DeviceKeys::generate();
        let t = TeamKey::generate("T1", 1);
        let bytes = SealedChange::seal(&author, &t, SealedKind::CaseChange, [1; 16], 1, b"x")
            .unwrap()
            .to_bytes();
        for cut in 0..bytes.len() {
            assert!(SealedChange::from_bytes(&bytes[..cut]).is_err());
        }
        let mut long_team = bytes.clone();
        long_team[65] = 200;
        assert!(SealedChange::from_bytes(&long_team).is_err());
    }
}
