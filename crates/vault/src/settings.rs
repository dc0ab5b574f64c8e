//! The vault's settings, kept encrypted in the database.

use serde::{Deserialize, Serialize};

/// Whether this vault belongs to a field device or to the central office.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A field device of a team.
    Field,
    /// The central office.
    Office,
}

/// What `cairn init` asks for.
#[derive(Clone, Debug)]
pub struct NewVault {
    /// Team code, validated by the model (`T03`).
    pub team: String,
    /// A name for people to recognise the device by.
    pub name: Option<String>,
    /// Field or office.
    pub role: Role,
}

/// Settings stored (encrypted) in the vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Team code.
    pub team: String,
    /// Device name.
    pub name: Option<String>,
    /// Field or office.
    pub role: Role,
    /// When the vault was made (RFC 3339).
    pub created_at: String,
    /// The next per-device reference number.
    pub next_reference: u32,
}
