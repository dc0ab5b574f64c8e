//! Edits: the only way a case changes after creation.
//!
//! Each edit writes just the keys it touches, never a whole struct, so an edit of one field
//! cannot overwrite a concurrent conflict on another. Scalars are `put` (a concurrent put keeps
//! both values as a conflict), text is diffed into splices (concurrent typing merges), and list
//! entries are inserted at the end (concurrent appends keep both).

use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, ROOT};

use crate::fields::{CONSENTS, OFFICE_STATUSES, REVIEW_STATES, STATUSES};
use crate::records::attachment_problem;
use crate::{
    field, Attachment, CustodyEvent, FieldSpec, ModelError, Note, Review, Source, Verification,
};
use crate::{FieldType, Value};

/// One change to a case. Values are raw strings as typed; they are validated when applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Sets a field (see [`crate::fields`]); an empty value clears a text or string field.
    Set {
        /// The field key, e.g. `incident.cause`.
        key: String,
        /// The raw value, e.g. `targeted_strike`.
        value: String,
    },
    /// Appends a note.
    Note {
        /// The note.
        text: String,
    },
    /// Appends a custody event.
    Custody {
        /// Who or where it came from.
        from: Option<String>,
        /// Who or where it went to (required).
        to: String,
        /// Where the hand-over took place.
        place: Option<String>,
        /// Why it was handed over.
        purpose: Option<String>,
        /// Seal number.
        seal: Option<String>,
    },
    /// Appends a source.
    Source {
        /// What kind of source (stored as `type`), e.g. `witness` (required).
        kind: String,
        /// How to reach the source.
        contact: Option<String>,
        /// Consent: yes, no or unknown.
        consent: String,
    },
    /// Gives the case an evidentiary status and records why, who and when (a verification
    /// entry). `confirmed` and `rejected` need a basis; only the office's are accepted.
    Verify {
        /// alleged, under_investigation, confirmed or rejected.
        status: String,
        /// On what grounds.
        basis: Option<String>,
    },
    /// Records the office's review: received, has_issues or approved.
    Review {
        /// received, has_issues or approved.
        state: String,
        /// What the reviewer says.
        comment: Option<String>,
    },
    /// Lists an attached file (its `at` and `author` are the edit's own stamp). The file's
    /// chunks are stored by the vault; this records what was taken at capture.
    Attach(Box<Attachment>),
}

impl Edit {
    /// Shorthand for [`Edit::Set`].
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Edit {
        Edit::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Checks the edit without a document, so a caller can refuse bad input before opening
    /// anything.
    pub fn check(&self) -> Result<(), ModelError> {
        let stamp = Stamp {
            at: String::new(),
            author: "",
        };
        self.checked(&stamp).map(|_| ())
    }

    /// Validates the edit into what will be written, list entries stamped with `stamp`.
    fn checked(&self, stamp: &Stamp<'_>) -> Result<Checked, ModelError> {
        let at = stamp.at.clone();
        let author = stamp.author.to_string();
        Ok(match self {
            Edit::Set { key, value } => {
                let spec = field(key)?;
                let value = spec.ty.parse(spec.key, value)?;
                if let (Value::Str(s), "status") = (&value, spec.key) {
                    if OFFICE_STATUSES.contains(&s.as_str()) {
                        return Err(ModelError::NeedsVerification(s.clone()));
                    }
                }
                Checked::Set(spec, value)
            }
            Edit::Verify { status, basis } => {
                let status = choice("status", status, STATUSES)?;
                let basis = optional(basis);
                if basis.is_none() && OFFICE_STATUSES.contains(&status.as_str()) {
                    return Err(ModelError::NeedsVerification(status));
                }
                Checked::Verify(Verification {
                    at,
                    author,
                    status,
                    basis,
                })
            }
            Edit::Review { state, comment } => Checked::Review(Review {
                at,
                author,
                state: choice("review.state", state, REVIEW_STATES)?,
                comment: optional(comment),
            }),
            Edit::Attach(file) => {
                let problem =
                    attachment_problem(&file.blob, &file.sha256, file.chunks, file.lat, file.lon);
                if let Some(problem) = problem {
                    return Err(ModelError::invalid(
                        "attachment",
                        &file.name,
                        format!("an attachment, not one {problem}"),
                    ));
                }
                Checked::Attach(Box::new(Attachment {
                    at,
                    author,
                    name: required("attachment.name", &file.name)?,
                    media_type: required("attachment.media_type", &file.media_type)?,
                    team: required("attachment.team", &file.team)?,
                    caption: optional(&file.caption),
                    exif_time: optional(&file.exif_time),
                    ..(**file).clone()
                }))
            }
            Edit::Note { text } => Checked::Note(Note {
                at,
                author,
                text: required("note", text)?,
            }),
            Edit::Custody {
                from,
                to,
                place,
                purpose,
                seal,
            } => Checked::Custody(CustodyEvent {
                at,
                author,
                from: optional(from),
                to: required("custody.to", to)?,
                place: optional(place),
                purpose: optional(purpose),
                seal: optional(seal),
            }),
            Edit::Source {
                kind,
                contact,
                consent,
            } => Checked::Source(Source {
                at,
                author,
                kind: required("source.type", kind)?,
                contact: optional(contact),
                consent: choice("source.consent", consent, CONSENTS)?,
            }),
        })
    }
}

/// An edit after validation: exactly what will be written.
enum Checked {
    Set(&'static FieldSpec, Value),
    Note(Note),
    Custody(CustodyEvent),
    Source(Source),
    Verify(Verification),
    Review(Review),
    Attach(Box<Attachment>),
}

/// One of `allowed`, given in any letter case.
fn choice(key: &str, raw: &str, allowed: &'static [&'static str]) -> Result<String, ModelError> {
    let answer = raw.trim().to_lowercase();
    if !allowed.contains(&answer.as_str()) {
        let expected = FieldType::Choice(allowed).describe();
        return Err(ModelError::invalid(key, raw, expected));
    }
    Ok(answer)
}

fn required(key: &str, raw: &str) -> Result<String, ModelError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ModelError::invalid(key, raw, "some text"));
    }
    Ok(s.to_string())
}

