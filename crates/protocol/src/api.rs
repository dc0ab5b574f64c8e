//! Endpoint paths, content types, and the small JSON bodies.

use serde::{Deserialize, Serialize};

/// The endpoints.
pub mod paths {
    /// `GET`: liveness, answers `ok`. Not authenticated.
    pub const HEALTHZ: &str = "/healthz";
    /// `GET`: readiness, answers `ready` when the database answers a trivial query, 503
    /// otherwise. Not authenticated.
    pub const READYZ: &str = "/readyz";
    /// `GET`: the server's metrics in Prometheus text, to loopback peers or with the
    /// server's `metrics_token` as a bearer token (403 otherwise).
    pub const METRICS: &str = "/metrics";
    /// `POST` JSON [`crate::Statement`] admitting the requester → JSON
    /// [`crate::JoinResponse`]. Signed by the admitted device, which need not be a member yet.
    pub const JOIN: &str = "/v2/join";
    /// `POST` a push body → JSON [`crate::PushResponse`].
    pub const PUSH: &str = "/v2/push";
    /// `GET ?after=N&limit=M` → a binary [`crate::PullPage`].
    pub const PULL: &str = "/v2/pull";
    /// `GET ?case=C&after=N` (C: the case id in 32 hex digits) → a binary
    /// [`crate::PullPage`] of the stored changes of that one case the caller may receive, in
    /// server order: what a deep check verifies of a case loaded from a checkpoint.
    pub const CHANGES: &str = "/v2/changes";
    /// `GET` → JSON list of [`crate::Statement`], the chain from 1; `POST` (office only) the
    /// same, statements to append → 204.
    pub const ROSTER: &str = "/v2/roster";
    /// `GET` → JSON [`crate::Receipt`] (404 `not_found` before the first); `POST` (office
    /// only) a newer one → 204.
    pub const RECEIPT: &str = "/v2/receipt";
    /// A blob lives under its author (the device that sealed it): `POST` a stream of framed
    /// sealed chunks of one's own blob → JSON [`crate::BlobStatus`]; `GET ?from=N` → the
    /// framed chunks the server holds from index N (a page of them).
    pub const BLOB: &str = "/v2/blobs/{author}/{blob}";
    /// `GET ?team=T[&generation=G&part=P]` → a binary [`crate::CheckpointPage`]: the team's
    /// checkpoint parts after the one named (from its newest full generation when none is);
    /// `POST` (office only) a push body of sealed checkpoint parts → 204.
    pub const CHECKPOINTS: &str = "/v2/checkpoints";
    /// `GET` → JSON [`crate::BlobStatus`]: which chunks the server holds.
    pub const BLOB_STATUS: &str = "/v2/blobs/{author}/{blob}/status";
}

/// Content type of a push body.
pub const PUSH_CONTENT_TYPE: &str = "application/vnd.cairn.push.v2";
/// Content type of a checkpoint page.
pub const CHECKPOINT_CONTENT_TYPE: &str = "application/vnd.cairn.checkpoints.v1";
/// Content type of a pull page.
pub const PULL_CONTENT_TYPE: &str = "application/vnd.cairn.pull.v2";
/// Header of a pull answer naming the roster's head counter: a client fetches the roster only
/// when it differs from the head it holds, so a sync with nothing to do is one round trip.
/// Advisory: the roster itself is checked from its signatures and links.
pub const ROSTER_VERSION: &str = "x-cairn-roster";
/// Header of a pull answer naming the newest receipt's counter (absent before the first).
pub const RECEIPT_VERSION: &str = "x-cairn-receipt";
/// Header of every answer to a signed request: milliseconds before the device's next request
/// fits its rate (0 when it fits now). A client that waits them out is never refused for its
/// rate, so it never sends an upload's body only to have it thrown away.
pub const NEXT_REQUEST_MS: &str = "x-cairn-next-request-ms";

/// The answer to a successful join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The team the device joined.
    pub team: String,
    /// The device id (64 hex digits).
    pub device: String,
}

/// The JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code (see [`ErrorCode`]); unknown codes may appear later.
    pub code: String,
    /// One sentence for a person: what happened and what to do.
    pub message: String,
}

