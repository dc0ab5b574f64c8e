//! Settings from the TOML file, overridden by environment variables and flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Place codes and their names, `KHR = "Khan Younis"`.
    #[serde(default)]
    pub places: BTreeMap<String, String>,
    /// The largest file `cairn case attach` accepts, in bytes (default 2 GiB).
    pub attachment_limit: Option<u64>,
    /// Seconds a sync waits for the server to take the connection and answer (default 10).
    pub connect_timeout: Option<u64>,
    /// Seconds a sync waits between two reads of the server's answer (default 30).
    pub read_timeout: Option<u64>,
    /// The language of the form's labels (`hy`, `ar`); default: the locale's (LANG).
    pub language: Option<String>,
}

/// The largest attachment accepted unless the configuration says otherwise: 2 GiB.
pub const DEFAULT_ATTACHMENT_LIMIT: u64 = 2 << 30;

/// What the commands use, after precedence: flag, then environment, then file, then default.
#[derive(Debug)]
pub struct Config {
    pub home: PathBuf,
    /// Where the passphrase comes from when no unlock agent holds the keys.
    pub passphrase: crate::passphrase::Source,
    /// Place codes (checked) and their names.
    pub places: BTreeMap<String, String>,
    pub attachment_limit: u64,
    /// How long a sync waits on the server.
    pub timeouts: cairn_sync::Timeouts,
    /// The language of labels asked for in the file, if any (else the locale's).
    pub language: Option<String>,
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
        let mut places = BTreeMap::new();
        for (code, name) in file.places {
            let code = cairn_model::validate_place(&code)
                .map_err(|e| CliError::usage(format!("the configuration's [places]: {e}")))?;
            places.insert(code, name.trim().to_owned());
        }
        let defaults = cairn_sync::Timeouts::default();
        let timeouts = cairn_sync::Timeouts {
            connect: seconds("CAIRN_CONNECT_TIMEOUT", file.connect_timeout)?
                .unwrap_or(defaults.connect),
            read: seconds("CAIRN_READ_TIMEOUT", file.read_timeout)?.unwrap_or(defaults.read),
        };
        Ok(Config {
            home,
            passphrase: crate::passphrase::Source::resolve(
                flag_passphrase_file,
                file.passphrase_file,
            ),
            places,
            attachment_limit: file.attachment_limit.unwrap_or(DEFAULT_ATTACHMENT_LIMIT),
            timeouts,
            language: file.language,
        })
    }

    /// How a sync runs with this configuration.
    pub fn sync_options(&self) -> cairn_sync::Options {
        cairn_sync::Options {
            timeouts: self.timeouts,
            ..cairn_sync::Options::default()
        }
    }
}

/// A timeout in whole seconds from the environment variable `var`, else from the file.
fn seconds(var: &str, file: Option<u64>) -> Result<Option<Duration>, CliError> {
    let (value, origin) = match std::env::var(var) {
        Ok(text) => (text.trim().parse::<u64>().ok(), var),
        Err(_) => match file {
            Some(n) => (Some(n), "the configuration"),
            None => return Ok(None),
        },
    };
    match value {
        Some(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
        _ => Err(CliError::usage(format!(
            "{origin}: a timeout is a whole number of seconds above 0, for example 10"
        ))),
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
