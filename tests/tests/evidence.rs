//! Evidence no teammate can swap, and replicas that cannot split (issue #19, items 3 to 5),
//! played with real processes: a real `cairn-server` over TLS, real `cairn` devices, and a
//! hostile teammate enrolled like any device that seals and uploads what it likes.

use std::path::{Path, PathBuf};

use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjId, ObjType, ReadDoc, ROOT};
use cairn_e2e::{forge, Device, Server};
use rand::RngCore;

/// A device of `team`, admitted and joined to `server`.
fn joined(server: &Server, office: &Device, team: &str) -> Device {
    let device = Device::init(team);
    server.join(office, &device, team, &server.url());
    device
}

fn random_bytes(size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A file of `size` random bytes in `dir`: its path and bytes.
fn photo(dir: &Path, name: &str, size: usize) -> (PathBuf, Vec<u8>) {
    let bytes = random_bytes(size);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write");
    (path, bytes)
}

/// The attachments `case attachments --json` lists for `reference`.
fn attachments(device: &Device, reference: &str) -> Vec<serde_json::Value> {
    device
        .json(&["case", "attachments", reference])
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| a["attachment"].clone())
        .collect()
}

/// `cairn case attachment get REFERENCE WANTED`: the bytes written, or the error.
fn get(device: &Device, reference: &str, wanted: &str) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let run = device.run(&[
        "case",
        "attachment",
        "get",
        reference,
        wanted,
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    match run.code {
        0 => Ok(std::fs::read(&out).expect("the file written")),
        _ => Err(run.stderr),
    }
}

/// Writes an attachment entry in `entry` as `cairn case attach` would, naming `blob` and
/// the file whose SHA-256 is `sha256`, `size` bytes long.
fn put_entry(tx: &mut Transaction<'_>, entry: &ObjId, blob: &str, sha256: &str, size: usize) {
    for (key, value) in [
        ("at", "2026-12-01T10:00:00Z"),
        ("author", "tablet 1"),
        ("blob", blob),
        ("sha256", sha256),
        ("name", "scene.jpg"),
        ("media_type", "image/jpeg"),
        ("team", "T03"),
    ] {
        tx.put(entry, key, value).expect("put");
    }
    tx.put(entry, "size", size as u64).expect("put");
    tx.put(entry, "chunks", size.div_ceil(16 * 1024) as u64)
        .expect("put");
}

/// Uploads `plain` through the server as `device`'s own chunks of blob `blob` in case `id`,
/// as its `cairn sync` would upload an attachment of its own.
fn upload_as(device: &Device, server: &Server, id: uuid::Uuid, blob: &str, plain: &[u8]) {
    let keys = device.keys();
    let key = device.team_key("T03");
    let blob = cairn_crypto::BlobId::from_hex(blob).expect("blob id");
    let count = cairn_crypto::chunk_count(plain.len() as u64).expect("count");
    let frames: Vec<u8> = (0..count)
        .flat_map(|i| {
            let part = plain
                .chunks(cairn_crypto::CHUNK_SIZE)
                .nth(i as usize)
                .expect("chunk");
            let chunk = cairn_crypto::SealedChunk::seal(
                &keys,
                &key,
                id.into_bytes(),
                blob,
                i,
                count,
                plain.len() as u64,
                part,
            )
            .expect("seal");
            cairn_protocol::encode_frame(&chunk.to_bytes())
        })
        .collect();
    let client = cairn_sync::Client::new(&server.url(), server.fingerprint()).expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime
        .block_on(client.blob_upload(&keys, &blob, frames))
        .expect("upload");
    assert_eq!(status.held, count, "the server holds the hostile chunks");
}

/// A teammate who reads a photo's blob id in a case lists a file of its own under it and
/// uploads that file's chunks. Listed after seeing the photo (at the head of the list, where
/// a device fetching by blob id would take it first), it is refused; listed without seeing
/// it (on a copy of the case from before), both entries stay, each with its own bytes. Either
/// way the office and teammates get the genuine photo back byte-identical.
#[test]
fn a_teammate_cannot_swap_or_hide_a_photo_under_its_blob_id() {
    let office = Device::office();
    let server = Server::start(&office);
    let a = joined(&server, &office, "T03");
    let b = joined(&server, &office, "T03");
    let h = joined(&server, &office, "T03");
    for d in [&a, &b, &h, &office] {
        d.ok(&["sync"]);
    }
    let work = tempfile::tempdir().expect("temp dir");
    let seen = a.new_case(&["--kind", "remains", "--place", "KHR"]);
    let unseen = a.new_case(&["--kind", "remains", "--place", "KHR"]);
    a.ok(&["sync"]);
    h.ok(&["sync"]);
    // H's copy of the second case, from before A's photo.
    let unseen_id = h.case_id(&unseen);
    let before = h.raw_doc(unseen_id);

    let size = 40_000;
    let (first, genuine_seen) = photo(work.path(), "scene-1.jpg", size);
    let (second, genuine_unseen) = photo(work.path(), "scene-2.jpg", size);
    for (reference, path) in [(&seen, &first), (&unseen, &second)] {
        a.ok(&[
            "case",
            "attach",
            reference,
            path.to_str().expect("utf-8 path"),
        ]);
    }
    a.ok(&["sync"]);
    h.ok(&["sync"]);
    let blob_of = |reference: &str| {
        attachments(&h, reference)[0]["blob"]
            .as_str()
            .expect("blob id")
            .to_owned()
    };
    let (seen_blob, unseen_blob) = (blob_of(&seen), blob_of(&unseen));

    // After seeing A's entry: H's own file under its blob id, at the head of A's list.
    let seen_id = h.case_id(&seen);
    let fake_seen = random_bytes(size);
    let base = h.raw_doc(seen_id);
    let list = base
        .get(ROOT, "attachments")
        .expect("get")
        .expect("A's list")
        .1;
    let change = forge(&base, |tx| {
        let entry = tx.insert_object(&list, 0, ObjType::Map).expect("insert");
        put_entry(tx, &entry, &seen_blob, &sha256_hex(&fake_seen), size);
    });
    h.smuggle(seen_id, &change, "T03");
    upload_as(&h, &server, seen_id, &seen_blob, &fake_seen);

    // Without seeing it: a list of H's own, made on the copy from before A's photo.
    let fake_unseen = random_bytes(size);
    let change = forge(&before, |tx| {
        let list = tx
            .put_object(ROOT, "attachments", ObjType::List)
            .expect("list");
        let entry = tx.insert_object(&list, 0, ObjType::Map).expect("insert");
        put_entry(tx, &entry, &unseen_blob, &sha256_hex(&fake_unseen), size);
    });
    h.smuggle(unseen_id, &change, "T03");
    upload_as(&h, &server, unseen_id, &unseen_blob, &fake_unseen);
    h.ok(&["sync"]);

    let summary = office.json(&["sync"]);
    b.ok(&["sync", "--with-attachments"]);
    for device in [&office, &b] {
        let genuine = sha256_hex(&genuine_seen);
        assert_eq!(get(device, &seen, &genuine).as_ref(), Ok(&genuine_seen));
        assert_eq!(attachments(device, &seen).len(), 1, "the swap was refused");
        // By its blob id too, or 8 hex digits of it.
        assert_eq!(get(device, &seen, &seen_blob).as_ref(), Ok(&genuine_seen));
        assert_eq!(
            get(device, &seen, &seen_blob[..8]).as_ref(),
            Ok(&genuine_seen)
        );

        assert_eq!(attachments(device, &unseen).len(), 2, "both entries stay");
        let genuine = sha256_hex(&genuine_unseen);
        let fake = sha256_hex(&fake_unseen);
        assert_eq!(get(device, &unseen, &genuine).as_ref(), Ok(&genuine_unseen));
        assert_eq!(get(device, &unseen, &fake).as_ref(), Ok(&fake_unseen));
        // The blob id names both files: refused, naming each.
        let err = get(device, &unseen, &unseen_blob).expect_err("two files");
        assert!(
            err.contains(&genuine[..16]) && err.contains(&fake[..16]),
            "{err}"
        );
    }
    let refused = summary["refused"].to_string();
    assert!(refused.contains("already uses"), "{summary}");
}

/// `case show --json` of `reference` on each device.
fn shown(devices: &[&Device], reference: &str) -> Vec<String> {
    devices
        .iter()
        .map(|d| d.ok(&["case", "show", reference, "--json"]))
        .collect()
}

fn assert_all_alike(shown: &[String]) {
    for other in &shown[1..] {
        assert_eq!(&shown[0], other, "replicas differ");
    }
}

/// What `cairn check --json` names as diverging from the office's receipt.
fn divergences(device: &Device) -> serde_json::Value {
    device.json(&["check"])["divergences"].clone()
}

/// A device had a forged change refused, then made honest edits; the office revokes it. The
/// refused change counts for the cut-off, so a teammate that syncs only after the revocation
/// keeps the honest edits the office and the other teammate already hold.
#[test]
fn a_revocation_after_a_refused_forgery_leaves_every_replica_alike() {
    let office = Device::office();
    let server = Server::start(&office);
    let a = joined(&server, &office, "T03");
    let b = joined(&server, &office, "T03");
    let d = joined(&server, &office, "T03");
    for x in [&a, &b, &d, &office] {
        x.ok(&["sync"]);
    }
    let reference = a.new_case(&["--kind", "killed", "--place", "KHR", "--note", "first"]);
    a.ok(&["sync"]);
    d.ok(&["sync"]);
    let id = d.case_id(&reference);
    let forged = forge(&d.raw_doc(id), |tx| {
        tx.put(ROOT, "schema", 2u64).expect("put");
    });
    d.smuggle(id, &forged, "T03");
    d.ok(&["case", "edit", &reference, "--note", "seen by D"]);
    d.ok(&["case", "edit", &reference, "--note", "seen by D again"]);
    d.ok(&["sync"]);
    let summary = office.json(&["sync"]);
    assert!(
        summary["refused"].to_string().contains("schema"),
        "{summary}"
    );
    b.ok(&["sync"]);
    let prefix = &d.keys().id().to_string()[..16];
    let revoked = office.ok(&["office", "revoke", prefix]);
    eprintln!("{revoked}");
    for x in [&a, &b, &office] {
        x.ok(&["sync"]);
    }
    let shown = shown(&[&a, &b, &office], &reference);
    assert!(shown[0].contains("seen by D again"), "{}", shown[0]);
    assert_all_alike(&shown);
    for x in [&a, &b, &office] {
        assert_eq!(divergences(x), serde_json::json!([]));
    }
}

/// A teammate received a change the server then withheld from the office; the office revokes
/// its author without it, and the server serves it again. Every replica refuses it, and the
/// teammate that had applied it takes it out: all end alike.
#[test]
fn a_change_past_a_revocations_cut_off_is_taken_out_where_it_had_arrived() {
    let office = Device::office();
    let server = Server::start(&office);
    let a = joined(&server, &office, "T03");
    let b = joined(&server, &office, "T03");
    let d = joined(&server, &office, "T03");
    for x in [&a, &b, &d, &office] {
        x.ok(&["sync"]);
    }
    let reference = a.new_case(&["--kind", "killed", "--place", "KHR", "--note", "first"]);
    a.ok(&["sync"]);
    d.ok(&["sync"]);
    d.ok(&["case", "edit", &reference, "--note", "D before"]);
    d.ok(&["sync"]);
    office.ok(&["sync"]);
    d.ok(&["case", "edit", &reference, "--note", "D late"]);
    d.ok(&["sync"]);
    b.ok(&["sync"]);
    assert!(b.ok(&["case", "show", &reference]).contains("D late"));

    // The server withholds D's late change from the office...
    let d_id = d.keys().id();
    let late: Vec<u8> = server
        .dir()
        .db()
        .query_row(
            "SELECT bytes FROM changes WHERE author = ?1 AND seq = 2",
            [d_id.0.as_slice()],
            |r| r.get(0),
        )
        .expect("D's late change on the server");
    server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{d_id}' AND seq = 2"
    ));
    office.ok(&["office", "revoke", &d_id.to_string()[..16]]);
    // ...and serves it again once the revocation is out.
    server.inject(&cairn_crypto::SealedChange::from_bytes(&late).expect("sealed"));

    let run = b.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for x in [&a, &office] {
        x.ok(&["sync"]);
    }
    let shown = shown(&[&a, &b, &office], &reference);
    assert!(shown[0].contains("D before") && !shown[0].contains("D late"));
    assert_all_alike(&shown);
    assert!(run.stderr.contains("taken out"), "{}", run.stderr);
    for x in [&a, &b, &office] {
        assert_eq!(divergences(x), serde_json::json!([]));
    }
}

