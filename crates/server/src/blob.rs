//! The blob endpoints: the sealed chunks of attachments, uploaded by their author, stored
//! as they arrive, and served to whoever may read them.
//!
//! - `POST /v2/blobs/{blob}`: a stream of framed sealed chunks of that blob, in index order,
//!   from the index the server holds next. Each chunk is parsed (bounded), its signature
//!   verified, and refused unless its author is the authenticated device, its team is the
//!   author's own (the office and its staff devices may write any team's), it is sealed under a team key (epoch 1
//!   or later) and its header agrees with the blob's first chunk (case, count, size, team,
//!   author). Whole chunks are stored in batches of at most [`FLUSH_BYTES`] as they arrive,
//!   so a cut connection keeps every whole chunk before the cut; the first refused chunk
//!   ends the upload (the chunks before it are kept) with `422 chunk_refused`. The answer is
//!   a [`BlobStatus`]. Sending a chunk again changes nothing.
//! - `GET /v2/blobs/{blob}/status`: a [`BlobStatus`]: how many chunks, from 0, are held.
//! - `GET /v2/blobs/{blob}?from=N[&limit=M]`: the held chunks from index N, framed, as many
//!   as fit `max_request_bytes` (at most M); the `x-cairn-blob-held` header says how many are
//!   held in all.
//!
//! Only the office, its staff devices and members of the blob's team may read a blob or its status; to anyone
//! else it does not exist (404, or held 0), so its existence is not revealed either.

use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_crypto::{BlobId, DeviceId, SealedChunk, MAX_SEALED_CHUNK};
use cairn_protocol::{
    encode_frame, validate_team, BlobQuery, BlobStatus, ErrorCode, FrameReader, Roster,
    BLOB_CONTENT_TYPE, BLOB_HELD, OFFICE_TEAM,
};

use crate::app::{AppState, LoggedDevice};
use crate::auth::{Signed, SignedStream};
use crate::error::ApiError;
use crate::guard::Hold;
use crate::pull::HeldPage;
use crate::storage::{BlobInfo, ChunkOutcome, NewChunk, Storage, StorageError, StoredBlob};

/// Whole chunks held in memory before they are stored: about 15 chunks.
const FLUSH_BYTES: usize = 256 * 1024;
/// The slowest an upload may average (bytes a second) once its first `body_timeout` is over:
/// far below a 2G link.
const MIN_UPLOAD_RATE: u64 = 1024;
/// The longest a status waits for its blob's upload in progress to be stored.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Most chunks one download answer carries.
const MAX_PAGE_CHUNKS: u32 = 1024;

/// The blob a path names: its author's device id and its own id.
fn parse_blob((author, blob): &(String, String)) -> Result<(DeviceId, BlobId), ApiError> {
    let author = DeviceId::from_hex(author)
        .map_err(|_| ApiError::malformed("a blob's author is a device id of 64 hex digits"))?;
    let blob =
        BlobId::from_hex(blob).map_err(|_| ApiError::malformed("a blob id is 32 hex digits"))?;
    Ok((author, blob))
}

fn refused(index: u32, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::ChunkRefused,
        format!("chunk {index} of this upload is refused: {why}; the chunks before it are kept"),
    )
}

/// Whether `device` may read a blob of `team`: the office and its staff devices read every
/// blob, a field device its own team's.
fn may_read(roster: &Roster, device: &DeviceId, team: &str) -> bool {
    roster.speaks_for_office(device) || roster.member(device).is_some_and(|m| m.team == team)
}

/// The blob as `device` may see it: `None` if it is unknown or not readable by it.
async fn readable(
    state: &AppState,
    roster: &Roster,
    device: &DeviceId,
    (author, blob): &(DeviceId, BlobId),
) -> Result<Option<StoredBlob>, ApiError> {
    Ok(state
        .storage
        .blob(author, &blob.0)
        .await?
        .filter(|b| may_read(roster, device, &b.info.team)))
}

fn status_of(blob: Option<&StoredBlob>, stored: u32) -> BlobStatus {
    BlobStatus {
        held: blob.map_or(0, |b| b.held),
        count: blob.map(|b| b.info.count),
        stored,
    }
}

