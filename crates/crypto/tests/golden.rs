//! Frozen formats: a key file and a sealed change written by version 1 must open forever.
//! If this fails after a refactor, the refactor broke existing vaults or the wire format.

use cairn_crypto::{unlock_keys, SealedChange, SealedKind, SecretString};

const KEYFILE: &[u8] = include_bytes!("golden/v1.keyfile");
const SEALED: &[u8] = include_bytes!("golden/v1.sealed");

#[test]
fn v1_key_file_and_sealed_change_still_open() {
    let keys = unlock_keys(KEYFILE, &SecretString::from("golden passphrase".to_owned())).unwrap();
    let sealed = SealedChange::from_bytes(SEALED).unwrap();
    assert_eq!(sealed.kind, SealedKind::CaseChange);
    assert_eq!(sealed.case_id, [0xab; 16]);
    assert_eq!(sealed.seq, 7);
    assert_eq!(sealed.author, keys.id());
    assert_eq!(
        sealed.to_bytes(),
        SEALED,
        "re-encoding must be byte-identical"
    );
    assert_eq!(sealed.open(&keys).unwrap(), b"golden plaintext");
}