/// The server drops a change it acknowledged (its row goes, its `acks` still claim it): its
/// author's later edits wait for it on every replica. Once the office has pulled without it,
/// the office's receipt tells the author, which sends it again, naming the server; the edits
/// then reach the office and the teammate.
#[test]
fn a_change_the_server_dropped_is_sent_again_and_what_waited_for_it_arrives() {
    let office = Device::office();
    let server = Server::start(&office);
    let a = joined(&server, &office, "T03");
    let b = joined(&server, &office, "T03");
    for x in [&a, &b, &office] {
        x.ok(&["sync"]);
    }
    let reference = a.new_case(&["--kind", "remains", "--place", "KHR"]);
    a.ok(&["sync"]);
    let a_id = a.keys().id();
    server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{a_id}' AND seq = 1"
    ));
    a.ok(&["case", "edit", &reference, "--note", "second"]);
    a.ok(&["case", "edit", &reference, "--note", "third"]);
    a.ok(&["sync"]);
    let run = office.run(&["sync"]);
    assert!(run.stderr.contains("withholding"), "{}", run.stderr);
    b.ok(&["sync"]);
    assert_eq!(office.case_count(), 0, "the edits wait for the creation");

    let run = a.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for x in [&office, &b] {
        x.ok(&["sync"]);
    }
    let shown = shown(&[&a, &b, &office], &reference);
    assert!(
        shown.iter().all(|s| s.contains("third")),
        "the edits reached the office and the teammate: {shown:?}"
    );
    assert_all_alike(&shown);
    assert!(
        run.stderr.contains("the server had lost change 1")
            && run.stderr.contains("the server is at fault")
            && run
                .stderr
                .contains("confirms none of this device's changes")
            && !run.stderr.contains("1 to 0"),
        "{}",
        run.stderr
    );
    // Confirmed now: nothing more is sent again.
    a.ok(&["sync"]);
    let run = a.run(&["sync"]);
    assert!(!run.stderr.contains("sent again"), "{}", run.stderr);
}

