//! Opening a vault from keys derived earlier (what the unlock agent keeps), on real files.
#![allow(clippy::unwrap_used)]

use cairn_crypto::{DeviceKeys, KeyFileCost, SecretString};
use cairn_vault::{Home, NewVault, Role, VaultError};

fn pass() -> SecretString {
    SecretString::from("pass".to_owned())
}

fn create(home: &Home) {
    home.create(
        &pass(),
        KeyFileCost::LogN(4),
        NewVault {
            team: "T03".into(),
            name: None,
            role: Role::Field,
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
}

#[test]
fn keys_derived_once_open_the_vault_again_and_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path().join("v"));
    create(&home);
    let keys = home.unlock(&pass()).unwrap();
    let id = keys.id();
    let bytes = keys.to_unlocked_bytes();
    for _ in 0..3 {
        let again = DeviceKeys::from_unlocked_bytes(&bytes).unwrap();
        let vault = home.open_unlocked(again).unwrap();
        assert_eq!(vault.keys().id(), id);
        assert_eq!(vault.settings().team, "T03");
    }
}

#[test]
fn another_vaults_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        Home::new(dir.path().join("a")),
        Home::new(dir.path().join("b")),
    );
    create(&a);
    create(&b);
    let keys_b = b.unlock(&pass()).unwrap();
    let err = a.open_unlocked(keys_b).unwrap_err();
    assert!(
        matches!(err, VaultError::Corrupt { .. } | VaultError::Crypto(_)),
        "{err}"
    );
}

#[test]
fn the_key_file_digest_names_one_vault_at_one_place() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path().join("v"));
    assert!(matches!(
        home.key_file_digest(),
        Err(VaultError::NotFound(_))
    ));
    create(&home);
    let first = home.key_file_digest().unwrap();
    assert_eq!(home.key_file_digest().unwrap(), first);
    home.wipe().unwrap();
    create(&home);
    assert_ne!(home.key_file_digest().unwrap(), first);
}

#[test]
fn damaged_unlocked_bytes_are_refused_not_a_panic() {
    let keys = DeviceKeys::generate();
    let bytes = keys.to_unlocked_bytes();
    for cut in [0, 1, 13, bytes.len() / 2, bytes.len() - 2] {
        assert!(
            DeviceKeys::from_unlocked_bytes(&bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut flipped = bytes.to_vec();
    flipped[20] ^= 0x55;
    assert!(DeviceKeys::from_unlocked_bytes(&flipped).is_err());
    assert!(DeviceKeys::from_unlocked_bytes(&[0xff; 300]).is_err());
}
