//! The HTTP client: one method per endpoint, every request signed, the certificate pinned.

use std::time::Duration;

use cairn_crypto::DeviceKeys;
use cairn_protocol::{
    paths, pull_path, sign_request, unix_now, EnrollResponse, Enrollment, ErrorBody, PullPage,
    PushResponse, Revocation, Statement, PUSH_CONTENT_TYPE, ROSTER_VERSION,
};
use reqwest::{Method, Response};

use crate::{tls, SyncError};

/// A client for one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for `server` (`https://host:port`) that trusts only the certificate whose
    /// SHA-256 is `fingerprint`.
    pub fn new(server: &str, fingerprint: &str) -> Result<Client, SyncError> {
        let config = tls::pinned_config(fingerprint)
            .map_err(|e| SyncError::Protocol(format!("bad fingerprint: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .connect_timeout(Duration::from_secs(10))
            // A link that stalls is abandoned and the request retried, rather than waited on.
            .read_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(120))
            .no_proxy()
            .build()
            .map_err(|e| SyncError::Protocol(e.to_string()))?;
        Ok(Client {
            http,
            base: server.trim_end_matches('/').to_owned(),
        })
    }

    /// Presents an enrollment (not authenticated by header: it carries its own signatures).
    pub async fn enroll(&self, enrollment: &Enrollment) -> Result<EnrollResponse, SyncError> {
        let body =
            serde_json::to_vec(enrollment).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let response = self
            .send(None, Method::POST, paths::ENROLL, body, "application/json")
            .await?;
        self.json(response).await
    }

    /// The roster's signed statements.
    pub async fn roster(&self, keys: &DeviceKeys) -> Result<Vec<Statement>, SyncError> {
        let response = self
            .send(Some(keys), Method::GET, paths::ROSTER, Vec::new(), "")
            .await?;
        self.json(response).await
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

    /// One page after `after`; also the roster version the server reports, if any.
    pub async fn pull(
        &self,
        keys: &DeviceKeys,
        after: u64,
        limit: u32,
    ) -> Result<(PullPage, Option<String>), SyncError> {
        let path = pull_path(after, Some(limit));
        let response = self
            .send(Some(keys), Method::GET, &path, Vec::new(), "")
            .await?;
        let version = response
            .headers()
            .get(ROSTER_VERSION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = self.body(response).await?;
        let page = PullPage::decode(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))?;
        Ok((page, version))
    }

    /// Posts an office-signed revocation.
    pub async fn revoke(
        &self,
        keys: &DeviceKeys,
        revocation: &Revocation,
    ) -> Result<(), SyncError> {
        let body =
            serde_json::to_vec(revocation).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let response = self
            .send(
                Some(keys),
                Method::POST,
                paths::REVOKE,
                body,
                "application/json",
            )
            .await?;
        self.body(response).await.map(|_| ())
    }

    async fn send(
        &self,
        keys: Option<&DeviceKeys>,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Response, SyncError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        if let Some(keys) = keys {
            let auth = sign_request(keys, method.as_str(), path, &body, unix_now());
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        if !content_type.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = self.body(response).await.unwrap_or_default();
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(error) => Err(SyncError::Refused {
                code: error.code,
                message: error.message,
            }),
            Err(_) if status.is_server_error() => Err(SyncError::Unreachable {
                server: self.base.clone(),
                detail: format!("the server answered {status}"),
            }),
            Err(_) => Err(SyncError::Protocol(format!("HTTP {status}"))),
        }
    }

    async fn body(&self, response: Response) -> Result<Vec<u8>, SyncError> {
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        Ok(bytes.to_vec())
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
        let detail = if error.is_timeout() {
            "the request timed out".to_string()
        } else if error.is_connect() {
            format!(
                "no connection ({})",
                chain.last().cloned().unwrap_or_default()
            )
        } else {
            format!(
                "the connection failed ({})",
                chain.last().cloned().unwrap_or_default()
            )
        };
        SyncError::Unreachable {
            server: self.base.clone(),
            detail,
        }
    }
}
