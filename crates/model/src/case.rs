//! The typed view of a case document, read with `autosurgeon`.
//!
//! This is a read model only: writes go through [`crate::Edit`], which touches just the keys
//! it changes, because reconciling a whole struct would overwrite the values of concurrent
//! conflicts the struct cannot hold. Where a scalar is in conflict, the field holds
//! Automerge's deterministic winner; see [`crate::CaseDoc::conflicts`] for all of them.
//! The choice fields other than `kind` and `status` hold their lowercase names as strings;
//! [`crate::fields`] lists what each accepts. Attachments are read apart, with
//! [`crate::CaseDoc::attachments`]: their list may be held twice.

use autosurgeon::{Hydrate, Text};
use uuid::Uuid;

use crate::{CustodyEvent, Kind, Link, Note, Reference, Review, Source, Status, Verification};

/// One case report.
#[derive(Debug, Clone, PartialEq, Hydrate)]
pub struct Case {
    /// Schema version of the document (1).
    pub schema: u64,
    /// Random id, fixed at creation.
    pub id: Uuid,
    /// Human reference, fixed at creation.
    pub reference: Reference,
    /// What the case is about.
    pub kind: Kind,
    /// Evidentiary status: the office's (see [`crate::CaseDoc::status`]).
    pub status: Status,
    /// When the case was created (RFC 3339).
    pub created_at: String,
    /// The device or person that created it.
    pub created_by: String,
    /// The identifier the list it was imported from gives it, if it came from one.
    #[autosurgeon(missing = "Default::default")]
    pub source_id: Option<String>,
    /// The incident and its cause.
    #[autosurgeon(missing = "Default::default")]
    pub incident: Incident,
    /// Discovery and scene.
    #[autosurgeon(missing = "Default::default")]
    pub found: Found,
    /// The person, as far as can be told.
    #[autosurgeon(missing = "Default::default")]
    pub person: Person,
    /// When and where a missing person was last seen.
    #[autosurgeon(missing = "Default::default")]
    pub last_seen: LastSeen,
    /// The state of the remains.
    #[autosurgeon(missing = "Default::default")]
    pub remains: Remains,
    /// Injuries observed.
    #[autosurgeon(missing = "Default::default")]
    pub injuries: Text,
    /// Signs of torture: yes, no or unknown.
    #[autosurgeon(missing = "Default::default")]
    pub torture_signs: Option<String>,
    /// Forensic examination.
    #[autosurgeon(missing = "Default::default")]
    pub forensic: Forensic,
    /// Identification.
    #[autosurgeon(missing = "Default::default")]
    pub identification: Identification,
    /// Notes, oldest first.
    #[autosurgeon(missing = "Default::default")]
    pub notes: Vec<Note>,
    /// Chain of custody, oldest first.
    #[autosurgeon(missing = "Default::default")]
    pub custody: Vec<CustodyEvent>,
    /// Sources, oldest first.
    #[autosurgeon(missing = "Default::default")]
    pub sources: Vec<Source>,
    /// Verifications (the office's rulings), oldest first.
    #[autosurgeon(missing = "Default::default")]
    pub verifications: Vec<Verification>,
    /// The office's reviews, oldest first.
    #[autosurgeon(missing = "Default::default")]
    pub reviews: Vec<Review>,
    /// The office's decisions linking this case with others, oldest first (see
    /// [`Case::current_links`]).
    #[autosurgeon(missing = "Default::default")]
    pub links: Vec<Link>,
}

impl Case {
    /// The decision in force with each other case: the latest one recorded for the pair.
    pub fn current_links(&self) -> Vec<&Link> {
        let mut out: Vec<&Link> = Vec::new();
        for link in &self.links {
            match out.iter_mut().find(|l| l.other_id == link.other_id) {
                Some(earlier) => *earlier = link,
                None => out.push(link),
            }
        }
        out
    }
}

/// `incident.*`
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub struct Incident {
    /// Date or date range.
    #[autosurgeon(missing = "Default::default")]
    pub date: Option<String>,
    /// Where it happened.
    #[autosurgeon(missing = "Default::default")]
    pub place: Option<String>,
    /// Apparent cause.
    #[autosurgeon(missing = "Default::default")]
    pub cause: Option<String>,
    /// What happened.
    #[autosurgeon(missing = "Default::default")]
    pub narrative: Text,
}

