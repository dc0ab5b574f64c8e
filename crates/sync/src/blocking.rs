//! The sync client for callers that do not run async code (the `cairn` command line).
//!
//! Like mini-redis's blocking client, it owns a tokio runtime (one worker thread) and drives
//! the async client on it, so a binary never touches tokio: it gets plain functions that return
//! when the work is done.

use std::ops::ControlFlow;
use std::time::Duration;

use cairn_protocol::Admission;
use cairn_vault::Vault;

use crate::engine::{self, Options, Progress, Summary};
use crate::join::{self, Joined};
use crate::office::{self, Revoked};
use crate::SyncError;

/// What one sync gave: its summary, or why it stopped with what it did before.
pub type Outcome = Result<Summary, (SyncError, Summary)>;

/// A sync client that blocks, with the runtime it runs on.
pub struct BlockingSync {
    runtime: tokio::runtime::Runtime,
}

impl BlockingSync {
    /// Starts the runtime: the caller's thread drives a sync, and one worker thread carries
    /// the network meanwhile (the next pull page travels while the vault applies one).
    pub fn new() -> Result<BlockingSync, SyncError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| SyncError::Runtime(e.to_string()))?;
        Ok(BlockingSync { runtime })
    }

    /// Joins the admission's server (see [`crate::join`]).
    pub fn join(
        &self,
        vault: &mut Vault,
        admission: Admission,
        options: &Options,
    ) -> Result<Joined, SyncError> {
        self.runtime.block_on(join::join(vault, admission, options))
    }

    /// Runs one sync (see [`crate::sync`]).
    // The shape of `crate::sync`: what was done travels with the error, so nothing is hidden.
    #[allow(clippy::result_large_err)]
    pub fn sync(&self, vault: &mut Vault, options: &Options, progress: &dyn Progress) -> Outcome {
        self.runtime
            .block_on(engine::sync(vault, options, progress))
    }

    /// Syncs in rounds, `interval` apart, until `round` breaks (its value is returned) or
    /// Ctrl-C arrives during a pause (`None`). Each round reports to a fresh `progress()`,
    /// which `round` receives with the outcome.
    pub fn watch<P: Progress, B>(
        &self,
        vault: &mut Vault,
        options: &Options,
        interval: Duration,
        mut progress: impl FnMut() -> P,
        mut round: impl FnMut(P, Outcome) -> ControlFlow<B>,
    ) -> Option<B> {
        loop {
            let reporter = progress();
            let outcome = self.sync(vault, options, &reporter);
            if let ControlFlow::Break(value) = round(reporter, outcome) {
                return Some(value);
            }
            let stop = self.runtime.block_on(async {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => false,
                    _ = tokio::signal::ctrl_c() => true,
                }
            });
            if stop {
                return None;
            }
        }
    }

    /// Fetches and checks the signed changes of every case loaded from a checkpoint (see
    /// [`crate::deep_check`]).
    pub fn deep_check(
        &self,
        vault: &Vault,
        options: &Options,
        progress: &dyn Progress,
    ) -> Result<crate::DeepReport, SyncError> {
        self.runtime
            .block_on(crate::deep::deep_check(vault, options, progress))
    }

    /// Restores the office's vault from its server (see [`crate::restore`]).
    pub fn restore(
        &self,
        vault: &mut Vault,
        server: &str,
        fingerprint: &str,
        office: Option<cairn_protocol::OfficeKeys>,
        options: &Options,
        progress: &dyn Progress,
    ) -> Result<crate::Restored, SyncError> {
        self.runtime.block_on(crate::restore::restore(
            vault,
            server,
            fingerprint,
            office,
            options,
            progress,
        ))
    }

    /// Revokes a device from the office's vault (see [`crate::revoke`]).
    pub fn revoke(
        &self,
        vault: &mut Vault,
        prefix: &str,
        options: &Options,
    ) -> Result<Revoked, SyncError> {
        self.runtime
            .block_on(office::revoke(vault, prefix, options))
    }
}
