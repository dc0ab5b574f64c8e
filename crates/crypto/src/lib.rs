//! Cairn's cryptography, built only from well-kept crates (age, ed25519-dalek, chacha20poly1305).
//!
//! This crate holds a device's keys, locks them in a passphrase-encrypted key file (age scrypt),
//! seals case changes and attachment chunks (once, under a team key, then an Ed25519 signature
//! over the header and the ciphertext), grants team keys to devices through age, encrypts the
//! vault's local records with a per-vault key, and splits the office's key into shares that any
//! K of N rebuild (Shamir, from `blahaj`).
//! It never does I/O, never invents a primitive, and never lets a secret be printed: secret
//! material lives in types that zeroize on drop and have no `Debug` showing their bytes.
#![forbid(unsafe_code)]

mod blob;
mod error;
mod keyfile;
mod keys;
mod local;
mod sealed;
mod shares;
mod team;

pub use blob::{chunk_count, chunk_len, BlobId, SealedChunk, CHUNK_SIZE, MAX_SEALED_CHUNK};
pub use error::CryptoError;
pub use keyfile::{lock_keys, unlock_keys, KeyFileCost};
pub use keys::{device_tag, verify_signature, DeviceId, DeviceKeys, PublicKeys, IDENTITY_BYTES};
pub use local::LocalCipher;
pub use sealed::{SealedChange, SealedHeader, SealedKind, MAX_TEAM};
pub use shares::{
    combine, split, KeyShare, ShareError, MAX_SHARES, MIN_THRESHOLD, SHARE_TAG, SHARE_WORDS,
};
pub use team::{Keyring, TeamKey, TEAM_SEAL_OVERHEAD};

/// Re-exported so callers can hold a passphrase without depending on `secrecy` themselves.
pub use secrecy::{ExposeSecret, SecretString};

/// Re-exported so callers can hold unlocked key bytes that are wiped when dropped.
pub use zeroize::Zeroizing;

/// An age X25519 recipient: a public key to encrypt to.
pub use age::x25519::Recipient;
