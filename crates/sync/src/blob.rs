//! The blob step, run once the case changes are pushed and pulled (they never wait behind
//! an attachment): upload this device's attachments from the chunk the server holds next,
//! then download the wanted ones from the chunk this vault holds next, a page at a time,
//! each chunk stored as it arrives. A blob that fails is reported in the summary and never
//! fails the sync; on a link that drops, a blob is tried again at once while it progresses,
//! and given up for this sync after `Options::attempts` failures in a row without progress.
//!
//! Memory stays bounded whatever the file: an upload request carries at most
//! [`UPLOAD_CHUNKS`] chunks (about 1 MiB), read from the vault for that request; a download
//! is read frame by frame.

use std::time::Duration;

use cairn_crypto::{chunk_len, SealedChunk};
use cairn_protocol::{encode_frame, BlobStatus, ErrorCode, FrameReader};
use cairn_vault::{OutboxBlob, Vault, VaultError, WantedBlob};
use rand::Rng;

use crate::engine::{retry, Link, Summary};
use crate::SyncError;

/// Chunks per upload request: about 1 MiB of frames, far under the server's upload limit.
pub(crate) const UPLOAD_CHUNKS: u32 = 64;

/// Chunks asked for per download request, about 256 KiB. Each chunk is kept as it arrives,
/// but what the link delivered and the process had not read yet is lost when it is killed
/// or cut: a page this size bounds that loss (a whole page of the server's 4 MiB budget made
/// a download killed again and again fetch about twice its size), and even at the server's
/// default of 10 requests a second it moves 2.6 MB/s, more than a field link.
pub(crate) const DOWNLOAD_CHUNKS: u32 = 16;

/// What one blob's transfer came to.
enum Done {
    /// Every chunk is where it was going (and, after a download, the hash checked).
    Complete,
    /// The server does not hold the rest yet (its author has not uploaded it): next sync.
    Waiting,
}

/// Plaintext bytes of chunks `from..to` of a blob of `size` bytes.
fn plain_bytes(size: u64, from: u32, to: u32) -> u64 {
    (from..to)
        .filter_map(|i| chunk_len(size, i))
        .map(|n| n as u64)
        .sum()
}

/// Counts the bytes of attachments moved in this step for the progress bar.
struct Bytes<'a> {
    link: &'a Link<'a>,
    done: u64,
    total: u64,
}

impl Bytes<'_> {
    fn add(&mut self, n: u64) {
        self.done += n;
        self.link.progress.attachments(self.done, self.total);
    }
}

/// Bounded tries of one blob: a failure after progress is tried again at once, one without
/// progress after a pause (backoff with jitter), at most `attempts` in a row.
struct Tries<'a> {
    link: &'a Link<'a>,
    failures: u32,
    delay: Duration,
}

impl<'a> Tries<'a> {
    fn new(link: &'a Link<'a>) -> Tries<'a> {
        Tries {
            link,
            failures: 0,
            delay: link.options.base_delay,
        }
    }

    /// After a transient failure: whether to try again (having paused if nothing moved).
    async fn again(&mut self, progressed: bool, error: &SyncError) -> bool {
        if progressed {
            self.failures = 0;
            self.delay = self.link.options.base_delay;
            return true;
        }
        self.failures += 1;
        if !error.is_transient() || self.failures >= self.link.options.attempts {
            return false;
        }
        let pause = rand::thread_rng().gen_range(Duration::ZERO..=self.delay);
        tracing::info!(failures = self.failures, error = %error, ?pause, "blob transfer: retrying");
        tokio::time::sleep(pause).await;
        self.delay = (self.delay * 2).min(self.link.options.max_delay);
        true
    }
}

/// Uploads the outbox, then downloads the wanted blobs (all of them if `with_attachments`).
/// Every failure lands in `summary`.
pub(crate) async fn blob_step(link: &Link<'_>, vault: &mut Vault, summary: &mut Summary) {
    if let Err(e) = run(link, vault, summary).await {
        summary
            .blob_failures
            .push(format!("attachments not synced: {e}"));
    }
}

