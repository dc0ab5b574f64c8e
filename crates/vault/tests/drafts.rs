//! Drafts of the guided form on real SQLite files: kept encrypted (no answer in clear on
//! disk), listed, found by the start of their id, replaced in place, removed with the case
//! they become, never logged as a change, and covered by the head.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use cairn_crypto::{KeyFileCost, SecretString};
use cairn_model::{Edit, Kind};
use cairn_vault::{Draft, Home, NewVault, Role, Vault, VaultError};

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn vault(dir: &std::path::Path) -> Vault {
    let settings = NewVault {
        team: "T03".into(),
        name: None,
        role: Role::Field,
    };
    Home::new(dir.join("v"))
        .create(
            &SecretString::from("pass".to_owned()),
            KeyFileCost::LogN(4),
            settings,
            now(),
        )
        .unwrap()
}

/// Every byte under the vault's directory, one file after another.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("v")).unwrap() {
        out.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    out
}

fn a_draft() -> Draft {
    let mut draft = Draft::new(None, now());
    draft.kind = Some("remains".into());
    draft.place = Some("KHR".into());
    draft
        .answers
        .insert("person.name".into(), "Zarifa Quahog".into());
    draft.asked.push("person.name".into());
    draft
}

#[test]
fn a_draft_is_kept_encrypted_replaced_in_place_and_found_by_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vault(dir.path());
    let mut draft = a_draft();
    v.save_draft(&draft).unwrap();
    draft.answers.insert("person.sex".into(), "female".into());
    draft.asked.push("person.sex".into());
    v.save_draft(&draft).unwrap();
    let other = Draft::new(Some("KHR-T03-AAAA-0001".into()), now());
    v.save_draft(&other).unwrap();

    let kept = v.drafts().unwrap();
    assert_eq!(kept.len(), 2);
    assert!(kept.contains(&draft) && kept.contains(&other));
    assert_eq!(v.draft(&draft.short_id()).unwrap(), draft);
    assert_eq!(v.draft(&draft.id.to_string()).unwrap(), draft);
    assert!(matches!(v.draft("zzzz"), Err(VaultError::UnknownDraft(_))));
    assert!(matches!(v.draft("ab"), Err(VaultError::UnknownDraft(_))));
    // Drafts are not changes: nothing to send, no case.
    assert_eq!(v.own_log_len().unwrap(), 0);
    assert_eq!(v.case_count().unwrap(), 0);
    v.check().unwrap();
    drop(v);
    let bytes = all_bytes(dir.path());
    assert!(!bytes.windows(13).any(|w| w == b"Zarifa Quahog"));
    assert!(!bytes.windows(11).any(|w| w == b"person.name"));

    let mut v = Home::new(dir.path().join("v"))
        .open(&SecretString::from("pass".to_owned()))
        .unwrap();
    assert!(v.discard_draft(&other.id).unwrap());
    assert!(!v.discard_draft(&other.id).unwrap());
    assert_eq!(v.drafts().unwrap(), [draft]);
}

#[test]
fn saving_the_case_removes_its_draft_and_an_edit_that_changes_nothing_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vault(dir.path());
    let draft = a_draft();
    v.save_draft(&draft).unwrap();
    let edits = [Edit::set("person.name", "Zarifa Quahog")];
    let created = v
        .create_case_from_draft(Kind::Remains, "KHR", &edits, now(), &draft.id)
        .unwrap();
    assert!(v.drafts().unwrap().is_empty());
    assert_eq!(v.case_count().unwrap(), 1);

    let edit = Draft::new(Some(created.reference.clone()), now());
    v.save_draft(&edit).unwrap();
    let changed = v
        .edit_case_from_draft(&created.reference, &edits, now(), &edit.id)
        .unwrap();
    assert_eq!(changed, None, "the name was already that");
    assert!(v.drafts().unwrap().is_empty());

    let edit = Draft::new(Some(created.reference.clone()), now());
    v.save_draft(&edit).unwrap();
    let changed = v
        .edit_case_from_draft(
            &created.reference,
            &[Edit::set("person.sex", "female")],
            now(),
            &edit.id,
        )
        .unwrap();
    assert_eq!(changed, Some(2));
    assert!(v.drafts().unwrap().is_empty());
    v.check().unwrap();
}

#[test]
fn a_draft_row_put_back_on_disk_is_found_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vault(dir.path());
    let draft = a_draft();
    v.save_draft(&draft).unwrap();
    let db = dir.path().join("v").join("vault.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let row: (Vec<u8>, Vec<u8>) = conn
        .query_row("SELECT id, record FROM drafts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    v.discard_draft(&draft.id).unwrap();
    v.check().unwrap();
    // The row put back as it was: it decrypts, but the head does not count it.
    conn.execute(
        "INSERT INTO drafts (id, record) VALUES (?1, ?2)",
        rusqlite::params![row.0, row.1],
    )
    .unwrap();
    let err = v.check().unwrap_err();
    assert!(matches!(err, VaultError::RolledBack { .. }), "{err}");
    // A record that is not the vault's does not decrypt.
    conn.execute("UPDATE drafts SET record = x'00112233'", [])
        .unwrap();
    assert!(matches!(v.drafts(), Err(VaultError::Corrupt { .. })));
    assert!(matches!(v.check(), Err(VaultError::Corrupt { .. })));
}
