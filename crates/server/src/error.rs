//! Errors: the JSON error answers of the HTTP API, and the failures of the command line.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_protocol::{ErrorBody, ErrorCode, ProtocolError};

use crate::storage::StorageError;

/// An error answer: a code, one sentence for a person, and the matching HTTP status.
#[derive(Debug)]
pub struct ApiError {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// Seconds to wait before trying again, sent as `retry-after`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The body did not parse.
    pub fn malformed(what: impl std::fmt::Display) -> Self {
        ApiError::new(
            ErrorCode::Malformed,
            format!("{what}; this client may be out of date"),
        )
    }
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        let code = match &e {
            ProtocolError::Malformed(_) => ErrorCode::Malformed,
            ProtocolError::Expired { .. } => ErrorCode::AdmissionExpired,
            ProtocolError::NotSignedByOffice(_) | ProtocolError::NotForThisDevice { .. } => {
                ErrorCode::AdmissionInvalid
            }
            ProtocolError::BadSignature(_) => ErrorCode::BadSignature,
            ProtocolError::BadAuth(_) => ErrorCode::BadAuth,
            ProtocolError::ClockSkew { .. } => ErrorCode::ClockSkew,
            _ => ErrorCode::Malformed,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::QuotaFull { used, quota } => ApiError::new(
                ErrorCode::QuotaFull,
                format!(
                    "the server's storage quota for this device is full ({used} of {quota} bytes); ask the office"
                ),
            ),
            StorageError::DiskFull => {
                tracing::error!("the database's disk is full: nothing more can be stored until space is freed");
                ApiError::new(
                    ErrorCode::DiskFull,
                    "the server's disk is full: nothing was stored; it stores nothing more until its administrator frees space",
                )
            }
            other => {
                tracing::error!(error = %other, "storage failed");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the server cannot reach its database right now; try again later",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.code.as_str().to_owned(),
            message: self.message,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response.extensions_mut().insert(self.code);
        response
    }
}

/// A failure of `cairn-server init` or `run`, said in one sentence.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is missing, unreadable or invalid.
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("{0}; check the `database` setting and that the database is running")]
    Storage(#[from] StorageError),
    /// The certificate could not be made or loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listening address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; choose another --listen address or stop what uses it"
    )]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl ServerError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ServerError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}
