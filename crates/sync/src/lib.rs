//! Cairn's sync client: moves sealed changes between a device's vault and the central server.
//!
//! It pins the server's TLS certificate by the fingerprint in the admission, signs every request
//! with the device key, pushes the outbox in batches, then pulls pages after the cursor and
//! applies each page with its cursor in one vault transaction as it arrives (the next page
//! already on its way), so an interrupted sync resumes where it stopped and never skips or
//! applies a change twice. Transient failures are retried
//! with exponential backoff and jitter. It also does the rest of a device's dealings with the
//! server (joining, pointing a vault at a server, the office's admissions, revocations and receipts), and
//! offers all of it without async through [`BlockingSync`].
//!
//! It never decrypts anything itself and never trusts the server's word on who may write: the
//! roster is rebuilt from the office's signed chain, and a server serving less of it than the
//! device holds is refused and reported. It
//! never names a command of the CLI: its errors say what happened, the caller what to do.
#![forbid(unsafe_code)]

mod blob;
pub mod blocking;
mod checkpoint;
mod client;
mod deep;
mod engine;
mod error;
mod join;
mod office;
mod pull;
mod push;
mod receipt;
mod restore;
mod roster;
mod status;
#[cfg(test)]
mod testing;
mod tls;

pub use blocking::BlockingSync;
pub use client::{Client, PullAhead, Timeouts, Versions};
pub use deep::{deep_check, DeepCase, DeepReport};
pub use engine::{retry, sync, Options, Progress, Summary};
pub use error::SyncError;
pub use join::{join, point_at_server, read_admission, Joined};
pub use office::{admit, revoke, set_places, AdmitTo, Revoked};
pub use restore::{restore, Restored};
pub use roster::{apply_roster, held_places, held_roster, stored_roster, HeldPlaces};
pub use status::{divergences, status, Status};
