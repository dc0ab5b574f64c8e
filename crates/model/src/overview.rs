//! What a list, an inbox or a report needs of a case, read in one pass without hydrating it.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, ROOT};

use serde::{Deserialize, Serialize};

use crate::{CaseDoc, CaseLink, Counted, FieldChange, ModelError};

/// What record linkage compares of a case (`cairn office match`): the person as described,
/// with the ante-mortem fields of a missing person and the post-mortem ones of remains read
/// into the same places. Kept in the vault's summary, so matching loads no document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `person.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `person.sex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// `person.age_group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_group: Option<String>,
    /// `person.age_years`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_years: Option<i64>,
    /// `incident.place`, else `last_seen.place`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// `found.lat`/`found.lon`, else `last_seen.lat`/`last_seen.lon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// See `lat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// `last_seen.at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
    /// `person.height_cm`, else `remains.height_cm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height_cm: Option<f64>,
    /// `person.clothing`, else `remains.clothing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clothing: Option<String>,
    /// `person.effects`, else `remains.effects`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effects: Option<String>,
    /// `person.marks`, else `remains.marks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marks: Option<String>,
}

impl Eq for Profile {}

/// A case at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    /// killed, injured, missing, remains or detained.
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
    /// The office's link decisions in force (the latest for each other case).
    pub links: Vec<CaseLink>,
    /// What record linkage compares.
    pub profile: Profile,
}

impl CaseDoc {
    /// The case at a glance (see [`Overview`]).
    pub fn overview(&self) -> Result<Overview, ModelError> {
        let office = self.office.as_slice();
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
        let mut values: Vec<(&str, String, ScalarValue)> = Vec::new();
        for group in crate::fields::groups() {
            let Ok(Some((automerge::Value::Object(ObjType::Map), obj))) = self.doc.get(ROOT, group)
            else {
                continue;
            };
            for item in self.doc.map_range(&obj, ..) {
                conflicts |= item.conflict;
                let value = match &item.value {
                    automerge::ValueRef::Scalar(v) => Some(ScalarValue::from(v)),
                    // Of the texts, only what matching compares (a narrative may be long).
                    automerge::ValueRef::Object(ObjType::Text)
                        if group == "remains"
                            && matches!(&*item.key, "clothing" | "effects" | "marks") =>
                    {
                        let text = self.doc.text(item.id()).unwrap_or_default();
                        Some(ScalarValue::Str(text.into()))
                    }
                    _ => None,
                };
                if let Some(value) = value {
                    values.push((group, item.key.to_string(), value));
                }
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
                .any(|m| !office.contains(&m.actor)),
        };
        let profile = profile(&values);
        Ok(Overview {
            links: self.links(),
            profile,
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

impl CaseDoc {
    /// The office's link decisions in force: the latest entry for each other case.
    pub fn links(&self) -> Vec<CaseLink> {
        let mut out: Vec<CaseLink> = Vec::new();
        for (_, _, entry) in self.list_entries("links").unwrap_or_default() {
            let (Some(other_id), Some(relation)) = (
                scalar_str(&self.doc, &entry, "other_id"),
                scalar_str(&self.doc, &entry, "relation"),
            ) else {
                continue;
            };
            match out.iter_mut().find(|l| l.other_id == other_id) {
                Some(earlier) => earlier.relation = relation,
                None => out.push(CaseLink { other_id, relation }),
            }
        }
        out
    }
}

/// The profile from the groups' values, `(group, key, value)`; an empty text is no value.
fn profile(values: &[(&str, String, ScalarValue)]) -> Profile {
    let get = |group: &str, key: &str| {
        values
            .iter()
            .find(|(g, k, _)| *g == group && k == key)
            .map(|(_, _, v)| v)
    };
    let text = |group: &str, key: &str| match get(group, key) {
        Some(ScalarValue::Str(s)) if !s.trim().is_empty() => Some(s.to_string()),
        _ => None,
    };
    let number = |group: &str, key: &str| match get(group, key) {
        Some(ScalarValue::F64(f)) => Some(*f),
        Some(ScalarValue::Int(i)) => Some(*i as f64),
        _ => None,
    };
    let (lat, lon) = match (number("found", "lat"), number("found", "lon")) {
        (Some(lat), Some(lon)) => (Some(lat), Some(lon)),
        _ => (number("last_seen", "lat"), number("last_seen", "lon")),
    };
    Profile {
        name: text("person", "name"),
        sex: text("person", "sex"),
        age_group: text("person", "age_group"),
        age_years: match get("person", "age_years") {
            Some(ScalarValue::Int(i)) => Some(*i),
            _ => None,
        },
        place: text("incident", "place").or_else(|| text("last_seen", "place")),
        lat,
        lon,
        last_seen_at: text("last_seen", "at"),
        height_cm: number("person", "height_cm").or_else(|| number("remains", "height_cm")),
        clothing: text("person", "clothing").or_else(|| text("remains", "clothing")),
        effects: text("person", "effects").or_else(|| text("remains", "effects")),
        marks: text("person", "marks").or_else(|| text("remains", "marks")),
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
