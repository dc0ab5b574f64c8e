//! The wire types of Cairn's sync protocol, shared by the server and the devices.
//!
//! This crate defines what travels between a device and the server and what each side must
//! check: office keys, device lines (`cairn id`), admissions, the office-signed chain of roster
//! statements and the [`Roster`] rebuilt from it, receipts, request authentication, and the
//! push and pull bodies with their frozen binary layouts, and the framing of blob chunks. It is pure: it never does I/O, never
//! decrypts or interprets a case, never trusts the server's word for who may read or write
//! (only signatures by the office and by devices count), and never panics on bytes it is given.
#![forbid(unsafe_code)]

mod admission;
mod api;
mod auth;
mod blob;
pub mod checkpoint;
mod device;
mod error;
mod hexser;
mod lookup;
mod office;
pub mod places;
mod pull;
mod push;
mod reader;
mod receipt;
mod roster;
mod statement;
mod verdict;

pub use admission::{Admission, ADMISSION_PREFIX};
pub use api::{
    paths, ErrorBody, ErrorCode, JoinResponse, CHECKPOINT_CONTENT_TYPE, NEXT_REQUEST_MS,
    PULL_CONTENT_TYPE, PUSH_CONTENT_TYPE, RECEIPT_VERSION, ROSTER_VERSION,
};
pub use auth::{request_signed_bytes, sign_request, verify_request, AUTH_SCHEME, REQUEST_DOMAIN};
pub use blob::{
    blob_download_path, blob_page_path, blob_path, blob_status_path, encode_frame, BlobQuery,
    BlobStatus, FrameReader, BLOB_CONTENT_TYPE, BLOB_HELD, MAX_CHUNK_FRAME,
};
pub use device::{validate_team, DeviceLine, DevicePublic, ID_PREFIX};
pub use error::ProtocolError;
pub use lookup::DeviceLookup;
pub use office::OfficeKeys;
pub use places::{check_place_code, Place, PlaceList, Places, TeamCopy};
pub use pull::{case_changes_path, pull_path, CaseChangesQuery, PullPage, PullQuery};
pub use push::{decode_push, encode_push, Outcome, PushResponse, PushResult, MAX_FRAME};
pub use receipt::{Held, Receipt, RECEIPT_DOMAIN};
pub use roster::{reconcile, Member, Placement, Reconciled, Refusal, Roster, OFFICE_TEAM};
pub use statement::{
    seal_name, Act, Admit, Grant, KeyGrant, Revoke, Rotate, Statement, MAX_GRANTS, ROSTER_DOMAIN,
};
pub use verdict::ChangeRefusal;

/// Seconds since the Unix epoch by this machine's clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
