//! Entries of the append-only lists: notes, custody events, sources and attachments.
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
    /// The note itself (for a withdrawal, why).
    pub text: String,
    /// For a withdrawal, the withdrawn note's entry (`counter@actor`, see
    /// [`crate::CaseDoc::note_ids`]).
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraws: Option<String>,
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

/// The office's ruling on a case's evidentiary status (`verifications`): only the office
/// records one, and it confirms or rejects always with a basis.
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
    /// For a confirmation, the counted fields it confirmed, as the text it recorded (see
    /// [`crate::Counted`]); shown as an object. A confirmation recorded before confirmations
    /// carried their values has none.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "as_object")]
    pub counted: Option<String>,
}

/// A recorded JSON object shown as the object itself (as the text, if it is not one).
fn as_object<S: serde::Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        Some(Ok(value)) => value.serialize(s),
        _ => text.serialize(s),
    }
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

/// How the office links two cases (`links`).
pub const RELATIONS: &[&str] = &["same_person", "identifies", "distinct"];

/// The office's decision on this case and another (`links`), recorded in both: they are one
/// person (`same_person`), these remains are that missing person (`identifies`, recorded with
/// `remains` naming the case that holds the remains), or they are two people and never to be
/// proposed again (`distinct`). A later decision on the same pair supersedes an earlier one.
/// The entry names the other case and nothing of its content, so a field device that holds
/// one of the two learns only the other's reference.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize)]
pub struct Link {
    /// When it was decided (RFC 3339).
    pub at: String,
    /// The device that decided.
    pub author: String,
    /// same_person, identifies or distinct.
    pub relation: String,
    /// The other case's id.
    pub other_id: String,
    /// The other case's reference.
    pub other: String,
    /// On what grounds.
    pub basis: String,
    /// For `identifies`: the id of the case that holds the remains (this one or the other).
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remains: Option<String>,
}

/// A file attached to the case (`attachments`): what was recorded of it at capture. The
/// file itself travels apart, as sealed chunks of the blob `blob`; its SHA-256 here is what
/// every copy is checked against, so the hash taken at capture is the one the office opens.
#[derive(Debug, Clone, PartialEq, Hydrate, Reconcile, Serialize)]
pub struct Attachment {
    /// When it was attached (RFC 3339): the capture time on this device.
    pub at: String,
    /// The device that attached it.
    pub author: String,
    /// The blob's random id, 32 hex digits (never derived from the content).
    pub blob: String,
    /// SHA-256 of the plaintext, 64 hex digits, taken at capture.
    pub sha256: String,
    /// The file's name (without its directory).
    pub name: String,
    /// The media type detected from the content (`image/jpeg`...), or
    /// `application/octet-stream`.
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// How many sealed chunks the blob has.
    pub chunks: u64,
    /// The team whose key seals the chunks.
    pub team: String,
    /// A caption, if given.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// When the photo was taken, from its EXIF data (camera local time, no zone), if present.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exif_time: Option<String>,
    /// Latitude from the photo's EXIF GPS data, decimal degrees, if present.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude from the photo's EXIF GPS data, decimal degrees, if present.
    #[autosurgeon(missing = "Default::default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

/// What is wrong with an attachment's facts, if anything: the edit and the judge of received
/// changes ask the same question.
pub(crate) fn attachment_problem(
    blob: &str,
    sha256: &str,
    chunks: u64,
    lat: Option<f64>,
    lon: Option<f64>,
) -> Option<String> {
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(blob, 32) {
        return Some(format!("whose blob id `{blob}` is not 32 hex digits"));
    }
    if !hex(sha256, 64) {
        return Some(format!("whose SHA-256 `{sha256}` is not 64 hex digits"));
    }
    if chunks == 0 || chunks > u64::from(u32::MAX) {
        return Some(format!("of {chunks} chunks"));
    }
    match (lat, lon) {
        (None, None) => None,
        (Some(lat), Some(lon))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            None
        }
        _ => Some("whose position is not a latitude and longitude".to_string()),
    }
}
