//! One sync: the push step, then the pull step (which runs the roster step on every page),
//! retrying transient failures.

use std::future::Future;
use std::time::Duration;

use cairn_vault::{Endpoint, LastSync, Refused, Role, Vault};
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
    let acked = vault.outbox_progress()?.acked;
    Ok(vault.own_log_len()?.saturating_sub(acked))
}

/// What every step of one sync shares besides the vault and the summary: the server, the
/// tuning and whom to tell of progress.
pub(crate) struct Link<'a> {
    pub(crate) client: &'a Client,
    pub(crate) options: &'a Options,
    pub(crate) progress: &'a dyn Progress,
}

/// A client for the server this vault joined.
pub(crate) fn client_for(endpoint: &Endpoint, timeouts: Timeouts) -> Result<Client, SyncError> {
    let (Some(server), Some(fingerprint)) = (&endpoint.server, &endpoint.fingerprint) else {
        return Err(SyncError::NotJoined);
    };
    Client::with_timeouts(server, fingerprint, timeouts)
}

/// One sync. No step hands another a copy of the sync records: each reads what it needs from
/// the vault when it needs it and writes only the record it owns (push: how far the server
/// took this device's changes; pull: the cursor, with each page; roster: the chain; receipt:
/// the newest receipt), so none can put back what another moved. What the sync did is
/// recorded once, here, at its end, and nothing else with it.
async fn run(
    vault: &mut Vault,
    options: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let client = client_for(&vault.endpoint()?, options.timeouts)?;
    if vault.settings().role == Role::Office {
        // The chain, not only this vault, must carry the key of the office's own team, or a
        // restored office could not read its own cases: granted to itself once, sent below.
        crate::office::grant_own_team(vault)?;
    }
    if vault.settings().role != Role::Office {
        // Recorded before joining, under this device's draft key: seal them under the team's
        // key before they leave. (Normally done by `join` already.)
        vault.reseal_unsent()?;
    }
    let link = Link {
        client: &client,
        options,
        progress,
    };
    let blocked = push::push_step(&link, vault, summary).await?;
    if options.checkpoints {
        checkpoint::cold_start_step(&link, vault, summary).await?;
    }
    let delivery_warnings = pull::pull_step(&link, vault, summary).await?;
    if options.checkpoints {
        checkpoint::publish_step(&link, vault, summary).await?;
    }
    // Attachments last: the case changes never wait behind them, and they never fail a sync.
    blob::blob_step(&link, vault, summary).await;
    summary.pending = pending(vault)?;
    vault.record_last_sync(&LastSync {
        at: Some(now_rfc3339()),
        summary: Some(summary.line()),
        delivery_warnings,
    })?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use std::cell::Cell;

    use cairn_model::Kind;

    use super::*;
    use crate::testing::Setup;

    /// At the first page applied, moves the cursor far ahead through a second handle on the
    /// vault, as another process's pull would.
    struct Meddle {
        home: cairn_vault::Home,
        jumped: Cell<Option<u64>>,
    }

    impl Progress for Meddle {
        fn pushed(&self, _: u64, _: u64) {}
        fn pulled(&self, _: u64) {
            if self.jumped.get().is_some() {
                return;
            }
            let pass = cairn_crypto::SecretString::from("test".to_owned());
            let mut other = self.home.open(&pass).unwrap();
            let roster = crate::stored_roster(&other).unwrap();
            let far = other.pull_cursor().unwrap() + 1000;
            other.apply_pulled(&[], far, &roster).unwrap();
            self.jumped.set(Some(far));
        }
    }

    /// What the steps of a sync stored stays stored: the end of a sync writes what it did and
    /// nothing else, so a cursor moved during the sync (here by another handle, after the
    /// first page) is not put back, nor are the endpoint or the chain touched.
    /// Fails if the sync reads its records once and writes them back whole at its end.
    #[tokio::test]
    async fn the_end_of_a_sync_puts_back_nothing_its_steps_or_others_moved() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let mut a = setup.field(dir.path(), "a", "T1").await;
        let mut b = setup.field(dir.path(), "b", "T1").await;
        let now = time::OffsetDateTime::now_utc();
        for _ in 0..4 {
            a.create_case(Kind::Remains, "KHR", &[], now).unwrap();
        }
        sync(&mut a, &Options::default(), &()).await.unwrap();
        b.create_case(Kind::Remains, "KHR", &[], now).unwrap();
        let (endpoint, chain) = (b.endpoint().unwrap(), b.roster_chain().unwrap());
        assert_eq!(b.last_sync().unwrap(), LastSync::default());

        let meddle = Meddle {
            home: b.home().clone(),
            jumped: Cell::new(None),
        };
        let options = Options {
            page: 2,
            checkpoints: false,
            ..Options::default()
        };
        let summary = sync(&mut b, &options, &meddle).await.unwrap();
        let far = meddle.jumped.get().expect("a page was applied");
        let state = b.sync_state().unwrap();
        assert_eq!(
            state.pull.cursor, far,
            "the cursor moved during the sync is kept"
        );
        assert_eq!(state.outbox.acked, 1, "the push stored its own change");
        assert_eq!((state.endpoint, state.roster), (endpoint, chain));
        assert!(state.last_sync.at.is_some());
        assert_eq!(state.last_sync.summary, Some(summary.line()));
    }
}
