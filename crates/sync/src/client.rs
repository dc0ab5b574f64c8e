//! The HTTP client: one method per endpoint, every request signed, the certificate pinned.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cairn_crypto::{BlobId, DeviceId, DeviceKeys};
use cairn_protocol::checkpoint::{checkpoints_path, CheckpointPage};
use cairn_protocol::{
    blob_page_path, blob_path, blob_status_path, case_changes_path, paths, pull_path, sign_request,
    unix_now, BlobStatus, ErrorBody, ErrorCode, FrameReader, JoinResponse, PullPage, PushResponse,
    Receipt, Statement, BLOB_CONTENT_TYPE, BLOB_HELD, NEXT_REQUEST_MS, PUSH_CONTENT_TYPE,
    RECEIPT_VERSION, ROSTER_VERSION,
};
use reqwest::{Method, Response};

use crate::{tls, SyncError};

/// The longest a request waits, in total, on a server's `429` before giving up.
const MAX_RATE_WAIT: Duration = Duration::from_secs(60);
/// What a device is told when the server's quota for it is full.
/// The largest answer read from a server. Pages are a few MiB (the server's byte budget);
/// a compromised server must not be able to make a device read gigabytes into memory.
pub const MAX_RESPONSE_BYTES: usize = 32 << 20;

const QUOTA_FULL: &str = "the server's storage quota for this device is full; ask the office";

/// How long a `429` answer asks to wait: its `retry-after` seconds (1 if absent or not a
/// number), at most [`MAX_RATE_WAIT`].
fn retry_after(response: &Response) -> Duration {
    let secs = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    Duration::from_secs(secs).min(MAX_RATE_WAIT)
}

/// What a pull answer says of the roster and receipts: advisory, so a sync with nothing to do
/// fetches neither (each is checked from its signatures when fetched).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    /// The roster's head counter.
    pub roster: Option<u64>,
    /// The newest receipt's counter.
    pub receipt: Option<u64>,
}

/// A page being fetched on a task of its own (see [`Client::pull_ahead`]); the fetch stops
/// when this is dropped.
pub struct PullAhead(tokio::task::JoinHandle<Result<(PullPage, Versions), SyncError>>);

impl PullAhead {
    /// The page, once it arrived.
    pub async fn answer(mut self) -> Result<(PullPage, Versions), SyncError> {
        (&mut self.0)
            .await
            .map_err(|e| SyncError::Runtime(e.to_string()))?
    }
}

impl Drop for PullAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a request's signature covers.
#[derive(Clone, Copy)]
enum Signing {
    /// The body (every request but an upload).
    Body,
    /// An empty body: a blob upload, whose chunks are each signed.
    Empty,
}

/// The longest one answer's [`NEXT_REQUEST_MS`] makes the client wait: a server that wants
/// more says `429` with `retry-after`, which counts against [`MAX_RATE_WAIT`].
const MAX_PACE: Duration = Duration::from_secs(10);

/// How long before the next request fits the device's rate, as the last answer's
/// [`NEXT_REQUEST_MS`] said (at most [`MAX_PACE`]).
fn next_request_wait(response: &Response) -> Duration {
    response
        .headers()
        .get(NEXT_REQUEST_MS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_millis)
        .min(MAX_PACE)
}

/// How long a request waits on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection, TLS handshake included. A server that accepts the connection and
    /// never answers fails the sync after this, without retries.
    pub connect: Duration,
    /// Between two reads of an answer. A link that stalls is abandoned after this and the
    /// request retried, rather than waited on.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
        }
    }
}

/// A client for one server. Cheap to clone: clones share connections and pacing.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// Not before this instant is the next request sent: waiting out the rate here costs
    /// nothing, while a refused upload has sent its body for nothing.
    not_before: Arc<Mutex<Option<Instant>>>,
    timeouts: Timeouts,
}

