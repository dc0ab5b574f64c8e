//! Cairn's sync client: moves sealed changes between a device's vault and the central server.
//!
//! It pins the server's TLS certificate by the fingerprint in the invite, signs every request
//! with the device key, pushes the outbox in batches, then pulls pages after the cursor and
//! applies each page with its cursor in one vault transaction, so an interrupted sync resumes
//! where it stopped and never skips or applies a change twice. Transient failures are retried
//! with exponential backoff and jitter.
//!
//! It never decrypts anything itself and never trusts the server's word on who may write: the
//! roster is rebuilt from office- and device-signed statements on every change of it.
#![forbid(unsafe_code)]

mod client;
mod engine;
mod error;
mod tls;

pub use client::Client;
pub use engine::{apply_roster, retry, stored_roster, sync, Options, Progress, Summary};
pub use error::SyncError;
