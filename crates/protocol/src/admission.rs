//! The admission line: what `cairn office admit` prints and `cairn join` takes.
//!
//! `cairn-admission-v2.` then base64url (no padding) of `{"office": {...}, "statement": {...}}`:
//! the office's public keys (which the device trusts, as it trusted the office that handed
//! it the line) and the office-signed statement admitting this device's keys. Nothing in it
//! is secret: the team key inside is granted to the device's own key, and the statement
//! admits no other key, so a captured admission admits nobody else.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_crypto::{DeviceKeys, TeamKey};
use serde::{Deserialize, Serialize};

use crate::error::malformed;
use crate::{Act, Admit, OfficeKeys, ProtocolError, Statement};

/// The text every admission starts with.
pub const ADMISSION_PREFIX: &str = "cairn-admission-v2.";
/// Admission lines longer than this are refused before decoding.
const MAX_TEXT: usize = 16 * 1024;

/// An office-signed admission of one device, with the office's keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// The office's public keys.
    pub office: OfficeKeys,
    /// The statement admitting the device.
    pub statement: Statement,
}

impl Admission {
    /// Parses the one-line text form. Checks shape only; call [`Admission::open`] to trust it.
    pub fn parse(text: &str) -> Result<Admission, ProtocolError> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(malformed("admission: it is far too long to be one"));
        }
        let encoded = text.strip_prefix(ADMISSION_PREFIX).ok_or_else(|| {
            malformed(format!(
                "admission: it does not start with `{ADMISSION_PREFIX}`; paste the whole line the office gave"
            ))
        })?;
        let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| {
            malformed("admission: it is damaged or cut short; paste the whole line again")
        })?;
        let admission: Admission = serde_json::from_slice(&json)
            .map_err(|e| malformed(format!("admission: its content does not parse ({e})")))?;
        admission.admit()?;
        Ok(admission)
    }

    /// The one-line text form.
    pub fn to_text(&self) -> String {
        // Plain strings and integers cannot fail to serialize.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{ADMISSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// The admit act inside.
    pub fn admit(&self) -> Result<&Admit, ProtocolError> {
        match &self.statement.act {
            Act::Admit(a) => Ok(a),
            Act::Revoke(_) => Err(malformed("admission: it carries a revocation, not an admission")),
        }
    }

    /// Checks, for the device holding `keys`, that the office signed it, that it admits this
    /// device's own keys, and that it has not expired; then opens the team key granted to it.
    pub fn open(&self, keys: &DeviceKeys, now: u64) -> Result<TeamKey, ProtocolError> {
        let admit = self.admit()?;
        self.statement.verify(&self.office.signing)?;
        if admit.device != crate::DevicePublic::from_keys(keys) {
            return Err(ProtocolError::NotForThisDevice {
                code: admit.device.short_code(),
            });
        }
        if now >= admit.expires_at {
            return Err(ProtocolError::Expired {
                expired_at: admit.expires_at,
            });
        }
        admit
            .grants
            .iter()
            .filter(|g| g.device == admit.device.signing)
            .find_map(|g| g.open(keys, &admit.team, admit.epoch))
            .ok_or_else(|| malformed("admission: it carries no team key this device can open"))
    }
}

impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}