fn answer(device: DeviceId, status: BlobStatus) -> Response {
    let mut response = Json(status).into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    response
}

pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    Path(blob): Path<(String, String)>,
    Signed { device, roster, .. }: Signed,
) -> Result<Response, ApiError> {
    let blob = parse_blob(&blob)?;
    if blob.0 == device {
        // Asked after an upload was cut: answered once what arrived of it is stored.
        let wait = state.limits.body_timeout.min(SETTLE_WAIT);
        state.guards.uploads.settled(device, blob.1 .0, wait).await;
    }
    let held = readable(&state, &roster, &device, &blob).await?;
    Ok(answer(device, status_of(held.as_ref(), 0)))
}

/// How many chunks a download answers at most: what the client asked for (at least one),
/// never more than [`MAX_PAGE_CHUNKS`].
fn page_chunks(query: &BlobQuery) -> u32 {
    query
        .limit
        .map_or(MAX_PAGE_CHUNKS, |limit| limit.clamp(1, MAX_PAGE_CHUNKS))
}

pub(crate) async fn download(
    State(state): State<Arc<AppState>>,
    Path(blob): Path<(String, String)>,
    query: Result<Query<BlobQuery>, QueryRejection>,
    Signed {
        device,
        roster,
        hold,
        ..
    }: Signed,
) -> Result<Response, ApiError> {
    let key = parse_blob(&blob)?;
    let (author, blob) = key;
    let Query(query) = query.map_err(|_| {
        ApiError::malformed("the download query must be `from=N` or `from=N&limit=M`")
    })?;
    let Some(held) = readable(&state, &roster, &device, &key).await? else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this server holds no chunk of this blob that this device may read; its author may not have uploaded it yet",
        ));
    };
    let budget = state.limits.max_request_bytes;
    // The rows and the framed answer are both held for a moment.
    let permit = state
        .guards
        .budget
        .reserve(budget.saturating_add(MAX_SEALED_CHUNK).saturating_mul(2))
        .await?;
    let chunks = state
        .storage
        .load_chunks(&author, &blob.0, query.from, page_chunks(&query), budget)
        .await?;
    let mut body = Vec::with_capacity(chunks.iter().map(|(_, c)| c.len() + 4).sum());
    for (i, (index, bytes)) in chunks.iter().enumerate() {
        if u64::from(*index) != u64::from(query.from) + i as u64 {
            return Err(ApiError::from(StorageError::Corrupt(
                "a blob's stored chunks have a gap".into(),
            )));
        }
        body.extend_from_slice(&encode_frame(bytes));
    }
    tracing::info!(device = %device.short(), blob = %blob, from = query.from, count = chunks.len(), held = held.held, "blob download");
    drop(chunks);
    let body = Bytes::from_owner(HeldPage {
        bytes: body,
        _hold: Hold {
            budget: Some(permit),
            in_flight: hold.in_flight,
        },
    });
    let mut response = (
        [
            (header::CONTENT_TYPE, BLOB_CONTENT_TYPE.to_owned()),
            (
                header::HeaderName::from_static(BLOB_HELD),
                held.held.to_string(),
            ),
        ],
        body,
    )
        .into_response();
    response.extensions_mut().insert(LoggedDevice(device));
    Ok(response)
}

pub(crate) async fn upload(
    State(state): State<Arc<AppState>>,
    Path(blob): Path<(String, String)>,
    upload: SignedStream,
) -> Result<Response, ApiError> {
    let blob = match parse_blob(&blob) {
        Ok((author, _)) if author != upload.device => Err(ApiError::new(
            ErrorCode::ChunkRefused,
            "a device uploads only its own blobs: the path names another author",
        )),
        other => other,
    };
    let blob = match blob {
        Ok((_, blob)) => blob,
        Err(e) => {
            let limit = state.limits.max_request_bytes;
            return Err(state.guards.budget.refuse(upload.body, limit, e).await);
        }
    };
    let device = upload.device;
    // Its own task: should the connection drop, hyper may drop this handler, but the chunks
    // that arrived whole are still stored.
    let task = tokio::spawn(receive(state.clone(), blob, upload));
    let status = task
        .await
        .map_err(|_| ApiError::from(StorageError::Backend("an upload task failed".into())))??;
    Ok(answer(device, status))
}

