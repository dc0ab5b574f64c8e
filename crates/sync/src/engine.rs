//! One sync: the push step, then the pull step (which runs the roster step on every page),
//! retrying transient failures.

use std::future::Future;
use std::time::Duration;

use cairn_vault::{Refused, Role, SyncState, Vault};
use rand::Rng;

use crate::{blob, checkpoint, pull, push, Client, SyncError, Timeouts};

/// Tuning; the defaults suit links that drop every few minutes.
#[derive(Clone, Debug)]
pub struct Options {
    /// Upper bound of one push body, kept well under the server's request limit.
    pub batch_bytes: usize,
    /// Changes asked for per pull page (each page is applied with its cursor, in one vault
    /// transaction, as it arrives).
    pub page: u32,
    /// Attempts per request before giving up for this run.
    pub attempts: u32,
    /// First retry delay; doubled each time, with jitter, up to `max_delay`.
    pub base_delay: Duration,
    /// Longest retry delay.
    pub max_delay: Duration,
    /// Fetch every attachment the cases here list (a field device otherwise fetches only
    /// those asked for; the office always fetches all).
    pub with_attachments: bool,
    /// How long each request waits on the server.
    pub timeouts: Timeouts,
    /// Use office checkpoints: the office publishes them, a device starting cold loads them
    /// (off: every change is pulled one by one, as a benchmark's baseline does).
    pub checkpoints: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_bytes: 1 << 20,
            page: 500,
            attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            with_attachments: false,
            timeouts: Timeouts::default(),
            checkpoints: true,
        }
    }
}

/// Told how far a sync has come (the CLI draws progress bars).
pub trait Progress {
    /// `done` of `total` own changes are on the server.
    fn pushed(&self, done: u64, total: u64);
    /// `count` changes received so far in this run.
    fn pulled(&self, count: u64);
    /// `done` of `total` plaintext bytes of attachments sent or fetched in this run.
    fn attachments(&self, _done: u64, _total: u64) {}
    /// `done` of `total` cases checked by a deep check.
    fn deep_checked(&self, _done: u64, _total: u64) {}
}

impl Progress for () {
    fn pushed(&self, _: u64, _: u64) {}
    fn pulled(&self, _: u64) {}
}

/// What a sync did, even when it stopped early.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Own changes the server newly stored in this sync (one whose answer was lost, and that
    /// a retry then found stored, included).
    pub sent: u64,
    /// Roster statements the office handed the server in this sync (admissions, revocations).
    pub roster_sent: u64,
    /// Changes received and applied.
    pub received: u64,
    /// Cases loaded whole from the office's checkpoints (a first sync).
    pub from_checkpoints: u64,
    /// Changes received that were already here.
    pub duplicates: u64,
    /// Received changes refused, with reasons.
    pub refused: Vec<Refused>,
    /// Received changes sealed under a key this device does not hold.
    pub unreadable: u64,
    /// Own changes the server refused, with reasons.
    pub rejected: Vec<String>,
    /// Own changes not yet stored by the server.
    pub pending: u64,
    /// Roster statements that did not verify.
    pub roster_problems: Vec<String>,
    /// Things a person should know (the server lost data, the vault is older than the server).
    pub warnings: Vec<String>,
    /// Request round trips made.
    pub round_trips: u64,
    /// Attachments this device made that the server now holds whole.
    pub blobs_sent: u64,
    /// Attachments fetched whole, their hash checked.
    pub blobs_fetched: u64,
    /// Attachments whose chunks the server does not hold yet (their author has not sent them).
    pub blobs_waiting: u64,
    /// Attachments that failed in this sync, each with why (tried again at the next sync).
    pub blob_failures: Vec<String>,
}

impl Summary {
    /// One line for a person.
    pub fn line(&self) -> String {
        // The office's admissions and revocations travel as roster statements, not changes:
        // "sent 0" alone would hide them.
        let sent = match self.roster_sent {
            0 => self.sent.to_string(),
            n => format!(
                "{} and {}",
                plural(self.sent, "change"),
                plural(n, "roster statement")
            ),
        };
        let mut line = format!(
            "sent {sent}, received {}, refused {}, still pending {}",
            self.received,
            self.refused.len() + self.rejected.len(),
            self.pending
        );
        if self.from_checkpoints > 0 {
            line.push_str(&format!(
                "; {} loaded from the office's checkpoints",
                plural(self.from_checkpoints, "case")
            ));
        }
        if self.unreadable > 0 {
            line.push_str(&format!(
                "; {} sealed under a team key this device does not hold",
                self.unreadable
            ));
        }
        let reasons: Vec<String> = self
            .refused
            .iter()
            .map(|r| format!("change {} by {}: {}", r.seq, r.author, r.reason))
            .chain(self.rejected.iter().cloned())
            .collect();
        // The first few reasons; the rest would drown the line.
        const SHOWN: usize = 5;
        if !reasons.is_empty() {
            let mut shown = reasons[..reasons.len().min(SHOWN)].join("; ");
            if reasons.len() > SHOWN {
                shown.push_str(&format!("; and {} more", reasons.len() - SHOWN));
            }
            line.push_str(&format!(" ({shown})"));
        }
        let failed = self.blob_failures.len();
        if self.blobs_sent + self.blobs_fetched + self.blobs_waiting > 0 || failed > 0 {
            line.push_str(&format!(
                "; attachments sent {}, fetched {}, failed {failed}, waiting {}",
                self.blobs_sent, self.blobs_fetched, self.blobs_waiting
            ));
            if let Some(first) = self.blob_failures.first() {
                line.push_str(&format!(" ({first}"));
                if failed > 1 {
                    line.push_str(&format!("; and {} more", failed - 1));
                }
                line.push(')');
            }
        }
        line
    }
}

