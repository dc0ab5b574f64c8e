//! The settable fields of a case report: their keys, types, help and validation.
//!
//! This table is the single definition the rest of the crate (and the CLI's `cairn fields`)
//! reads from: a key `group.leaf` lives in the map `group` at the document root, a key
//! without a dot lives at the root itself.

use crate::{FieldType, ModelError, Value};

/// One settable field of a case report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldSpec {
    /// The key used on the command line and in JSON, e.g. `incident.cause`.
    pub key: &'static str,
    /// What values the field accepts.
    pub ty: FieldType,
    /// One line saying what the field records.
    pub help: &'static str,
}

impl FieldSpec {
    /// The map at the document root holding this field, or `None` for a root field.
    pub fn group(&self) -> Option<&'static str> {
        self.key.split_once('.').map(|(group, _)| group)
    }

    /// The field's key inside its group (the whole key for a root field).
    pub fn leaf(&self) -> &'static str {
        self.key.split_once('.').map_or(self.key, |(_, leaf)| leaf)
    }
}

/// Kinds of case (`kind`).
pub const KINDS: &[&str] = &["killed", "injured", "missing", "remains", "detained"];
/// Evidentiary statuses (`status`).
pub const STATUSES: &[&str] = &["alleged", "under_investigation", "confirmed", "rejected"];
/// Statuses only the office gives, each with a basis.
pub const OFFICE_STATUSES: &[&str] = &["confirmed", "rejected"];
/// The office's review states.
pub const REVIEW_STATES: &[&str] = &["received", "has_issues", "approved"];
const CAUSES: &[&str] = &["targeted_strike", "captivity", "other_violence", "unknown"];
const SCENES: &[&str] = &[
    "surface",
    "grave",
    "mass_grave",
    "rubble",
    "water",
    "vehicle",
    "building",
    "other",
];
const SEXES: &[&str] = &["female", "male", "unknown"];
const AGE_GROUPS: &[&str] = &["child", "adolescent", "adult", "elderly", "unknown"];
const YES_NO: &[&str] = &["yes", "no", "unknown"];
const COMPLETENESS: &[&str] = &["complete", "incomplete", "body_part", "commingled"];
const CONDITIONS: &[&str] = &[
    "fresh",
    "decomposed",
    "skeletonised",
    "burned",
    "mummified",
    "other",
];
const ID_STATUSES: &[&str] = &["unidentified", "preliminary", "confirmed"];
/// Answers for a source's consent.
pub const CONSENTS: &[&str] = YES_NO;

const fn spec(key: &'static str, ty: FieldType, help: &'static str) -> FieldSpec {
    FieldSpec { key, ty, help }
}

const ANY_NUMBER: FieldType = FieldType::Float {
    min: None,
    max: None,
};

static FIELDS: &[FieldSpec] = &[
    spec("kind", FieldType::Choice(KINDS), "what the case is about"),
    spec(
        "status",
        FieldType::Choice(STATUSES),
        "evidentiary status; a new case is alleged",
    ),
    spec(
        "source_id",
        FieldType::Str,
        "the identifier the list this case was imported from gives it",
    ),
    spec(
        "place",
        FieldType::Str,
        "the place code the office corrected the case to (the reference keeps the place it was recorded at); only the office sets it",
    ),
    spec(
        "incident.date",
        FieldType::DateOrRange,
        "when the incident happened",
    ),
    spec(
        "incident.place",
        FieldType::Str,
        "where the incident happened",
    ),
    spec(
        "incident.cause",
        FieldType::Choice(CAUSES),
        "apparent cause of death or injury",
    ),
    spec(
        "incident.narrative",
        FieldType::Text,
        "what happened, as told or observed",
    ),
    spec(
        "found.at",
        FieldType::Timestamp,
        "when the person or remains were found",
    ),
    spec(
        "found.lat",
        FieldType::Float {
            min: Some(-90.0),
            max: Some(90.0),
        },
        "latitude where found, decimal degrees (WGS 84)",
    ),
    spec(
        "found.lon",
        FieldType::Float {
            min: Some(-180.0),
            max: Some(180.0),
        },
        "longitude where found, decimal degrees (WGS 84)",
    ),
    spec("found.alt", ANY_NUMBER, "altitude where found, metres"),
    spec(
        "found.accuracy_m",
        FieldType::Float {
            min: Some(0.0),
            max: None,
        },
        "accuracy of the position, metres",
    ),
    spec("found.scene", FieldType::Choice(SCENES), "type of scene"),
    spec(
        "found.description",
        FieldType::Text,
        "description of the scene",
    ),
    spec("person.name", FieldType::Str, "name, if known or claimed"),
    spec("person.sex", FieldType::Choice(SEXES), "apparent sex"),
    spec(
        "person.age_group",
        FieldType::Choice(AGE_GROUPS),
        "apparent age group",
    ),
    spec(
        "person.age_years",
        FieldType::Int { min: 0, max: 130 },
        "age or estimated age, years",
    ),
    spec(
        "person.civilian",
        FieldType::Choice(YES_NO),
        "whether the person was a civilian",
    ),
    spec(
        "person.height_cm",
        FieldType::Float {
            min: Some(30.0),
            max: Some(250.0),
        },
        "height, centimetres, as the family or a document gives it",
    ),
    spec(
        "person.clothing",
        FieldType::Str,
        "clothing when last seen, as the family describes it",
    ),
    spec(
        "person.effects",
        FieldType::Str,
        "personal effects the person carried: ring, watch, documents",
    ),
    spec(
        "person.marks",
        FieldType::Str,
        "distinguishing marks known to the family: scars, tattoos, dental work",
    ),
    spec(
        "last_seen.at",
        FieldType::DateOrTime,
        "when a missing person was last seen",
    ),
    spec(
        "last_seen.place",
        FieldType::Str,
        "where a missing person was last seen",
    ),
    spec(
        "last_seen.lat",
        FieldType::Float {
            min: Some(-90.0),
            max: Some(90.0),
        },
        "latitude where last seen, decimal degrees (WGS 84)",
    ),
    spec(
        "last_seen.lon",
        FieldType::Float {
            min: Some(-180.0),
            max: Some(180.0),
        },
        "longitude where last seen, decimal degrees (WGS 84)",
    ),
    spec(
        "remains.completeness",
        FieldType::Choice(COMPLETENESS),
        "how complete the remains are",
    ),
    spec(
        "remains.condition",
        FieldType::Choice(CONDITIONS),
        "state of the remains",
    ),
    spec(
        "remains.height_cm",
        FieldType::Float {
            min: Some(30.0),
            max: Some(250.0),
        },
        "estimated height of the remains, centimetres",
    ),
    spec(
        "remains.clothing",
        FieldType::Text,
        "clothing found with the remains",
    ),
    spec(
        "remains.marks",
        FieldType::Text,
        "distinguishing marks: scars, tattoos, dental work",
    ),
    spec(
        "remains.effects",
        FieldType::Text,
        "personal effects found with the remains",
    ),
    spec("injuries", FieldType::Text, "injuries observed"),
    spec(
        "torture_signs",
        FieldType::Choice(YES_NO),
        "whether there are signs of torture",
    ),
    spec(
        "forensic.examiner",
        FieldType::Str,
        "who carried out the forensic examination",
    ),
    spec(
        "forensic.date",
        FieldType::Date,
        "date of the forensic examination",
    ),
    spec(
        "forensic.report_ref",
        FieldType::Str,
        "reference of the forensic report",
    ),
    spec(
        "forensic.conclusions",
        FieldType::Text,
        "conclusions of the forensic examination",
    ),
    spec(
        "identification.status",
        FieldType::Choice(ID_STATUSES),
        "how far identification has got",
    ),
    spec(
        "identification.basis",
        FieldType::Text,
        "what the identification rests on",
    ),
];