async fn run(link: &Link<'_>, vault: &mut Vault, summary: &mut Summary) -> Result<(), SyncError> {
    if link.options.with_attachments {
        vault.request_all_blobs()?;
    }
    let outbox = vault.blob_outbox()?;
    let wanted = vault.wanted_blobs()?;
    let mut bytes = Bytes {
        link,
        done: 0,
        total: outbox
            .iter()
            .map(|b| plain_bytes(b.size, b.held_by_server, b.count))
            .chain(wanted.iter().map(|w| plain_bytes(w.size, w.held, w.count)))
            .sum(),
    };
    // Shown from the start, not from the first chunk that moved.
    if bytes.total > 0 {
        bytes.add(0);
    }
    for blob in &outbox {
        match upload(link, vault, blob, summary, &mut bytes).await {
            Ok(Done::Complete) => summary.blobs_sent += 1,
            Ok(Done::Waiting) => summary.blobs_waiting += 1,
            Err(e) => summary
                .blob_failures
                .push(format!("attachment blob {} not sent: {e}", blob.blob)),
        }
    }
    for blob in &wanted {
        match download(link, vault, blob, summary, &mut bytes).await {
            Ok(Done::Complete) => summary.blobs_fetched += 1,
            Ok(Done::Waiting) => summary.blobs_waiting += 1,
            Err(e) => summary
                .blob_failures
                .push(format!("attachment blob {} not fetched: {e}", blob.blob)),
        }
    }
    Ok(())
}

/// Sends `blob` from the chunk the server holds next until it holds them all.
async fn upload(
    link: &Link<'_>,
    vault: &mut Vault,
    blob: &OutboxBlob,
    summary: &mut Summary,
    bytes: &mut Bytes<'_>,
) -> Result<Done, SyncError> {
    let mut tries = Tries::new(link);
    let mut held = server_held(link, vault, blob, summary).await?;
    // Chunks already counted for the progress bar (its total starts from the vault's record).
    let mut counted = held.max(blob.held_by_server);
    loop {
        if held >= blob.count {
            vault.mark_blob_delivered(&blob.blob)?;
            return Ok(Done::Complete);
        }
        vault.mark_chunks_uploaded(&blob.blob, held)?;
        let frames = frames(vault, blob, held)?;
        summary.round_trips += 1;
        let before = held;
        match link
            .client
            .blob_upload(vault.keys(), &blob.blob, frames)
            .await
        {
            Ok(answer) => {
                held = check_count(answer, blob)?;
                if held <= before {
                    // A whole request accepted without a new chunk held: it will not be.
                    return Err(SyncError::Protocol(format!(
                        "the server accepted chunks from {before} but holds no more of them"
                    )));
                }
                tries.failures = 0;
            }
            Err(e) => {
                // Cut or refused: how far it got is the server's to say (it answers once it
                // has stored what arrived whole).
                held = match server_held(link, vault, blob, summary).await {
                    Ok(answer) => answer,
                    Err(status) if status.is_transient() => held,
                    Err(status) => return Err(status),
                };
                if !tries.again(held > before, &e).await {
                    return Err(e);
                }
                if held == before {
                    // After the pause: the server may have stored more since.
                    held = server_held(link, vault, blob, summary).await?;
                }
            }
        }
        if held > counted {
            bytes.add(plain_bytes(blob.size, counted, held));
            counted = held;
        }
    }
}

/// The next request's body: chunks of `blob` from `from`, framed, at most [`UPLOAD_CHUNKS`].
fn frames(vault: &Vault, blob: &OutboxBlob, from: u32) -> Result<Vec<u8>, SyncError> {
    let chunks = vault.sealed_chunks(&blob.blob, from, UPLOAD_CHUNKS)?;
    let frames: Vec<u8> = chunks
        .iter()
        .zip(from..)
        .take_while(|(c, i)| c.index == *i)
        .flat_map(|(c, _)| encode_frame(&c.to_bytes()))
        .collect();
    if frames.is_empty() {
        return Err(VaultError::Corrupt {
            path: vault.home().database(),
            detail: format!("chunk {from} of attachment blob {} is missing", blob.blob),
        }
        .into());
    }
    Ok(frames)
}

