//! Commands about the vault itself: init, fields, wipe.

use std::io::{BufRead, IsTerminal, Write};

use cairn_crypto::KeyFileCost;
use cairn_vault::{Home, NewVault, Role, Vault};

use crate::cli::{CheckArgs, InitArgs, UnlockArgs, WipeArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;

/// Opens the vault at the configured home: with the keys its unlock agent keeps when one
/// runs, else asking for the passphrase.
pub fn open(config: &Config) -> Result<Vault, CliError> {
    let home = existing(config)?;
    let vault = match crate::agent::fetch(&home).map(|keys| home.open_unlocked(keys)) {
        Some(Ok(vault)) => vault,
        other => {
            if let Some(Err(e)) = other {
                tracing::info!(error = %e, "the agent's keys did not open the vault");
            }
            let pass = config.passphrase.read(false)?;
            tracing::info!("unlocking the key file");
            home.open(&pass)?
        }
    };
    if let Some(said) = vault.completed() {
        eprintln!("cairn: warning: {said}");
    }
    Ok(vault)
}

/// Opens the vault to read out what it holds even if it does not check (see
/// [`Home::open_as_found`]), saying so; nothing can be written through it.
pub fn open_as_found(config: &Config) -> Result<Vault, CliError> {
    let home = existing(config)?;
    let keys = match crate::agent::fetch(&home) {
        Some(keys) => keys,
        None => {
            let pass = config.passphrase.read(false)?;
            home.unlock(&pass)?
        }
    };
    let (vault, problem) = home.open_as_found(keys)?;
    if let Some(said) = vault.completed() {
        eprintln!("cairn: warning: {said}");
    }
    if let Some(problem) = problem {
        eprintln!("cairn: warning: {problem}; what it holds is read as found");
    }
    Ok(vault)
}

/// The configured home, if a vault is there: said before asking for a passphrase that would
/// be useless.
fn existing(config: &Config) -> Result<Home, CliError> {
    let home = Home::new(&config.home);
    if !home.exists() {
        return Err(cairn_vault::VaultError::NotFound(config.home.clone()).into());
    }
    Ok(home)
}

/// `cairn unlock`: the passphrase once, the keys to a new agent.
pub fn unlock(config: &Config, args: UnlockArgs) -> Result<(), CliError> {
    let idle = crate::office::parse_duration(&args.idle)?;
    let home = existing(config)?;
    let pass = config.passphrase.read(false)?;
    let keys = home.unlock(&pass)?;
    let socket = crate::agent::start(&home, &keys, std::time::Duration::from_secs(idle))?;
    tracing::info!(socket = %socket.display(), "unlock agent started");
    output::print(&format!(
        "Unlocked {}: commands need no passphrase until {} pass without a command, or `cairn lock`.\n",
        config.home.display(),
        args.idle.trim()
    ))
}

/// `cairn lock`.
pub fn lock(config: &Config) -> Result<(), CliError> {
    let home = existing(config)?;
    let text = if crate::agent::lock(&home)? {
        "Locked: the unlock agent has ended; commands ask for the passphrase again.\n"
    } else {
        "Not unlocked: no agent was running for this vault.\n"
    };
    output::print(text)
}

/// `cairn completions SHELL`, from the clap definitions.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "cairn", &mut script);
    output::print(&String::from_utf8_lossy(&script))
}

