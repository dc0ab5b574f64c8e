//! The key file: a device's secrets encrypted with the user's passphrase (age scrypt).
//!
//! Layout: the line `cairn-keyfile v1`, then SHA-256 of the age ciphertext, then the ciphertext.
//! The checksum is not for security (age authenticates); it lets a damaged file be told apart
//! from a wrong passphrase, so a person is not sent retyping a passphrase that was right.

use age::secrecy::SecretString as AgeSecret;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{CryptoError, DeviceKeys};

const MAGIC: &[u8] = b"cairn-keyfile v1\n";

/// How much scrypt work the passphrase costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyFileCost {
    /// age's calibration: about one second on this device.
    #[default]
    Calibrated,
    /// scrypt with N = 2^log_n. Below the calibrated cost this weakens the vault against
    /// passphrase guessing; it exists for tests and benchmarks.
    LogN(u8),
}

/// Encrypts `keys` under `passphrase`; returns the key file's bytes.
pub fn lock_keys(
    keys: &DeviceKeys,
    passphrase: &SecretString,
    cost: KeyFileCost,
) -> Result<Vec<u8>, CryptoError> {
    let mut recipient = age::scrypt::Recipient::new(age_secret(passphrase));
    if let KeyFileCost::LogN(log_n) = cost {
        if !(1..=30).contains(&log_n) {
            return Err(CryptoError::Encrypt(format!(
                "scrypt cost {log_n} is outside 1..=30"
            )));
        }
        recipient.set_work_factor(log_n);
    }
    let secret = keys.to_unlocked_bytes();
    let ciphertext =
        age::encrypt(&recipient, &secret).map_err(|e| CryptoError::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(MAGIC.len() + 32 + ciphertext.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&Sha256::digest(&ciphertext));
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decrypts a key file. Tells a wrong passphrase from a damaged file.
pub fn unlock_keys(file: &[u8], passphrase: &SecretString) -> Result<DeviceKeys, CryptoError> {
    let rest = file.strip_prefix(MAGIC).ok_or_else(|| {
        CryptoError::CorruptKeyFile("it does not start as a Cairn key file".into())
    })?;
    if rest.len() < 32 {
        return Err(CryptoError::CorruptKeyFile("it is truncated".into()));
    }
    let (checksum, ciphertext) = rest.split_at(32);
    if Sha256::digest(ciphertext).as_slice() != checksum {
        return Err(CryptoError::CorruptKeyFile(
            "its checksum does not match: truncated or altered".into(),
        ));
    }
    let identity = age::scrypt::Identity::new(age_secret(passphrase));
    let plaintext = age::decrypt(&identity, ciphertext).map_err(|e| match e {
        age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
            CryptoError::WrongPassphrase
        }
        age::DecryptError::ExcessiveWork { required, .. } => CryptoError::ExcessiveWork(required),
        other => CryptoError::CorruptKeyFile(other.to_string()),
    })?;
    let plaintext = zeroize::Zeroizing::new(plaintext);
    DeviceKeys::from_unlocked_bytes(&plaintext)
}

fn age_secret(passphrase: &SecretString) -> AgeSecret {
    AgeSecret::from(passphrase.expose_secret().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let keys = DeviceKeys::generate();
        let file = lock_keys(&keys, &pass("correct horse"), KeyFileCost::LogN(4)).unwrap();
        let back = unlock_keys(&file, &pass("correct horse")).unwrap();
        assert_eq!(back.id(), keys.id());
        assert!(matches!(
            unlock_keys(&file, &pass("wrong")),
            Err(CryptoError::WrongPassphrase)
        ));
    }

    #[test]
    fn damage_is_not_reported_as_wrong_passphrase() {
        let keys = DeviceKeys::generate();
        let file = lock_keys(&keys, &pass("p"), KeyFileCost::LogN(4)).unwrap();
        for cut in [0, 5, MAGIC.len() + 10, file.len() / 2, file.len() - 1] {
            let err = unlock_keys(&file[..cut], &pass("p")).unwrap_err();
            assert!(
                matches!(err, CryptoError::CorruptKeyFile(_)),
                "cut {cut}: {err}"
            );
        }
        for at in [3, MAGIC.len() + 1, MAGIC.len() + 40, file.len() - 3] {
            let mut bad = file.clone();
            bad[at] ^= 0x40;
            let err = unlock_keys(&bad, &pass("p")).unwrap_err();
            assert!(
                matches!(err, CryptoError::CorruptKeyFile(_)),
                "flip {at}: {err}"
            );
        }
    }

    #[test]
    fn key_file_holds_no_plaintext_secret() {
        let keys = DeviceKeys::generate();
        let file = lock_keys(&keys, &pass("p"), KeyFileCost::LogN(4)).unwrap();
        let secret = keys.to_unlocked_bytes();
        let text = String::from_utf8_lossy(&secret);
        for line in text.lines().skip(1) {
            let value = line.split(' ').nth(1).unwrap();
            assert!(!String::from_utf8_lossy(&file).contains(value));
        }
    }
}