/// "1 change", "2 changes".
fn plural(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Runs one sync. On failure the summary says what was done before it, so nothing is hidden.
pub async fn sync(
    vault: &mut Vault,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Summary, (SyncError, Summary)> {
    let mut summary = Summary::default();
    match run(vault, options, progress, &mut summary).await {
        Ok(()) => Ok(summary),
        Err(e) => {
            summary.pending = pending(vault).unwrap_or(summary.pending);
            // Every page applied before the disk filled up is kept: say how much.
            let e = match e {
                SyncError::Vault(cairn_vault::VaultError::DiskFull) => SyncError::DiskFull {
                    kept: summary.received,
                },
                e => e,
            };
            Err((e, summary))
        }
    }
}

fn pending(vault: &Vault) -> Result<u64, SyncError> {
    let acked = vault.sync_state()?.acked;
    Ok(vault.own_log_len()?.saturating_sub(acked))
}

/// What every step of one sync shares besides the vault, its state and the summary: the
/// server, the tuning and whom to tell of progress.
pub(crate) struct Link<'a> {
    pub(crate) client: &'a Client,
    pub(crate) options: &'a Options,
    pub(crate) progress: &'a dyn Progress,
}

/// A client for the server this vault joined.
pub(crate) fn client_for(state: &SyncState, timeouts: Timeouts) -> Result<Client, SyncError> {
    let (Some(server), Some(fingerprint)) = (&state.server, &state.fingerprint) else {
        return Err(SyncError::NotJoined);
    };
    Client::with_timeouts(server, fingerprint, timeouts)
}

/// One sync: the state is read once here and handed to each step, which changes it and
/// stores it when the vault must remember it (the vault itself records the cursor with each
/// page, and the reseal).
async fn run(
    vault: &mut Vault,
    options: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let mut state = vault.sync_state()?;
    let client = client_for(&state, options.timeouts)?;
    if vault.settings().role == Role::Office {
        // The chain, not only this vault, must carry the key of the office's own team, or a
        // restored office could not read its own cases: granted to itself once, sent below.
        crate::office::grant_own_team(vault, &mut state)?;
    }
    if vault.settings().role != Role::Office {
        // Recorded before joining, under this device's draft key: seal them under the team's
        // key before they leave. (Normally done by `join` already.)
        vault.reseal_unsent()?;
        state = vault.sync_state()?;
    }
    let link = Link {
        client: &client,
        options,
        progress,
    };
    let blocked = push::push_step(&link, vault, &mut state, summary).await?;
    if options.checkpoints {
        checkpoint::cold_start_step(&link, vault, &mut state, summary).await?;
    }
    pull::pull_step(&link, vault, &mut state, summary).await?;
    if options.checkpoints {
        checkpoint::publish_step(&link, vault, &state, summary).await?;
    }
    // Attachments last: the case changes never wait behind them, and they never fail a sync.
    blob::blob_step(&link, vault, summary).await;
    state.last_sync_at = Some(now_rfc3339());
    summary.pending = vault.own_log_len()?.saturating_sub(state.acked);
    state.last_summary = Some(summary.line());
    vault.set_sync_state(&state)?;
    blocked.map_or(Ok(()), Err)
}

/// Retries transient failures with exponential backoff and full jitter, counting round trips
/// in `summary`.
pub async fn retry<T, F, Fut>(
    options: &Options,
    summary: &mut Summary,
    mut call: F,
) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SyncError>>,
{
    let mut delay = options.base_delay;
    let mut attempt = 1;
    loop {
        summary.round_trips += 1;
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() && attempt < options.attempts => {
                let pause = rand::thread_rng().gen_range(Duration::ZERO..=delay);
                tracing::info!(attempt, error = %e, ?pause, "retrying");
                tokio::time::sleep(pause).await;
                delay = (delay * 2).min(options.max_delay);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