/// Keys that belong to a case but cannot be `--set`.
pub(crate) const NOT_SETTABLE: &[&str] = &[
    "id",
    "reference",
    "created_at",
    "created_by",
    "schema",
    "notes",
    "custody",
    "sources",
    "attachments",
    "verifications",
    "reviews",
    "links",
];

/// Every settable field, in display order.
pub fn fields() -> &'static [FieldSpec] {
    FIELDS
}

/// Groups added after cases were first recorded: a case made before has none until its first
/// such field is set (which makes the group), so the judge accepts a case without them.
pub(crate) const LATE_GROUPS: &[&str] = &["last_seen"];

/// The groups (maps at the document root) that hold fields, in display order.
pub(crate) fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for group in FIELDS.iter().filter_map(FieldSpec::group) {
        if !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

/// Looks up a settable field by key (case-insensitive).
///
/// An unknown key comes back as [`ModelError::UnknownField`] with the nearest known key, if one
/// is close; a header or list key comes back as [`ModelError::NotSettable`].
pub fn field(key: &str) -> Result<&'static FieldSpec, ModelError> {
    let wanted = key.trim().to_lowercase();
    if let Some(spec) = FIELDS.iter().find(|f| f.key == wanted) {
        return Ok(spec);
    }
    if NOT_SETTABLE.contains(&wanted.as_str()) {
        return Err(ModelError::NotSettable(wanted));
    }
    Err(ModelError::UnknownField {
        key: key.to_string(),
        suggestion: suggest(&wanted).map(str::to_string),
    })
}

/// The known key most like `key`, matching either the whole key or just its leaf
/// (so `lat` suggests `found.lat`).
fn suggest(key: &str) -> Option<&'static str> {
    const THRESHOLD: f64 = 0.8;
    let mut best: Option<(&'static str, f64)> = None;
    for spec in FIELDS {
        let score = strsim::jaro_winkler(key, spec.key).max(strsim::jaro_winkler(key, spec.leaf()));
        if score >= THRESHOLD && best.is_none_or(|(_, b)| score > b) {
            best = Some((spec.key, score));
        }
    }
    best.map(|(k, _)| k)
}

/// Splits a `key=value` argument at its first `=`; the value may itself contain `=`.
pub fn parse_assignment(s: &str) -> Result<(String, String), ModelError> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(ModelError::BadAssignment(s.to_string())),
    }
}

/// Checks `raw` against the field `key` and returns it in stored form.
///
/// Surrounding spaces are dropped except in text fields. An empty value is accepted only by
/// text and string fields, where it clears the field.
pub fn validate(key: &str, raw: &str) -> Result<Value, ModelError> {
    let spec = field(key)?;
    spec.ty.parse(spec.key, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_at_most_one_level_deep() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(
                FIELDS[..i].iter().all(|g| g.key != f.key),
                "{} twice",
                f.key
            );
            assert!(f.key.matches('.').count() <= 1, "{} too deep", f.key);
            assert!(!NOT_SETTABLE.contains(&f.key));
        }
    }

    #[test]
    fn groups_are_in_display_order() {
        assert_eq!(
            groups(),
            [
                "incident",
                "found",
                "person",
                "last_seen",
                "remains",
                "forensic",
                "identification"
            ]
        );
    }
}
