//! Blob upload, status and download over real HTTPS, honest and hostile.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::io::Write;
use std::time::Duration;

use cairn_crypto::{chunk_count, BlobId, DeviceKeys, SealedChunk, TeamKey, CHUNK_SIZE};
use cairn_protocol::{
    blob_download_path, blob_page_path, blob_path, blob_status_path, encode_frame, sign_request,
    unix_now, Act, BlobStatus, DevicePublic, FrameReader, Grant, Revoke, BLOB_HELD,
    MAX_CHUNK_FRAME,
};
use common::{tls_connect, Answer, TestServer};

const CASE: [u8; 16] = [5; 16];

/// The blob's chunks, sealed by `keys` under `key`: `size` bytes of a pattern.
fn chunks(keys: &DeviceKeys, key: &TeamKey, blob: BlobId, size: u64) -> Vec<Vec<u8>> {
    let count = chunk_count(size).unwrap();
    let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    (0..count)
        .map(|i| {
            let start = i as usize * CHUNK_SIZE;
            let end = (start + CHUNK_SIZE).min(plain.len());
            SealedChunk::seal(keys, key, CASE, blob, i, count, size, &plain[start..end])
                .unwrap()
                .to_bytes()
        })
        .collect()
}

fn frames(chunks: &[Vec<u8>]) -> Vec<u8> {
    chunks.iter().flat_map(|c| encode_frame(c)).collect()
}

/// `POST /v2/blobs/AUTHOR/ID` of `keys`'s own blob: signed over an empty body, as every
/// upload is.
async fn upload(server: &TestServer, keys: &DeviceKeys, blob: BlobId, body: Vec<u8>) -> Answer {
    let path = blob_path(&keys.id().to_string(), &blob.to_string());
    let auth = sign_request(keys, "POST", &path, b"", unix_now());
    server.send("POST", &path, body, Some(auth)).await
}

/// The status of `keys`'s own blob.
async fn status(server: &TestServer, keys: &DeviceKeys, blob: BlobId) -> BlobStatus {
    status_of(server, keys, keys, blob).await
}

/// The status of `author`'s blob, as `reader` sees it.
async fn status_of(
    server: &TestServer,
    reader: &DeviceKeys,
    author: &DeviceKeys,
    blob: BlobId,
) -> BlobStatus {
    let path = blob_status_path(&author.id().to_string(), &blob.to_string());
    let answer = server.signed(reader, "GET", &path, vec![]).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    serde_json::from_slice(&answer.body).unwrap()
}

fn uploaded(answer: &Answer) -> BlobStatus {
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    serde_json::from_slice(&answer.body).unwrap()
}

/// The chunks a download answer carries.
fn unframe(body: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = FrameReader::new();
    reader.push(body);
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        out.push(frame);
    }
    reader.finish().unwrap();
    out
}

/// Each backend passes the same tests of what a blob does over HTTPS.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::TestServer::start()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::common::with_postgres_server(super::$name).await;
                }
            )*
        }
    };
}

on_both_backends!(
    upload_resumes_and_only_the_team_and_the_office_download,
    a_teammate_cannot_take_or_block_anothers_blob_id,
);

