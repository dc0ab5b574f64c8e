//! Attachments on real SQLite files: streamed in as sealed chunks, never plaintext on disk,
//! stored once, checked on the way out, and fetched chunk by chunk by another device.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cairn_crypto::{KeyFileCost, SecretString, TeamKey};
use cairn_model::Kind;
use cairn_vault::{Home, NewAttachment, NewVault, Role, Vault, VaultError};
use rand::RngCore;

/// The roster of an office that admitted these vaults' devices into T03.
fn t03(devices: &[&Vault]) -> cairn_protocol::Roster {
    let members: Vec<_> = devices.iter().map(|v| (v.keys(), "T03")).collect();
    cairn_testkit::roster(&cairn_crypto::DeviceKeys::generate(), &members)
}

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
    b.apply_pulled(&page, 1, &t03(&[&a])).unwrap();
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
    assert!(b.store_fetched_chunk(w, &forged).is_err());
    let mut elsewhere = a.sealed_chunk(&w.blob, 0).unwrap();
    elsewhere.blob = cairn_crypto::BlobId::random();
    assert!(b.store_fetched_chunk(w, &elsewhere).is_err());

    // Two chunks, an interruption, then the rest from where B stands.
    for chunk in a.sealed_chunks(&w.blob, 0, 2).unwrap() {
        b.store_fetched_chunk(w, &chunk).unwrap();
    }
    assert_eq!(b.wanted_blobs().unwrap()[0].held, 2);
    assert!(matches!(
        b.finish_blob(w.slot),
        Err(VaultError::AttachmentNotHere { .. })
    ));
    assert_eq!(b.wanted_blobs().unwrap()[0].held, 2, "what arrived is kept");
    for chunk in a.sealed_chunks(&w.blob, 2, 100).unwrap() {
        b.store_fetched_chunk(w, &chunk).unwrap();
    }
    b.finish_blob(w.slot).unwrap();
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
    office.apply_pulled(&page, 1, &t03(&[&a])).unwrap();
    let wanted = office.wanted_blobs().unwrap();
    assert_eq!(wanted.len(), 1, "the office wants every attachment");
    let w = &wanted[0];
    let blob = w.blob;
    let key = TeamKey::from_bytes("T03", 1, [3; 32]);
    let other = std::fs::read(other).unwrap();
    let forge = |keys: &cairn_crypto::DeviceKeys| {
        other
            .chunks(16 * 1024)
            .enumerate()
            .map(|(i, part)| {
                cairn_crypto::SealedChunk::seal(
                    keys,
                    &key,
                    w.case.into_bytes(),
                    blob,
                    i as u32,
                    2,
                    20_000,
                    part,
                )
                .unwrap()
            })
            .collect::<Vec<_>>()
    };
    // A teammate (holding the team key) seals other bytes of the same shape under the blob's
    // id: refused as they arrive, for their sealer.
    for chunk in forge(&cairn_crypto::DeviceKeys::generate()) {
        let err = office.store_fetched_chunk(w, &chunk).unwrap_err();
        assert!(err.to_string().contains("another device"), "{err}");
    }
    // Its author seals other bytes: caught by the hash over the whole file.
    for chunk in forge(a.keys()) {
        office.store_fetched_chunk(w, &chunk).unwrap();
    }
    let err = office.finish_blob(w.slot).unwrap_err();
    assert!(matches!(err, VaultError::AttachmentMismatch { .. }));
    assert!(err.to_string().contains("a.bin"), "{err}");
    assert_eq!(office.wanted_blobs().unwrap()[0].held, 0, "fetched again");
    for chunk in a.sealed_chunks(&blob, 0, 10).unwrap() {
        office.store_fetched_chunk(w, &chunk).unwrap();
    }
    office.finish_blob(w.slot).unwrap();
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

/// Seals `plain` as chunks of `blob` in `case`, as `keys`' device would upload them.
fn chunks_of(
    keys: &cairn_crypto::DeviceKeys,
    case: uuid::Uuid,
    blob: cairn_crypto::BlobId,
    plain: &[u8],
) -> Vec<cairn_crypto::SealedChunk> {
    let key = TeamKey::from_bytes("T03", 1, [3; 32]);
    let count = cairn_crypto::chunk_count(plain.len() as u64).unwrap();
    (0..count)
        .map(|i| {
            let start = i as usize * cairn_crypto::CHUNK_SIZE;
            let end = plain.len().min(start + cairn_crypto::CHUNK_SIZE);
            cairn_crypto::SealedChunk::seal(
                keys,
                &key,
                case.into_bytes(),
                blob,
                i,
                count,
                plain.len() as u64,
                &plain[start..end],
            )
            .unwrap()
        })
        .collect()
}

