//! Human case references in ICRC style, unique across devices without coordination.
//!
//! A reference reads `PLACE-TEAM-TAG-NNNN`, e.g. `KHR-T03-7KQ2-0017`. Two devices never hand
//! out the same one because each embeds its own device tag (derived by the crypto crate from
//! the device's public key) and numbers its cases with its own counter.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{Hydrate, HydrateError};

use crate::ModelError;

/// Crockford base32 alphabet (no I, L, O, U).
const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A case reference: `PLACE-TEAM-TAG-NNNN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Where the case was logged: 2 to 6 uppercase letters or digits.
    pub place: String,
    /// The team's code: 1 to 8 uppercase letters or digits.
    pub team: String,
    /// The device's 4-character Crockford base32 tag.
    pub device_tag: String,
    /// The device's own case counter.
    pub number: u32,
}

impl Reference {
    /// Builds a reference, checking and uppercasing each part.
    pub fn new(place: &str, team: &str, device_tag: &str, number: u32) -> Result<Self, ModelError> {
        Ok(Reference {
            place: validate_place(place)?,
            team: validate_team(team)?,
            device_tag: validate_device_tag(device_tag)?,
            number,
        })
    }
}

/// Uppercases `s` if it is `min..=max` ASCII letters or digits.
fn code(s: &str, min: usize, max: usize) -> Option<String> {
    let ok = (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| s.to_ascii_uppercase())
}

/// Checks a place code (2 to 6 letters or digits) and returns it uppercased.
pub fn validate_place(s: &str) -> Result<String, ModelError> {
    code(s, 2, 6).ok_or_else(|| ModelError::InvalidPlace(s.to_string()))
}

/// Checks a team code (1 to 8 letters or digits) and returns it uppercased.
pub fn validate_team(s: &str) -> Result<String, ModelError> {
    code(s, 1, 8).ok_or_else(|| ModelError::InvalidTeam(s.to_string()))
}

/// Checks a device tag (4 Crockford base32 characters) and returns it uppercased.
pub fn validate_device_tag(s: &str) -> Result<String, ModelError> {
    code(s, 4, 4)
        .filter(|t| t.chars().all(|c| CROCKFORD.contains(c)))
        .ok_or_else(|| ModelError::InvalidDeviceTag(s.to_string()))
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{:04}",
            self.place, self.team, self.device_tag, self.number
        )
    }
}

impl FromStr for Reference {
    type Err = ModelError;

    /// Parses a reference case-insensitively; the number may have any zero padding.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelError::InvalidReference(s.to_string());
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [place, team, tag, number] = parts.as_slice() else {
            return Err(bad());
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let number = number.parse().map_err(|_| bad())?;
        Reference::new(place, team, tag, number).map_err(|_| bad())
    }
}

impl Hydrate for Reference {
    fn hydrate_string(s: &str) -> Result<Self, HydrateError> {
        s.parse()
            .map_err(|_| HydrateError::unexpected("a case reference", format!("`{s}`")))
    }
}
