//! The columns of `cases.csv` (and the properties of `cases.geojson`), in a fixed order,
//! each with its HXL hashtag.
//!
//! The order never depends on the data: reference, id, kind, status, place, team, every field
//! of `cairn fields` in its order, then the status basis, times, list counts, what changed
//! since the office confirmed the case, and one count column per kind (1 or 0), so that HXL
//! tools can add up `#affected +killed`. A confirmed case shows (and adds up) the counted
//! fields as the office confirmed them; an edit made since is in `changed_since_confirmed`.
//! docs/EXPORT.md explains the tags.

use cairn_model::{Case, CaseDoc, Reference};
use cairn_vault::CaseSummary;
use serde_json::Value;

use super::redact::Redaction;

/// One column: its header, its HXL tag, and what it shows.
pub struct Column {
    pub name: String,
    pub hxl: String,
    what: What,
}

enum What {
    Reference,
    Id,
    Place,
    Team,
    /// The person the case is a record of: the smallest case id among the cases the office
    /// linked to it (its own id when none).
    Person,
    /// A field key of `cairn fields` (kind and status among them).
    Field(&'static str),
    StatusBasis,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    /// How many entries a list holds.
    Count(&'static str),
    Conflicts,
    /// The counted fields changed since the office confirmed the case, as confirmed → now.
    Changed,
    /// 1 when the case is of this kind, else 0.
    IsKind(&'static str),
}

/// The HXL tag of a field key. Core hashtags and attributes where the HXL dictionary has
/// one; extension hashtags (`#x_...`) for the details of a person or remains it has none for.
fn field_tag(key: &str) -> String {
    let tag = match key {
        "kind" => "#event +type",
        "status" => "#status +verification",
        "incident.date" => "#date +occurred",
        "incident.place" => "#loc +name",
        "incident.cause" => "#event +cause",
        "incident.narrative" => "#description +incident",
        "found.at" => "#date +found",
        "found.lat" => "#geo +lat",
        "found.lon" => "#geo +lon",
        "found.alt" => "#geo +elevation",
        "found.accuracy_m" => "#geo +precision",
        "found.scene" => "#loc +type +scene",
        "found.description" => "#description +scene",
        "person.name" => "#x_person +name",
        "person.sex" => "#x_person +sex",
        "person.age_group" => "#x_person +age_group",
        "person.age_years" => "#x_person +age",
        "person.civilian" => "#x_person +civilian",
        "person.height_cm" => "#x_person +height",
        "person.clothing" => "#x_person +clothing",
        "person.effects" => "#x_person +effects",
        "person.marks" => "#x_person +marks",
        "last_seen.at" => "#date +last_seen",
        "last_seen.place" => "#loc +name +last_seen",
        "last_seen.lat" => "#geo +lat +last_seen",
        "last_seen.lon" => "#geo +lon +last_seen",
        "remains.height_cm" => "#x_remains +height",
        "remains.completeness" => "#x_remains +completeness",
        "remains.condition" => "#x_remains +condition",
        "remains.clothing" => "#x_remains +clothing",
        "remains.marks" => "#x_remains +marks",
        "remains.effects" => "#x_remains +effects",
        "injuries" => "#description +injuries",
        "torture_signs" => "#x_person +torture",
        "forensic.examiner" => "#x_forensic +examiner",
        "forensic.date" => "#date +forensic",
        "forensic.report_ref" => "#x_forensic +ref",
        "forensic.conclusions" => "#description +forensic",
        "identification.status" => "#status +identification",
        "identification.basis" => "#description +identification",
        // A field added after this table: tagged by its key, never left untagged.
        other => return format!("#x_case +{}", other.replace('.', "_")),
    };
    tag.to_string()
}

/// Every column not redacted, in order.
pub fn columns(redaction: &Redaction) -> Vec<Column> {
    let col = |name: &str, hxl: &str, what: What| Column {
        name: name.to_string(),
        hxl: hxl.to_string(),
        what,
    };
    let mut out = vec![
        col("reference", "#event +code", What::Reference),
        col("id", "#event +id", What::Id),
        col("kind", &field_tag("kind"), What::Field("kind")),
        col("status", &field_tag("status"), What::Field("status")),
        col("place", "#loc +code", What::Place),
        col("team", "#org +team", What::Team),
    ];
    for spec in cairn_model::fields() {
        // `place` is the column above (the office's correction, else the reference's).
        if !matches!(spec.key, "kind" | "status" | "place") {
            out.push(col(spec.key, &field_tag(spec.key), What::Field(spec.key)));
        }
    }
    out.extend([
        col("status_basis", "#status +basis", What::StatusBasis),
        col("created_at", "#date +created", What::CreatedAt),
        col("created_by", "#meta +device", What::CreatedBy),
        col("updated_at", "#date +updated", What::UpdatedAt),
        col("person", "#x_person +code", What::Person),
    ]);
    for list in [
        "notes",
        "custody",
        "sources",
        "verifications",
        "reviews",
        "links",
    ] {
        let name = format!("{list}.count");
        out.push(col(
            &name,
            &format!("#meta +{list} +num"),
            What::Count(list),
        ));
    }
    out.push(col(
        "conflicts.count",
        "#meta +conflicts +num",
        What::Conflicts,
    ));
    out.push(col(
        "changed_since_confirmed",
        "#meta +changed",
        What::Changed,
    ));
    for (name, kind, tag) in [
        ("killed", "killed", "#affected +killed"),
        ("injured", "injured", "#affected +injured"),
        ("missing", "missing", "#affected +missing"),
        ("remains_found", "remains", "#affected +remains"),
        ("detained", "detained", "#affected +detained"),
    ] {
        out.push(col(name, tag, What::IsKind(kind)));
    }
    out.retain(|c| !redaction.hides(c.owner()));
    out
}

impl Column {
    /// The key whose redaction removes this column.
    fn owner(&self) -> &str {
        match &self.what {
            What::Field(key) => key,
            What::StatusBasis => "verifications",
            What::Count(list) => list,
            What::IsKind(_) => "kind",
            _ => "",
        }
    }

    /// This column's value for `case`: text, a number, or null when unset.
    pub fn value(&self, case: &Row<'_>) -> Value {
        match &self.what {
            What::Reference => case.reference.to_string().into(),
            What::Id => case.summary.id.to_string().into(),
            // Where the case counts: the office's correction, else its reference's place.
            What::Place => case.summary.place.clone().into(),
            What::Team => case.reference.team.clone().into(),
            What::Person => case.person.into(),
            // A confirmed case shows what the office confirmed.
            What::Field(key) => match &case.summary.confirmed {
                Some(confirmed) if cairn_model::COUNTED.contains(key) => confirmed.json(key),
                _ => field(case.json, key),
            },
            What::StatusBasis => case
                .case
                .verifications
                .last()
                .and_then(|v| v.basis.clone())
                .map_or(Value::Null, Value::from),
            What::CreatedAt => case.case.created_at.clone().into(),
            // The device that signed the creation (its short id), not the text it typed.
            What::CreatedBy => match case.json.get("created_signed_by").and_then(Value::as_str) {
                Some(signer) => signer.chars().take(12).collect::<String>().into(),
                None => case.case.created_by.clone().into(),
            },
            What::UpdatedAt => case.summary.updated_at.clone().into(),
            What::Count(list) => Value::from(match *list {
                "notes" => case.case.notes.len(),
                "custody" => case.case.custody.len(),
                "sources" => case.case.sources.len(),
                "verifications" => case.case.verifications.len(),
                "links" => case.case.links.len(),
                _ => case.case.reviews.len(),
            }),
            What::Conflicts => Value::from(case.conflicts),
            What::Changed => case.changed.clone().into(),
            What::IsKind(kind) => {
                let counted = match &case.summary.confirmed {
                    Some(confirmed) => confirmed.kind.as_str(),
                    None => case.case.kind.as_str(),
                };
                Value::from(u8::from(counted == *kind))
            }
        }
    }
}

/// What the columns of one case are read from.
pub struct Row<'a> {
    pub summary: &'a CaseSummary,
    pub reference: &'a Reference,
    pub case: &'a Case,
    /// `CaseDoc::to_json`, redacted.
    pub json: &'a Value,
    /// The person's id (see [`What::Person`]).
    pub person: &'a str,
    /// Open conflicts on fields that are not redacted.
    pub conflicts: usize,
    /// The fields not redacted that changed since the office confirmed the case, as
    /// `field: confirmed → now`, joined by `; `.
    pub changed: String,
}

impl<'a> Row<'a> {
    pub fn new(
        summary: &'a CaseSummary,
        doc: &'a CaseDoc,
        case: &'a Case,
        json: &'a Value,
        person: &'a str,
        redaction: &Redaction,
    ) -> Row<'a> {
        let conflicts = doc
            .conflicts()
            .iter()
            .filter(|c| !redaction.hides(&c.key))
            .count();
        let none = "(none)";
        let changed = summary
            .changed_since_confirmed
            .iter()
            .filter(|c| !redaction.hides(&c.field))
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    c.field,
                    c.old.as_deref().unwrap_or(none),
                    c.new.as_deref().unwrap_or(none)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Row {
            summary,
            reference: doc.reference(),
            case,
            json,
            person,
            conflicts,
            changed,
        }
    }
}

/// A field's value in the case JSON (`group.leaf` nests).
fn field(json: &Value, key: &str) -> Value {
    let found = match key.split_once('.') {
        Some((group, leaf)) => json.get(group).and_then(|g| g.get(leaf)),
        None => json.get(key),
    };
    found.cloned().unwrap_or(Value::Null)
}

/// A value as a CSV cell: text escaped against formulas ([`super::formula`]), numbers as
/// JSON writes them, null as empty.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => super::formula::escape(s).into_owned(),
        other => other.to_string(),
    }
}
