//! Getting the passphrase, from the first of: `--passphrase-file`, CAIRN_PASSPHRASE,
//! CAIRN_PASSPHRASE_FILE, the configuration's `passphrase_file`, a prompt on the terminal.
//! What is typed on the command line wins over the environment, which wins over the file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use cairn_crypto::{ExposeSecret, SecretString};

use crate::error::CliError;

const ENV: &str = "CAIRN_PASSPHRASE";
const ENV_FILE: &str = "CAIRN_PASSPHRASE_FILE";

/// Where the passphrase is read from; the passphrase itself is read only when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file: given with `--passphrase-file`, in CAIRN_PASSPHRASE_FILE or in the
    /// configuration.
    File(PathBuf),
    /// The environment variable CAIRN_PASSPHRASE.
    Environment,
    /// Asked on the terminal (refused without one).
    Prompt,
}

impl Source {
    /// The source that wins: the flag, then the environment, then the configuration file.
    pub fn resolve(flag: Option<PathBuf>, configured: Option<PathBuf>) -> Source {
        let set = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
        if let Some(path) = flag {
            Source::File(path)
        } else if set(ENV).is_some() {
            Source::Environment
        } else if let Some(path) = set(ENV_FILE).or(configured.map(PathBuf::into_os_string)) {
            Source::File(path.into())
        } else {
            Source::Prompt
        }
    }

    /// Reads the passphrase once. `confirm` asks twice on a terminal (for `init`).
    pub fn read(&self, confirm: bool) -> Result<SecretString, CliError> {
        let pass = match self {
            Source::File(path) => from_file(path)?,
            Source::Environment => match std::env::var(ENV) {
                Ok(value) => SecretString::from(value),
                Err(_) => {
                    return Err(CliError::usage(
                        "CAIRN_PASSPHRASE is not valid UTF-8 text; set it again, or pass --passphrase-file FILE",
                    ))
                }
            },
            Source::Prompt if std::io::stdin().is_terminal() => prompt(confirm)?,
            Source::Prompt => return Err(CliError::usage(
                "no passphrase: run cairn on a terminal (`cairn unlock` there spares the commands after it), set CAIRN_PASSPHRASE, or pass --passphrase-file FILE",
            )),
        };
        if pass.expose_secret().is_empty() {
            return Err(CliError::usage(
                "the passphrase is empty; choose a passphrase",
            ));
        }
        Ok(pass)
    }
}

fn from_file(path: &Path) -> Result<SecretString, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::failure(format!(
            "cannot read the passphrase file {}: {e}",
            path.display()
        ))
    })?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    Ok(SecretString::from(
        line.strip_suffix('\r').unwrap_or(line).to_owned(),
    ))
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