/// The error codes the server sends.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The device was revoked by the office (403).
    Revoked,
    /// The device is not in the roster (403).
    NotEnrolled,
    /// A signature does not verify (401).
    BadSignature,
    /// The authorization header is missing or malformed (401).
    BadAuth,
    /// The request time is too far from the server's clock (401).
    ClockSkew,
    /// The body exceeds the server's limit (413).
    TooLarge,
    /// The admission has expired (410).
    AdmissionExpired,
    /// The statement is not signed by this server's office, or admits another device (403).
    AdmissionInvalid,
    /// The server lacks the office's statements before this one; the office must sync (409).
    RosterBehind,
    /// Another statement holds this one's number, or it does not follow the one before; also
    /// a receipt or checkpoint part that does not move forward, or differs from the one held
    /// at its place (409).
    RosterConflict,
    /// Only the office may do this (403).
    OfficeOnly,
    /// The body does not parse (400).
    Malformed,
    /// No such endpoint (404).
    NotFound,
    /// The server cannot reach its storage, or is too busy; retry later (503).
    Unavailable,
    /// One change in a push is larger than the server's per-change limit (413).
    ChangeTooLarge,
    /// The device's storage quota on the server is full (507).
    QuotaFull,
    /// The device sent too many requests; wait for the `retry-after` header's seconds (429).
    RateLimited,
    /// The request body arrived too slowly and was abandoned; retry, sending less (408).
    TooSlow,
    /// An uploaded chunk was refused for what it is (its author, team, signature, or a
    /// header that does not match the blob's other chunks); the chunks before it are kept
    /// (422). Sending it again changes nothing.
    ChunkRefused,
    /// The server's disk is full: nothing was stored; it stores nothing more until its
    /// administrator frees space (507).
    DiskFull,
}

const ALL: [ErrorCode; 20] = [
    ErrorCode::Revoked,
    ErrorCode::NotEnrolled,
    ErrorCode::BadSignature,
    ErrorCode::BadAuth,
    ErrorCode::ClockSkew,
    ErrorCode::TooLarge,
    ErrorCode::AdmissionExpired,
    ErrorCode::AdmissionInvalid,
    ErrorCode::RosterBehind,
    ErrorCode::RosterConflict,
    ErrorCode::OfficeOnly,
    ErrorCode::Malformed,
    ErrorCode::NotFound,
    ErrorCode::Unavailable,
    ErrorCode::ChangeTooLarge,
    ErrorCode::QuotaFull,
    ErrorCode::RateLimited,
    ErrorCode::TooSlow,
    ErrorCode::ChunkRefused,
    ErrorCode::DiskFull,
];

impl ErrorCode {
    /// The code as it travels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Revoked => "revoked",
            ErrorCode::NotEnrolled => "not_enrolled",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::BadAuth => "bad_auth",
            ErrorCode::ClockSkew => "clock_skew",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::AdmissionExpired => "admission_expired",
            ErrorCode::AdmissionInvalid => "admission_invalid",
            ErrorCode::RosterBehind => "roster_behind",
            ErrorCode::RosterConflict => "roster_conflict",
            ErrorCode::OfficeOnly => "office_only",
            ErrorCode::Malformed => "malformed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ChangeTooLarge => "change_too_large",
            ErrorCode::QuotaFull => "quota_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooSlow => "too_slow",
            ErrorCode::ChunkRefused => "chunk_refused",
            ErrorCode::DiskFull => "disk_full",
        }
    }

    /// Parses a code; `None` for one this version does not know.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The HTTP status the server answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Revoked
            | ErrorCode::NotEnrolled
            | ErrorCode::AdmissionInvalid
            | ErrorCode::OfficeOnly => 403,
            ErrorCode::BadSignature | ErrorCode::BadAuth | ErrorCode::ClockSkew => 401,
            ErrorCode::TooLarge | ErrorCode::ChangeTooLarge => 413,
            ErrorCode::RosterBehind | ErrorCode::RosterConflict => 409,
            ErrorCode::AdmissionExpired => 410,
            ErrorCode::Malformed => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Unavailable => 503,
            ErrorCode::QuotaFull | ErrorCode::DiskFull => 507,
            ErrorCode::RateLimited => 429,
            ErrorCode::TooSlow => 408,
            ErrorCode::ChunkRefused => 422,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!(code.http_status() >= 400);
        }
        assert_eq!(ErrorCode::parse("nope"), None);
        assert_eq!(ErrorCode::TooLarge.http_status(), 413);
        assert_eq!(ErrorCode::QuotaFull.http_status(), 507);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
    }
}
