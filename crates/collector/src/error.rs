//! One clear sentence and an exit code for every failure.

use cairn_model::ModelError;
use cairn_sync::SyncError;
use cairn_vault::VaultError;

/// A failure to report: its sentence and the process exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

/// Exit code for a failure the person can retry or fix (wrong passphrase, damaged file...).
pub const FAILURE: u8 = 1;
/// Exit code for bad usage or bad input (unknown field, value out of range...).
pub const USAGE: u8 = 2;

impl CliError {
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            code: FAILURE,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: USAGE,
            message: message.into(),
        }
    }
}

impl From<ModelError> for CliError {
    fn from(e: ModelError) -> Self {
        let code = match e {
            // Well-formed, but not allowed or not possible here.
            ModelError::Corrupt(_) | ModelError::Refused(_) | ModelError::RefusedChange { .. } => {
                FAILURE
            }
            _ => USAGE,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

impl From<VaultError> for CliError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Model(m) => m.into(),
            VaultError::NotInConflict(_) => CliError::usage(e.to_string()),
            VaultError::Tampered { .. } | VaultError::RolledBack { .. } => CliError::failure(format!(
                "{e}: `cairn export` still writes them out; restore the vault from a backup, or ask the office before making a new one"
            )),
            other => CliError::failure(other.to_string()),
        }
    }
}

/// The library says what happened; here is added which command to run about it.
impl From<SyncError> for CliError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Vault(v) => v.into(),
            SyncError::NotJoined => {
                CliError::failure(format!("{e}; run `cairn join INVITE` first"))
            }
            SyncError::NoAnswer { .. } => CliError::failure(format!(
                "{e}; check that the server runs and run the command again (CAIRN_CONNECT_TIMEOUT or connect_timeout in config.toml sets the wait)"
            )),
            SyncError::Unreachable { .. } => {
                CliError::failure(format!("{e}; check the link and run the command again"))
            }
            SyncError::Device(cairn_protocol::DeviceLookup::Unknown(_)) => {
                CliError::failure(format!("{e}; `cairn status` lists the roster"))
            }
            SyncError::Device(_) => CliError::usage(format!(
                "{e}; give the start of its id instead"
            )),
            SyncError::OfficeCannotJoin => CliError::usage(e.to_string()),
            other => CliError::failure(other.to_string()),
        }
    }
}

impl From<cairn_protocol::ProtocolError> for CliError {
    fn from(e: cairn_protocol::ProtocolError) -> Self {
        CliError::failure(e.to_string())
    }
}
