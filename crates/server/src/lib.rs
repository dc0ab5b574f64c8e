//! cairn-server: the blind relay between Cairn's field devices and the central office.
//!
//! It enrolls devices that present an office-signed invite, keeps the roster's signed
//! statements, and stores and serves sealed changes over HTTPS (axum on rustls). It checks
//! signatures, enrollment and revocation, but it must never be able to read a case: it does
//! not link the case model or the vault, never holds a key that decrypts anything, and never
//! logs a request body, a ciphertext or anything derived from case content.
#![forbid(unsafe_code)]

pub mod app;
mod auth;
pub mod config;
mod enroll;
pub mod error;
mod guard;
pub mod init;
mod pull;
mod push;
mod revoke;
mod roster;
pub mod serve;
pub mod storage;
pub mod tls;

pub use app::{router, AppState, Limits, Peer};
pub use config::ServerConfig;
pub use error::{ApiError, ServerError};
pub use serve::RunningServer;
