//! The two choices commands create and filter cases by: the kind of case and its evidentiary
//! status. Their spelling is the one in the field table, so `--kind` and `--set kind=` agree.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{Hydrate, HydrateError};

use crate::fields::{KINDS, STATUSES};
use crate::ModelError;

/// What a case is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A person killed.
    Killed,
    /// A person injured.
    Injured,
    /// A person missing.
    Missing,
    /// Human remains found.
    Remains,
    /// A living person held: in captivity, detained, a hostage. Last so that the kinds
    /// recorded before it keep their place in every list.
    Detained,
}

/// How far a case has been verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Reported, pending investigation (every new case starts here).
    Alleged,
    /// Being investigated by the office.
    UnderInvestigation,
    /// Confirmed on irrefutable grounds.
    Confirmed,
    /// Found not to hold.
    Rejected,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 5] = [
        Kind::Killed,
        Kind::Injured,
        Kind::Missing,
        Kind::Remains,
        Kind::Detained,
    ];

    /// The lowercase name used on the command line and in the document.
    pub fn as_str(self) -> &'static str {
        KINDS[self as usize]
    }
}

impl Status {
    /// Every status, in display order.
    pub const ALL: [Status; 4] = [
        Status::Alleged,
        Status::UnderInvestigation,
        Status::Confirmed,
        Status::Rejected,
    ];

    /// The lowercase name used on the command line and in the document.
    pub fn as_str(self) -> &'static str {
        STATUSES[self as usize]
    }
}

/// Parses one of `all` by its name, case-insensitively, reporting errors against `key`.
fn parse_choice<T: Copy>(
    key: &str,
    s: &str,
    all: &[T],
    names: &'static [&'static str],
) -> Result<T, ModelError> {
    let wanted = s.trim().to_lowercase();
    names
        .iter()
        .position(|n| *n == wanted)
        .and_then(|i| all.get(i).copied())
        .ok_or_else(|| ModelError::invalid_choice(key, s, names))
}

impl FromStr for Kind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_choice("kind", s, &Kind::ALL, KINDS)
    }
}

impl FromStr for Status {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_choice("status", s, &Status::ALL, STATUSES)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Hydrate for Kind {
    fn hydrate_string(s: &str) -> Result<Self, HydrateError> {
        s.parse()
            .map_err(|_| HydrateError::unexpected("a kind of case", format!("`{s}`")))
    }
}

impl Hydrate for Status {
    fn hydrate_string(s: &str) -> Result<Self, HydrateError> {
        s.parse()
            .map_err(|_| HydrateError::unexpected("an evidentiary status", format!("`{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(k.to_string().parse::<Kind>(), Ok(k));
        }
        for s in Status::ALL {
            assert_eq!(s.to_string().parse::<Status>(), Ok(s));
        }
        assert_eq!(
            "Under_Investigation".parse(),
            Ok(Status::UnderInvestigation)
        );
        assert!(matches!(
            "dead".parse::<Kind>(),
            Err(ModelError::InvalidValue { key, .. }) if key == "kind"
        ));
    }
}
