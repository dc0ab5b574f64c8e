//! Team keys: what every change is sealed under (protocol v2).
//!
//! The office keeps one random 32-byte key per team and epoch. Content is encrypted once under
//! a fresh content key (XChaCha20-Poly1305), and that key is wrapped once under the team's key,
//! whatever the team's size: 112 bytes of overhead, fixed. (An age file with a team stanza,
//! via age's `Recipient`/`Identity` traits, costs about 200 bytes plus a random "grease" stanza
//! of up to about 210 more, which would break a fixed size budget for small edits.) The team
//! and epoch, and whatever the caller binds (the signed header), are associated data, so
//! content moved to another team, epoch or header fails. Earlier epochs travel wrapped under
//! later ones ([`TeamKey::wrap_earlier`]), so whoever holds the newest key reads the team's
//! whole history.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::CryptoError;

const AAD_DOMAIN: &[u8] = b"cairn team key v1";
const NONCE: usize = 24;
const KEY: usize = 32;
const TAG: usize = 16;
/// Bytes [`TeamKey::seal`] adds to its plaintext.
pub const TEAM_SEAL_OVERHEAD: usize = NONCE + KEY + TAG + NONCE + TAG;

/// One team's key for one epoch.
pub struct TeamKey {
    team: String,
    epoch: u32,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for TeamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TeamKey({}, epoch {})", self.team, self.epoch)
    }
}

impl TeamKey {
    /// A fresh random key for `team` at `epoch`.
    pub fn generate(team: &str, epoch: u32) -> TeamKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        TeamKey::from_bytes(team, epoch, *key)
    }

    /// A key from its bytes (as unwrapped from an admission or an earlier-epoch chain).
    pub fn from_bytes(team: &str, epoch: u32, key: [u8; 32]) -> TeamKey {
        TeamKey {
            team: team.to_owned(),
            epoch,
            key: Zeroizing::new(key),
        }
    }

    /// The team.
    pub fn team(&self) -> &str {
        &self.team
    }

    /// The epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The key's bytes, to store it in an encrypted vault record.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// This key encrypted to one device's age recipient (an age file, through age's
    /// `Recipient` trait): how the office grants it in a roster statement.
    pub fn grant(&self, to: &age::x25519::Recipient) -> Result<Vec<u8>, CryptoError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + KEY));
        plain.extend_from_slice(&self.epoch.to_be_bytes());
        plain.extend_from_slice(self.key.as_ref());
        age::encrypt(to, &plain).map_err(|e| CryptoError::Encrypt(e.to_string()))
    }

    /// Opens a [`TeamKey::grant`] made to `keys`'s device for `team` at `epoch`.
    pub fn accept(
        keys: &crate::DeviceKeys,
        team: &str,
        epoch: u32,
        granted: &[u8],
    ) -> Result<TeamKey, CryptoError> {
        let refused = || CryptoError::NotTeamKey {
            team: team.to_owned(),
            epoch,
        };
        let plain = Zeroizing::new(age::decrypt(&keys.identity, granted).map_err(|_| refused())?);
        let (stated, key) = plain.split_first_chunk::<4>().ok_or_else(refused)?;
        let key: [u8; KEY] = key.try_into().map_err(|_| refused())?;
        if u32::from_be_bytes(*stated) != epoch {
            return Err(refused());
        }
        Ok(TeamKey::from_bytes(team, epoch, key))
    }

    /// Encrypts `plaintext` under a fresh content key wrapped under this key, binding
    /// `context` (for a change, its signed header). Layout: wrap nonce (24), wrapped content
    /// key (48), content nonce (24), ciphertext with its tag.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut content_key = Zeroizing::new([0u8; KEY]);
        rand::rngs::OsRng.fill_bytes(content_key.as_mut());
        let failed = |_| CryptoError::Encrypt("team sealing failed".into());
        let mut out = Vec::with_capacity(TEAM_SEAL_OVERHEAD + plaintext.len());
        let nonce = random_nonce();
        out.extend_from_slice(&nonce);
        out.extend(
            self.aead()
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: content_key.as_ref(),
                        aad: &self.aad(b"key"),
                    },
                )
                .map_err(failed)?,
        );
        let nonce = random_nonce();
        out.extend_from_slice(&nonce);
        out.extend(
            XChaCha20Poly1305::new(content_key.as_ref().into())
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: plaintext,
                        aad: &self.aad(context),
                    },
                )
                .map_err(failed)?,
        );
        Ok(out)
    }

    /// Opens what [`TeamKey::seal`] made under this team and epoch with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let refused = || CryptoError::NotTeamKey {
            team: self.team.clone(),
            epoch: self.epoch,
        };
        if sealed.len() < TEAM_SEAL_OVERHEAD {
            return Err(refused());
        }
        let (wrap_nonce, rest) = sealed.split_at(NONCE);
        let (wrapped, rest) = rest.split_at(KEY + TAG);
        let (nonce, ciphertext) = rest.split_at(NONCE);
        let content_key = Zeroizing::new(
            self.aead()
                .decrypt(
                    XNonce::from_slice(wrap_nonce),
                    Payload {
                        msg: wrapped,
                        aad: &self.aad(b"key"),
                    },
                )
                .map_err(|_| refused())?,
        );
        XChaCha20Poly1305::new_from_slice(&content_key)
            .map_err(|_| refused())?
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.aad(context),
                },
            )
            .map_err(|_| refused())
    }

    /// The key of an earlier epoch of the same team, encrypted under this one.
    pub fn wrap_earlier(&self, earlier: &TeamKey) -> Result<Vec<u8>, CryptoError> {
        if earlier.team != self.team || earlier.epoch >= self.epoch {
            return Err(CryptoError::Encrypt(format!(
                "epoch {} of {} cannot carry epoch {} of {}",
                self.epoch, self.team, earlier.epoch, earlier.team
            )));
        }
        let mut plain = Zeroizing::new(Vec::with_capacity(36));
        plain.extend_from_slice(&earlier.epoch.to_be_bytes());
        plain.extend_from_slice(earlier.key.as_ref());
        self.seal(b"earlier epoch", &plain)
    }

    /// Opens what [`TeamKey::wrap_earlier`] made: the earlier epoch's key.
    pub fn unwrap_earlier(&self, wrapped: &[u8]) -> Result<TeamKey, CryptoError> {
        let plain = Zeroizing::new(self.open(b"earlier epoch", wrapped)?);
        let malformed = || CryptoError::NotTeamKey {
            team: self.team.clone(),
            epoch: self.epoch,
        };
        let (epoch, key) = plain.split_first_chunk::<4>().ok_or_else(malformed)?;
        let epoch = u32::from_be_bytes(*epoch);
        let key: [u8; 32] = key.try_into().map_err(|_| malformed())?;
        if epoch >= self.epoch {
            return Err(malformed());
        }
        Ok(TeamKey::from_bytes(&self.team, epoch, key))
    }

    fn aead(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }

    /// The domain, team and epoch, then what the caller binds.
    fn aad(&self, context: &[u8]) -> Vec<u8> {
        let mut aad = AAD_DOMAIN.to_vec();
        aad.push(0);
        aad.extend_from_slice(self.team.as_bytes());
        aad.push(0);
        aad.extend_from_slice(&self.epoch.to_be_bytes());
        aad.extend_from_slice(context);
        aad
    }
}

