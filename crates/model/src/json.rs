//! The case as one JSON object, for display and export.
//!
//! Keys nest as the field keys do (`incident.cause` is `{"incident": {"cause": ...}}`).
//! Unset fields, empty text and empty groups are omitted; lists are always present. Where a
//! scalar is in conflict the winning value is shown, the same on every device; the status is
//! the office's. The office's lists (verifications, reviews) appear once the office has
//! written to them, attachments once there is one, and `changed_since_confirmed` (each
//! counted field's `old` value, as confirmed, and `new` one) once a confirmed case changed.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, ROOT};
use serde_json::{Map, Value as Json};

use crate::{fields, CaseDoc, FieldSpec, ModelError};

impl CaseDoc {
    /// The case as JSON; two documents with the same changes give equal values.
    pub fn to_json(&self) -> Result<Json, ModelError> {
        let case = self.case()?;
        let mut root = Map::new();
        root.insert("schema".into(), case.schema.into());
        root.insert("id".into(), case.id.to_string().into());
        root.insert("reference".into(), case.reference.to_string().into());
        root.insert("created_at".into(), case.created_at.into());
        root.insert("created_by".into(), case.created_by.into());
        for spec in fields() {
            let Some(value) = self.field_json(spec) else {
                continue;
            };
            match spec.group() {
                None => {
                    root.insert(spec.key.into(), value);
                }
                Some(group) => {
                    let entry = root
                        .entry(group)
                        .or_insert_with(|| Json::Object(Map::new()));
                    if let Json::Object(map) = entry {
                        map.insert(spec.leaf().into(), value);
                    }
                }
            }
        }
        // The office's status, not whatever value Automerge picks (see `CaseDoc::status`).
        root.insert("status".into(), case.status.to_string().into());
        let lists = [
            ("notes", serde_json::to_value(&case.notes)),
            ("custody", serde_json::to_value(&case.custody)),
            ("sources", serde_json::to_value(&case.sources)),
        ];
        for (key, value) in lists {
            root.insert(key.into(), value.map_err(ModelError::corrupt)?);
        }
        // The office's lists appear once it has written to them, attachments once there is one
        // (which keeps the JSON of a case made before them as it was).
        let once_used = [
            ("verifications", serde_json::to_value(&case.verifications)),
            ("reviews", serde_json::to_value(&case.reviews)),
            ("attachments", serde_json::to_value(self.attachments()?)),
        ];
        for (key, value) in once_used {
            match value.map_err(ModelError::corrupt)? {
                Json::Array(a) if a.is_empty() => {}
                value => {
                    root.insert(key.into(), value);
                }
            }
        }
        // A confirmed case whose counted fields changed since: each, as confirmed and now.
        let changed = self.changed_since_confirmed()?;
        if !changed.is_empty() {
            let changed = serde_json::to_value(changed).map_err(ModelError::corrupt)?;
            root.insert("changed_since_confirmed".into(), changed);
        }
        Ok(Json::Object(root))
    }

    /// [`CaseDoc::to_json`] with who signed what: `created_signed_by` at the root, the
    /// device (hex actor) whose signed change created the case, and `signed_by` in every
    /// entry of every list, the device whose signed change wrote it. Unlike `created_by` and
    /// an entry's `author`, which their writer typed, these cannot be forged: a change names
    /// its own actor, and the vault checks that actor against the change's signature.
    pub fn to_json_with_signers(&self) -> Result<Json, ModelError> {
        let mut json = self.to_json()?;
        let Json::Object(root) = &mut json else {
            return Ok(json);
        };
        if let Some(creator) = crate::judge::creator(&self.doc) {
            let creator = automerge::ActorId::from(creator.as_slice()).to_hex_string();
            root.insert("created_signed_by".into(), creator.into());
        }
        for list in [
            "notes",
            "custody",
            "sources",
            "verifications",
            "reviews",
            "attachments",
        ] {
            let Some(Json::Array(entries)) = root.get_mut(list) else {
                continue;
            };
            let signers = self.entry_signers(list)?;
            if signers.len() != entries.len() {
                return Err(ModelError::Corrupt(format!(
                    "`{list}` holds {} entries but {} were written",
                    entries.len(),
                    signers.len()
                )));
            }
            for (entry, signer) in entries.iter_mut().zip(signers) {
                if let Json::Object(entry) = entry {
                    entry.insert("signed_by".into(), signer.into());
                }
            }
        }
        if let Some(Json::Array(notes)) = root.get_mut("notes") {
            let office: Vec<String> = self
                .office
                .iter()
                .map(automerge::ActorId::to_hex_string)
                .collect();
            withdraw_notes(notes, &self.note_ids()?, &office);
        }
        Ok(json)
    }

