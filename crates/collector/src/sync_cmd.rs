//! `cairn join`, `cairn sync`, `cairn status`.

use std::io::IsTerminal;
use std::time::Duration;

use cairn_protocol::{unix_now, Enrollment, Invite};
use cairn_sync::{apply_roster, Client, Options, Progress, Summary};
use cairn_vault::{Role, Vault};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::{JoinArgs, SyncArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::vault_cmd::open;

pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the network runtime: {e}")))
}

pub fn join(config: &Config, args: JoinArgs) -> Result<(), CliError> {
    let invite = Invite::parse(&args.invite)?;
    // The invite is the trust anchor, handed over in person: it must carry its own office's
    // valid signature and be unexpired before anything is sent.
    invite.verify(&invite.body.office.signing, unix_now())?;
    let mut vault = open(config)?;
    let runtime = runtime()?;
    let (team, server) = join_vault(&mut vault, invite, &runtime)?;
    output::print(&format!(
        "Joined team {team} on {server} as device {}\n",
        vault.keys().id().short()
    ))
}

/// Enrolls this vault with the invite's server and records the server, pin and roster.
/// Returns the team and the server URL.
pub fn join_vault(
    vault: &mut Vault,
    invite: Invite,
    runtime: &tokio::runtime::Runtime,
) -> Result<(String, String), CliError> {
    if vault.settings().role == Role::Office {
        return Err(CliError::usage(
            "this is the office's vault; devices join, the office does not",
        ));
    }
    let team = invite.body.team.clone();
    let server = invite.body.server.clone();
    let fingerprint = invite.body.fingerprint.clone();
    let office = invite.body.office.to_string();
    // Refuse a team mismatch before the invite is spent on the server.
    vault.check_team(&team)?;
    let enrollment = Enrollment::create(vault.keys(), invite, vault.settings().name.clone())?;
    let client = Client::new(&server, &fingerprint)?;
    let options = Options::default();
    let mut summary = Summary::default();
    // Enrollment is idempotent for this device and invite, so a dropped link is retried.
    runtime.block_on(cairn_sync::retry(&options, &mut summary, || {
        client.enroll(&enrollment)
    }))?;
    vault.set_team(&team)?;
    let mut state = vault.sync_state()?;
    state.server = Some(server.clone());
    state.fingerprint = Some(fingerprint);
    state.office = Some(office);
    vault.set_sync_state(&state)?;
    let statements = runtime.block_on(cairn_sync::retry(&options, &mut summary, || {
        client.roster(vault.keys())
    }))?;
    apply_roster(vault, &mut state, &statements)?;
    vault.reseal_unsent()?;
    Ok((team, server))
}

pub fn sync(config: &Config, args: SyncArgs) -> Result<(), CliError> {
    let mut vault = open(config)?;
    let runtime = runtime()?;
    let options = Options::default();
    loop {
        let bars = Bars::new();
        let result = runtime.block_on(cairn_sync::sync(&mut vault, &options, &bars));
        bars.finish();
        let (summary, outcome) = match result {
            Ok(summary) => (summary, Ok(())),
            Err((error, summary)) => (summary, Err(CliError::from(error))),
        };
        if args.json {
            let line =
                serde_json::to_string(&summary).map_err(|e| CliError::failure(e.to_string()))?;
            output::print(&format!("{line}\n"))?;
        } else {
            output::print(&format!("{}\n", summary.line()))?;
        }
        warn_roster(&summary);
        if !args.watch {
            return outcome;
        }
        if let Err(e) = outcome {
            eprintln!("cairn: {}", e.message);
        }
        let stop = runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(args.interval)) => false,
                _ = tokio::signal::ctrl_c() => true,
            }
        });
        if stop {
            return Ok(());
        }
    }
}

fn warn_roster(summary: &Summary) {
    for problem in &summary.roster_problems {
        eprintln!("cairn: warning: roster statement refused: {problem}");
    }
    for warning in &summary.warnings {
        eprintln!("cairn: warning: {warning}");
    }
}

pub fn status(config: &Config, json_out: bool) -> Result<(), CliError> {
    let vault = open(config)?;
    let state = vault.sync_state()?;
    let pending = vault.own_log_len()?.saturating_sub(state.acked);
    let mut members = Vec::new();
    if state.office.is_some() {
        let roster = cairn_sync::stored_roster(&state)?;
        for m in roster.members() {
            members.push(json!({
                "device": m.id.to_string(),
                "team": m.team,
                "name": m.name,
                "revoked_after": m.revoked,
            }));
        }
    }
    let value = json!({
        "device": vault.keys().id().to_string(),
        "tag": vault.keys().id().tag(),
        "role": vault.settings().role,
        "team": vault.settings().team,
        "server": state.server,
        "pending": pending,
        "acked": state.acked,
        "cursor": state.cursor,
        "last_sync_at": state.last_sync_at,
        "last_summary": state.last_summary,
        "roster": members,
    });
    if json_out {
        return output::json(&value);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("never").to_string();
    let mut out = format!(
        "device   {} (tag {}, {} of team {})\nserver   {}\npending  {} change(s) not yet on the server\nlast sync {}: {}\n",
        vault.keys().id(),
        vault.keys().id().tag(),
        match vault.settings().role {
            Role::Office => "office",
            Role::Field => "field device",
        },
        vault.settings().team,
        state.server.as_deref().unwrap_or("none: run `cairn join INVITE`"),
        pending,
        text(&value["last_sync_at"]),
        state.last_summary.as_deref().unwrap_or("-"),
    );
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

/// Progress bars on a terminal; nothing otherwise.
struct Bars {
    push: Option<ProgressBar>,
    pull: Option<ProgressBar>,
}

impl Bars {
    fn new() -> Bars {
        if !std::io::stderr().is_terminal() {
            return Bars {
                push: None,
                pull: None,
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
        }
    }

    fn finish(&self) {
        for bar in [&self.push, &self.pull].into_iter().flatten() {
            bar.finish_and_clear();
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
}