async fn upload_resumes_and_only_the_team_and_the_office_download(server: TestServer) {
    let a = server.device("T1").await;
    let b = server.device("T1").await;
    let stranger = server.device("T2").await;
    let blob = BlobId::random();
    let size = 4 * CHUNK_SIZE as u64 + 100;
    let all = chunks(&a, &server.key("T1"), blob, size);
    assert_eq!(all.len(), 5);
    assert_eq!(
        status(&server, &a, blob).await,
        BlobStatus {
            held: 0,
            count: None,
            stored: 0
        }
    );

    let first = uploaded(&upload(&server, &a, blob, frames(&all[..3])).await);
    assert_eq!(
        first,
        BlobStatus {
            held: 3,
            count: Some(5),
            stored: 3
        }
    );
    // Resent from the start (a client that lost the answer): only the new chunks count.
    let rest = uploaded(&upload(&server, &a, blob, frames(&all)).await);
    assert_eq!(
        rest,
        BlobStatus {
            held: 5,
            count: Some(5),
            stored: 2
        }
    );
    assert!(rest.complete());
    assert_eq!(status_of(&server, &b, &a, blob).await.held, 5);

    let from = |n| blob_download_path(&a.id().to_string(), &blob.to_string(), n);
    let path = from(0);
    for reader in [&b, &server.office, &a] {
        let answer = server.signed(reader, "GET", &path, vec![]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header(BLOB_HELD).as_deref(), Some("5"));
        assert_eq!(unframe(&answer.body), all);
    }
    let tail = server.signed(&b, "GET", &from(3), vec![]).await;
    assert_eq!(unframe(&tail.body), all[3..]);
    let past = server.signed(&b, "GET", &from(5), vec![]).await;
    assert_eq!((past.status, past.body.len()), (200, 0));
    // At most `limit` chunks, and at least one, as the client asks.
    let page = |from, limit| blob_page_path(&a.id().to_string(), &blob.to_string(), from, limit);
    let two = server.signed(&b, "GET", &page(1, 2), vec![]).await;
    assert_eq!(unframe(&two.body), all[1..3]);
    assert_eq!(two.header(BLOB_HELD).as_deref(), Some("5"));
    let none = server.signed(&b, "GET", &page(1, 0), vec![]).await;
    assert_eq!(unframe(&none.body), all[1..2]);

    // Another team's device learns nothing, not even that the blob exists.
    let answer = server.signed(&stranger, "GET", &path, vec![]).await;
    assert_eq!((answer.status, answer.code().as_str()), (404, "not_found"));
    assert_eq!(
        status_of(&server, &stranger, &a, blob).await,
        BlobStatus {
            held: 0,
            count: None,
            stored: 0
        }
    );
    let unknown = server
        .signed(
            &b,
            "GET",
            &blob_download_path(&a.id().to_string(), &BlobId::random().to_string(), 0),
            vec![],
        )
        .await;
    assert_eq!(unknown.status, 404);
    // Bad ids and queries are malformed, never a panic.
    let a_hex = a.id().to_string();
    for bad in [
        format!("/v2/blobs/{a_hex}/xyz"),
        format!("/v2/blobs/{a_hex}/00/status"),
        format!("/v2/blobs/00/{blob}/status"),
        format!("{path}x"),
        format!("{}?from=-1", blob_path(&a_hex, &blob.to_string())),
        format!("{path}&limit=-2"),
    ] {
        let answer = server.signed(&b, "GET", &bad, vec![]).await;
        assert_eq!(answer.status, 400, "{bad}");
    }
}

/// Sends chunk 0 (good), then `bad`: the upload is refused with `code`, and chunk 0 is kept.
async fn refused_after_one_good(
    server: &TestServer,
    keys: &DeviceKeys,
    blob: BlobId,
    good: &[u8],
    bad: Vec<u8>,
    code: &str,
    what: &str,
) {
    let body = [encode_frame(good), bad].concat();
    let answer = upload(server, keys, blob, body).await;
    assert_eq!(answer.code(), code, "{what}: {}", answer.error().message);
    assert_eq!(status(server, keys, blob).await.held, 1, "{what}");
}

