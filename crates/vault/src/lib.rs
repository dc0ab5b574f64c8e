//! The device's encrypted store: one SQLite file and one passphrase-locked key file per vault.
//!
//! The vault keeps an append-only log of sealed changes (this device's numbered 1, 2, 3...
//! without gaps, and later those received from others), an encrypted snapshot and summary of
//! every case for fast loading, attachments as the sealed chunks they travel as, the guided
//! form's drafts (never synced), and encrypted settings. Every command is one SQLite
//! transaction in WAL mode with `synchronous=FULL`, so once a call returns, its change survives
//! a crash or a power cut.
//!
//! It must never write plaintext case content or field names to disk (the database, its WAL or
//! the key file): everything but opaque routing ids and counters is ciphertext, and neither
//! are team names, attachment sizes or arrival times (see [`at_rest`]).
#![forbid(unsafe_code)]

pub mod at_rest;
mod blob_layout;
mod blobs;
mod budget;
mod cases;
mod check;
mod checkpoint;
mod cores;
mod deep;
mod drafts;
mod editions;
mod error;
mod export;
pub mod failpoint;
mod files;
mod head;
mod head_carry;
mod home;
mod import;
pub mod import_file;
mod keyring;
mod links;
mod restore;
mod revoked;
mod schema;
mod settings;
mod store;
mod sync;
mod sync_state;
mod timestamps;
mod transactions;
mod update;

pub use blobs::{Attached, AttachmentState, BlobSlot, NewAttachment, OutboxBlob, WantedBlob};
pub use cases::{
    resolve_case, CaseFilter, CaseSummary, CasesMark, Created, HistoryStep, SUMMARY_VERSION,
};
pub use check::CheckReport;
pub use checkpoint::{Generation, Loading, TeamLoaded};
pub use deep::{CheckpointedCase, DeepVerdict};
pub use drafts::Draft;
pub use editions::{SignedEdition, EDITION_DOMAIN, RECORD_LIMIT};
pub use error::VaultError;
#[doc(hidden)]
pub use head_carry::as_made_before_heads;
pub use home::{Home, Vault};
pub use import::NewCase;
pub use links::LinkDecision;
pub use revoked::CutOff;
pub use settings::{NewVault, Role, Settings};
pub use sync::{ApplyReport, Refused, MAX_AUTHOR_OPS, MAX_CASE_BYTES, MAX_CASE_OPS};
pub use sync_state::{
    Endpoint, LastSync, OutboxProgress, PullProgress, RosterChain, SyncState, Unconfirmed,
};
pub use update::Update;