/// The team keys a device holds, by team and epoch; the newest epoch of its team seals.
#[derive(Default)]
pub struct Keyring {
    keys: std::collections::BTreeMap<(String, u32), TeamKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.values()).finish()
    }
}

impl Clone for Keyring {
    fn clone(&self) -> Self {
        let mut ring = Keyring::default();
        for key in self.keys.values() {
            ring.insert(TeamKey::from_bytes(&key.team, key.epoch, *key.key));
        }
        ring
    }
}

impl Keyring {
    /// Adds (or replaces) a key.
    pub fn insert(&mut self, key: TeamKey) {
        self.keys.insert((key.team.clone(), key.epoch), key);
    }

    /// The key of `team` at `epoch`.
    pub fn get(&self, team: &str, epoch: u32) -> Option<&TeamKey> {
        self.keys.get(&(team.to_owned(), epoch))
    }

    /// The newest key of `team`.
    pub fn newest(&self, team: &str) -> Option<&TeamKey> {
        self.keys
            .range((team.to_owned(), 0)..=(team.to_owned(), u32::MAX))
            .next_back()
            .map(|(_, k)| k)
    }

    /// Every key held.
    pub fn iter(&self) -> impl Iterator<Item = &TeamKey> {
        self.keys.values()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredKey {
    team: String,
    epoch: u32,
    key: String,
}

impl serde::Serialize for Keyring {
    /// For the vault's encrypted records only: the keys in hex.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.keys.len()))?;
        for k in self.keys.values() {
            seq.serialize_element(&StoredKey {
                team: k.team.clone(),
                epoch: k.epoch,
                key: hex::encode(k.key.as_ref()),
            })?;
        }
        seq.end()
    }
}

impl<'de> serde::Deserialize<'de> for Keyring {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = Vec::<StoredKey>::deserialize(d)?;
        let mut ring = Keyring::default();
        for s in stored {
            let mut key = Zeroizing::new([0u8; KEY]);
            hex::decode_to_slice(&s.key, key.as_mut()).map_err(serde::de::Error::custom)?;
            ring.insert(TeamKey::from_bytes(&s.team, s.epoch, *key));
        }
        Ok(ring)
    }
}