/// `cairn man`: the manual page, or with `out` one page per command, from the clap definitions.
pub fn man(out: Option<&std::path::Path>) -> Result<(), CliError> {
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    let failed = |e: std::io::Error| CliError::failure(format!("cannot write the manual: {e}"));
    if let Some(dir) = out {
        clap_mangen::generate_to(command, dir).map_err(failed)?;
        return output::print(&format!("Wrote the manual pages into {}\n", dir.display()));
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(failed)?;
    output::print(&String::from_utf8_lossy(&page))
}

pub fn init(config: &Config, args: InitArgs) -> Result<(), CliError> {
    let (team, role) = match &args.team {
        Some(team) => (cairn_model::validate_team(team)?, Role::Field),
        None if args.staff => (cairn_protocol::OFFICE_TEAM.to_owned(), Role::Staff),
        None => (cairn_protocol::OFFICE_TEAM.to_owned(), Role::Office),
    };
    let home = Home::new(&config.home);
    if home.key_file().exists() {
        return Err(cairn_vault::VaultError::AlreadyExists(config.home.clone()).into());
    }
    let cost = args
        .kdf_cost
        .map_or(KeyFileCost::Calibrated, KeyFileCost::LogN);
    let new = NewVault {
        team,
        name: args.name,
        role,
    };
    let now = time::OffsetDateTime::now_utc();
    let vault = match &args.key_file {
        // The keys of a lost vault, kept: opened with its passphrase, which the new one keeps.
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
            let pass = config.passphrase.read(false)?;
            let keys = cairn_crypto::unlock_keys(&bytes, &pass)
                .map_err(|e| CliError::failure(format!("{}: {e}", path.display())))?;
            home.create_with_keys(&pass, cost, new, now, keys)?
        }
        None => {
            let pass = config.passphrase.read(true)?;
            crate::input::warn_if_weak(cairn_crypto::ExposeSecret::expose_secret(&pass));
            home.create(&pass, cost, new, now)?
        }
    };
    let id = vault.keys().id();
    let what = match role {
        Role::Office => "the office".to_owned(),
        Role::Staff => "a staff device of the office".to_owned(),
        Role::Field => format!("team {}", vault.settings().team),
    };
    let mut out = format!(
        "Created a vault for {what} at {}\ndevice {} (reference tag {})\n",
        config.home.display(),
        id,
        id.tag()
    );
    if role == Role::Office {
        // Printed now, while the key file is open: the server's administrator needs them
        // first, and later printing them asks for the passphrase again.
        out.push_str(&format!(
            "The office's public keys, for `cairn-server init --office-key` (`cairn office pubkey --out office.pub` writes them again):\n{}",
            cairn_protocol::OfficeKeys::from_keys(vault.keys())
        ));
    }
    if role != Role::Office {
        let line = cairn_protocol::DeviceLine::new(vault.keys(), vault.settings().name.clone())?;
        let how = if role == Role::Staff {
            " with `cairn office admit --staff`"
        } else {
            ""
        };
        out.push_str(&format!(
            "Give the office this line to be admitted{how} (`cairn id` prints it again):\n{}\ncode {}\n",
            line.to_text(),
            line.keys.short_code()
        ));
    }
    output::print(&out)
}

pub fn fields(json: bool) -> Result<(), CliError> {
    let fields = cairn_model::fields();
    let l = crate::labels::get();
    if json {
        let list: Vec<_> = fields
            .iter()
            .map(|f| {
                let mut entry = serde_json::json!({
                    "key": f.key,
                    "label": l.field(f.key),
                    "type": f.ty.describe(),
                    "help": f.help,
                });
                if let cairn_model::FieldType::Choice(values) = f.ty {
                    entry["values"] = serde_json::json!(values);
                    let labels: serde_json::Map<_, _> = (values.iter())
                        .map(|v| ((*v).to_owned(), l.value(f.key, v).into()))
                        .collect();
                    entry["value_labels"] = labels.into();
                }
                entry
            })
            .collect();
        return output::json(&list);
    }
    let width = fields.iter().map(|f| f.key.len()).max().unwrap_or(0);
    let label_width = (fields.iter())
        .map(|f| unicode_width::UnicodeWidthStr::width(l.field(f.key)))
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for f in fields {
        let label = l.field(f.key);
        let pad = label_width - unicode_width::UnicodeWidthStr::width(label);
        text.push_str(&format!(
            "{:width$}  {label}{:pad$}  {}\n",
            f.key,
            "",
            f.ty.describe()
        ));
    }
    text.push_str(
        "\nLists (append-only): --note TEXT, `cairn case custody`, `cairn case source`.\n",
    );
    output::print(&text)
}

