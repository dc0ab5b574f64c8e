use thiserror::Error;

/// Everything that can be wrong with a protocol message. Each message is one sentence that
/// says what happened and what to do.
#[non_exhaustive]
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The bytes or text do not have the expected shape.
    #[error("malformed {0}")]
    Malformed(String),
    /// An admission was presented after its expiry time.
    #[error("the admission expired at {expired_at} (unix time); ask the office to admit this device again")]
    Expired {
        /// When the admission stopped being valid, in Unix seconds.
        expired_at: u64,
    },
    /// An admission is for another device's keys.
    #[error("this admission is for another device (code {code}); ask the office to admit this device's own line")]
    NotForThisDevice {
        /// The short code of the device it admits.
        code: String,
    },
    /// A statement, admission or receipt does not carry a valid signature by the office this side trusts.
    #[error("the {0} is not signed by this office's key; it was forged, damaged or issued by another office")]
    NotSignedByOffice(&'static str),
    /// A device's signature (on a request) does not verify.
    #[error("the signature of {0} does not verify; it was forged or damaged")]
    BadSignature(String),
    /// The `authorization` header is missing or does not parse.
    #[error("bad request authentication: {0}")]
    BadAuth(String),
    /// A request's time is too far from the server's clock.
    #[error("the request's time is {skew_secs} s away from the server's clock (at most {max_secs} s allowed); set this device's clock and retry")]
    ClockSkew {
        /// How far apart the clocks are.
        skew_secs: u64,
        /// The allowed difference.
        max_secs: u64,
    },
}

pub(crate) fn malformed(what: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed(what.into())
}
