//! The vault's settings, kept encrypted in the database.

use serde::{Deserialize, Serialize};

/// Whether this vault belongs to a field device, to the central office, or to one of the
/// office's staff devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A field device of a team.
    Field,
    /// The central office: its key admits and revokes devices.
    Office,
    /// A staff device: a member of the office's own team, admitted by the office key to read
    /// every team and decide as the office does (verify, review, link), signing as itself.
    Staff,
}

/// What `cairn init` asks for.
#[derive(Clone, Debug)]
pub struct NewVault {
    /// Team code, validated by the model (`T03`).
    pub team: String,
    /// A name for people to recognise the device by.
    pub name: Option<String>,
    /// Field, office or staff.
    pub role: Role,
}

/// Settings stored (encrypted) in the vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Team code.
    pub team: String,
    /// Device name.
    pub name: Option<String>,
    /// Field, office or staff.
    pub role: Role,
    /// When the vault was made (RFC 3339).
    pub created_at: String,
    /// The next per-device reference number.
    pub next_reference: u32,
}