/// How many chunks of `blob` the server holds from 0 (asked with retries).
async fn server_held(
    link: &Link<'_>,
    vault: &Vault,
    blob: &OutboxBlob,
    summary: &mut Summary,
) -> Result<u32, SyncError> {
    let status = retry(link.options, summary, || {
        link.client.blob_status(vault.keys(), &blob.blob)
    })
    .await?;
    check_count(status, blob)
}

/// The server's held count, refused when the server's blob is not this one.
fn check_count(status: BlobStatus, blob: &OutboxBlob) -> Result<u32, SyncError> {
    match status.count {
        Some(count) if count != blob.count => Err(SyncError::Protocol(format!(
            "the server holds this blob with {count} chunks, not {}",
            blob.count
        ))),
        _ => Ok(status.held.min(blob.count)),
    }
}

/// Fetches `blob` from the chunk this vault holds next, then checks it whole.
async fn download(
    link: &Link<'_>,
    vault: &mut Vault,
    blob: &WantedBlob,
    summary: &mut Summary,
    bytes: &mut Bytes<'_>,
) -> Result<Done, SyncError> {
    let mut tries = Tries::new(link);
    let mut held = blob.held;
    while held < blob.count {
        let before = held;
        match page(link, vault, blob, &mut held, summary, bytes).await {
            Ok(server_held) if held == before => {
                tracing::info!(blob = %blob.blob, server_held, held, "blob not on the server yet");
                return Ok(Done::Waiting);
            }
            Ok(_) => tries.failures = 0,
            Err(SyncError::Refused {
                code: Some(ErrorCode::NotFound),
                ..
            }) => return Ok(Done::Waiting),
            Err(e) => {
                if !tries.again(held > before, &e).await {
                    return Err(e);
                }
            }
        }
    }
    vault.finish_blob(blob.slot)?;
    Ok(Done::Complete)
}