#[tokio::test]
async fn hostile_chunks_are_refused_and_the_whole_ones_before_kept() {
    let server = TestServer::start();
    let a = server.device("T1").await;
    let b = server.device("T1").await;
    let t1 = server.key("T1");
    let size = 3 * CHUNK_SIZE as u64;
    let blob = BlobId::random();
    let good = chunks(&a, &t1, blob, size);

    let mut cases: Vec<(Vec<u8>, &str, &str)> = Vec::new();
    // Sealed and signed by another device than the one sending it.
    cases.push((
        encode_frame(&chunks(&b, &t1, blob, size)[1]),
        "chunk_refused",
        "teammate's chunk",
    ));
    // Sealed for another team; under a draft key (epoch 0).
    let t2 = TeamKey::generate("T2", 1);
    cases.push((
        encode_frame(&chunks(&a, &t2, blob, size)[1]),
        "chunk_refused",
        "another team",
    ));
    let draft = TeamKey::generate("T1", 0);
    cases.push((
        encode_frame(&chunks(&a, &draft, blob, size)[1]),
        "chunk_refused",
        "draft key",
    ));
    // Another size (so another count) than the blob's first chunk; another blob than the path's.
    let bigger = chunks(&a, &t1, blob, size + 1);
    cases.push((
        encode_frame(&bigger[1]),
        "chunk_refused",
        "inconsistent size",
    ));
    cases.push((
        encode_frame(&chunks(&a, &t1, BlobId::random(), size)[1]),
        "chunk_refused",
        "another blob",
    ));
    // Its index moved to the count (past the last chunk); a byte of its ciphertext flipped.
    let mut past = good[1].clone();
    past[68..72].copy_from_slice(&3u32.to_be_bytes());
    cases.push((encode_frame(&past), "chunk_refused", "index >= count"));
    let mut flipped = good[1].clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 1;
    cases.push((encode_frame(&flipped), "chunk_refused", "tampered"));
    // Chunk 2 before chunk 1; chunk 0 again with other bytes.
    cases.push((encode_frame(&good[2]), "chunk_refused", "gap"));
    cases.push((
        encode_frame(&chunks(&a, &t1, blob, size)[0]),
        "chunk_refused",
        "another chunk 0",
    ));
    // Garbage, an oversized frame, a frame claiming more than any chunk, an empty frame.
    cases.push((encode_frame(b"not a chunk"), "chunk_refused", "garbage"));
    cases.push((
        encode_frame(&vec![0u8; MAX_CHUNK_FRAME]),
        "chunk_refused",
        "oversized chunk",
    ));
    cases.push((
        ((MAX_CHUNK_FRAME + 1) as u32).to_be_bytes().to_vec(),
        "malformed",
        "oversized frame",
    ));
    cases.push((vec![0, 0, 0, 0], "malformed", "empty frame"));
    // Cut inside a frame (the body ends there).
    cases.push((
        encode_frame(&good[1])[..1000].to_vec(),
        "malformed",
        "truncated",
    ));
    for (bad, code, what) in cases {
        refused_after_one_good(&server, &a, blob, &good[0], bad, code, what).await;
    }
    let done = uploaded(&upload(&server, &a, blob, frames(&good[1..])).await);
    assert_eq!(
        done,
        BlobStatus {
            held: 3,
            count: Some(3),
            stored: 2
        }
    );

    // A revoked device uploads nothing more.
    let key2 = TeamKey::generate("T1", 2);
    let revoke = server.issue(Act::Revoke(Revoke {
        device: a.id(),
        last_seq: 0,
        team: "T1".into(),
        epoch: 2,
        grants: vec![Grant::new(&key2, &DevicePublic::from_keys(&server.office)).unwrap()],
        earlier: String::new(),
    }));
    assert_eq!(server.post_roster(&[revoke]).await.status, 204);
    let other = BlobId::random();
    let answer = upload(&server, &a, other, frames(&chunks(&a, &t1, other, 10))).await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "revoked"));
    // A request signed over its body instead of an empty one is refused.
    let path = blob_path(&b.id().to_string(), &other.to_string());
    let body = frames(&chunks(&b, &t1, other, 10));
    let auth = sign_request(&b, "POST", &path, &body, unix_now());
    let answer = server.send("POST", &path, body, Some(auth)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "bad_signature")
    );
}

#[tokio::test]
async fn a_cut_upload_keeps_every_whole_chunk() {
    let server = TestServer::start();
    let a = server.device("T1").await;
    let blob = BlobId::random();
    let all = chunks(&a, &server.key("T1"), blob, 6 * CHUNK_SIZE as u64);
    let body = frames(&all);
    let path = blob_path(&a.id().to_string(), &blob.to_string());
    {
        let mut stream = tls_connect(server.process.addr(), &server.tls_client_config());
        let auth = sign_request(&a, "POST", &path, b"", unix_now());
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\nauthorization: {auth}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        // Two whole chunks and half of the third, then the link drops.
        let cut = 2 * (all[0].len() + 4) + all[2].len() / 2;
        stream.write_all(&body[..cut]).unwrap();
        stream.flush().unwrap();
        // Time for the server to take up the upload (it has the head and part of the body).
        std::thread::sleep(Duration::from_secs(1));
        stream.sock.shutdown(std::net::Shutdown::Both).unwrap();
    }
    // Asked at once after the cut: the answer waits until what arrived of the upload is
    // stored, so the client sends none of it again.
    assert_eq!(
        status(&server, &a, blob).await.held,
        2,
        "the whole chunks before the cut are kept, not the cut one"
    );
    let rest = uploaded(&upload(&server, &a, blob, frames(&all[2..])).await);
    assert_eq!(
        rest,
        BlobStatus {
            held: 6,
            count: Some(6),
            stored: 4
        }
    );
    let answer = server
        .signed(
            &a,
            "GET",
            &blob_download_path(&a.id().to_string(), &blob.to_string(), 0),
            vec![],
        )
        .await;
    assert_eq!(unframe(&answer.body), all);
}

