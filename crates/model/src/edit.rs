//! Edits: the only way a case changes after creation.
//!
//! Each edit writes just the keys it touches, never a whole struct, so an edit of one field
//! cannot overwrite a concurrent conflict on another. Scalars are `put` (a concurrent put keeps
//! both values as a conflict), text is diffed into splices (concurrent typing merges), and list
//! entries are inserted at the end (concurrent appends keep both).

use automerge::transaction::{Transactable, Transaction};
use automerge::{hydrate, ObjId, ObjType, ReadDoc, ScalarValue, TextEncoding, ROOT};

use crate::fields::{CONSENTS, OFFICE_STATUSES, REVIEW_STATES, STATUSES};
use crate::records::attachment_problem;
use crate::{
    field, Attachment, Counted, CustodyEvent, FieldSpec, Link, ModelError, Note, Review, Source,
    Verification, RELATIONS,
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
    /// Clears a field of any type (a wrong choice, a number typed by mistake); clearing
    /// also settles a conflict on it. A case's kind and status cannot be cleared.
    Unset {
        /// The field key, e.g. `person.sex`.
        key: String,
    },
    /// Appends a note.
    Note {
        /// The note.
        text: String,
    },
    /// Withdraws a note (one on the wrong case, say): a note of its own saying why, naming
    /// the withdrawn one. Only the note's writer or the office withdraws it (checked where
    /// notes are read: [`crate::CaseDoc::to_json_with_signers`]); its text stays in the
    /// case's signed history, as every edit does.
    WithdrawNote {
        /// The withdrawn note's entry, as [`crate::CaseDoc::note_ids`] names it.
        note: String,
        /// Why (required).
        reason: String,
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
        /// When the hand-over happened (RFC 3339), if not now: one recorded later says when.
        at: Option<String>,
    },
    /// Appends a source.
    Source {
        /// What kind of source (stored as `type`), e.g. `witness` (required).
        kind: String,
        /// How to reach the source.
        contact: Option<String>,
        /// Consent: yes, no or unknown.
        consent: String,
        /// When the source gave the information (RFC 3339), if not now.
        at: Option<String>,
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
    /// Records the office's decision on this case and another (see [`Link`]); the vault
    /// writes it in both cases in one transaction.
    Link {
        /// same_person, identifies or distinct.
        relation: String,
        /// The other case's id.
        other_id: String,
        /// The other case's reference.
        other: String,
        /// On what grounds (required).
        basis: String,
        /// For `identifies`: the id of the case that holds the remains.
        remains: Option<String>,
    },
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
                // A corrected place is a place code, as a reference writes it.
                let value = match (value, spec.key) {
                    (Value::Str(s), "place") => Value::Str(crate::validate_place(&s)?),
                    (value, _) => value,
                };
                Checked::Set(spec, value)
            }
            Edit::Unset { key } => {
                let spec = field(key)?;
                if matches!(spec.key, "kind" | "status") {
                    return Err(ModelError::invalid(
                        spec.key,
                        "",
                        "a value: a case always has its kind and status, so set another instead",
                    ));
                }
                let empty = match spec.ty {
                    FieldType::Text => Value::Text(String::new()),
                    _ => Value::Str(String::new()),
                };
                Checked::Set(spec, empty)
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
                    counted: None,
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
            Edit::Link {
                relation,
                other_id,
                other,
                basis,
                remains,
            } => {
                let relation = choice("link", relation, RELATIONS)?;
                let id = |key: &str, raw: &str| {
                    uuid::Uuid::parse_str(raw.trim())
                        .map(|u| u.to_string())
                        .map_err(|_| ModelError::invalid(key, raw, "a case id"))
                };
                let remains = match (relation.as_str(), remains) {
                    ("identifies", Some(r)) => Some(id("link.remains", r)?),
                    ("identifies", None) => {
                        return Err(ModelError::invalid(
                            "link.remains",
                            "",
                            "the case that holds the remains",
                        ))
                    }
                    _ => None,
                };
                Checked::Link(Link {
                    at,
                    author,
                    relation,
                    other_id: id("link.other_id", other_id)?,
                    other: required("link.other", other)?,
                    basis: required("link.basis", basis)?,
                    remains,
                })
            }
            Edit::Note { text } => Checked::Note(Note {
                at,
                author,
                text: required("note", text)?,
                withdraws: None,
            }),
            Edit::WithdrawNote { note, reason } => {
                let id = note.trim();
                let well_formed = id.split_once('@').is_some_and(|(counter, actor)| {
                    counter.parse::<u64>().is_ok()
                        && !actor.is_empty()
                        && actor.len() <= 64
                        && actor.bytes().all(|b| b.is_ascii_hexdigit())
                });
                if !well_formed {
                    return Err(ModelError::invalid("note", note, "a note's id"));
                }
                Checked::Note(Note {
                    at,
                    author,
                    text: required("reason", reason)?,
                    withdraws: Some(id.to_owned()),
                })
            }
            Edit::Custody {
                from,
                to,
                place,
                purpose,
                seal,
                at: when,
            } => Checked::Custody(CustodyEvent {
                at: moment("custody.at", when)?.unwrap_or(at),
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
                at: when,
            } => Checked::Source(Source {
                at: moment("source.at", when)?.unwrap_or(at),
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
    Link(Link),
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

/// A record's own time, given as RFC 3339 (the caller reads friendlier forms with
/// [`crate::parse_moment`]).
fn moment(key: &str, raw: &Option<String>) -> Result<Option<String>, ModelError> {
    let Some(raw) = raw else { return Ok(None) };
    match FieldType::Timestamp.parse(key, raw)? {
        Value::Str(s) => Ok(Some(s)),
        _ => Err(ModelError::invalid(
            key,
            raw,
            FieldType::Timestamp.describe(),
        )),
    }
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
            append_note(tx, &note)?;
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
        Checked::Verify(mut verification) => {
            if verification.status == "confirmed" {
                // The confirmation binds the counted fields as they stand: one value each.
                let now = crate::counted::values(tx, None)?;
                let counted =
                    Counted::from_values(&now).map_err(ModelError::UnsettledConfirmation)?;
                verification.counted = Some(counted.to_record());
            }
            let status = Value::Str(verification.status.clone());
            let spec = field("status")?;
            set(tx, spec, status)?;
            append_verification(tx, &verification)?;
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
        Checked::Link(link) => {
            append(tx, "links", link)?;
            "link"
        }
    };
    Ok(Some(key.to_string()))
}

/// What [`apply`] does to a `Set` edit, done instead to a new case's tree before it is
/// written (see `CaseDoc::create`): `None` for an edit that is not a field, else the key it
/// changed, if any. The same rules as [`set`]: an unchanged value is no change, an empty
/// string clears.
pub(crate) fn fold(
    root: &mut hydrate::Map,
    edit: &Edit,
    stamp: &Stamp<'_>,
    encoding: TextEncoding,
) -> Result<Option<Option<&'static str>>, ModelError> {
    if !matches!(edit, Edit::Set { .. } | Edit::Verify { .. }) {
        return Ok(None);
    }
    match edit.checked(stamp)? {
        Checked::Set(spec, value) => fold_set(root, spec, value, encoding).map(Some),
        // A second verification in the same change is left to `apply`, and so is a
        // confirmation, which reads the fields it binds from the document.
        Checked::Verify(_) if root.contains_key("verifications") => Ok(None),
        Checked::Verify(v) if v.status == "confirmed" => Ok(None),
        Checked::Verify(v) => {
            fold_set(
                root,
                field("status")?,
                Value::Str(v.status.clone()),
                encoding,
            )?;
            // As autosurgeon writes a `Verification`: a map of strings, null for no basis.
            let mut entry = hydrate::Map::default();
            for (key, value) in verification_entry(&v) {
                crate::doc::put(&mut entry, key, value.into());
            }
            let list = hydrate::Value::from(vec![hydrate::Value::from(entry)]);
            crate::doc::put(root, "verifications", list);
            Ok(Some(Some("verification")))
        }
        _ => Ok(None),
    }
}

fn fold_set(
    root: &mut hydrate::Map,
    spec: &'static FieldSpec,
    value: Value,
    encoding: TextEncoding,
) -> Result<Option<&'static str>, ModelError> {
    let parent = match spec.group() {
        Some(group) => crate::doc::group_mut(root, group)
            .ok_or_else(|| ModelError::Corrupt(format!("`{group}` is not a Map")))?,
        None => root,
    };
    let leaf = spec.leaf();
    let current = parent.get(leaf);
    let new = match value {
        Value::Text(s) => match current {
            Some(hydrate::Value::Text(t)) if t.to_string() == s => return Ok(None),
            Some(hydrate::Value::Text(_)) => hydrate::Text::new(encoding, s).into(),
            _ => return Err(ModelError::Corrupt(format!("`{leaf}` is not a Text"))),
        },
        Value::Str(s) if s.is_empty() => {
            let present = parent.remove(leaf).is_some();
            return Ok(present.then_some(spec.key));
        }
        Value::Str(s) => ScalarValue::Str(s.into()).into(),
        Value::Int(i) => ScalarValue::Int(i).into(),
        Value::Float(f) => ScalarValue::F64(f).into(),
    };
    if current == Some(&new) {
        return Ok(None);
    }
    crate::doc::put(parent, leaf, new);
    Ok(Some(spec.key))
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

/// A verification entry's keys and values, as the first versions wrote them (autosurgeon's
/// way: null for no basis), then what a confirmation binds.
fn verification_entry(v: &Verification) -> Vec<(&'static str, ScalarValue)> {
    let text = |s: &str| ScalarValue::Str(s.into());
    let mut entry = vec![
        ("at", text(&v.at)),
        ("author", text(&v.author)),
        ("status", text(&v.status)),
        ("basis", v.basis.as_deref().map_or(ScalarValue::Null, text)),
    ];
    if let Some(counted) = &v.counted {
        entry.push(("counted", text(counted)));
    }
    entry
}

/// Appends a verification (see [`verification_entry`]) to the root list `verifications`.
fn append_verification(tx: &mut Transaction<'_>, v: &Verification) -> Result<(), ModelError> {
    let list = object(tx, &ROOT, "verifications", ObjType::List)?;
    let end = tx.length(&list);
    let entry = tx
        .insert_object(&list, end, ObjType::Map)
        .map_err(ModelError::corrupt)?;
    for (key, value) in verification_entry(v) {
        tx.put(&entry, key, value).map_err(ModelError::corrupt)?;
    }
    Ok(())
}

/// Inserts a note at the end of `notes`, with `withdraws` only when it is a withdrawal: a
/// plain note keeps the three keys every version of Cairn accepts.
fn append_note(tx: &mut Transaction<'_>, note: &Note) -> Result<(), ModelError> {
    let list = object(tx, &ROOT, "notes", ObjType::List)?;
    let end = tx.length(&list);
    let entry = tx
        .insert_object(&list, end, ObjType::Map)
        .map_err(ModelError::corrupt)?;
    let keys = [
        ("at", Some(&note.at)),
        ("author", Some(&note.author)),
        ("text", Some(&note.text)),
        ("withdraws", note.withdraws.as_ref()),
    ];
    for (key, value) in keys {
        if let Some(value) = value {
            tx.put(&entry, key, value.as_str())
                .map_err(ModelError::corrupt)?;
        }
    }
    Ok(())
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
