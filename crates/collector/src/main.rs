//! `cairn`: the command line for field teams and the central office.
//!
//! A thin layer over the library crates: it parses arguments, finds the passphrase, calls the
//! vault, and prints. It holds no cryptography and no storage logic of its own.
#![forbid(unsafe_code)]

mod agent;
mod attach;
mod case;
mod cli;
mod config;
mod demo;
mod drafts;
mod error;
mod export;
mod form;
mod import;
mod input;
mod labels;
mod line;
mod link;
mod matching;
mod office;
mod office_key;
mod output;
mod passphrase;
mod places;
mod progress;
mod qr;
mod report;
mod sync_cmd;
mod vault_cmd;
mod web;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let code = match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::output::eprint(&format!("cairn: {}", e.message));
            ExitCode::from(e.code)
        }
    };
    // On a tablet memory is what runs out first: say what this command took.
    if let Some(kib) = peak_memory_kib() {
        tracing::info!(peak_rss_kib = kib, "peak memory");
    }
    code
}

/// This process's peak resident memory, where the system tells it (Linux).
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::AgentServe(args) => return agent::serve(args),
        Command::Completions(args) => return vault_cmd::completions(args.shell),
        Command::Man(args) => return vault_cmd::man(args.out.as_deref()),
        _ => {}
    }
    let config = Config::resolve(cli.config.as_deref(), cli.home, cli.passphrase_file)?;
    tracing::debug!(home = %config.home.display(), "resolved configuration");
    labels::init(config.language.as_deref());
    match cli.command {
        Command::Init(args) => vault_cmd::init(&config, args),
        Command::Case(cmd) => case::run(&config, cmd),
        Command::Fields(args) => vault_cmd::fields(args.json),
        Command::Check(args) => vault_cmd::check(&config, &args),
        Command::Wipe(args) => vault_cmd::wipe(&config, args),
        Command::Demo => demo::run(),
        Command::Office(cmd) => office::run(&config, cmd),
        Command::Join(args) => sync_cmd::join(&config, args),
        Command::Id(args) => sync_cmd::id(&config, args.json),
        Command::Sync(args) => sync_cmd::sync(&config, args),
        Command::Status(args) => sync_cmd::status(&config, args.json),
        Command::Report(args) => report::run(&config, args),
        Command::Export(args) => export::run(&config, args),
        Command::Unlock(args) => vault_cmd::unlock(&config, args),
        Command::Lock => vault_cmd::lock(&config),
        Command::Places(args) => places::list(&config, args.json),
        Command::AgentServe(_) | Command::Completions(_) | Command::Man(_) => Ok(()),
    }
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "info",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "cairn={level},cairn_vault={level},cairn_sync={level}"
        )))
        .with_writer(std::io::stderr)
        // A log line lost on a full disk must not panic the command (see cairn-server).
        .log_internal_errors(false)
        .with_ansi(colour())
        .try_init();
}

/// Colour codes only for a person at a terminal, and never when NO_COLOR is set
/// (https://no-color.org): piped to a file they are noise.
fn colour() -> bool {
    let asked_none = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !asked_none && std::io::IsTerminal::is_terminal(&std::io::stderr())
}