#[tokio::test]
async fn blob_bytes_count_in_the_quota_and_uploads_are_bounded() {
    let server = TestServer::start_with(&[
        ("device_quota_bytes", "40000"),
        ("max_upload_bytes", "40000"),
    ]);
    let a = server.device("T1").await;
    let blob = BlobId::random();
    let all = chunks(&a, &server.key("T1"), blob, 3 * CHUNK_SIZE as u64);
    // Announced over the upload limit: refused before a byte of it is read.
    let answer = upload(&server, &a, blob, frames(&all)).await;
    assert_eq!(answer.code(), "too_large", "{}", answer.error().message);
    assert_eq!(status(&server, &a, blob).await.held, 0);
    let two = uploaded(&upload(&server, &a, blob, frames(&all[..2])).await);
    assert_eq!(two.held, 2);
    // Two chunks fill the quota: the third is refused, and stays refused.
    let answer = upload(&server, &a, blob, frames(&all[2..])).await;
    assert_eq!((answer.status, answer.code().as_str()), (507, "quota_full"));
    assert_eq!(status(&server, &a, blob).await.held, 2);
}

/// A teammate who reads a case learns its attachments' blob ids. Blobs live under their
/// author, so whatever it stores under one, first or not, the author's own blob is untouched.
async fn a_teammate_cannot_take_or_block_anothers_blob_id(server: TestServer) {
    let a = server.device("T1").await;
    let b = server.device("T1").await;
    let t1 = server.key("T1");
    let blob = BlobId::random();
    let size = 2 * CHUNK_SIZE as u64;
    let own = chunks(&a, &t1, blob, size);
    // b stores its own chunks under a's blob id before a uploads a byte.
    let squat = chunks(&b, &t1, blob, size + 1);
    assert_eq!(
        uploaded(&upload(&server, &b, blob, frames(&squat)).await).held,
        3
    );
    // Nor can b send into a's blob: the path names a, the chunks b.
    let path = blob_path(&a.id().to_string(), &blob.to_string());
    let auth = sign_request(&b, "POST", &path, b"", unix_now());
    let answer = server.send("POST", &path, frames(&squat), Some(auth)).await;
    assert_eq!(answer.code(), "chunk_refused", "{}", answer.error().message);
    assert_eq!(status_of(&server, &b, &a, blob).await.held, 0);
    // a's upload is whole, and a download of a's blob is a's chunks, not b's.
    let done = uploaded(&upload(&server, &a, blob, frames(&own)).await);
    assert!(done.complete(), "{done:?}");
    let download = blob_download_path(&a.id().to_string(), &blob.to_string(), 0);
    let answer = server
        .signed(&server.office, "GET", &download, vec![])
        .await;
    assert_eq!(unframe(&answer.body), own);
}

/// An upload that sends a byte now and then, never idle for long, is still ended once it
/// falls under the minimum rate: a trickle cannot hold its share of the server's memory.
#[tokio::test]
async fn a_trickling_upload_is_ended() {
    let server = TestServer::start_with(&[("body_timeout_secs", "1")]);
    let a = server.device("T1").await;
    let path = blob_path(&a.id().to_string(), &BlobId::random().to_string());
    let mut stream = tls_connect(server.process.addr(), &server.tls_client_config());
    let auth = sign_request(&a, "POST", &path, b"", unix_now());
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 100000\r\nauthorization: {auth}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A frame of a chunk's size announced, then its bytes one by one.
    stream.write_all(&16_000u32.to_be_bytes()).unwrap();
    stream
        .sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Ten bytes a second for at most ten seconds; the server ends it after about one.
    let mut buf = [0u8; 4096];
    let mut answer = Vec::new();
    let mut closed = false;
    for _ in 0..100 {
        if stream
            .write_all(&[0])
            .and_then(|()| stream.flush())
            .is_err()
        {
            closed = true;
            break;
        }
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "a trickling upload was still open after ten seconds"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.contains("408"), "{answer}");
}