/// What an upload has done so far.
struct Receiving {
    state: Arc<AppState>,
    blob: BlobId,
    device: DeviceId,
    pending: Vec<NewChunk>,
    pending_bytes: usize,
    stored: u32,
}

impl Receiving {
    /// Stores the pending chunks; an error names the first one refused.
    async fn flush(&mut self) -> Result<(), ApiError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunks = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let indices: Vec<u32> = chunks.iter().map(|c| c.index).collect();
        let outcomes = self
            .state
            .storage
            .insert_chunks(chunks, Some(self.state.limits.device_quota_bytes))
            .await
            .inspect_err(|e| {
                if let StorageError::QuotaFull { used, quota } = e {
                    tracing::warn!(device = %self.device.short(), used, quota, "storage quota full");
                }
            })?;
        for (index, outcome) in indices.into_iter().zip(outcomes) {
            match outcome {
                ChunkOutcome::Stored => self.stored += 1,
                ChunkOutcome::Duplicate => {}
                ChunkOutcome::Conflict => {
                    return Err(refused(index, "another chunk with this index is held"))
                }
                ChunkOutcome::Mismatch => {
                    return Err(refused(
                        index,
                        "its header does not match the blob's first chunk",
                    ))
                }
                ChunkOutcome::Gap { held } => {
                    return Err(refused(
                        index,
                        format!(
                        "the server holds chunks 0 to {held} (exclusive): send from chunk {held}"
                    ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Checks one frame and queues it for storing.
    async fn take(&mut self, frame: Vec<u8>, roster: &Roster) -> Result<(), ApiError> {
        let chunk = check(&frame, &self.blob, &self.device, roster)?;
        // Whether it agrees with the blob's other chunks is the storage's judgement.
        let info = BlobInfo {
            author: chunk.author,
            case_id: chunk.case_id,
            team: chunk.team,
            count: chunk.count,
            size: chunk.size,
        };
        self.pending_bytes += frame.len();
        self.pending.push(NewChunk {
            blob: self.blob.0,
            index: chunk.index,
            info,
            bytes: frame,
        });
        if self.pending_bytes >= FLUSH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }
}

/// Reads the upload's body as it arrives and stores its chunks; whatever ends it (its end,
/// a refusal, a cut, a timeout), the whole chunks before are stored first.
async fn receive(
    state: Arc<AppState>,
    blob: BlobId,
    upload: SignedStream,
) -> Result<BlobStatus, ApiError> {
    let SignedStream {
        device,
        roster,
        mut body,
        in_flight: _in_flight,
    } = upload;
    let limit = state.limits.max_upload_bytes;
    if body.size_hint().lower() > limit {
        let e = ApiError::new(
            ErrorCode::TooLarge,
            format!("an upload is at most {limit} bytes; send fewer chunks per request"),
        );
        return Err(state
            .guards
            .budget
            .refuse(body, state.limits.max_request_bytes, e)
            .await);
    }
    // One upload of a blob at a time; a status waits on this until the chunks are stored.
    let Some(_slot) = state
        .guards
        .uploads
        .begin(device, blob.0, state.limits.body_timeout)
        .await
    else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "an earlier upload of this blob is still being stored; try again in a moment",
        ));
    };
    // The chunks waiting to be stored, a frame being assembled and a piece of the body.
    let _permit = state
        .guards
        .budget
        .reserve(FLUSH_BYTES + 4 * MAX_SEALED_CHUNK)
        .await?;
    let mut receiving = Receiving {
        state: state.clone(),
        blob,
        device,
        pending: Vec::new(),
        pending_bytes: 0,
        stored: 0,
    };
    let result = read_frames(&state, &mut body, &mut receiving, &roster, limit).await;
    // Whatever ended the body, what arrived whole is kept.
    let flushed = receiving.flush().await;
    result.and(flushed)?;
    let held = state.storage.blob(&device, &blob.0).await?;
    tracing::info!(device = %device.short(), blob = %blob, stored = receiving.stored, held = held.as_ref().map_or(0, |b| b.held), "blob upload");
    Ok(status_of(held.as_ref(), receiving.stored))
}

async fn read_frames(
    state: &AppState,
    body: &mut Body,
    receiving: &mut Receiving,
    roster: &Roster,
    limit: u64,
) -> Result<(), ApiError> {
    let mut reader = FrameReader::new();
    let mut total = 0u64;
    let idle = state.limits.body_timeout;
    let started = std::time::Instant::now();
    loop {
        // Besides the idle timeout, an upload must average MIN_UPLOAD_RATE after its first
        // `idle`: a trickle of a byte a minute would otherwise hold its budget for ever.
        let earned = idle + std::time::Duration::from_secs(total / MIN_UPLOAD_RATE);
        let left = earned.saturating_sub(started.elapsed()).min(idle);
        let next = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
        let frame = match tokio::time::timeout(left, next).await {
            Err(_) if left < idle => {
                return Err(ApiError::new(
                    ErrorCode::TooSlow,
                    format!(
                        "the upload is slower than {MIN_UPLOAD_RATE} bytes a second; the chunks that arrived are kept: resume from the status"
                    ),
                ))
            }
            Err(_) => {
                return Err(ApiError::new(
                    ErrorCode::TooSlow,
                    format!(
                        "the upload stalled for {} s; the chunks that arrived are kept: resume from the status",
                        idle.as_secs()
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(ApiError::malformed(
                    "the upload was cut; the chunks that arrived whole are kept",
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        // What fits the limit is still read, so every whole chunk before it is kept.
        let room = usize::try_from(limit - total).unwrap_or(usize::MAX);
        let allowed = &data[..data.len().min(room)];
        total += allowed.len() as u64;
        reader.push(allowed);
        while let Some(frame) = reader.next_frame()? {
            receiving.take(frame, roster).await?;
        }
        if allowed.len() < data.len() {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!("an upload is at most {limit} bytes; the chunks before the limit are kept: send the rest in another request"),
            ));
        }
    }
    reader.finish()?;
    Ok(())
}

/// Parses and verifies one chunk and checks it against the roster and the requester.
fn check(
    frame: &[u8],
    blob: &BlobId,
    requester: &DeviceId,
    roster: &Roster,
) -> Result<SealedChunk, ApiError> {
    let chunk = SealedChunk::from_bytes(frame).map_err(|e| {
        ApiError::new(
            ErrorCode::ChunkRefused,
            format!("{e}; it was damaged in transit or made by an incompatible version"),
        )
    })?;
    let index = chunk.index;
    if chunk.blob != *blob {
        return Err(refused(
            index,
            format!("it belongs to blob {}, not to this one", chunk.blob),
        ));
    }
    chunk.verify().map_err(|e| refused(index, e))?;
    if chunk.author != *requester {
        return Err(refused(
            index,
            format!(
                "it is sealed by device {}, not by the device sending it; each device uploads only its own chunks",
                chunk.author.short()
            ),
        ));
    }
    if chunk.epoch == 0 {
        return Err(refused(
            index,
            "it is sealed under this device's draft key (epoch 0), which nobody else can open; seal it again with the team's key after joining",
        ));
    }
    let office = roster.speaks_for_office(requester);
    if !(office && chunk.team == OFFICE_TEAM) {
        validate_team(&chunk.team)
            .map_err(|e| refused(index, format!("it names no valid team ({e})")))?;
    }
    if !office {
        let own = roster.member(requester).map(|m| m.team.as_str());
        if own != Some(chunk.team.as_str()) {
            return Err(refused(
                index,
                format!(
                    "it is sealed for team {}, but this device belongs to team {}",
                    chunk.team,
                    own.unwrap_or("(none)")
                ),
            ));
        }
    }
    Ok(chunk)
}
