//! The Cairn case report: what a case holds, how each field is checked, how case references
//! are formed, and how a case lives as an Automerge document that merges concurrent edits
//! from many devices, keeping conflicting values visible until someone resolves them.
//!
//! This crate is pure data: it must never do I/O, touch storage, keys, encryption or the
//! network. Callers hand it bytes and an actor id and take bytes back; sealing, storing and
//! shipping those bytes is the job of other crates. Of who may do what it knows one fact, which
//! the caller tells it: which actor is the office, the only one that confirms, rejects and
//! reviews a case.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod case;
mod choices;
mod conflicts;
mod counted;
mod doc;
mod edit;
pub mod edition;
mod error;
mod fields;
mod history;
mod json;
mod judge;
mod overview;
mod persons;
mod records;
mod reference;
pub mod report;
mod value;

pub use automerge::ChangeHash;
pub use autosurgeon::Text;

pub use case::{Case, Forensic, Found, Identification, Incident, LastSeen, Person, Remains};
pub use choices::{Kind, Status};
pub use conflicts::{Conflict, ConflictValue};
pub use counted::{Counted, COUNTED};
pub use doc::{CaseDoc, SCHEMA};
pub use edit::Edit;
pub use error::ModelError;
pub use fields::{
    field, fields, parse_assignment, validate, FieldSpec, OFFICE_STATUSES, REVIEW_STATES, STATUSES,
};
pub use history::{FieldChange, HistoryEntry};
pub use judge::{
    own_change_ops, screen_change, Screened, ScreenedChange, MAX_CHANGE_BYTES, MAX_CHANGE_OPS,
};
pub use overview::{Overview, Profile};
pub use persons::{persons, CaseLink, Persons};
pub use records::{Attachment, CustodyEvent, Link, Note, Review, Source, Verification, RELATIONS};
pub use reference::{validate_device_tag, validate_place, validate_team, Reference};
pub use value::{parse_moment, FieldType, Value, MAX_TEXT_CHARS};