    /// The current (winning) value of a field, or `None` if unset or empty text.
    fn field_json(&self, spec: &FieldSpec) -> Option<Json> {
        let obj = container(&self.doc, spec)?;
        match self.doc.get(&obj, spec.leaf()).ok()?? {
            (automerge::Value::Object(ObjType::Text), text) => {
                let s = self.doc.text(&text).ok()?;
                (!s.is_empty()).then(|| s.into())
            }
            (automerge::Value::Object(_), _) => None,
            (automerge::Value::Scalar(v), _) => Some(scalar_json(&v)).filter(|j| !j.is_null()),
        }
    }
}

/// Applies the withdrawals among `notes` (each with its `signed_by`; `ids` their
/// [`CaseDoc::note_ids`]): a note withdrawn by its own writer or by the office loses its text
/// and says `withdrawn` (when, by which device, why); a withdrawal by anyone else, or of a
/// note that is not there or is itself a withdrawal, changes nothing and says `ignored`.
/// Read, never stored, so every replica decides alike from the same signed entries.
fn withdraw_notes(notes: &mut [Json], ids: &[String], office: &[String]) {
    let signer = |note: &Json| {
        note.get("signed_by")
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    for w in 0..notes.len() {
        let Some(target) = notes[w].get("withdraws").and_then(Json::as_str) else {
            continue;
        };
        let by = signer(&notes[w]);
        let found = ids
            .iter()
            .position(|id| id == target)
            .filter(|n| *n != w && notes[*n].get("withdraws").is_none());
        let allowed = found.filter(|n| {
            by.is_some()
                && (by == signer(&notes[*n]) || by.as_ref().is_some_and(|b| office.contains(b)))
        });
        let Some(n) = allowed else {
            notes[w]["ignored"] = match found {
                Some(_) => "only the note's writer or the office withdraws a note",
                None => "it names no note of this case",
            }
            .into();
            continue;
        };
        if notes[n].get("withdrawn").is_some() {
            continue; // Withdrawn already: the first withdrawal stands.
        }
        let withdrawn = serde_json::json!({
            "at": notes[w]["at"],
            "by": by,
            "reason": notes[w]["text"],
        });
        if let Json::Object(note) = &mut notes[n] {
            note.remove("text");
            note.insert("withdrawn".into(), withdrawn);
        }
        // Which one, as the list reads now (the id is for machines).
        notes[w]["withdraws_note"] = (n + 1).into();
    }
}

/// The object holding `spec`'s value: the root or its group's map, if that exists.
pub(crate) fn container<D: ReadDoc>(doc: &D, spec: &FieldSpec) -> Option<ObjId> {
    let Some(group) = spec.group() else {
        return Some(ROOT);
    };
    match doc.get(ROOT, group).ok()?? {
        (automerge::Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// A scalar as JSON; bytes become lowercase hex, a non-finite number becomes null.
pub(crate) fn scalar_json(v: &ScalarValue) -> Json {
    match v {
        ScalarValue::Str(s) => Json::from(s.as_str()),
        ScalarValue::Int(i) => Json::from(*i),
        ScalarValue::Uint(u) => Json::from(*u),
        ScalarValue::F64(f) => Json::from(*f),
        ScalarValue::Boolean(b) => Json::from(*b),
        ScalarValue::Timestamp(t) => Json::from(*t),
        ScalarValue::Counter(c) => Json::from(i64::from(c)),
        ScalarValue::Bytes(b) => {
            Json::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
        ScalarValue::Null | ScalarValue::Unknown { .. } => Json::Null,
    }
}