/// A's case with a photo attached, and a teammate H's entry listing its own file under the
/// photo's blob id, made without seeing A's entry (so the judge lets it in, in any order):
/// both reach the office. Returns (office, A, H, reference, A's bytes and sha, H's bytes and
/// sha, the blob id).
struct Squat {
    office: Vault,
    a: Vault,
    h: Vault,
    reference: String,
    case: uuid::Uuid,
    genuine: (Vec<u8>, String),
    squat: (Vec<u8>, String),
    blob: cairn_crypto::BlobId,
}

fn squat(dir: &Path) -> Squat {
    let mut a = joined(dir, "a");
    let mut h = joined(dir, "h");
    let mut office = vault(dir, "o", Role::Office);
    office
        .add_keys([&TeamKey::from_bytes("T03", 1, [3; 32])])
        .unwrap();
    let reference = case(&mut a);
    let creation: Vec<Vec<u8>> = a
        .outbox(0, 1)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    h.apply_pulled(&creation, 1, &t03(&[&a])).unwrap();
    let (file, genuine) = random_file(dir, "photo.jpg", 40_000);
    let entry = a
        .attach(&reference, new(&file, 1 << 30), now(), &mut |_| {})
        .unwrap()
        .entry;
    let blob = cairn_crypto::BlobId::from_hex(&entry.blob).unwrap();
    // H's own file of the same size under the same blob id.
    let mut fake = vec![0u8; genuine.len()];
    rand::rngs::OsRng.fill_bytes(&mut fake);
    let fake_sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&fake)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let mut doc = h.case(&reference).unwrap();
    let listed = cairn_model::Attachment {
        sha256: fake_sha.clone(),
        name: "photo.jpg".into(),
        ..entry.clone()
    };
    let change = doc
        .edit(
            &[cairn_model::Edit::Attach(Box::new(listed))],
            &h.keys().id().short(),
            now(),
        )
        .unwrap()
        .unwrap();
    let key = TeamKey::from_bytes("T03", 1, [3; 32]);
    let sealed = cairn_crypto::SealedChange::seal(
        h.keys(),
        &key,
        cairn_crypto::SealedKind::CaseChange,
        doc.id().into_bytes(),
        1,
        &change,
    )
    .unwrap();
    let mut page: Vec<Vec<u8>> = a
        .outbox(0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    page.push(sealed.to_bytes());
    let report = office.apply_pulled(&page, 1, &t03(&[&a, &h])).unwrap();
    assert_eq!(report.refused, [], "made without seeing A's entry");
    Squat {
        office,
        a,
        h,
        reference,
        case: doc.id(),
        genuine: (genuine, entry.sha256),
        squat: (fake, fake_sha),
        blob,
    }
}

#[test]
fn a_blob_id_listed_again_by_a_teammate_never_hides_the_genuine_file() {
    let dir = tempfile::tempdir().unwrap();
    let Squat {
        mut office,
        a,
        h,
        reference,
        case,
        genuine,
        squat,
        blob,
    } = squat(dir.path());
    let wanted = office.wanted_blobs().unwrap();
    assert_eq!(wanted.len(), 2, "{wanted:?}");
    let from = |who: &Vault| {
        wanted
            .iter()
            .find(|w| w.author == who.keys().id())
            .unwrap()
            .clone()
    };
    let (from_a, from_h) = (from(&a), from(&h));
    assert_eq!((from_a.blob, from_h.blob), (blob, blob));
    // H's chunks go to H's entry only; A's entry takes A's chunks only.
    let fake = chunks_of(h.keys(), case, blob, &squat.0);
    for chunk in &fake {
        assert!(office.store_fetched_chunk(&from_a, chunk).is_err());
        office.store_fetched_chunk(&from_h, chunk).unwrap();
    }
    office.finish_blob(from_h.slot).unwrap();
    for chunk in a.sealed_chunks(&blob, 0, 10).unwrap() {
        office.store_fetched_chunk(&from_a, &chunk).unwrap();
    }
    office.finish_blob(from_a.slot).unwrap();
    let listed = office.attachments(&reference).unwrap();
    assert!(listed.iter().all(|s| s.here), "{listed:?}");
    for (bytes, sha) in [&genuine, &squat] {
        let out = dir.path().join(&sha[..16]);
        office.attachment_get(&reference, sha, &out).unwrap();
        assert_eq!(&std::fs::read(out).unwrap(), bytes);
    }
    // The blob id alone names two files: refused, naming both.
    let err = office
        .attachment_get(&reference, &blob.to_string(), &dir.path().join("x"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&genuine.1[..16]) && text.contains(&squat.1[..16]),
        "{text}"
    );
}

