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

/// The command that writes what `cairn case edit` cannot set, where one does.
fn writer_of(key: &str) -> Option<&'static str> {
    match key {
        "verifications" => Some("cairn case verify"),
        "reviews" => Some("cairn office review"),
        "attachments" => Some("cairn case attach"),
        _ => None,
    }
}

/// The library says what happened; here is added which command to run about it.
impl From<ModelError> for CliError {
    fn from(e: ModelError) -> Self {
        match &e {
            ModelError::UnknownField { .. } => {
                return CliError::usage(format!("{e} Run `cairn fields` to list them."))
            }
            ModelError::NeedsVerification(status) => {
                return CliError::usage(format!(
                    "a case becomes {status} only through a verification with its basis: use `cairn case verify REF --status {status} --basis TEXT` (office only)."
                ))
            }
            ModelError::NotSettable(key) => {
                if let Some(command) = writer_of(key) {
                    return CliError::usage(format!(
                        "`{key}` cannot be set: it is written by `{command}`."
                    ));
                }
            }
            _ => {}
        }
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
            VaultError::NotFound(_) => {
                CliError::failure(format!("{e}; run `cairn init --team TEAM` to create one"))
            }
            VaultError::AlreadyExists(_) => CliError::failure(format!(
                "{e}; use it, or run `cairn wipe` first to destroy it"
            )),
            VaultError::Incomplete(_) => {
                CliError::failure(format!("{e}; run `cairn wipe` and `cairn init` again"))
            }
            VaultError::UnknownCase(_) => {
                CliError::failure(format!("{e}; run `cairn case list` to see the references"))
            }
            VaultError::UnknownDraft(_) => CliError::failure(format!(
                "{e}; `cairn case drafts` lists them with their ids"
            )),
            VaultError::Crypto(cairn_crypto::CryptoError::CorruptKeyFile(_)) => CliError::failure(
                format!("{e} or run `cairn wipe` and `cairn init` again"),
            ),
            VaultError::NotInConflict(_) => CliError::usage(e.to_string()),
            VaultError::Restoring => CliError::failure(format!(
                "{e}; run `cairn office restore` again to finish it"
            )),
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
            SyncError::Statement(p) => p.into(),
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
            SyncError::WrongRole {
                staff_admission: true,
                ..
            } => CliError::failure(format!(
                "{e}: make a staff vault (`cairn init --staff`) and admit that one"
            )),
            SyncError::WrongRole { ref team, .. } => CliError::failure(format!(
                "{e}: make a field vault (`cairn init --team {team}`) and admit that one"
            )),
            SyncError::NotAdmittedStaff { .. } => CliError::failure(format!(
                "{e}; the office admits it with `cairn office admit --staff`"
            )),
            other => CliError::failure(other.to_string()),
        }
    }
}

impl From<cairn_protocol::ProtocolError> for CliError {
    fn from(e: cairn_protocol::ProtocolError) -> Self {
        match e {
            cairn_protocol::ProtocolError::NotForThisDevice { .. } => {
                CliError::failure(format!("{e}: run `cairn id` here for it"))
            }
            _ => CliError::failure(e.to_string()),
        }
    }
}