/// A server that claims more of a device's changes than it made is named as at fault, not
/// the device's vault; the device goes on by its own log. A teammate's change the office
/// holds and the server withholds is named by `cairn check`.
#[test]
fn a_server_that_inflates_a_devices_count_is_named_as_at_fault() {
    let office = Device::office();
    let server = Server::start(&office);
    let a = joined(&server, &office, "T03");
    for x in [&a, &office] {
        x.ok(&["sync"]);
    }
    a.new_case(&["--kind", "remains", "--place", "KHR"]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);
    a.ok(&["sync"]);
    let a_id = a.keys().id();
    server.edit_db(&format!(
        "UPDATE acks SET acked = 9 WHERE author = x'{a_id}'"
    ));
    let run = a.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("the server's count is wrong")
            && run.stderr.contains("the server is at fault")
            && !run.stderr.contains("older copy"),
        "{}",
        run.stderr
    );
    a.new_case(&["--kind", "remains", "--place", "KHR"]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);
    assert_eq!(office.case_count(), 2);
    assert_eq!(divergences(&a), serde_json::json!([]));

    // A change of a teammate the office holds, withheld from this device: `check` names the
    // device, the numbers and the server.
    let b = joined(&server, &office, "T03");
    let reference = b.new_case(&["--kind", "remains", "--place", "KHR"]);
    b.ok(&["case", "edit", &reference, "--note", "second"]);
    b.ok(&["sync"]);
    office.ok(&["sync"]);
    let b_id = b.keys().id();
    server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{b_id}' AND seq = 2"
    ));
    a.ok(&["sync"]);
    let named = divergences(&a).to_string();
    assert!(
        named.contains(&format!("changes 2 to 2 of device {}", b_id.short()))
            && named.contains("the server is likely withholding them"),
        "{named}"
    );
}