/// The tables as they were before entries had rows of their own: keyed by blob id alone.
const BLOBS_KEYED_BY_ID: &str = "
CREATE TABLE blobs (
    blob BLOB PRIMARY KEY, case_id BLOB NOT NULL, team TEXT NOT NULL, count INTEGER NOT NULL,
    size INTEGER NOT NULL, own INTEGER NOT NULL DEFAULT 0, complete INTEGER NOT NULL DEFAULT 0,
    uploaded INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0,
    wanted INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE blob_chunks (
    blob BLOB NOT NULL, idx INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (blob, idx)
) STRICT;
";

#[test]
fn a_vault_whose_squatted_blob_id_hid_the_genuine_file_gets_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let Squat {
        mut office,
        a,
        h,
        reference,
        case,
        genuine,
        squat,
        blob,
    } = squat(dir.path());
    // As the office's vault stood before: one row for the blob id, holding H's file, whole
    // and checked against H's entry; A's photo shown as damaged for good.
    let from_h = office
        .wanted_blobs()
        .unwrap()
        .into_iter()
        .find(|w| w.author == h.keys().id())
        .unwrap();
    for chunk in chunks_of(h.keys(), case, blob, &squat.0) {
        office.store_fetched_chunk(&from_h, &chunk).unwrap();
    }
    let home = office.home().clone();
    let office_keys = home.unlock(&SecretString::from("pass".to_owned())).unwrap();
    drop(office);
    // That layout is older than vaults keeping a head.
    cairn_vault::as_made_before_heads(&home, &office_keys).unwrap();
    let db = rusqlite::Connection::open(home.database()).unwrap();
    // The old tables kept the chunks and the row's facts in clear.
    db.execute_batch(&format!(
        "DROP TABLE blob_chunks; DROP TABLE blobs; {BLOBS_KEYED_BY_ID}"
    ))
    .unwrap();
    let chunks = chunks_of(h.keys(), case, blob, &squat.0);
    db.execute(
        "INSERT INTO blobs (blob, case_id, team, count, size, complete)
         VALUES (?1, ?2, 'T03', ?3, ?4, 1)",
        rusqlite::params![
            blob.0.as_slice(),
            case.as_bytes().as_slice(),
            chunks.len() as i64,
            squat.0.len() as i64
        ],
    )
    .unwrap();
    for chunk in &chunks {
        db.execute(
            "INSERT INTO blob_chunks (blob, idx, sealed) VALUES (?1, ?2, ?3)",
            rusqlite::params![blob.0.as_slice(), chunk.index, chunk.to_bytes()],
        )
        .unwrap();
    }
    drop(db);

    // Opened again: each entry has its own row; H's file is still here (checked again
    // against its own entry), A's photo is asked for and fetched from A.
    let mut office = home.open(&SecretString::from("pass".to_owned())).unwrap();
    let out = dir.path().join("h.bin");
    office.attachment_get(&reference, &squat.1, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), squat.0);
    let wanted = office.wanted_blobs().unwrap();
    assert_eq!(wanted.len(), 1, "{wanted:?}");
    let from_a = &wanted[0];
    assert_eq!((from_a.author, from_a.held), (a.keys().id(), 0));
    for chunk in a.sealed_chunks(&blob, 0, 10).unwrap() {
        office.store_fetched_chunk(from_a, &chunk).unwrap();
    }
    office.finish_blob(from_a.slot).unwrap();
    let out = dir.path().join("a.bin");
    office.attachment_get(&reference, &genuine.1, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), genuine.0);
    // Opening again changes nothing.
    drop(office);
    let office = home.open(&SecretString::from("pass".to_owned())).unwrap();
    assert!(office
        .attachments(&reference)
        .unwrap()
        .iter()
        .all(|s| s.here));
}
