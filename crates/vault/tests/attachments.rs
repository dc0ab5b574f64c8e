//! Attachments on real SQLite files: streamed in as sealed chunks, never plaintext on disk,
//! stored once, checked on the way out, and fetched chunk by chunk by another device.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cairn_crypto::{KeyFileCost, SecretString, TeamKey};
use cairn_model::Kind;
use cairn_vault::{Home, NewAttachment, NewVault, Role, Vault, VaultError};
use rand::RngCore;

fn vault(dir: &Path, name: &str, role: Role) -> Vault {
    Home::new(dir.join(name))
        .create(
            &SecretString::from("pass".to_owned()),
            KeyFileCost::LogN(4),
            NewVault {
                team: if role == Role::Office {
                    "office".into()
                } else {
                    "T03".into()
                },
                name: None,
                role,
            },
            time::OffsetDateTime::now_utc(),
        )
        .unwrap()
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A file of `size` random bytes.
fn random_file(dir: &Path, name: &str, size: usize) -> (PathBuf, Vec<u8>) {
    let mut bytes = vec![0u8; size];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn new(path: &Path, limit: u64) -> NewAttachment {
    NewAttachment {
        path: path.to_path_buf(),
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        media_type: "application/octet-stream".into(),
        caption: Some("in frame".into()),
        exif_time: None,
        gps: None,
        limit,
    }
}

fn case(v: &mut Vault) -> String {
    v.create_case(Kind::Remains, "KHR", &[], now())
        .unwrap()
        .reference
}

/// A vault of T03 holding the team's key, as after join.
fn joined(dir: &Path, name: &str) -> Vault {
    let mut v = vault(dir, name, Role::Field);
    v.add_keys([&TeamKey::from_bytes("T03", 1, [3; 32])])
        .unwrap();
    v
}

#[test]
fn attach_and_get_back_byte_identical_with_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = joined(dir.path(), "a");
    let reference = case(&mut v);
    let (file, bytes) = random_file(dir.path(), "photo.bin", 3 * 16 * 1024 + 77);
    let mut seen = Vec::new();
    let attached = v
        .attach(&reference, new(&file, 1 << 30), now(), &mut |n| {
            seen.push(n)
        })
        .unwrap();
    assert!(attached.new);
    assert_eq!(attached.entry.size, bytes.len() as u64);
    assert_eq!(attached.entry.chunks, 4);
    assert_eq!(seen.last(), Some(&(bytes.len() as u64)));
    assert_eq!(seen.len(), 4, "progress after every chunk");
    let listed = v.attachments(&reference).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].here && !listed[0].delivered);
    assert_eq!(v.blob_outbox().unwrap().len(), 1);

    let out = dir.path().join("out.bin");
    let sha = attached.entry.sha256.clone();
    v.attachment_get(&reference, &sha[..12], &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);

    // No 64-byte window of the plaintext in any file of the vault.
    drop(v);
    let windows: std::collections::HashSet<&[u8]> = bytes.windows(64).collect();
    for entry in std::fs::read_dir(dir.path().join("a")).unwrap() {
        let stored = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !stored.windows(64).any(|w| windows.contains(w)),
            "plaintext found in the vault"
        );
    }
}

#[test]
fn the_same_file_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = joined(dir.path(), "a");
    let reference = case(&mut v);
    let (file, _) = random_file(dir.path(), "a.bin", 40_000);
    let first = v
        .attach(&reference, new(&file, 1 << 30), now(), &mut |_| {})
        .unwrap();
    let log = v.own_log_len().unwrap();
    let again = v
        .attach(&reference, new(&file, 1 << 30), now(), &mut |_| {})
        .unwrap();
    assert!(!again.new);
    assert_eq!(again.entry, first.entry);
    assert_eq!(v.own_log_len().unwrap(), log, "no second change");
    assert_eq!(v.attachments(&reference).unwrap().len(), 1);
    let db = rusqlite::Connection::open(v.home().database()).unwrap();
    let chunks: i64 = db
        .query_row("SELECT COUNT(*) FROM blob_chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunks, 3);
}

#[test]
fn over_the_limit_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = joined(dir.path(), "a");
    let reference = case(&mut v);
    let (file, _) = random_file(dir.path(), "big.bin", 10_001);
    let err = v
        .attach(&reference, new(&file, 10_000), now(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(
        err,
        VaultError::AttachmentTooLarge {
            size: 10_001,
            limit: 10_000,
            ..
        }
    ));
    assert!(err.to_string().contains("big.bin"), "{err}");
    assert!(v.attachments(&reference).unwrap().is_empty());
}

