use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong with a vault, each with what to do about it.
#[non_exhaustive]
#[derive(Debug, Error)]
pub enum VaultError {
    /// No vault in this home.
    #[error("no vault at {0}; run `cairn init --team TEAM` to create one")]
    NotFound(PathBuf),
    /// `init` on a home that already has a vault.
    #[error("a vault already exists at {0}; use it, or run `cairn wipe` first to destroy it")]
    AlreadyExists(PathBuf),
    /// A vault whose creation was interrupted.
    #[error("the vault at {0} is incomplete (its creation was interrupted); run `cairn wipe` and `cairn init` again")]
    Incomplete(PathBuf),
    /// Unlocking or decrypting failed.
    #[error(transparent)]
    Crypto(#[from] cairn_crypto::CryptoError),
    /// The case model refused an edit or could not read a document.
    #[error(transparent)]
    Model(#[from] cairn_model::ModelError),
    /// No case with this reference or id.
    #[error("no case `{0}` in this vault; run `cairn case list` to see the references")]
    UnknownCase(String),
    /// The database file is damaged.
    #[error("the vault database {path} is damaged ({detail}); restore it from a backup")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the decryption said.
        detail: String,
    },
    /// A case has reached what every device accepts of it.
    #[error(
        "this case is full ({0}); record what follows in a new case and name this one in a note"
    )]
    CaseFull(String),
    /// A record of the vault is not the latest one written: an older copy was put back.
    #[error("the vault database {path} was tampered with: its {record} record is an older copy put back over the current one; restore the vault from a backup, or wipe it and join again")]
    Tampered {
        /// The database file.
        path: PathBuf,
        /// Which record.
        record: String,
    },
    /// An admission into another team than the one this device already recorded cases for.
    #[error("this device recorded cases as team {have}; the admission is for team {admitted}. Ask the office to admit it into {have}, or use a new vault")]
    TeamMismatch {
        /// The vault's team.
        have: String,
        /// The admission's team.
        admitted: String,
    },
    /// No key of a team this vault must seal for.
    #[error("this vault holds no key of team {0}: the office holds a team's key once it admitted a device into it")]
    NoTeamKey(String),
    /// A field device tried what only the office does.
    #[error("only the office {0}; a field device may propose `under_investigation` with `cairn case verify REF --status under_investigation`")]
    OfficeOnly(&'static str),
    /// The disk is full.
    #[error("the disk is full; nothing was written. Free some space and run the command again")]
    DiskFull,
    /// Another process holds the vault for too long.
    #[error("the vault is busy: another cairn command is using it; try again")]
    Busy,
    /// Any other SQLite failure.
    #[error("vault storage error: {0}")]
    Storage(rusqlite::Error),
    /// A file-system failure.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// To which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl VaultError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        VaultError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Maps a SQLite error, naming damage and a full disk plainly.
    pub(crate) fn sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => VaultError::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            },
            Some(ErrorCode::DiskFull) => VaultError::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => VaultError::Busy,
            _ => VaultError::Storage(e),
        }
    }
}