/// Who signs a request.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// Unsigned.
    None,
    /// Signed with these keys as it is sent (again at each resend).
    Keys(&'a DeviceKeys),
    /// Signed beforehand: this `authorization` header.
    Signed(&'a str),
}

impl<'a> From<Option<&'a DeviceKeys>> for Auth<'a> {
    fn from(keys: Option<&'a DeviceKeys>) -> Self {
        keys.map_or(Auth::None, Auth::Keys)
    }
}

impl Client {
    /// A client for `server` (`https://host:port`) that trusts only the certificate whose
    /// SHA-256 is `fingerprint`, with the default [`Timeouts`].
    pub fn new(server: &str, fingerprint: &str) -> Result<Client, SyncError> {
        Client::with_timeouts(server, fingerprint, Timeouts::default())
    }

    /// [`Client::new`] with these timeouts.
    pub fn with_timeouts(
        server: &str,
        fingerprint: &str,
        timeouts: Timeouts,
    ) -> Result<Client, SyncError> {
        let config = tls::pinned_config(fingerprint)
            .map_err(|e| SyncError::Protocol(format!("bad fingerprint: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .timeout(Duration::from_secs(120))
            .no_proxy()
            .build()
            .map_err(|e| SyncError::Protocol(e.to_string()))?;
        Ok(Client {
            http,
            base: server.trim_end_matches('/').to_owned(),
            not_before: Arc::new(Mutex::new(None)),
            timeouts,
        })
    }

    /// Registers this device with the server, presenting the office's statement admitting
    /// it (the request is signed by the admitted key).
    pub async fn join(
        &self,
        keys: &DeviceKeys,
        admission: &Statement,
    ) -> Result<JoinResponse, SyncError> {
        let body = serde_json::to_vec(admission).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let response = self
            .send(
                Some(keys),
                Method::POST,
                paths::JOIN,
                body,
                "application/json",
            )
            .await?;
        self.json(response).await
    }

    /// The roster's chain of office-signed statements.
    pub async fn roster(&self, keys: &DeviceKeys) -> Result<Vec<Statement>, SyncError> {
        let response = self
            .send(Some(keys), Method::GET, paths::ROSTER, Vec::new(), "")
            .await?;
        self.json(response).await
    }

    /// The office hands the server statements to append to the roster.
    pub async fn post_roster(
        &self,
        keys: &DeviceKeys,
        statements: &[Statement],
    ) -> Result<(), SyncError> {
        let body =
            serde_json::to_vec(statements).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let response = self
            .send(
                Some(keys),
                Method::POST,
                paths::ROSTER,
                body,
                "application/json",
            )
            .await?;
        self.body(response).await.map(|_| ())
    }

    /// The newest office receipt of this device's team the server holds, if any.
    pub async fn receipt(&self, keys: &DeviceKeys) -> Result<Option<Receipt>, SyncError> {
        match self
            .send(Some(keys), Method::GET, paths::RECEIPT, Vec::new(), "")
            .await
        {
            Ok(response) => self.json(response).await.map(Some),
            Err(SyncError::Refused {
                code: Some(ErrorCode::NotFound),
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The office hands the server a new receipt for each team, all with one counter.
    pub async fn post_receipts(
        &self,
        keys: &DeviceKeys,
        receipts: &[Receipt],
    ) -> Result<(), SyncError> {
        let body = serde_json::to_vec(receipts).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let response = self
            .send(
                Some(keys),
                Method::POST,
                paths::RECEIPT,
                body,
                "application/json",
            )
            .await?;
        self.body(response).await.map(|_| ())
    }

    /// Pushes sealed changes (already framed by the caller's batch).
    pub async fn push(
        &self,
        keys: &DeviceKeys,
        changes: &[Vec<u8>],
    ) -> Result<PushResponse, SyncError> {
        let body = cairn_protocol::encode_push(changes);
        let response = self
            .send(
                Some(keys),
                Method::POST,
                paths::PUSH,
                body,
                PUSH_CONTENT_TYPE,
            )
            .await?;
        self.json(response).await
    }

    /// The office hands the server sealed checkpoint parts (framed as a push body); the
    /// server takes all of them or none.
    pub async fn post_checkpoints(
        &self,
        keys: &DeviceKeys,
        parts: &[Vec<u8>],
    ) -> Result<(), SyncError> {
        let body = cairn_protocol::encode_push(parts);
        let response = self
            .send(
                Some(keys),
                Method::POST,
                paths::CHECKPOINTS,
                body,
                PUSH_CONTENT_TYPE,
            )
            .await?;
        self.body(response).await.map(|_| ())
    }

    /// One page of `team`'s checkpoint parts after the part `after` names (generation,
    /// index), or from the team's newest whole full generation when `None`.
    pub async fn checkpoints(
        &self,
        keys: &DeviceKeys,
        team: &str,
        after: Option<(u64, u32)>,
    ) -> Result<CheckpointPage, SyncError> {
        let path = checkpoints_path(team, after);
        let response = self
            .send(Some(keys), Method::GET, &path, Vec::new(), "")
            .await?;
        let bytes = self.body(response).await?;
        CheckpointPage::decode(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// One page of the stored changes of `case` after `after` that this device may read:
    /// what a deep check verifies of a case loaded from a checkpoint.
    pub async fn case_changes(
        &self,
        keys: &DeviceKeys,
        case: &uuid::Uuid,
        after: u64,
    ) -> Result<PullPage, SyncError> {
        let path = case_changes_path(case.as_bytes(), after);
        let response = self
            .send(Some(keys), Method::GET, &path, Vec::new(), "")
            .await?;
        let bytes = self.body(response).await?;
        PullPage::decode(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// One page after `after`; also what the server reports of the roster and receipts.
    pub async fn pull(
        &self,
        keys: &DeviceKeys,
        after: u64,
        limit: u32,
    ) -> Result<(PullPage, Versions), SyncError> {
        self.pull_as(Auth::Keys(keys), &pull_path(after, Some(limit)))
            .await
    }

    /// Starts fetching the page after `after` on a task of its own (the request signed now),
    /// so that it travels while the caller does other work; dropping the answer stops it.
    pub fn pull_ahead(&self, keys: &DeviceKeys, after: u64, limit: u32) -> PullAhead {
        let client = self.clone();
        let path = pull_path(after, Some(limit));
        let auth = sign_request(keys, Method::GET.as_str(), &path, b"", unix_now());
        PullAhead(tokio::spawn(async move {
            client.pull_as(Auth::Signed(&auth), &path).await
        }))
    }

    async fn pull_as(&self, auth: Auth<'_>, path: &str) -> Result<(PullPage, Versions), SyncError> {
        let response = self
            .send_signed(auth, Method::GET, path, Vec::new(), "", Signing::Body)
            .await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let versions = Versions {
            roster: header(ROSTER_VERSION),
            receipt: header(RECEIPT_VERSION),
        };
        let bytes = self.body(response).await?;
        let page = PullPage::decode(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))?;
        Ok((page, versions))
    }

    /// The status of `blob` on the server: how many chunks it holds from index 0.
    pub async fn blob_status(
        &self,
        keys: &DeviceKeys,
        blob: &BlobId,
    ) -> Result<BlobStatus, SyncError> {
        let path = blob_status_path(&keys.id().to_string(), &blob.to_string());
        let response = self
            .send(Some(keys), Method::GET, &path, Vec::new(), "")
            .await?;
        self.json(response).await
    }

    /// Uploads framed chunks of `blob` (the signature covers an empty body: the server reads
    /// an upload as it arrives, before it could check a signature over it).
    pub async fn blob_upload(
        &self,
        keys: &DeviceKeys,
        blob: &BlobId,
        frames: Vec<u8>,
    ) -> Result<BlobStatus, SyncError> {
        let path = blob_path(&keys.id().to_string(), &blob.to_string());
        let response = self
            .send_signed(
                Auth::Keys(keys),
                Method::POST,
                &path,
                frames,
                BLOB_CONTENT_TYPE,
                Signing::Empty,
            )
            .await?;
        self.json(response).await
    }

    /// Starts a download of at most `limit` chunks of `author`'s `blob` from chunk `from`:
    /// the answer, whose body the caller reads frame by frame (see [`Client::next_piece`]),
    /// and the chunks the server holds.
    pub async fn blob_download(
        &self,
        keys: &DeviceKeys,
        author: &DeviceId,
        blob: &BlobId,
        from: u32,
        limit: u32,
    ) -> Result<(Response, u32), SyncError> {
        let path = blob_page_path(&author.to_string(), &blob.to_string(), from, limit);
        let response = self
            .send(Some(keys), Method::GET, &path, Vec::new(), "")
            .await?;
        let held = response
            .headers()
            .get(BLOB_HELD)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| {
                SyncError::Protocol(format!("a blob download without a valid {BLOB_HELD}"))
            })?;
        Ok((response, held))
    }

    /// Hands `reader` the next piece of an answer's body as it arrives; `false` once it ended.
    pub async fn next_piece(
        &self,
        response: &mut Response,
        reader: &mut FrameReader,
    ) -> Result<bool, SyncError> {
        match response.chunk().await.map_err(|e| self.transport(&e))? {
            Some(piece) => {
                reader.push(&piece);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn send(
        &self,
        keys: Option<&DeviceKeys>,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Response, SyncError> {
        self.send_signed(keys.into(), method, path, body, content_type, Signing::Body)
            .await
    }

    async fn send_signed(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        signing: Signing,
    ) -> Result<Response, SyncError> {
        let mut waited = Duration::ZERO;
        loop {
            self.pace().await;
            let response = self
                .send_once(
                    auth,
                    method.clone(),
                    path,
                    body.clone(),
                    content_type,
                    signing,
                )
                .await?;
            let status = response.status();
            if status.is_success() {
                let wait = next_request_wait(&response);
                *self
                    .not_before
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    (!wait.is_zero()).then(|| Instant::now() + wait);
                return Ok(response);
            }
            // Too many requests: wait as long as the server says, then send again (signed
            // anew: the signature carries the time), up to a bounded total wait.
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let pause = retry_after(&response);
                if waited + pause <= MAX_RATE_WAIT {
                    tracing::info!(?pause, "the server asks to slow down; waiting");
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    continue;
                }
            }
            return Err(self.refusal(response).await);
        }
    }

    /// Waits until the last answer said the next request fits this device's rate.
    async fn pace(&self) {
        let until = *self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(until) = until {
            tracing::debug!(wait = ?until.saturating_duration_since(Instant::now()), "pacing to the server's rate");
            tokio::time::sleep_until(until.into()).await;
        }
    }

    async fn send_once(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        signing: Signing,
    ) -> Result<Response, SyncError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        let signed: &[u8] = match signing {
            Signing::Body => &body,
            Signing::Empty => b"",
        };
        let header = match auth {
            Auth::None => None,
            Auth::Keys(keys) => Some(sign_request(
                keys,
                method.as_str(),
                path,
                signed,
                unix_now(),
            )),
            Auth::Signed(header) => Some(header.to_owned()),
        };
        if let Some(header) = header {
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        if !content_type.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        request
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(&e))
    }

    /// The error an unsuccessful answer stands for.
    async fn refusal(&self, response: Response) -> SyncError {
        let status = response.status();
        let bytes = self.body(response).await.unwrap_or_default();
        let error = serde_json::from_slice::<ErrorBody>(&bytes).ok();
        match status.as_u16() {
            // The server's disk is full, or the quota is the office's to raise: nothing this
            // device can do, so stop.
            507 => {
                let code = error.map_or(Some(ErrorCode::QuotaFull), |e| ErrorCode::parse(&e.code));
                if code == Some(ErrorCode::DiskFull) {
                    return SyncError::ServerDiskFull;
                }
                return SyncError::Refused {
                    code,
                    message: QUOTA_FULL.into(),
                };
            }
            // The upload was too slow for the server: a transient failure of the link, so
            // the sync retries (with smaller batches).
            408 => {
                return SyncError::Unreachable {
                    server: self.base.clone(),
                    detail: "the upload was too slow for the server".into(),
                }
            }
            _ => {}
        }
        match error {
            // One change is over the server's per-change limit: handled like a body over
            // the request limit (batches shrink down to that change, which stays pending).
            Some(error) => SyncError::Refused {
                code: match ErrorCode::parse(&error.code) {
                    Some(ErrorCode::ChangeTooLarge) => Some(ErrorCode::TooLarge),
                    code => code,
                },
                message: error.message,
            },
            None if status.is_server_error() => SyncError::Unreachable {
                server: self.base.clone(),
                detail: format!("the server answered {status}"),
            },
            None if status == reqwest::StatusCode::TOO_MANY_REQUESTS => SyncError::Unreachable {
                server: self.base.clone(),
                detail: "the server is rate-limiting this device".into(),
            },
            None => SyncError::Protocol(format!("HTTP {status}")),
        }
    }

    /// The answer's body, read chunk by chunk and refused past [`MAX_RESPONSE_BYTES`].
    async fn body(&self, mut response: Response) -> Result<Vec<u8>, SyncError> {
        let too_large = || {
            SyncError::Protocol(format!(
                "the server sent an answer over {} MiB; it may be compromised",
                MAX_RESPONSE_BYTES >> 20
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: Response,
    ) -> Result<T, SyncError> {
        let bytes = self.body(response).await?;
        serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Names a transport failure plainly: a pin mismatch is not a network problem.
    fn transport(&self, error: &reqwest::Error) -> SyncError {
        let mut chain = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(e) = source {
            chain.push(e.to_string());
            source = e.source();
        }
        if chain.iter().any(|m| m.contains(tls::MISMATCH)) {
            return SyncError::FingerprintMismatch {
                server: self.base.clone(),
            };
        }
        // Taken and never answered: retrying would only wait as long again.
        if error.is_timeout() && error.is_connect() {
            return SyncError::NoAnswer {
                server: self.base.clone(),
                secs: self.timeouts.connect.as_secs_f64(),
            };
        }
        let detail = if error.is_timeout() {
            format!(
                "the server did not answer within {} s",
                self.timeouts.read.as_secs_f64()
            )
        } else if error.is_connect() {
            format!("no connection ({})", plain_cause(error))
        } else {
            format!("the connection failed ({})", plain_cause(error))
        };
        SyncError::Unreachable {
            server: self.base.clone(),
            detail,
        }
    }
}

/// The innermost cause of a transport failure in plain words: an I/O error by its kind, else
/// what the library said, less the web address some libraries add (rustls points to its
/// manual for a connection closed without close_notify).
fn plain_cause(error: &reqwest::Error) -> String {
    use std::io::ErrorKind;
    let mut said = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let plain = match io.kind() {
                ErrorKind::UnexpectedEof => "the connection closed before the answer was complete",
                ErrorKind::ConnectionRefused => "connection refused",
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                    "the connection was cut"
                }
                ErrorKind::BrokenPipe | ErrorKind::NotConnected => "the connection was cut",
                ErrorKind::TimedOut => "timed out",
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                    "the network is unreachable"
                }
                _ => "",
            };
            if !plain.is_empty() {
                return plain.to_owned();
            }
        }
        said = e.to_string();
        source = e.source();
    }
    without_urls(&said)
}

/// `text` with every web address (and the separator before it) taken out.
fn without_urls(text: &str) -> String {
    let kept: Vec<&str> = text
        .split_whitespace()
        .filter(|word| !word.contains("://"))
        .collect();
    kept.join(" ")
        .trim_end_matches([':', ';', ',', ' '])
        .to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use super::*;
    use cairn_crypto::{SealedChange, SealedKind};

    use crate::testing::server;

    /// A compromised server: the genuine pinned certificate, but every answer is a flood of
    /// zeros (64 MiB at most), announced with a huge content-length or sent chunked.
    async fn flooding_server(dir: &std::path::Path, chunked: bool) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let cert = cairn_server::tls::generate("127.0.0.1".parse().unwrap()).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.cert_pem).unwrap();
        std::fs::write(&key_path, cert.key_pem).unwrap();
        let (config, fingerprint) = cairn_server::tls::load(&cert_path, &key_path).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head: Vec<u8> = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(n) if n > 0 && head.len() < 65536 => head.extend(&buf[..n]),
                            _ => return,
                        }
                    }
                    let answer: &[u8] = if chunked {
                        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 68719476736\r\n\r\n"
                    };
                    if tls.write_all(answer).await.is_err() {
                        return;
                    }
                    let zeros = vec![0u8; 1 << 20];
                    for _ in 0..64 {
                        let sent = if chunked {
                            let mut framed = format!("{:x}\r\n", zeros.len()).into_bytes();
                            framed.extend(&zeros);
                            framed.extend(b"\r\n");
                            tls.write_all(&framed).await
                        } else {
                            tls.write_all(&zeros).await
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, fingerprint)
    }

    #[tokio::test]
    async fn a_flooding_server_cannot_fill_a_devices_memory() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DeviceKeys::generate();
        for chunked in [false, true] {
            let (url, fingerprint) = flooding_server(dir.path(), chunked).await;
            let client = Client::new(&url, &fingerprint).unwrap();
            match client.roster(&keys).await {
                Err(SyncError::Protocol(message)) => {
                    assert!(message.contains("over 32 MiB"), "{message}")
                }
                other => panic!("chunked {chunked}: {other:?}"),
            }
        }
    }

    /// A server (the genuine pinned certificate) that starts an answer and drops the
    /// connection without TLS's close_notify, as a server whose disk filled up did: the
    /// person reads what happened, not the TLS library's wording and the address of its
    /// manual.
    #[tokio::test]
    async fn a_connection_cut_mid_answer_is_said_plainly_without_a_librarys_url() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let cert = cairn_server::tls::generate("127.0.0.1".parse().unwrap()).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert_pem).unwrap();
        std::fs::write(&key_path, cert.key_pem).unwrap();
        let (config, fingerprint) = cairn_server::tls::load(&cert_path, &key_path).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n[{")
                    .await;
                let _ = tls.flush().await;
                // The TCP connection goes, without a close_notify.
                drop(tls.into_inner().0);
            }
        });
        let client = Client::new(&url, &fingerprint).unwrap();
        let error = client.roster(&DeviceKeys::generate()).await.unwrap_err();
        let said = error.to_string();
        assert!(matches!(error, SyncError::Unreachable { .. }), "{said}");
        assert!(
            said.contains("closed before the answer was complete"),
            "{said}"
        );
        for jargon in ["close_notify", "docs.rs", "rustls"] {
            assert!(!said.contains(jargon), "{said}");
        }
    }

    #[test]
    fn web_addresses_are_taken_out_of_what_a_library_said() {
        assert_eq!(
            without_urls("peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/x#unexpected-eof"),
            "peer closed connection without sending TLS close_notify"
        );
        assert_eq!(without_urls("plain words"), "plain words");
    }

    /// Part `part` of `parts` of a full generation, about 1,200 bytes (its log does not
    /// deflate).
    fn checkpoint_part(
        office: &DeviceKeys,
        key: &cairn_crypto::TeamKey,
        generation: u64,
        (part, parts): (u32, u32),
    ) -> Vec<u8> {
        use cairn_protocol::checkpoint::{Entry, PartBody, Place};
        let noise: Vec<u8> = (0..900).map(|_| rand::random::<u8>()).collect();
        let body = PartBody {
            entries: vec![Entry::Log {
                changes: vec![noise],
            }],
            ..PartBody::default()
        };
        let place = Place {
            part,
            parts,
            full: true,
        };
        SealedChange::seal(
            office,
            key,
            SealedKind::Checkpoint,
            place.to_id(),
            generation,
            &body.encode(),
        )
        .unwrap()
        .to_bytes()
    }

    #[tokio::test]
    async fn checkpoints_are_posted_by_the_office_and_read_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let office = DeviceKeys::generate();
        let running = server(dir.path(), &office, &[("max_request_bytes", "2048")]).await;
        let base = format!("https://{}", running.addr());
        let client = Client::new(&base, running.fingerprint()).unwrap();
        let keys = DeviceKeys::generate();
        let key = cairn_crypto::TeamKey::generate("T1", 1);
        let admission =
            crate::testing::admission(&office, &keys, &key, &base, running.fingerprint());
        client.join(&keys, &admission).await.unwrap();
        assert_eq!(
            client.checkpoints(&keys, "T1", None).await.unwrap(),
            CheckpointPage::default()
        );
        let parts: Vec<Vec<u8>> = (0..2)
            .map(|i| checkpoint_part(&office, &key, 3, (i, 2)))
            .collect();
        // Two parts fit neither one post nor one page at this limit.
        for part in &parts {
            client
                .post_checkpoints(&office, std::slice::from_ref(part))
                .await
                .unwrap();
        }
        let first = client.checkpoints(&keys, "T1", None).await.unwrap();
        assert_eq!((first.parts.as_slice(), first.more), (&parts[..1], true));
        let next = client.checkpoints(&keys, "T1", Some((3, 0))).await.unwrap();
        assert_eq!((next.parts.as_slice(), next.more), (&parts[1..], false));
        // Typed refusals: another team's, a device's post, an older generation.
        let refused = |e: SyncError| match e {
            SyncError::Refused { code, .. } => code,
            other => panic!("{other:?}"),
        };
        let other_team = client.checkpoints(&keys, "T2", None).await.unwrap_err();
        assert_eq!(refused(other_team), Some(ErrorCode::OfficeOnly));
        let by_device = client
            .post_checkpoints(&keys, &parts[..1])
            .await
            .unwrap_err();
        assert_eq!(refused(by_device), Some(ErrorCode::OfficeOnly));
        let stale = checkpoint_part(&office, &key, 2, (0, 1));
        let stale = client
            .post_checkpoints(&office, &[stale])
            .await
            .unwrap_err();
        assert_eq!(refused(stale), Some(ErrorCode::RosterConflict));
        running.shutdown(Duration::from_secs(1));
        running.stopped().await.unwrap();
    }

    #[tokio::test]
    async fn waits_out_429_and_stops_on_a_full_quota() {
        let dir = tempfile::tempdir().unwrap();
        let office = DeviceKeys::generate();
        let running = server(
            dir.path(),
            &office,
            &[
                ("device_requests_per_sec", "2"),
                ("device_request_burst", "2"),
                ("device_quota_bytes", "3000"),
            ],
        )
        .await;
        let base = format!("https://{}", running.addr());
        let client = Client::new(&base, running.fingerprint()).unwrap();
        let keys = DeviceKeys::generate();
        let key = cairn_crypto::TeamKey::generate("T1", 1);
        let admission =
            crate::testing::admission(&office, &keys, &key, &base, running.fingerprint());
        client.join(&keys, &admission).await.unwrap();
        // Twice the burst: the server answers 429 with retry-after, the client waits it out.
        for _ in 0..4 {
            client.roster(&keys).await.unwrap();
        }
        // Changes of about 1 kB against a quota of 3000 bytes: the third cannot be stored.
        let mut refused = None;
        for seq in 1..=5 {
            let change = SealedChange::seal(
                &keys,
                &key,
                SealedKind::CaseChange,
                [1; 16],
                seq,
                &[b'z'; 700],
            )
            .unwrap()
            .to_bytes();
            if let Err(e) = client.push(&keys, &[change]).await {
                refused = Some((seq, e));
                break;
            }
        }
        match refused {
            Some((seq, SyncError::Refused { code, message })) => {
                assert!(seq >= 2, "{seq}");
                assert_eq!(code, Some(ErrorCode::QuotaFull));
                assert_eq!(message, QUOTA_FULL);
            }
            other => panic!("{other:?}"),
        }
        running.shutdown(Duration::from_secs(1));
        running.stopped().await.unwrap();
    }
}
