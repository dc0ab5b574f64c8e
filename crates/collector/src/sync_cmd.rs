//! `cairn join`, `cairn sync`, `cairn status`.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::time::Duration;

use cairn_sync::blocking::Outcome;
use cairn_sync::{BlockingSync, Options, Progress, Summary};
use cairn_vault::Role;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::{JoinArgs, SyncArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::vault_cmd::open;

pub fn join(config: &Config, args: JoinArgs) -> Result<(), CliError> {
    // Checked before the passphrase is asked for: a bad admission needs no vault.
    let admission = cairn_sync::read_admission(&args.admission)?;
    let mut vault = open(config)?;
    let joined = BlockingSync::new()?.join(&mut vault, admission, &config.sync_options())?;
    for warning in &joined.warnings {
        output::eprint(&format!("cairn: warning: {warning}"));
    }
    output::print(&format!(
        "Joined team {} on {} as device {}\n",
        joined.team,
        joined.server,
        vault.keys().id().short()
    ))
}

pub fn id(config: &Config, json_out: bool) -> Result<(), CliError> {
    let vault = open(config)?;
    let line = cairn_protocol::DeviceLine::new(vault.keys(), vault.settings().name.clone())?;
    let code = line.keys.short_code();
    if json_out {
        return output::json(&json!({
            "line": line.to_text(),
            "code": code,
            "device": vault.keys().id().to_string(),
        }));
    }
    output::print(&format!(
        "{}\ncode {code}\nGive the line to the office; if they are not in the room, read them the code.\n",
        line.to_text()
    ))
}

pub fn sync(config: &Config, args: SyncArgs) -> Result<(), CliError> {
    let mut vault = open(config)?;
    let client = BlockingSync::new()?;
    let options = Options {
        with_attachments: args.with_attachments,
        ..config.sync_options()
    };
    if !args.watch {
        let bars = Bars::new();
        let outcome = client.sync(&mut vault, &options, &bars);
        bars.finish();
        return report(&args, outcome)?;
    }
    let interval = Duration::from_secs(args.interval);
    let stopped = client.watch(
        &mut vault,
        &options,
        interval,
        Bars::new,
        |bars, outcome| {
            bars.finish();
            match report(&args, outcome) {
                // A failed round is told, and the next one tried.
                Ok(Err(e)) => {
                    output::eprint(&format!("cairn: {}", e.message));
                    ControlFlow::Continue(())
                }
                Ok(Ok(())) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(e),
            }
        },
    );
    // Stopped by Ctrl-C, or by output that could not be written.
    stopped.map_or(Ok(()), Err)
}

/// Prints one sync's summary and warnings. The outer error is a failure to print; the inner
/// one is the sync's own. A failed sync prints no summary (it would read as a success): its
/// error says what the sync did before it stopped.
fn report(args: &SyncArgs, outcome: Outcome) -> Result<Result<(), CliError>, CliError> {
    let summary = match outcome {
        Ok(summary) => summary,
        Err((error, summary)) => {
            warn_roster(&summary);
            // A full disk says itself how much was kept.
            let said = matches!(error, cairn_sync::SyncError::DiskFull { .. });
            let mut e = CliError::from(error);
            if let Some(done) = done_before(&summary).filter(|_| !said) {
                e.message = format!("{} ({done})", e.message);
            }
            return Ok(Err(e));
        }
    };
    if args.json {
        let line = serde_json::to_string(&summary).map_err(|e| CliError::failure(e.to_string()))?;
        output::print(&format!("{line}\n"))?;
    } else {
        output::print(&format!("{}\n", summary.line()))?;
    }
    warn_roster(&summary);
    Ok(Ok(()))
}

/// What a sync that failed had done, if anything is worth saying: what it sent, received and
/// left pending.
fn done_before(summary: &Summary) -> Option<String> {
    let mut done = Vec::new();
    if summary.sent > 0 {
        done.push(format!("{} sent", summary.sent));
    }
    if summary.roster_sent > 0 {
        done.push(format!("{} roster statement(s) sent", summary.roster_sent));
    }
    if summary.received > 0 {
        done.push(format!("{} received and kept", summary.received));
    }
    if !summary.refused.is_empty() {
        done.push(format!("{} refused", summary.refused.len()));
    }
    if summary.pending > 0 {
        done.push(format!("{} still pending", summary.pending));
    }
    if done.is_empty() {
        return None;
    }
    Some(format!("before it stopped: {}", done.join(", ")))
}

fn warn_roster(summary: &Summary) {
    for problem in &summary.roster_problems {
        output::eprint(&format!(
            "cairn: warning: roster statement refused: {problem}"
        ));
    }
    for warning in &summary.warnings {
        output::eprint(&format!("cairn: warning: {warning}"));
    }
}

pub fn status(config: &Config, json_out: bool) -> Result<(), CliError> {
    let vault = open(config)?;
    let state = cairn_sync::status(&vault)?;
    let members: Vec<serde_json::Value> = state
        .members
        .iter()
        .map(|m| {
            json!({
                "device": m.id.to_string(),
                "team": m.team,
                "name": m.name,
                "revoked_after": m.revoked,
            })
        })
        .collect();
    let value = json!({
        "device": vault.keys().id().to_string(),
        "tag": vault.keys().id().tag(),
        "role": vault.settings().role,
        "team": vault.settings().team,
        "server": state.server,
        "pending": state.pending,
        "acked": state.acked,
        "cursor": state.cursor,
        "last_sync_at": state.last_sync_at,
        "last_summary": state.last_summary,
        "office_confirmed": state.office_confirmed.map(|(upto, at)| json!({"upto": upto, "at": at})),
        "roster_warnings": state.roster_warnings,
        "delivery_warnings": state.delivery_warnings,
        "roster": members,
    });
    if json_out {
        return output::json(&value);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("never").to_string();
    let name = vault
        .settings()
        .name
        .as_deref()
        .map(|n| format!("{n}, "))
        .unwrap_or_default();
    let mut out = format!(
        "device   {} ({name}tag {}, {} of team {})\nserver   {}\npending  {} change(s) not yet on the server\nlast sync {}: {}\n",
        vault.keys().id(),
        vault.keys().id().tag(),
        match vault.settings().role {
            Role::Office => "office",
            Role::Staff => "staff device",
            Role::Field => "field device",
        },
        vault.settings().team,
        state.server.as_deref().unwrap_or("none: run `cairn join ADMISSION`"),
        state.pending,
        text(&value["last_sync_at"]),
        state.last_summary.as_deref().unwrap_or("-"),
    );
    if vault.settings().role != Role::Office && state.server.is_some() {
        out.push_str(&match state.office_confirmed {
            // A receipt that names none of this device's changes: "1..0" would read as a range.
            Some((0, at)) => format!(
                "office   has confirmed none of this device's changes yet (receipt of {}); the server says it holds {} change(s)\n",
                rfc3339(at),
                state.acked
            ),
            Some((upto, at)) => format!(
                "office   confirmed holding changes 1..{upto} of this device (receipt of {}); the server says {}\n",
                rfc3339(at),
                state.acked
            ),
            None => format!(
                "office   has confirmed nothing yet; the server says it holds {} change(s)\n",
                state.acked
            ),
        });
    }
    for warning in state.roster_warnings.iter().chain(&state.delivery_warnings) {
        out.push_str(&format!("WARNING  {warning}\n"));
    }
    if !members.is_empty() {
        out.push_str(&format!("roster   {} device(s):\n", members.len()));
        for m in &members {
            let revoked = match m["revoked_after"].as_u64() {
                Some(n) => format!("  REVOKED after change {n}"),
                None => String::new(),
            };
            let device = text(&m["device"]);
            out.push_str(&format!(
                "  {}  {:8}  {}{}\n",
                &device[..12.min(device.len())],
                text(&m["team"]),
                m["name"].as_str().unwrap_or(""),
                revoked
            ));
        }
    }
    output::print(&out)
}

fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Progress bars on a terminal; nothing otherwise.
pub(crate) struct Bars {
    push: Option<ProgressBar>,
    pull: Option<ProgressBar>,
    /// Made at the first report, which brings the total.
    attachments: std::cell::OnceCell<crate::progress::Bar>,
}

impl Bars {
    pub(crate) fn new() -> Bars {
        if !std::io::stderr().is_terminal() {
            return Bars {
                push: None,
                pull: None,
                attachments: std::cell::OnceCell::new(),
            };
        }
        let push = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("sending   {bar:30} {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let pull = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("receiving {spinner} {pos} change(s)")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Bars {
            push: Some(push),
            pull: Some(pull),
            attachments: std::cell::OnceCell::new(),
        }
    }

    pub(crate) fn finish(&self) {
        for bar in [&self.push, &self.pull].into_iter().flatten() {
            bar.finish_and_clear();
        }
        if let Some(bar) = self.attachments.get() {
            bar.finish();
        }
    }
}

impl Progress for Bars {
    fn pushed(&self, done: u64, total: u64) {
        if let Some(bar) = &self.push {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    fn pulled(&self, count: u64) {
        if let Some(bar) = &self.pull {
            bar.set_position(count);
        }
    }

    fn attachments(&self, done: u64, total: u64) {
        self.attachments
            .get_or_init(|| crate::progress::Bar::bytes("attachments", total))
            .set(done);
    }
}
