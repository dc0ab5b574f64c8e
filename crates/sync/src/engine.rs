//! One sync: push the outbox, then pull and apply pages, retrying transient failures.

use std::future::Future;
use std::time::Duration;

use cairn_protocol::{unix_now, OfficeKeys, Outcome, Roster, Statement};
use cairn_vault::{Refused, Role, SyncState, Vault};
use rand::Rng;

use crate::{Client, SyncError};

/// Tuning; the defaults suit links that drop every few minutes.
#[derive(Clone, Debug)]
pub struct Options {
    /// Upper bound of one push body, kept well under the server's request limit.
    pub batch_bytes: usize,
    /// Changes asked for per pull page.
    pub page: u32,
    /// Attempts per request before giving up for this run.
    pub attempts: u32,
    /// First retry delay; doubled each time, with jitter, up to `max_delay`.
    pub base_delay: Duration,
    /// Longest retry delay.
    pub max_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_bytes: 1 << 20,
            page: 500,
            attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Told how far a sync has come (the CLI draws progress bars).
pub trait Progress {
    /// `done` of `total` own changes are on the server.
    fn pushed(&self, done: u64, total: u64);
    /// `count` changes received so far in this run.
    fn pulled(&self, count: u64);
}

impl Progress for () {
    fn pushed(&self, _: u64, _: u64) {}
    fn pulled(&self, _: u64) {}
}

/// What a sync did, even when it stopped early.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Own changes the server newly stored.
    pub sent: u64,
    /// Changes received and applied.
    pub received: u64,
    /// Changes received that were already here.
    pub duplicates: u64,
    /// Received changes refused, with reasons.
    pub refused: Vec<Refused>,
    /// Received changes not encrypted to this device.
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
}

