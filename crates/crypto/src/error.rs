use thiserror::Error;

/// Everything that can go wrong while locking, unlocking, sealing or opening.
#[non_exhaustive]
#[derive(Debug, Error)]
pub enum CryptoError {
    /// The passphrase did not unlock the key file.
    #[error("wrong passphrase: the key file did not open with it; try again")]
    WrongPassphrase,
    /// The key file's bytes are not a Cairn key file, or were damaged.
    #[error("the key file is damaged ({0}); restore it from a backup")]
    CorruptKeyFile(String),
    /// The key file asks for more scrypt work than this device will do.
    #[error("the key file asks for scrypt work factor {0}, more than the allowed maximum; it was not made by Cairn")]
    ExcessiveWork(u8),
    /// A sealed change's bytes do not parse.
    #[error("malformed sealed change: {0}")]
    Malformed(String),
    /// A sealed change's signature does not verify against its author's key.
    #[error("the signature of change {seq} by device {author} does not verify; it was forged or damaged and is refused")]
    BadSignature {
        /// Short form of the claimed author.
        author: String,
        /// The claimed sequence number.
        seq: u64,
    },
    /// This device is not among a sealed change's recipients, or its ciphertext is damaged.
    #[error("cannot decrypt change {seq} by device {author}: this device holds no key of the team and epoch it was sealed under, or the ciphertext is damaged")]
    NotARecipient {
        /// Short form of the author.
        author: String,
        /// The sequence number.
        seq: u64,
    },
    /// A sealed chunk's signature does not verify against its author's key.
    #[error("the signature of chunk {index} of attachment blob {blob} does not verify; it was forged or damaged and is refused")]
    BadChunkSignature {
        /// The blob id (hex).
        blob: String,
        /// The chunk's index.
        index: u32,
    },
    /// A sealed chunk does not open with the keys held, or its ciphertext is damaged.
    #[error("cannot decrypt chunk {index} of attachment blob {blob}: this device holds no key of the team and epoch it was sealed under, or the ciphertext is damaged")]
    ChunkUnreadable {
        /// The blob id (hex).
        blob: String,
        /// The chunk's index.
        index: u32,
    },
    /// A locally encrypted record failed authentication.
    #[error("an encrypted record in the vault failed its integrity check ({0}); the vault file is damaged")]
    CorruptRecord(String),
    /// A signed statement (roster statement, receipt, request) does not verify.
    #[error("refused: {0}")]
    BadStatement(String),
    /// A public key or recipient string does not parse.
    #[error("invalid public key: {0}")]
    InvalidKey(String),
    /// Bytes sealed under a team key do not open with the key given.
    #[error("cannot decrypt with team {team}'s epoch {epoch} key: it was sealed for another team or epoch, or is damaged")]
    NotTeamKey {
        /// The key's team.
        team: String,
        /// The key's epoch.
        epoch: u32,
    },
    /// Encryption failed (should not happen with valid recipients).
    #[error("encryption failed: {0}")]
    Encrypt(String),
}