#[test]
fn a_chunk_altered_in_the_database_is_detected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = joined(dir.path(), "a");
    let reference = case(&mut v);
    let (file, _) = random_file(dir.path(), "a.bin", 50_000);
    let sha = v
        .attach(&reference, new(&file, 1 << 30), now(), &mut |_| {})
        .unwrap()
        .entry
        .sha256;
    let db = rusqlite::Connection::open(v.home().database()).unwrap();
    let sealed: Vec<u8> = db
        .query_row("SELECT sealed FROM blob_chunks WHERE idx = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    for at in [10, 100, sealed.len() - 100, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[at] ^= 1;
        db.execute("UPDATE blob_chunks SET sealed = ?1 WHERE idx = 2", [&bad])
            .unwrap();
        let out = dir.path().join(format!("out-{at}"));
        let err = v.attachment_get(&reference, &sha, &out).unwrap_err();
        assert!(
            matches!(err, VaultError::AttachmentMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("a.bin"), "{err}");
        assert!(!out.exists());
        // Nor a partial file beside it.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // A chunk swapped for another chunk of the same blob is caught too.
    let other: Vec<u8> = db
        .query_row("SELECT sealed FROM blob_chunks WHERE idx = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    db.execute("UPDATE blob_chunks SET sealed = ?1 WHERE idx = 2", [&other])
        .unwrap();
    assert!(v
        .attachment_get(&reference, &sha, &dir.path().join("swapped"))
        .is_err());
}

#[test]
fn another_device_fetches_chunk_by_chunk_and_the_hash_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = joined(dir.path(), "a");
    let mut b = joined(dir.path(), "b");
    let reference = case(&mut a);
    let (file, bytes) = random_file(dir.path(), "a.bin", 70_000);
    let sha = a
        .attach(&reference, new(&file, 1 << 30), now(), &mut |_| {})
        .unwrap()
        .entry
        .sha256;
    // B receives the case's changes, as a pull would bring them.
    let page: Vec<Vec<u8>> = a
        .outbox(0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    b.apply_pulled(&page, 1, &|_| Ok(Some("T03".into())))
        .unwrap();
    let listed = b.attachments(&reference).unwrap();
    assert!(!listed[0].here);
    assert!(
        b.wanted_blobs().unwrap().is_empty(),
        "a field device fetches what it asks for"
    );
    let out = dir.path().join("b.bin");
    assert!(matches!(
        b.attachment_get(&reference, &sha, &out),
        Err(VaultError::AttachmentNotHere { .. })
    ));
    let wanted = b.wanted_blobs().unwrap();
    assert_eq!(wanted.len(), 1);
    let w = &wanted[0];
    assert_eq!(
        (w.count, w.size, w.held, w.sha256.as_str()),
        (5, 70_000, 0, sha.as_str())
    );
    let outbox = a.blob_outbox().unwrap();
    assert_eq!(outbox[0].blob, w.blob);

    // A chunk of another blob, or a forged one, is refused.
    let mut forged = a.sealed_chunk(&w.blob, 0).unwrap();
    forged.ciphertext[0] ^= 1;
    assert!(b.store_fetched_chunk(&forged).is_err());
    let mut elsewhere = a.sealed_chunk(&w.blob, 0).unwrap();
    elsewhere.blob = cairn_crypto::BlobId::random();
    assert!(b.store_fetched_chunk(&elsewhere).is_err());

    // Two chunks, an interruption, then the rest from where B stands.
    for chunk in a.sealed_chunks(&w.blob, 0, 2).unwrap() {
        b.store_fetched_chunk(&chunk).unwrap();
    }
    assert_eq!(b.wanted_blobs().unwrap()[0].held, 2);
    assert!(matches!(
        b.finish_blob(&w.blob),
        Err(VaultError::AttachmentNotHere { .. })
    ));
    assert_eq!(b.wanted_blobs().unwrap()[0].held, 2, "what arrived is kept");
    for chunk in a.sealed_chunks(&w.blob, 2, 100).unwrap() {
        b.store_fetched_chunk(&chunk).unwrap();
    }
    b.finish_blob(&w.blob).unwrap();
    assert!(b.wanted_blobs().unwrap().is_empty());
    b.attachment_get(&reference, &sha, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    a.mark_chunks_uploaded(&w.blob, 3).unwrap();
    assert_eq!(a.blob_outbox().unwrap()[0].held_by_server, 3);
    a.mark_blob_delivered(&w.blob).unwrap();
    assert!(a.blob_outbox().unwrap().is_empty());
}

#[test]
fn a_wrong_hash_after_download_deletes_the_chunks_so_they_are_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = joined(dir.path(), "a");
    let mut office = vault(dir.path(), "o", Role::Office);
    office
        .add_keys([&TeamKey::from_bytes("T03", 1, [3; 32])])
        .unwrap();
    let reference = case(&mut a);
    let (file, bytes) = random_file(dir.path(), "a.bin", 20_000);
    let (other, _) = random_file(dir.path(), "b.bin", 20_000);
    let sha = a
        .attach(&reference, new(&file, 1 << 30), now(), &mut |_| {})
        .unwrap()
        .entry
        .sha256;
    let page: Vec<Vec<u8>> = a
        .outbox(0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    office
        .apply_pulled(&page, 1, &|_| Ok(Some("T03".into())))
        .unwrap();
    let wanted = office.wanted_blobs().unwrap();
    assert_eq!(wanted.len(), 1, "the office wants every attachment");
    let blob = wanted[0].blob;
    // A teammate (holding the team key) seals other bytes of the same shape under the blob's id.
    let keys = cairn_crypto::DeviceKeys::generate();
    let key = TeamKey::from_bytes("T03", 1, [3; 32]);
    let other = std::fs::read(other).unwrap();
    for (i, part) in other.chunks(16 * 1024).enumerate() {
        let chunk = cairn_crypto::SealedChunk::seal(
            &keys,
            &key,
            wanted[0].case.into_bytes(),
            blob,
            i as u32,
            2,
            20_000,
            part,
        )
        .unwrap();
        office.store_fetched_chunk(&chunk).unwrap();
    }
    let err = office.finish_blob(&blob).unwrap_err();
    assert!(matches!(err, VaultError::AttachmentMismatch { .. }));
    assert!(err.to_string().contains("a.bin"), "{err}");
    assert_eq!(office.wanted_blobs().unwrap()[0].held, 0, "fetched again");
    for chunk in a.sealed_chunks(&blob, 0, 10).unwrap() {
        office.store_fetched_chunk(&chunk).unwrap();
    }
    office.finish_blob(&blob).unwrap();
    let out = dir.path().join("office.bin");
    office.attachment_get(&reference, &sha, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), bytes);
}

#[test]
fn attached_before_join_is_resealed_at_join_and_dropping_leaves_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vault(dir.path(), "a", Role::Field);
    let reference = case(&mut v);
    let (file, bytes) = random_file(dir.path(), "a.bin", 40_000);
    let entry = v
        .attach(&reference, new(&file, 1 << 30), now(), &mut |_| {})
        .unwrap()
        .entry;
    let blob = cairn_crypto::BlobId::from_hex(&entry.blob).unwrap();
    assert_eq!(
        v.sealed_chunk(&blob, 0).unwrap().epoch,
        0,
        "draft key before join"
    );
    v.add_keys([&TeamKey::from_bytes("T03", 1, [3; 32])])
        .unwrap();
    v.reseal_unsent().unwrap();
    for index in 0..3 {
        assert_eq!(v.sealed_chunk(&blob, index).unwrap().epoch, 1);
    }
    let out = dir.path().join("out.bin");
    v.attachment_get(&reference, &entry.sha256, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), bytes);

    assert!(v
        .drop_attachment(&reference, &entry.sha256, " ", now())
        .is_err());
    v.drop_attachment(&reference, &entry.sha256, "keeps failing on 2G", now())
        .unwrap();
    assert!(v.blob_outbox().unwrap().is_empty());
    let doc = v.case(&reference).unwrap();
    let notes = doc.case().unwrap().notes;
    assert!(notes.last().unwrap().text.contains("keeps failing on 2G"));
    assert!(v.attachments(&reference).unwrap()[0].dropped);
    assert!(matches!(
        v.drop_attachment(&reference, &entry.sha256, "again", now()),
        Err(VaultError::NotInOutbox { .. })
    ));
}
