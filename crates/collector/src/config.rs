//! Settings from the TOML file, overridden by environment variables and flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::CliError;

/// `config.toml`; every key is optional. See `config/collector.example.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The vault's directory.
    pub home: Option<PathBuf>,
    /// A file holding the passphrase (for unattended use; protect it like the passphrase).
    pub passphrase_file: Option<PathBuf>,
    /// The largest file `cairn case attach` accepts, in bytes (default 2 GiB).
    pub attachment_limit: Option<u64>,
}

/// The largest attachment accepted unless the configuration says otherwise: 2 GiB.
pub const DEFAULT_ATTACHMENT_LIMIT: u64 = 2 << 30;

/// What the commands use, after precedence: flag or environment, then file, then default.
#[derive(Debug)]
pub struct Config {
    pub home: PathBuf,
    pub passphrase_file: Option<PathBuf>,
    pub attachment_limit: u64,
}

impl Config {
    pub fn resolve(
        flag_config: Option<&Path>,
        flag_home: Option<PathBuf>,
        flag_passphrase_file: Option<PathBuf>,
    ) -> Result<Config, CliError> {
        let dirs = directories::BaseDirs::new();
        let file = match flag_config {
            Some(path) => Some(load(path)?),
            None => match dirs
                .as_ref()
                .map(|d| d.config_dir().join("cairn/config.toml"))
            {
                Some(path) if path.exists() => Some(load(&path)?),
                _ => None,
            },
        }
        .unwrap_or_default();
        let home = flag_home
            .or(file.home)
            .or_else(|| dirs.as_ref().map(|d| d.data_dir().join("cairn")))
            .ok_or_else(|| {
                CliError::usage("cannot find a home directory; pass --home DIR or set CAIRN_HOME")
            })?;
        Ok(Config {
            home,
            passphrase_file: flag_passphrase_file.or(file.passphrase_file),
            attachment_limit: file.attachment_limit.unwrap_or(DEFAULT_ATTACHMENT_LIMIT),
        })
    }
}

fn load(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::failure(format!(
            "cannot read the configuration {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "the configuration {} is invalid: {}",
            path.display(),
            e.message()
        ))
    })
}