fn optional(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Who makes a change and when, as recorded in list entries.
pub(crate) struct Stamp<'a> {
    /// RFC 3339 time.
    pub at: String,
    /// Author device.
    pub author: &'a str,
}

/// Applies `edit` inside `tx`. Returns the key to record in the change message, or `None`
/// when the edit changes nothing (setting a field to the value it already has, unchallenged).
pub(crate) fn apply(
    tx: &mut Transaction<'_>,
    edit: &Edit,
    stamp: &Stamp<'_>,
) -> Result<Option<String>, ModelError> {
    let key = match edit.checked(stamp)? {
        Checked::Set(spec, value) => {
            if !set(tx, spec, value)? {
                return Ok(None);
            }
            spec.key
        }
        Checked::Note(note) => {
            append(tx, "notes", note)?;
            "note"
        }
        Checked::Custody(event) => {
            append(tx, "custody", event)?;
            "custody"
        }
        Checked::Source(source) => {
            append(tx, "sources", source)?;
            "source"
        }
        Checked::Verify(verification) => {
            let status = Value::Str(verification.status.clone());
            let spec = field("status")?;
            set(tx, spec, status)?;
            append(tx, "verifications", verification)?;
            "verification"
        }
        Checked::Review(review) => {
            append(tx, "reviews", review)?;
            "review"
        }
        Checked::Attach(file) => {
            append(tx, "attachments", *file)?;
            "attachment"
        }
    };
    Ok(Some(key.to_string()))
}

/// Writes one field; returns whether anything changed.
fn set(tx: &mut Transaction<'_>, spec: &FieldSpec, value: Value) -> Result<bool, ModelError> {
    let obj = match spec.group() {
        Some(group) => object(tx, &ROOT, group, ObjType::Map)?,
        None => ROOT,
    };
    let leaf = spec.leaf();
    let new = match value {
        Value::Text(s) => {
            let text = object(tx, &obj, leaf, ObjType::Text)?;
            if tx.text(&text).map_err(ModelError::corrupt)? == s {
                return Ok(false);
            }
            tx.update_text(&text, s).map_err(ModelError::corrupt)?;
            return Ok(true);
        }
        Value::Str(s) if s.is_empty() => {
            // Clearing deletes every value, so it also settles a conflict.
            let present = !tx
                .get_all(&obj, leaf)
                .map_err(ModelError::corrupt)?
                .is_empty();
            if present {
                tx.delete(&obj, leaf).map_err(ModelError::corrupt)?;
            }
            return Ok(present);
        }
        Value::Str(s) => ScalarValue::Str(s.into()),
        Value::Int(i) => ScalarValue::Int(i),
        Value::Float(f) => ScalarValue::F64(f),
    };
    // Skip only when this is already the one and only value: putting it again while other
    // values are in conflict is how someone settles the conflict.
    let current = tx.get_all(&obj, leaf).map_err(ModelError::corrupt)?;
    if let [(automerge::Value::Scalar(v), _)] = current.as_slice() {
        if v.as_ref() == &new {
            return Ok(false);
        }
    }
    tx.put(&obj, leaf, new).map_err(ModelError::corrupt)?;
    Ok(true)
}

/// Inserts `entry` at the end of the list `key` at the root.
fn append<R: autosurgeon::Reconcile>(
    tx: &mut Transaction<'_>,
    key: &str,
    entry: R,
) -> Result<(), ModelError> {
    let list = object(tx, &ROOT, key, ObjType::List)?;
    let end = tx.length(&list);
    autosurgeon::reconcile_insert(tx, list, end, entry).map_err(ModelError::corrupt)
}

/// The object of type `ty` at `parent[key]`, created if absent.
///
/// Every object is created with the case, so creating one here only happens for documents
/// written before the field existed; two devices doing it concurrently would each make their
/// own object and one would hide the other.
pub(crate) fn object(
    tx: &mut Transaction<'_>,
    parent: &ObjId,
    key: &str,
    ty: ObjType,
) -> Result<ObjId, ModelError> {
    match tx.get(parent, key).map_err(ModelError::corrupt)? {
        Some((automerge::Value::Object(found), id)) if found == ty => Ok(id),
        None => tx.put_object(parent, key, ty).map_err(ModelError::corrupt),
        Some(_) => Err(ModelError::Corrupt(format!("`{key}` is not a {ty:?}"))),
    }
}
