use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong with a vault, each with what to do about it.
#[non_exhaustive]
#[derive(Debug, Error)]
pub enum VaultError {
    /// No vault in this home.
    #[error("no vault at {0}")]
    NotFound(PathBuf),
    /// `init` on a home that already has a vault.
    #[error("a vault already exists at {0}")]
    AlreadyExists(PathBuf),
    /// A vault whose creation was interrupted.
    #[error("the vault at {0} is incomplete (its creation was interrupted)")]
    Incomplete(PathBuf),
    /// Unlocking or decrypting failed.
    #[error(transparent)]
    Crypto(#[from] cairn_crypto::CryptoError),
    /// The case model refused an edit or could not read a document.
    #[error(transparent)]
    Model(#[from] cairn_model::ModelError),
    /// No case with this reference or id.
    #[error("no case `{0}` in this vault")]
    UnknownCase(String),
    /// Part of a reference that ends more than one case's reference.
    #[error("`{wanted}` ends the references of {count} cases ({some}); type more of the reference, or all of it")]
    AmbiguousCase {
        /// What was typed.
        wanted: String,
        /// How many references it ends.
        count: usize,
        /// The first few of them.
        some: String,
    },
    /// No draft whose id starts with this.
    #[error("no draft `{0}` in this vault")]
    UnknownDraft(String),
    /// The start of more than one draft's id.
    #[error("`{0}` starts the ids of more than one draft; give more of the id")]
    AmbiguousDraft(String),
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
    /// A record of the vault is not the version the vault last wrote: an older copy was put
    /// back, or the file was altered or damaged. Nothing is written to such a vault; what it
    /// holds is still there to read out.
    #[error("the vault database {path} was tampered with or damaged: its {record} record {detail}; nothing was written, and the cases in it are kept")]
    Tampered {
        /// The database file.
        path: PathBuf,
        /// Which record.
        record: String,
        /// What was found, as the end of a sentence.
        detail: String,
    },
    /// The vault database is not the one its head file (`vault.head`, beside the key file)
    /// records: an older copy of it was put back, rows of it were rolled back or removed, or
    /// the head file is gone. Nothing is written to it; what it holds is still there to read.
    #[error("the vault database {path} was rolled back or altered: {detail}; nothing was written, and the cases in it are kept")]
    RolledBack {
        /// The database file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// An admission into another team than the one this device already recorded cases for.
    #[error("this device recorded cases as team {have}; the admission is for team {admitted}. Ask the office to admit it into {have}, or use a new vault")]
    TeamMismatch {
        /// The vault's team.
        have: String,
        /// The admission's team.
        admitted: String,
    },
    /// A note that cannot be withdrawn, and why.
    #[error("{0}")]
    NoteNotWithdrawn(String),
    /// No key of a team this vault must seal for.
    #[error("this vault holds no key of team {0}: the office holds a team's key once it admitted a device into it")]
    NoTeamKey(String),
    /// A restore into a vault that already holds records of its own.
    #[error("an office is restored only into a new office vault, and this one already holds {0}; nothing was changed")]
    NotEmpty(String),
    /// A change recorded while the office's restore has not finished.
    #[error("the office's restore from its server has not finished, so nothing is recorded yet (a change made now could take a number the server already holds)")]
    Restoring,
    /// A field device tried what only the office does.
    #[error("only the office {0}; nothing was written. A field device says what it proposes, and why, in a note")]
    OfficeOnly(&'static str),
    /// A signed edition that does not check, or cannot be kept.
    #[error("the edition does not check: {0}")]
    BadEdition(String),
    /// An office checkpoint part that does not hold together (a document of another case or
    /// team); nothing of it was stored.
    #[error("{0}")]
    BadCheckpoint(String),
    /// An edition that cannot be read back.
    #[error(transparent)]
    Edition(#[from] cairn_model::edition::EditionError),
    /// A link decision that cannot be recorded.
    #[error("cannot link {0}; nothing was written")]
    BadLink(String),
    /// A file over the attachment size limit.
    #[error("{name} is {size} bytes, over the attachment limit of {limit} bytes; nothing was attached. Attach a smaller file (split a recording, export a photo at a lower resolution) or raise the limit")]
    AttachmentTooLarge {
        /// The file's name.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A file changed size while it was being attached.
    #[error("{0} changed while it was being read; nothing was attached. Attach it again once nothing writes to it")]
    FileChanged(PathBuf),
    /// An attachment's bytes are not (yet) on this device.
    #[error("the bytes of attachment {name} (SHA-256 {sha256}) are not on this device yet; it is now asked for, and the next sync fetches it")]
    AttachmentNotHere {
        /// Its name.
        name: String,
        /// Its SHA-256.
        sha256: String,
    },
    /// An attachment's bytes do not check: a damaged or forged chunk, or a wrong hash.
    #[error("attachment {name} of case {case} (SHA-256 {sha256}) is damaged: {why}; nothing was written. A copy fetched from the server replaces damaged chunks")]
    AttachmentMismatch {
        /// Its name.
        name: String,
        /// Its SHA-256 as recorded at capture.
        sha256: String,
        /// The case's reference.
        case: String,
        /// What did not check.
        why: String,
    },
    /// A fetched chunk that does not fit any attachment listed here.
    #[error("chunk {index} of attachment blob {blob} is refused: {why}")]
    ChunkRefused {
        /// The blob (hex).
        blob: String,
        /// The chunk's index.
        index: u32,
        /// Why.
        why: String,
    },
    /// No attachment with this hash or blob id (or a prefix of either).
    #[error("no attachment {0}; list the case's attachments and give 8 hex digits or more of one's SHA-256 or blob id")]
    UnknownAttachment(String),
    /// A prefix that names several attachments.
    #[error("{wanted} names more than one attachment: {candidates}; give more of the SHA-256 or blob id of the one you want")]
    AmbiguousAttachment {
        /// What was given.
        wanted: String,
        /// Each attachment it names.
        candidates: String,
    },
    /// Dropping an attachment that is not waiting to be sent from here.
    #[error("attachment {name} is not waiting in this device's outbox (it was made elsewhere or is already delivered); nothing was dropped")]
    NotInOutbox {
        /// Its name.
        name: String,
    },
    /// Settling a conflict with a value the field does not hold in conflict (any more).
    #[error("{0} holds no such value in conflict now: reload the case and pick again")]
    NotInConflict(String),
    /// The disk is full.
    #[error("the disk is full: nothing was written; free some space and run the command again")]
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
        if source.kind() == std::io::ErrorKind::StorageFull {
            return VaultError::DiskFull;
        }
        VaultError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Maps a SQLite error, naming damage and a full disk plainly. On a full disk SQLite says
    /// SQLITE_FULL, or for some writes (growing the WAL index, syncing) only "disk I/O
    /// error": an I/O error while the file system is (nearly) full is taken for a full disk.
    pub(crate) fn sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => VaultError::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            },
            Some(ErrorCode::DiskFull) => VaultError::DiskFull,
            Some(ErrorCode::SystemIoFailure) if nearly_full(path) => VaultError::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => VaultError::Busy,
            _ => VaultError::Storage(e),
        }
    }
}

/// Below this much free space, an I/O error of the vault's file system is taken for a full
/// disk: SQLite may have given back some of what it failed to use (a WAL that could not grow)
/// and one page of changes needs a few MiB.
const NEARLY_FULL: u64 = 8 << 20;

/// Whether the file system holding `path` (the database, or its directory) has less than
/// [`NEARLY_FULL`] free for this user.
fn nearly_full(path: &std::path::Path) -> bool {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let Ok(fs) = rustix::fs::statvfs(dir.unwrap_or(path)) else {
        return false;
    };
    fs.f_bavail.saturating_mul(fs.f_frsize) < NEARLY_FULL
}
