//! Entries of the append-only lists: notes, custody events and sources.
//!
//! An entry is inserted once at the end of its list and never edited, so a concurrent append
//! on another device keeps both entries, and what was recorded stays recorded.

use autosurgeon::{Hydrate, Reconcile};
use serde::Serialize;

/// A free-text note (`notes`).
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize)]
pub struct Note {
    /// When the note was written (RFC 3339).
    pub at: String,
    /// The device or person that wrote it.
    pub author: String,
    /// The note itself.
    pub text: String,
}

/// A hand-over of the remains or of evidence (`custody`).
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize)]
pub struct CustodyEvent {
    /// When the hand-over happened (RFC 3339).
    pub at: String,
    /// The device or person that recorded it.
    pub author: String,
    /// Who or where it came from, if recorded.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Who or where it went to.
    pub to: String,
    /// Where the hand-over took place, if recorded.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Why it was handed over, if recorded.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The seal number on the bag or container, if any.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// Where information came from (`sources`); the most sensitive part of a case.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize)]
pub struct Source {
    /// When the source was recorded (RFC 3339).
    pub at: String,
    /// The device or person that recorded it.
    pub author: String,
    /// What kind of source: witness, relative, document...
    #[autosurgeon(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// How to reach the source, if recorded.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Whether the source consented to being recorded: yes, no or unknown.
    pub consent: String,
}

/// The office's ruling on a case's evidentiary status (`verifications`), or a field team's
/// proposal to investigate it. Only the office confirms or rejects, always with a basis.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize)]
pub struct Verification {
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// The device that recorded it.
    pub author: String,
    /// The status it gives the case.
    pub status: String,
    /// On what grounds (required for confirmed and rejected).
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}

/// The office's review of a case (`reviews`): received, has issues, or approved.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize)]
pub struct Review {
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// The device that recorded it.
    pub author: String,
    /// received, has_issues or approved.
    pub state: String,
    /// What the reviewer said, if anything.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}
