use cairn_protocol::ErrorCode;
use thiserror::Error;

/// Why a sync or a server call failed. Each says what happened; which command to run about it
/// is the caller's to add (the CLI knows its commands, this library does not).
#[non_exhaustive]
#[derive(Debug, Error)]
pub enum SyncError {
    /// This vault has no server yet.
    #[error("this vault has not joined a server")]
    NotJoined,
    /// The server could not be reached (after retries).
    #[error("cannot reach the server at {server}: {detail}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// What failed.
        detail: String,
    },
    /// The server took the connection and did not answer within the connect timeout.
    #[error("the server at {server} did not answer within {secs} s")]
    NoAnswer {
        /// The server URL.
        server: String,
        /// The connect timeout, in seconds.
        secs: f64,
    },
    /// The server's certificate is not the one pinned from the admission.
    #[error("the server at {server} presented a TLS certificate whose fingerprint is not the one in the admission; refusing to talk to it (wrong server, or someone in the middle)")]
    FingerprintMismatch {
        /// The server URL.
        server: String,
    },
    /// The server refused the request.
    #[error("the server refused: {message}")]
    Refused {
        /// The server's code; `None` for one this version does not know (the status and the
        /// message then say what happened).
        code: Option<ErrorCode>,
        /// The server's sentence.
        message: String,
    },
    /// The server answered something that is not the protocol.
    #[error(
        "the server's answer was not understood ({0}); it may run another version of cairn-server"
    )]
    Protocol(String),
    /// An office vault was asked to join a server: devices join, the office does not.
    #[error("this is the office's vault; devices join, the office does not")]
    OfficeCannotJoin,
    /// Only the office's vault may do this.
    #[error("only the office's vault can do this")]
    OfficeOnly,
    /// The device cannot be admitted as asked.
    #[error("{0}")]
    AlreadyMember(String),
    /// The admission is for a staff device and this vault is a field device's, or the other
    /// way round: a vault's role is fixed when it is made.
    #[error("{}", wrong_role(*staff_admission, team))]
    WrongRole {
        /// The admission makes the device a staff device of the office.
        staff_admission: bool,
        /// The team the admission names.
        team: String,
    },
    /// The roster the server serves does not admit this staff device, so it cannot restore
    /// the office from it; nothing was stored.
    #[error("the roster the server at {server} serves admits no staff device {device}; nothing was stored")]
    NotAdmittedStaff {
        /// The server URL.
        server: String,
        /// This device's short id.
        device: String,
    },
    /// No single admitted device has this name or an id starting with these digits.
    #[error(transparent)]
    Device(#[from] cairn_protocol::DeviceLookup),
    /// What the server serves cannot restore this office: the sentence says why; nothing
    /// was stored.
    #[error("{0}")]
    Restore(String),
    /// The network runtime could not be started.
    #[error("cannot start the network runtime: {0}")]
    Runtime(String),
    /// The admission or a statement is bad.
    #[error(transparent)]
    Statement(#[from] cairn_protocol::ProtocolError),
    /// The local vault failed.
    #[error(transparent)]
    Vault(#[from] cairn_vault::VaultError),
    /// This device's disk filled up during a sync: every page that fit before was kept.
    #[error("the disk is full: {kept} change{} kept, free space and sync again", plural(*kept))]
    DiskFull {
        /// Changes received and kept in this sync.
        kept: u64,
    },
    /// The server's disk is full: it stores nothing more until its administrator frees space.
    #[error("the server's disk is full: it stores nothing more until its administrator frees space; this device keeps its changes and sends them at the next sync")]
    ServerDiskFull,
}

fn wrong_role(staff_admission: bool, team: &str) -> String {
    if staff_admission {
        "this admission makes the device a staff device of the office, but this vault is a field device's".into()
    } else {
        format!("this admission puts the device in team {team}, but this vault is a staff device's")
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl SyncError {
    /// Worth another attempt after a pause: the link or the server may come back.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Unreachable { .. } => true,
            SyncError::Refused { code, .. } => *code == Some(ErrorCode::Unavailable),
            _ => false,
        }
    }
}
