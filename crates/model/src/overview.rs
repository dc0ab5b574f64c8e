//! What a list, an inbox or a report needs of a case, read in one pass without hydrating it.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, ROOT};

use crate::{CaseDoc, Counted, FieldChange, ModelError};

/// A case at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    /// killed, injured, missing or remains.
    pub kind: String,
    /// The evidentiary status: the office's (see [`CaseDoc::status`]).
    pub status: String,
    /// `incident.cause`, if set.
    pub cause: Option<String>,
    /// `incident.date` (a date or a range), if set.
    pub incident_date: Option<String>,
    /// `found.at` (when the person or remains were found), if set.
    pub found_at: Option<String>,
    /// `person.civilian`, if set.
    pub civilian: Option<String>,
    /// `identification.status`, if set.
    pub identification: Option<String>,
    /// The counted fields as the office confirmed them, when the case is confirmed: what it
    /// is counted by (see [`CaseDoc::confirmed`]).
    pub confirmed: Option<Counted>,
    /// Each counted field changed since the office confirmed the case (see
    /// [`CaseDoc::changed_since_confirmed`]).
    pub changed_since_confirmed: Vec<FieldChange>,
    /// Whether any field holds concurrent values.
    pub conflicts: bool,
    /// The time its newest change claims, in milliseconds since the epoch.
    pub changed_ms: i64,
    /// Hex of the device (actor) that made that change.
    pub changed_by: String,
    /// The state of the office's newest review, if any.
    pub review: Option<String>,
    /// Whether a device other than the office changed it since the office's newest review
    /// (or it was never reviewed).
    pub needs_review: bool,
}

impl CaseDoc {
    /// The case at a glance (see [`Overview`]).
    pub fn overview(&self) -> Result<Overview, ModelError> {
        let office = self.office.as_ref();
        let (kind, status) = self.headline()?;
        // One pass over each map, reading its values and whether any is in conflict: cheap
        // enough to run on every case a sync writes. (Values beside the office's status are
        // not the office's: never read, so no conflict.)
        let mut conflicts = false;
        for item in self.doc.map_range(ROOT, ..) {
            conflicts |= item.conflict && item.key != "status";
        }
        let mut wanted = [
            ("incident", "cause", None),
            ("incident", "date", None),
            ("found", "at", None),
            ("person", "civilian", None),
            ("identification", "status", None),
        ];
        for group in crate::fields::groups() {
            let Ok(Some((automerge::Value::Object(ObjType::Map), obj))) = self.doc.get(ROOT, group)
            else {
                continue;
            };
            for item in self.doc.map_range(&obj, ..) {
                conflicts |= item.conflict;
                let slot = wanted
                    .iter_mut()
                    .find(|(g, k, _)| *g == group && *k == item.key);
                if let (
                    Some((_, _, slot)),
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)),
                ) = (slot, &item.value)
                {
                    *slot = Some(s.to_string());
                }
            }
        }
        let [cause, incident_date, found_at, civilian, identification] = wanted.map(|(_, _, v)| v);
        let confirmed = self.confirmed()?;
        let changed_since_confirmed = match &confirmed {
            Some(confirmed) => {
                crate::counted::changed(confirmed, &crate::counted::values(&self.doc, None)?)
            }
            None => Vec::new(),
        };
        let metas = self.doc.get_changes_meta(&[]);
        let newest = metas.iter().max_by_key(|m| m.timestamp);
        let changed_ms = newest.map_or(0, |m| m.timestamp);
        let changed_by = newest.map(|m| m.actor.to_hex_string()).unwrap_or_default();
        let (review, reviewed_at) = match newest_entry(&self.doc, "reviews") {
            Some(entry) => (
                scalar_str(&self.doc, &entry, "state"),
                self.doc.hash_for_opid(&entry),
            ),
            None => (None, None),
        };
        let needs_review = match reviewed_at {
            None => true,
            Some(hash) => self
                .doc
                .get_changes_meta(&[hash])
                .iter()
                .any(|m| Some(m.actor.as_ref()) != office),
        };
        Ok(Overview {
            kind: kind.to_string(),
            status: status.to_string(),
            cause,
            incident_date,
            found_at,
            civilian,
            identification,
            confirmed,
            changed_since_confirmed,
            conflicts,
            changed_ms,
            changed_by,
            review,
            needs_review,
        })
    }
}

/// The last entry of the root list `list`, if any.
fn newest_entry(doc: &automerge::Automerge, list: &str) -> Option<ObjId> {
    let (automerge::Value::Object(ObjType::List), id) = doc.get(ROOT, list).ok()?? else {
        return None;
    };
    let len = doc.length(&id);
    let (_, entry) = doc.get(&id, len.checked_sub(1)?).ok()??;
    Some(entry)
}

fn scalar_str(doc: &automerge::Automerge, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key).ok()?? {
        (automerge::Value::Scalar(v), _) => match v.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}