fn random_nonce() -> [u8; NONCE] {
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_fixed_overhead_whatever_the_team_and_only_its_key_opens_it() {
        let t03 = TeamKey::generate("T03", 1);
        let sealed = t03.seal(b"header", b"an automerge change").unwrap();
        assert_eq!(
            sealed.len(),
            b"an automerge change".len() + TEAM_SEAL_OVERHEAD
        );
        assert_eq!(TEAM_SEAL_OVERHEAD, 112);
        assert_eq!(
            t03.open(b"header", &sealed).unwrap(),
            b"an automerge change"
        );
        // Another header, team, epoch or key opens nothing, even with the same key bytes.
        assert!(t03.open(b"other header", &sealed).is_err());
        let same_bytes = |team, epoch| TeamKey::from_bytes(team, epoch, *t03.key);
        for other in [
            TeamKey::generate("T03", 1),
            TeamKey::generate("T04", 1),
            same_bytes("T04", 1),
            same_bytes("T03", 2),
        ] {
            assert!(other.open(b"header", &sealed).is_err(), "{other:?}");
        }
        // Truncated or altered anywhere: refused, never a panic.
        for cut in [0, 1, TEAM_SEAL_OVERHEAD - 1, sealed.len() - 1] {
            assert!(t03.open(b"header", &sealed[..cut]).is_err(), "{cut}");
        }
        for i in [0, 30, 80, 100, sealed.len() - 1] {
            let mut bent = sealed.clone();
            bent[i] ^= 1;
            assert!(t03.open(b"header", &bent).is_err(), "{i}");
        }
    }

    #[test]
    fn a_grant_opens_only_for_its_device_and_epoch() {
        let device = crate::DeviceKeys::generate();
        let other = crate::DeviceKeys::generate();
        let key = TeamKey::generate("T03", 4);
        let granted = key.grant(&device.public().recipient).unwrap();
        let got = TeamKey::accept(&device, "T03", 4, &granted).unwrap();
        assert_eq!(got.bytes(), key.bytes());
        assert!(TeamKey::accept(&other, "T03", 4, &granted).is_err());
        assert!(TeamKey::accept(&device, "T03", 3, &granted).is_err());
        assert!(TeamKey::accept(&device, "T03", 4, &granted[..granted.len() - 1]).is_err());
    }

    #[test]
    fn the_keyring_keeps_every_epoch_and_seals_with_the_newest() {
        let mut ring = Keyring::default();
        for (team, epoch) in [("T03", 1), ("T03", 3), ("T04", 2), ("T03", 2)] {
            ring.insert(TeamKey::generate(team, epoch));
        }
        assert_eq!(ring.newest("T03").unwrap().epoch(), 3);
        assert_eq!(ring.newest("T04").unwrap().epoch(), 2);
        assert!(ring.newest("T0").is_none());
        let json = serde_json::to_string(&ring).unwrap();
        let back: Keyring = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(
            back.get("T03", 2).unwrap().bytes(),
            ring.get("T03", 2).unwrap().bytes()
        );
        assert!(!format!("{ring:?}").contains(&hex::encode(ring.get("T03", 1).unwrap().bytes())));
    }

    #[test]
    fn the_newest_key_unlocks_every_earlier_epoch() {
        let keys: Vec<TeamKey> = (1..=3).map(|e| TeamKey::generate("T03", e)).collect();
        let old_change = keys[0].seal(b"h", b"recorded in epoch 1").unwrap();
        // Each epoch's key travels wrapped under the next one.
        let chain: Vec<Vec<u8>> = keys
            .windows(2)
            .map(|w| w[1].wrap_earlier(&w[0]).unwrap())
            .collect();
        let epoch2 = keys[2].unwrap_earlier(&chain[1]).unwrap();
        let epoch1 = epoch2.unwrap_earlier(&chain[0]).unwrap();
        assert_eq!((epoch1.team(), epoch1.epoch()), ("T03", 1));
        assert_eq!(
            epoch1.open(b"h", &old_change).unwrap(),
            b"recorded in epoch 1"
        );
        // A link opens only under the key it was wrapped to, and never goes forward.
        assert!(keys[0].unwrap_earlier(&chain[1]).is_err());
        assert!(keys[0].wrap_earlier(&keys[1]).is_err());
    }
}
