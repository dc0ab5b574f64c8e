//! Commands about the vault itself: init, fields, wipe.

use std::io::{BufRead, IsTerminal, Write};

use cairn_crypto::KeyFileCost;
use cairn_vault::{Home, NewVault, Role, Vault};

use crate::cli::{InitArgs, WipeArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;

/// Opens the vault at the configured home, asking for the passphrase.
pub fn open(config: &Config) -> Result<Vault, CliError> {
    let home = Home::new(&config.home);
    if !home.exists() {
        // Say so before asking for a passphrase that would be useless.
        return Err(cairn_vault::VaultError::NotFound(config.home.clone()).into());
    }
    let pass = crate::passphrase::read(config.passphrase_file.as_deref(), false)?;
    tracing::info!("unlocking the key file");
    Ok(home.open(&pass)?)
}

pub fn init(config: &Config, args: InitArgs) -> Result<(), CliError> {
    let (team, role) = match &args.team {
        Some(team) => (cairn_model::validate_team(team)?, Role::Field),
        None => (cairn_protocol::OFFICE_TEAM.to_owned(), Role::Office),
    };
    let home = Home::new(&config.home);
    if home.key_file().exists() {
        return Err(cairn_vault::VaultError::AlreadyExists(config.home.clone()).into());
    }
    let pass = crate::passphrase::read(config.passphrase_file.as_deref(), true)?;
    let cost = args
        .kdf_cost
        .map_or(KeyFileCost::Calibrated, KeyFileCost::LogN);
    let vault = home.create(
        &pass,
        cost,
        NewVault {
            team,
            name: args.name,
            role,
        },
        time::OffsetDateTime::now_utc(),
    )?;
    let id = vault.keys().id();
    let what = match role {
        Role::Office => "the office".to_owned(),
        Role::Field => format!("team {}", vault.settings().team),
    };
    let mut out = format!(
        "Created a vault for {what} at {}\ndevice {} (reference tag {})\n",
        config.home.display(),
        id,
        id.tag()
    );
    if role == Role::Field {
        let line = cairn_protocol::DeviceLine::new(vault.keys(), vault.settings().name.clone())?;
        out.push_str(&format!(
            "Give the office this line to be admitted (`cairn id` prints it again):\n{}\ncode {}\n",
            line.to_text(),
            line.keys.short_code()
        ));
    }
    output::print(&out)
}

pub fn fields(json: bool) -> Result<(), CliError> {
    let fields = cairn_model::fields();
    if json {
        let list: Vec<_> = fields
            .iter()
            .map(|f| {
                let mut entry = serde_json::json!({
                    "key": f.key,
                    "type": f.ty.describe(),
                    "help": f.help,
                });
                if let cairn_model::FieldType::Choice(values) = f.ty {
                    entry["values"] = serde_json::json!(values);
                }
                entry
            })
            .collect();
        return output::json(&list);
    }
    let width = fields.iter().map(|f| f.key.len()).max().unwrap_or(0);
    let mut text = String::new();
    for f in fields {
        text.push_str(&format!("{:width$}  {}\n", f.key, f.ty.describe()));
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
    home.wipe()?;
    output::print(&format!("Wiped the vault at {}\n", config.home.display()))
}

pub fn check(config: &Config, json: bool) -> Result<(), CliError> {
    let vault = open(config)?;
    let report = vault.check()?;
    if json {
        return output::json(&serde_json::json!({
            "ok": true,
            "changes": report.changes,
            "cases": report.cases,
            "waiting": report.waiting,
        }));
    }
    let waiting = match report.waiting {
        0 => String::new(),
        n => format!(", {n} waiting for changes not received yet"),
    };
    output::print(&format!(
        "ok: {} changes verified and decrypted, {} cases match their log{waiting}\n",
        report.changes, report.cases
    ))
}