pub fn wipe(config: &Config, args: WipeArgs) -> Result<(), CliError> {
    let home = Home::new(&config.home);
    if !home.exists() {
        return Err(CliError::failure(format!(
            "no vault at {}; nothing to wipe",
            config.home.display()
        )));
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::usage(
                "wipe needs confirmation: run it on a terminal, or pass --yes",
            ));
        }
        eprint!(
            "This destroys the vault at {} and every case in it that was not synced.\nType WIPE to confirm: ",
            config.home.display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CliError::failure(format!("cannot read the answer: {e}")))?;
        if answer.trim() != "WIPE" {
            return Err(CliError::failure("not confirmed; nothing was destroyed"));
        }
    }
    // The agent's keys would open nothing once the key file is gone; end it all the same.
    if let Err(e) = crate::agent::lock(&home) {
        tracing::info!(error = %e.message, "could not end the unlock agent");
    }
    home.wipe()?;
    output::print(&format!("Wiped the vault at {}\n", config.home.display()))
}

pub fn check(config: &Config, args: &CheckArgs) -> Result<(), CliError> {
    let vault = open(config)?;
    // Said before the local check runs, which can be long: the deep one needs a server.
    if args.deep && vault.endpoint()?.server.is_none() {
        return Err(CliError::failure(
            "`--deep` fetches the signed changes from the server, and this vault has not joined one; run `cairn join ADMISSION` first, or `cairn check` without `--deep`",
        ));
    }
    let report = vault.check()?;
    // The vault is whole; where it and the office's receipt disagree is said beside it.
    let divergences = cairn_sync::divergences(&vault)?;
    let deep = match args.deep {
        true => Some(deep_check(config, &vault)?),
        false => None,
    };
    let failed = deep.as_ref().map(failed_cases).unwrap_or_default();
    if args.json {
        let mut value = serde_json::json!({
            "ok": failed.is_empty(),
            "changes": report.changes,
            "cases": report.cases,
            "waiting": report.waiting,
            "divergences": divergences,
        });
        if let Some(deep) = &deep {
            value["deep"] =
                serde_json::to_value(deep).map_err(|e| CliError::failure(e.to_string()))?;
        }
        output::json(&value)?;
        return deep_outcome(&failed);
    }
    let waiting = match report.waiting {
        0 => String::new(),
        n => format!(", {n} waiting for changes not received yet"),
    };
    for divergence in &divergences {
        eprintln!("cairn: warning: {divergence}");
    }
    output::print(&format!(
        "ok: {} changes verified and decrypted, {} cases match their log{waiting}\n",
        report.changes, report.cases
    ))?;
    let Some(deep) = deep else {
        return Ok(());
    };
    for case in deep.failed() {
        for problem in &case.problems {
            output::eprint(&format!("cairn: {problem}"));
        }
    }
    if failed.is_empty() {
        output::print(&match deep.cases.len() {
            0 => "deep: no case here was loaded from an office checkpoint; nothing more to fetch\n".to_owned(),
            n => format!(
                "deep: ok: {} signed changes of {n} cases loaded from office checkpoints fetched and verified; they make the documents the office sent\n",
                deep.changes()
            ),
        })?;
    }
    deep_outcome(&failed)
}

/// The deep check over the network, with a bar while it goes.
fn deep_check(
    config: &Config,
    vault: &cairn_vault::Vault,
) -> Result<cairn_sync::DeepReport, CliError> {
    let progress = DeepBar(std::cell::OnceCell::new());
    let report =
        cairn_sync::BlockingSync::new()?.deep_check(vault, &config.sync_options(), &progress);
    if let Some(bar) = progress.0.get() {
        bar.finish();
    }
    Ok(report?)
}

/// A bar for the cases of a deep check, made at the first report, which brings the total.
struct DeepBar(std::cell::OnceCell<crate::progress::Bar>);

impl cairn_sync::Progress for DeepBar {
    fn pushed(&self, _: u64, _: u64) {}
    fn pulled(&self, _: u64) {}
    fn deep_checked(&self, done: u64, total: u64) {
        self.0
            .get_or_init(|| crate::progress::Bar::new("checking", total))
            .set(done);
    }
}

/// The references of the cases a deep check failed.
fn failed_cases(report: &cairn_sync::DeepReport) -> Vec<String> {
    report.failed().map(|c| c.case.clone()).collect()
}

/// Exit 1 naming the cases that failed, if any did.
fn deep_outcome(failed: &[String]) -> Result<(), CliError> {
    if failed.is_empty() {
        return Ok(());
    }
    Err(CliError::failure(format!(
        "the deep check failed for {} case(s): {}; their signed changes on the server do not make what the office's checkpoint brought",
        failed.len(),
        failed.join(", ")
    )))
}
