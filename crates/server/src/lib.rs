//! cairn-server: the blind relay between Cairn's field devices and the central office.
//!
//! It keeps the office's signed roster chain (from the office, or from a device presenting
//! its own admission), relays the office's receipts, and stores and serves sealed changes,
//! the sealed chunks of attachments and the office's sealed checkpoints over HTTPS (axum on rustls). It checks signatures, membership, teams and revocation, but it must never be able to read a case: it does
//! not link the case model or the vault, never holds a key that decrypts anything, and never
//! logs a request body, a ciphertext or anything derived from case content.
#![forbid(unsafe_code)]

pub mod app;
mod auth;
pub mod backup;
mod blob;
mod changes;
mod checkpoint;
pub mod config;
pub mod error;
mod files;
mod guard;
pub mod init;
mod join;
mod metrics;
mod pull;
mod push;
mod receipt;
mod roster;
pub mod serve;
pub mod storage;
pub mod tls;

pub use app::{router, AppState, Limits, Peer};
pub use config::ServerConfig;
pub use error::{ApiError, ServerError};
pub use serve::RunningServer;