/// One page of chunks from `held`, each checked and stored as it arrives (`held` moves with
/// them, so a cut keeps every chunk before it). Returns how many the server holds.
async fn page(
    link: &Link<'_>,
    vault: &mut Vault,
    blob: &WantedBlob,
    held: &mut u32,
    summary: &mut Summary,
    bytes: &mut Bytes<'_>,
) -> Result<u32, SyncError> {
    summary.round_trips += 1;
    let (mut response, server_held) = link
        .client
        .blob_download(
            vault.keys(),
            &blob.author,
            &blob.blob,
            *held,
            DOWNLOAD_CHUNKS,
        )
        .await?;
    let mut reader = FrameReader::new();
    loop {
        let more = link.client.next_piece(&mut response, &mut reader).await?;
        while let Some(frame) = reader.next_frame()? {
            let chunk = SealedChunk::from_bytes(&frame).map_err(|e| {
                SyncError::Protocol(format!("the server sent a damaged chunk {}: {e}", *held))
            })?;
            if chunk.blob != blob.blob || chunk.index != *held || *held >= blob.count {
                return Err(SyncError::Protocol(format!(
                    "asked for chunk {} of blob {}, the server sent chunk {} of blob {}",
                    *held, blob.blob, chunk.index, chunk.blob
                )));
            }
            if chunk.author != blob.author {
                return Err(SyncError::Protocol(format!(
                    "the server sent chunk {} of blob {} sealed by {}, not by its author {}",
                    *held,
                    blob.blob,
                    chunk.author.short(),
                    blob.author.short()
                )));
            }
            vault.store_fetched_chunk(blob, &chunk)?;
            *held += 1;
            bytes.add(plain_bytes(blob.size, *held - 1, *held));
        }
        if !more {
            reader.finish()?;
            tracing::info!(
                blob = %blob.blob,
                held = *held,
                count = blob.count,
                "attachment download: {} of {} bytes here",
                plain_bytes(blob.size, 0, *held),
                blob.size
            );
            return Ok(server_held);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use std::path::{Path, PathBuf};

    use cairn_crypto::{BlobId, CHUNK_SIZE};
    use cairn_model::Kind;
    use cairn_testkit::Relay;
    use cairn_vault::NewAttachment;
    use rand::RngCore;

    use super::*;
    use crate::testing::Setup;
    use crate::{Client, Options};

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    /// A case on `vault` with a file of `size` random bytes attached: (reference, sha256,
    /// blob, the bytes).
    fn attach(dir: &Path, vault: &mut Vault, size: usize) -> (String, String, BlobId, Vec<u8>) {
        let reference = vault
            .create_case(Kind::Remains, "KHR", &[], now())
            .unwrap()
            .reference;
        let mut bytes = vec![0u8; size];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let path = dir.join("evidence.bin");
        std::fs::write(&path, &bytes).unwrap();
        let file = NewAttachment {
            path,
            name: "evidence.bin".into(),
            media_type: "application/octet-stream".into(),
            caption: None,
            exif_time: None,
            gps: None,
            limit: 1 << 30,
        };
        let attached = vault.attach(&reference, file, now(), &mut |_| {}).unwrap();
        let blob = BlobId::from_hex(&attached.entry.blob).unwrap();
        (reference, attached.entry.sha256, blob, bytes)
    }

    fn through(vault: &mut Vault, relay: &Relay) {
        let endpoint = vault.endpoint().unwrap();
        let office = crate::roster::office_of(&endpoint).unwrap();
        let fingerprint = endpoint.fingerprint.unwrap();
        crate::point_at_server(vault, &relay.url(), &fingerprint, &office).unwrap();
    }

    async fn sync(vault: &mut Vault) -> Summary {
        crate::sync(vault, &Options::default(), &())
            .await
            .map_err(|(e, _)| e)
            .unwrap()
    }

    /// Syncs until `done` holds, at most `rounds` times; the summaries' attachment counts.
    async fn sync_until(
        vault: &mut Vault,
        rounds: usize,
        done: impl Fn(&Vault) -> bool,
    ) -> (u64, u64, usize) {
        let (mut sent, mut fetched, mut failed) = (0, 0, 0);
        for _ in 0..rounds {
            let summary = sync(vault).await;
            sent += summary.blobs_sent;
            fetched += summary.blobs_fetched;
            failed += summary.blob_failures.len();
            if done(vault) {
                break;
            }
        }
        (sent, fetched, failed)
    }

    fn get(
        vault: &mut Vault,
        dir: &Path,
        reference: &str,
        sha: &str,
    ) -> Result<Vec<u8>, VaultError> {
        let out: PathBuf = dir.join(format!("out-{}", rand::random::<u64>()));
        let got = vault.attachment_get(reference, sha, &out).map(|_| ());
        assert_eq!(got.is_ok(), out.exists(), "{got:?}");
        got.map(|()| std::fs::read(&out).unwrap())
    }

    fn frames_len(vault: &Vault, blob: &BlobId, from: u32, to: u32) -> u64 {
        vault
            .sealed_chunks(blob, from, to - from)
            .unwrap()
            .iter()
            .map(|c| c.to_bytes().len() as u64 + 4)
            .sum()
    }

    #[tokio::test]
    async fn an_upload_resumes_from_what_the_server_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let mut field = setup.field(dir.path(), "a", "T1").await;
        let (reference, sha, blob, bytes) = attach(dir.path(), &mut field, 20 * CHUNK_SIZE - 100);
        // Seven chunks reach the server, then the link is lost.
        let client = Client::new(&setup.url, setup.server.fingerprint()).unwrap();
        let first: Vec<u8> = field
            .sealed_chunks(&blob, 0, 7)
            .unwrap()
            .iter()
            .flat_map(|c| encode_frame(&c.to_bytes()))
            .collect();
        let status = client
            .blob_upload(field.keys(), &blob, first)
            .await
            .unwrap();
        assert_eq!(status.held, 7);

        let relay = Relay::start(setup.server.addr());
        through(&mut field, &relay);
        let summary = sync(&mut field).await;
        assert_eq!(summary.blobs_sent, 1, "{summary:?}");
        assert!(
            summary.line().contains("attachments sent 1"),
            "{}",
            summary.line()
        );
        assert!(field.blob_outbox().unwrap().is_empty());
        // Only chunks 7 to 19 went over the link (with the case change, roster and headers):
        // less than the seven already held would add.
        let (rest, held) = (
            frames_len(&field, &blob, 7, 20),
            frames_len(&field, &blob, 0, 7),
        );
        assert!(
            relay.bytes() < rest + held / 2,
            "{} of {rest}",
            relay.bytes()
        );
        assert!(relay.bytes() > rest);

        // Synced again: nothing more to send.
        relay.reset();
        let again = sync(&mut field).await;
        assert_eq!(
            (again.blobs_sent, again.blob_failures.len()),
            (0, 0),
            "{again:?}"
        );

        // A teammate receives the case but fetches the bytes only when asked.
        let mut mate = setup.field(dir.path(), "b", "T1").await;
        let summary = sync(&mut mate).await;
        // (The case comes whole in the office's checkpoint, or change by change.)
        assert_eq!(
            (mate.list().unwrap().len(), summary.blobs_fetched),
            (1, 0),
            "{summary:?}"
        );
        let all = Options {
            with_attachments: true,
            ..Options::default()
        };
        let summary = crate::sync(&mut mate, &all, &()).await.unwrap();
        assert_eq!(summary.blobs_fetched, 1, "{summary:?}");
        assert_eq!(get(&mut mate, dir.path(), &reference, &sha).unwrap(), bytes);

        // The office fetched it when it synced to admit the teammate.
        let office = &mut setup.office;
        assert!(office.wanted_blobs().unwrap().is_empty());
        assert_eq!(get(office, dir.path(), &reference, &sha).unwrap(), bytes);
    }

    /// A server that allows one request a second: the client waits between uploads as the
    /// answers say, so no upload body is sent to be refused for the rate and sent again.
    #[tokio::test]
    async fn uploads_pace_to_the_servers_rate_and_send_no_body_twice() {
        let dir = tempfile::tempdir().unwrap();
        let rate = [
            ("device_requests_per_sec", "1"),
            ("device_request_burst", "6"),
        ];
        let mut setup = Setup::start(dir.path(), &rate).await;
        let mut field = setup.field(dir.path(), "a", "T1").await;
        let (_, _, blob, _) = attach(
            dir.path(),
            &mut field,
            4 * UPLOAD_CHUNKS as usize * CHUNK_SIZE,
        );
        let relay = Relay::start(setup.server.addr());
        through(&mut field, &relay);
        let summary = sync(&mut field).await;
        assert_eq!(summary.blobs_sent, 1, "{summary:?}");
        // Four upload bodies of about 1 MiB each, plus the case change and the headers; a
        // body refused for the rate would have added up to 1 MiB.
        let sealed = frames_len(&field, &blob, 0, 4 * UPLOAD_CHUNKS);
        assert!(
            relay.bytes() * 100 <= sealed * 103,
            "{} relayed for {sealed}",
            relay.bytes()
        );
    }

    #[tokio::test]
    async fn a_link_cut_every_256_kib_carries_a_blob_both_ways_resending_little() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let mut field = setup.field(dir.path(), "a", "T1").await;
        let (reference, sha, blob, bytes) = attach(dir.path(), &mut field, 4 << 20);
        let up = Relay::cutting(setup.server.addr(), 256 * 1024);
        through(&mut field, &up);
        let (sent, _, _) = sync_until(&mut field, 5, |v| v.blob_outbox().unwrap().is_empty()).await;
        assert_eq!(sent, 1);
        // Chunks cut mid-way are sent again, and so is what the relay passed of a TLS record
        // it cut: within 10 %, the case change, roster and headers included.
        let sealed = frames_len(&field, &blob, 0, 256);
        assert!(
            up.bytes() * 10 <= sealed * 11,
            "{} for {sealed}",
            up.bytes()
        );
        assert!(field.blob_outbox().unwrap().is_empty());

        let down = Relay::cutting(setup.server.addr(), 256 * 1024);
        let office = &mut setup.office;
        through(office, &down);
        let (_, fetched, _) =
            sync_until(office, 10, |v| v.wanted_blobs().unwrap().is_empty()).await;
        assert_eq!(fetched, 1);
        assert!(
            down.bytes() * 10 <= sealed * 11,
            "{} for {sealed}",
            down.bytes()
        );
        assert_eq!(get(office, dir.path(), &reference, &sha).unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_chunk_altered_on_the_server_is_never_handed_out_and_is_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let mut field = setup.field(dir.path(), "a", "T1").await;
        let (reference, sha, blob, bytes) = attach(dir.path(), &mut field, 3 * CHUNK_SIZE);
        assert_eq!(sync(&mut field).await.blobs_sent, 1);
        let db = rusqlite::Connection::open(dir.path().join("srv").join("server.db")).unwrap();
        let set_chunk = |bytes: &[u8]| {
            let n = db
                .execute(
                    "UPDATE blob_chunks SET bytes = ?1 WHERE blob = ?2 AND idx = 1",
                    rusqlite::params![bytes, blob.0.as_slice()],
                )
                .unwrap();
            assert_eq!(n, 1);
        };
        let genuine = field.sealed_chunk(&blob, 1).unwrap();
        let office = &mut setup.office;

        // One flipped bit: its seal fails as it arrives.
        let mut flipped = genuine.to_bytes();
        let at = flipped.len() - 100;
        flipped[at] ^= 1;
        set_chunk(&flipped);
        let summary = sync(office).await;
        assert_eq!(
            (summary.blobs_fetched, summary.blob_failures.len()),
            (0, 1),
            "{summary:?}"
        );
        assert!(summary.line().contains("failed 1"), "{}", summary.line());
        assert!(matches!(
            get(office, dir.path(), &reference, &sha),
            Err(VaultError::AttachmentNotHere { .. })
        ));

        // Other bytes sealed and signed by the author under the team key (a forged chunk
        // whose seal holds): caught by the hash over the whole file, its chunks dropped.
        let key = field.keyring().newest("T1").unwrap();
        let forged = SealedChunk::seal(
            field.keys(),
            key,
            genuine.case_id,
            blob,
            1,
            genuine.count,
            genuine.size,
            &[7u8; CHUNK_SIZE],
        )
        .unwrap();
        set_chunk(&forged.to_bytes());
        let summary = sync(office).await;
        assert_eq!(
            (summary.blobs_fetched, summary.blob_failures.len()),
            (0, 1),
            "{summary:?}"
        );
        assert!(
            summary.blob_failures[0].contains("evidence.bin"),
            "{summary:?}"
        );
        assert_eq!(office.wanted_blobs().unwrap()[0].held, 0, "fetched again");
        assert!(get(office, dir.path(), &reference, &sha).is_err());

        // The same chunk sealed by a teammate under the team key, put in the author's blob
        // by the server: refused as it arrives, for its sealer.
        let mate = setup.field(dir.path(), "b", "T1").await;
        let office = &mut setup.office;
        let by_mate = SealedChunk::seal(
            mate.keys(),
            key,
            genuine.case_id,
            blob,
            1,
            genuine.count,
            genuine.size,
            &bytes[CHUNK_SIZE..2 * CHUNK_SIZE],
        )
        .unwrap();
        set_chunk(&by_mate.to_bytes());
        let summary = sync(office).await;
        assert_eq!(summary.blobs_fetched, 0, "{summary:?}");
        assert!(
            summary.blob_failures[0].contains("not by its author"),
            "{summary:?}"
        );

        // The genuine chunk back: the next sync fetches the blob whole.
        set_chunk(&genuine.to_bytes());
        let summary = sync(office).await;
        assert_eq!(
            (summary.blobs_fetched, summary.blob_failures.len()),
            (1, 0),
            "{summary:?}"
        );
        assert_eq!(get(office, dir.path(), &reference, &sha).unwrap(), bytes);
    }
}
