//! Getting the passphrase: CAIRN_PASSPHRASE, a passphrase file, or a prompt on the terminal.

use std::io::IsTerminal;
use std::path::Path;

use cairn_crypto::{ExposeSecret, SecretString};

use crate::error::CliError;

const ENV: &str = "CAIRN_PASSPHRASE";

/// Reads the passphrase once. `confirm` asks twice on a terminal (for `init`).
pub fn read(file: Option<&Path>, confirm: bool) -> Result<SecretString, CliError> {
    let pass = if let Ok(value) = std::env::var(ENV) {
        SecretString::from(value)
    } else if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::failure(format!(
                "cannot read the passphrase file {}: {e}",
                path.display()
            ))
        })?;
        let line = text.strip_suffix('\n').unwrap_or(&text);
        SecretString::from(line.strip_suffix('\r').unwrap_or(line).to_owned())
    } else if std::io::stdin().is_terminal() {
        prompt(confirm)?
    } else {
        return Err(CliError::usage(
            "no passphrase: run cairn on a terminal (`cairn unlock` there spares the commands after it), set CAIRN_PASSPHRASE, or pass --passphrase-file FILE",
        ));
    };
    if pass.expose_secret().is_empty() {
        return Err(CliError::usage(
            "the passphrase is empty; choose a passphrase",
        ));
    }
    Ok(pass)
}

fn prompt(confirm: bool) -> Result<SecretString, CliError> {
    let ask = |label: &str| {
        rpassword::prompt_password(label)
            .map(SecretString::from)
            .map_err(|e| CliError::failure(format!("cannot read the passphrase: {e}")))
    };
    let first = ask("Passphrase: ")?;
    if confirm {
        let second = ask("Passphrase again: ")?;
        if first.expose_secret() != second.expose_secret() {
            return Err(CliError::usage(
                "the two passphrases differ; nothing was created. Run the command again",
            ));
        }
    }
    Ok(first)
}