/// `found.*`
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub struct Found {
    /// When found (RFC 3339).
    #[autosurgeon(missing = "Default::default")]
    pub at: Option<String>,
    /// Latitude, decimal degrees.
    #[autosurgeon(missing = "Default::default")]
    pub lat: Option<f64>,
    /// Longitude, decimal degrees.
    #[autosurgeon(missing = "Default::default")]
    pub lon: Option<f64>,
    /// Altitude, metres.
    #[autosurgeon(missing = "Default::default")]
    pub alt: Option<f64>,
    /// Accuracy of the position, metres.
    #[autosurgeon(missing = "Default::default")]
    pub accuracy_m: Option<f64>,
    /// Type of scene.
    #[autosurgeon(missing = "Default::default")]
    pub scene: Option<String>,
    /// Description of the scene.
    #[autosurgeon(missing = "Default::default")]
    pub description: Text,
}

/// `person.*`
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub struct Person {
    /// Name, if known or claimed.
    #[autosurgeon(missing = "Default::default")]
    pub name: Option<String>,
    /// Apparent sex.
    #[autosurgeon(missing = "Default::default")]
    pub sex: Option<String>,
    /// Apparent age group.
    #[autosurgeon(missing = "Default::default")]
    pub age_group: Option<String>,
    /// Age or estimated age in years.
    #[autosurgeon(missing = "Default::default")]
    pub age_years: Option<i64>,
    /// Civilian: yes, no or unknown.
    #[autosurgeon(missing = "Default::default")]
    pub civilian: Option<String>,
    /// Height in centimetres, as the family or a document gives it.
    #[autosurgeon(missing = "Default::default")]
    pub height_cm: Option<f64>,
    /// Clothing when last seen.
    #[autosurgeon(missing = "Default::default")]
    pub clothing: Option<String>,
    /// Personal effects carried.
    #[autosurgeon(missing = "Default::default")]
    pub effects: Option<String>,
    /// Distinguishing marks known to the family.
    #[autosurgeon(missing = "Default::default")]
    pub marks: Option<String>,
}

/// `last_seen.*`: a missing person's last sighting (ante-mortem data).
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub struct LastSeen {
    /// When: a date `YYYY-MM-DD` or an RFC 3339 time.
    #[autosurgeon(missing = "Default::default")]
    pub at: Option<String>,
    /// Where, as told.
    #[autosurgeon(missing = "Default::default")]
    pub place: Option<String>,
    /// Latitude, decimal degrees.
    #[autosurgeon(missing = "Default::default")]
    pub lat: Option<f64>,
    /// Longitude, decimal degrees.
    #[autosurgeon(missing = "Default::default")]
    pub lon: Option<f64>,
}

/// `remains.*`
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub struct Remains {
    /// How complete the remains are.
    #[autosurgeon(missing = "Default::default")]
    pub completeness: Option<String>,
    /// State of the remains.
    #[autosurgeon(missing = "Default::default")]
    pub condition: Option<String>,
    /// Estimated height, centimetres.
    #[autosurgeon(missing = "Default::default")]
    pub height_cm: Option<f64>,
    /// Clothing.
    #[autosurgeon(missing = "Default::default")]
    pub clothing: Text,
    /// Distinguishing marks.
    #[autosurgeon(missing = "Default::default")]
    pub marks: Text,
    /// Personal effects.
    #[autosurgeon(missing = "Default::default")]
    pub effects: Text,
}

/// `forensic.*`
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub struct Forensic {
    /// Examiner.
    #[autosurgeon(missing = "Default::default")]
    pub examiner: Option<String>,
    /// Date of the examination.
    #[autosurgeon(missing = "Default::default")]
    pub date: Option<String>,
    /// Reference of the report.
    #[autosurgeon(missing = "Default::default")]
    pub report_ref: Option<String>,
    /// Conclusions.
    #[autosurgeon(missing = "Default::default")]
    pub conclusions: Text,
}

/// `identification.*`
#[derive(Debug, Clone, Default, PartialEq, Hydrate)]
pub struct Identification {
    /// How far identification has got.
    #[autosurgeon(missing = "Default::default")]
    pub status: Option<String>,
    /// What it rests on.
    #[autosurgeon(missing = "Default::default")]
    pub basis: Text,
}
