//! The wire types of Cairn's sync protocol, shared by the server and the devices.
//!
//! This crate defines what travels between a device and the server and what each side must
//! check: office keys, one-time invites, the roster of signed statements (enrollments and
//! revocations) and the [`Roster`] rebuilt from them, request authentication, and the push
//! and pull bodies with their frozen binary layouts. It is pure: it never does I/O, never
//! decrypts or interprets a case, never trusts the server's word for who may read or write
//! (only signatures by the office and by devices count), and never panics on bytes it is given.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod enrollment;
mod error;
mod hexser;
mod invite;
mod office;
mod pull;
mod push;
mod revocation;
mod roster;

pub use api::{
    paths, EnrollResponse, ErrorBody, ErrorCode, PULL_CONTENT_TYPE, PUSH_CONTENT_TYPE,
    ROSTER_VERSION,
};
pub use auth::{request_signed_bytes, sign_request, verify_request, AUTH_SCHEME, REQUEST_DOMAIN};
pub use enrollment::{DevicePublic, Enrollment, ENROLLMENT_DOMAIN};
pub use error::ProtocolError;
pub use invite::{validate_team, Invite, InviteBody, INVITE_DOMAIN, INVITE_PREFIX};
pub use office::OfficeKeys;
pub use pull::{pull_path, PullPage, PullQuery};
pub use push::{decode_push, encode_push, Outcome, PushResponse, PushResult, MAX_FRAME};
pub use revocation::{Revocation, REVOCATION_DOMAIN};
pub use roster::{Member, Refusal, Roster, Statement, OFFICE_TEAM};

/// Seconds since the Unix epoch by this machine's clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