impl Summary {
    /// One line for a person.
    pub fn line(&self) -> String {
        let mut line = format!(
            "sent {}, received {}, refused {}, still pending {}",
            self.sent,
            self.received,
            self.refused.len() + self.rejected.len(),
            self.pending
        );
        if self.unreadable > 0 {
            line.push_str(&format!(
                "; {} not encrypted to this device (another team's, or sealed before its author knew this device)",
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
        line
    }
}

/// Rebuilds the roster from signed statements and records it, with whom to encrypt to, in the
/// vault. Returns the checked roster.
pub fn apply_roster(
    vault: &mut Vault,
    state: &mut SyncState,
    statements: &[Statement],
) -> Result<Roster, SyncError> {
    let roster = Roster::build(&office_of(state)?, statements, unix_now());
    state.roster = statements
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect();
    state.recipients.clear();
    let teams: Vec<String> = match vault.settings().role {
        Role::Office => roster.members().map(|m| m.team.clone()).collect(),
        Role::Field => vec![vault.settings().team.clone()],
    };
    for team in teams {
        let recipients = roster.recipients_for_team(&team);
        state.recipients.insert(team, recipients);
    }
    vault.set_sync_state(state)?;
    Ok(roster)
}

/// The office's public keys, from the invite this vault joined with.
fn office_of(state: &SyncState) -> Result<OfficeKeys, SyncError> {
    Ok(state
        .office
        .as_deref()
        .ok_or(SyncError::NotJoined)?
        .parse()?)
}

/// The roster as last fetched, checked again from its signatures.
pub fn stored_roster(state: &SyncState) -> Result<Roster, SyncError> {
    let statements: Vec<Statement> = state
        .roster
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    Ok(Roster::build(&office_of(state)?, &statements, unix_now()))
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
            Err((e, summary))
        }
    }
}

fn pending(vault: &Vault) -> Result<u64, SyncError> {
    let acked = vault.sync_state()?.acked;
    Ok(vault.own_log_len()?.saturating_sub(acked))
}

async fn run(
    vault: &mut Vault,
    options: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let mut state = vault.sync_state()?;
    let (Some(server), Some(fingerprint)) = (state.server.clone(), state.fingerprint.clone())
    else {
        return Err(SyncError::NotJoined);
    };
    let client = Client::new(&server, &fingerprint)?;
    if !state.resealed && vault.settings().role == Role::Field {
        // Recorded before joining, sealed to this device alone: make them readable to the
        // office and the team before they leave. (Normally done by `join` already.)
        vault.reseal_unsent()?;
        state = vault.sync_state()?;
    }
    let total = vault.own_log_len()?;

    // Push: everything above what the server acknowledged, in batches.
    let mut max_count = 1000;
    let mut resent = false;
    let mut blocked = None;
    loop {
        let batch = batch(vault, state.acked, options.batch_bytes, max_count)?;
        if batch.is_empty() {
            break;
        }
        let first = state.acked + 1;
        // Like pull pages, a batch that keeps failing on a poor link is cut down on each try;
        // the answer's `acked` says how far the server got.
        let sending = std::cell::Cell::new(batch.len());
        let pushed = retry(options, summary, || {
            let count = sending.get();
            sending.set((count / 4).max(1));
            client.push(vault.keys(), &batch[..count])
        })
        .await;
        let response = match pushed {
            // The server's limit is lower than ours: send fewer at a time, down to one.
            Err(SyncError::Refused { code, .. }) if code == "too_large" && batch.len() > 1 => {
                max_count = (batch.len() / 2).max(1);
                continue;
            }
            Err(SyncError::Refused { code, message }) if code == "too_large" => {
                // Still receive what others sent; report the failure at the end.
                blocked = Some(SyncError::Refused {
                    code,
                    message: format!(
                        "own change {first} alone is larger than the server accepts ({message}); it stays pending"
                    ),
                });
                break;
            }
            other => other?,
        };
        for result in &response.results {
            match result.outcome {
                Outcome::Stored => summary.sent += 1,
                Outcome::Duplicate => {}
                Outcome::Refused => summary.rejected.push(format!(
                    "own change {} refused by the server: {}",
                    result.seq,
                    result.reason.as_deref().unwrap_or("no reason given")
                )),
            }
        }
        // The server's word is what counts: if it holds less than it once acknowledged (it
        // was restored from a backup), what it lost is sent again, once per sync.
        let lost = response.acked < state.acked;
        if lost {
            summary.warnings.push(format!(
                "the server now holds this device's changes only up to {} (it had {}); sending the rest again",
                response.acked, state.acked
            ));
        }
        state.acked = response.acked;
        vault.set_sync_state(&state)?;
        progress.pushed(state.acked, total);
        if lost && !resent {
            resent = true;
            continue;
        }
        if response.acked < first {
            // The server keeps refusing the next change: stop, report, keep it for later.
            break;
        }
    }

    // Pull: pages after the cursor; each page is applied with its cursor in one transaction.
    let mut roster = stored_roster(&state)?;
    let mut page_size = options.page;
    loop {
        // A link that drops mid-page gets smaller pages, so each one can still get through.
        let next = std::cell::Cell::new(page_size);
        let tried = std::cell::Cell::new(page_size);
        let (page, version) = retry(options, summary, || {
            let limit = next.get();
            tried.set(limit);
            next.set((limit / 4).max(1));
            client.pull(vault.keys(), state.cursor, limit)
        })
        .await?;
        page_size = if tried.get() < page_size {
            tried.get()
        } else {
            (page_size * 2).min(options.page)
        };
        let logged = vault.own_log_len()?;
        if page.acked > logged {
            summary.warnings.push(format!(
                "the server holds {} changes from this device but this vault only {logged}: it was restored from an older copy; new changes may be refused until the office is consulted",
                page.acked
            ));
        }
        state.acked = page.acked.min(logged);
        if version.is_none() || version != state.roster_version || state.roster.is_empty() {
            let statements = retry(options, summary, || client.roster(vault.keys())).await?;
            state.roster_version = version;
            roster = apply_roster(vault, &mut state, &statements)?;
        }
        let changes: Vec<Vec<u8>> = page.changes.into_iter().map(|(_, bytes)| bytes).collect();
        // A device may have enrolled between the server's roster check and this page: look
        // again before refusing an author nobody here has heard of.
        let unknown = changes.iter().any(|bytes| {
            cairn_crypto::SealedChange::from_bytes(bytes)
                .is_ok_and(|s| roster.member(&s.author).is_none())
        });
        if unknown {
            let statements = retry(options, summary, || client.roster(vault.keys())).await?;
            roster = apply_roster(vault, &mut state, &statements)?;
        }
        summary.roster_problems = roster.problems.clone();
        let admit = |sealed: &cairn_crypto::SealedChange| {
            roster
                .may_write(&sealed.author, sealed.seq)
                .map_err(|refusal| refusal.to_string())?;
            // The office may write to any team's case.
            Ok((!roster.is_office(&sealed.author))
                .then(|| roster.member(&sealed.author).map(|m| m.team.clone()))
                .flatten())
        };
        let report = vault.apply_page(&changes, page.next, &admit)?;
        if page.more && page.next <= state.cursor {
            return Err(SyncError::Protocol(
                "the server asked for another page without moving the cursor".into(),
            ));
        }
        state.cursor = page.next;
        summary.received += report.applied as u64;
        summary.duplicates += report.duplicates as u64;
        summary.unreadable += report.unreadable as u64;
        summary.refused.extend(report.refused);
        progress.pulled(summary.received + summary.duplicates);
        if !page.more {
            break;
        }
    }
    state.last_sync_at = Some(now_rfc3339());
    summary.pending = vault.own_log_len()?.saturating_sub(state.acked);
    state.last_summary = Some(summary.line());
    vault.set_sync_state(&state)?;
    blocked.map_or(Ok(()), Err)
}

/// Own changes above `acked`, at most `max_count`, as many as fit in `max_bytes` (at least one).
fn batch(
    vault: &Vault,
    acked: u64,
    max_bytes: usize,
    max_count: usize,
) -> Result<Vec<Vec<u8>>, SyncError> {
    let mut out = Vec::new();
    let mut size = 0;
    for (_, bytes) in vault.outbox(acked, max_count)? {
        if !out.is_empty() && size + bytes.len() + 4 > max_bytes {
            break;
        }
        size += bytes.len() + 4;
        out.push(bytes);
    }
    Ok(out)
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
