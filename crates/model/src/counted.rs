//! What the office's confirmation binds: the fields a case is counted by, as the office
//! confirmed them.
//!
//! A verification that confirms a case records, in its `counted` key, the counted fields
//! ([`COUNTED`]) as the case held them at that moment: one JSON object, written one way only
//! (every key, in that order, `null` for a field not set), so that the judge of received
//! changes can refuse anything else. A later edit of one of those fields, by anyone, is kept
//! and shown, but leaves the case *changed since confirmed*: it is counted with the values
//! the office confirmed until the office confirms it again. No count moves without the
//! office.
//!
//! A confirmation recorded before confirmations carried their values binds the values the
//! case held when the office confirmed it, read from the case's history at that change: the
//! office confirmed what its copy of the case showed then.

use automerge::{ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, ROOT};
use serde::{Deserialize, Serialize};

use crate::{field, CaseDoc, FieldChange, ModelError, Status, Value};

/// The fields a case is counted by, which a confirmation binds. The place code is not among
/// them: it is in the reference, which never changes.
pub const COUNTED: [&str; 10] = [
    "kind",
    "incident.cause",
    "incident.date",
    "incident.place",
    "found.at",
    "person.civilian",
    "person.sex",
    "person.age_group",
    "person.age_years",
    "identification.status",
];

/// The counted fields' values (see [`COUNTED`]), keyed in JSON by their field keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counted {
    /// `kind`.
    pub kind: String,
    /// `incident.cause`.
    #[serde(rename = "incident.cause")]
    pub cause: Option<String>,
    /// `incident.date`: a date or a range.
    #[serde(rename = "incident.date")]
    pub incident_date: Option<String>,
    /// `incident.place`.
    #[serde(rename = "incident.place")]
    pub incident_place: Option<String>,
    /// `found.at`: an RFC 3339 timestamp.
    #[serde(rename = "found.at")]
    pub found_at: Option<String>,
    /// `person.civilian`.
    #[serde(rename = "person.civilian")]
    pub civilian: Option<String>,
    /// `person.sex`.
    #[serde(rename = "person.sex")]
    pub sex: Option<String>,
    /// `person.age_group`.
    #[serde(rename = "person.age_group")]
    pub age_group: Option<String>,
    /// `person.age_years`.
    #[serde(rename = "person.age_years")]
    pub age_years: Option<i64>,
    /// `identification.status`.
    #[serde(rename = "identification.status")]
    pub identification: Option<String>,
}

impl Counted {
    /// The value of the counted field `key` as text, `None` when unset (or `key` is not one).
    pub fn get(&self, key: &str) -> Option<String> {
        let text = match key {
            "kind" => return Some(self.kind.clone()),
            "person.age_years" => return self.age_years.map(|a| a.to_string()),
            "incident.cause" => &self.cause,
            "incident.date" => &self.incident_date,
            "incident.place" => &self.incident_place,
            "found.at" => &self.found_at,
            "person.civilian" => &self.civilian,
            "person.sex" => &self.sex,
            "person.age_group" => &self.age_group,
            "identification.status" => &self.identification,
            _ => return None,
        };
        text.clone()
    }

    /// The value of the counted field `key` as JSON, as [`crate::CaseDoc::to_json`] shows
    /// it: text, a number, or null when unset.
    pub fn json(&self, key: &str) -> serde_json::Value {
        match key {
            "person.age_years" => self.age_years.map_or(serde_json::Value::Null, Into::into),
            _ => self.get(key).map_or(serde_json::Value::Null, Into::into),
        }
    }

    /// Sets the counted field `key` from its text (as [`Counted::get`] gives it).
    fn set(&mut self, key: &str, value: Option<String>) -> Result<(), ModelError> {
        let slot = match key {
            "kind" => {
                self.kind = value.unwrap_or_default();
                return Ok(());
            }
            "person.age_years" => {
                self.age_years = value
                    .map(|v| v.parse())
                    .transpose()
                    .map_err(|_| ModelError::Corrupt("person.age_years is not a number".into()))?;
                return Ok(());
            }
            "incident.cause" => &mut self.cause,
            "incident.date" => &mut self.incident_date,
            "incident.place" => &mut self.incident_place,
            "found.at" => &mut self.found_at,
            "person.civilian" => &mut self.civilian,
            "person.sex" => &mut self.sex,
            "person.age_group" => &mut self.age_group,
            "identification.status" => &mut self.identification,
            _ => return Err(ModelError::Corrupt(format!("`{key}` is not counted"))),
        };
        *slot = value;
        Ok(())
    }

    /// The text a confirmation records: the one form [`Counted::from_record`] accepts.
    pub(crate) fn to_record(&self) -> String {
        // Serialising a struct of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads what a confirmation recorded, strictly: the form [`Counted::to_record`] writes,
    /// each value one `cairn case edit` would store. The error is a clause that reads after
    /// "whose counted values".
    pub(crate) fn from_record(text: &str) -> Result<Counted, String> {
        let counted: Counted = serde_json::from_str(text)
            .ok()
            .filter(|c: &Counted| c.to_record() == text)
            .ok_or("are not written as Cairn writes them: every counted field once, in order")?;
        for key in COUNTED {
            let Some(value) = counted.get(key) else {
                continue;
            };
            let spec = field(key).map_err(|e| e.to_string())?;
            let stored = match spec.ty.parse(key, &value) {
                Ok(Value::Str(s)) => s == value,
                Ok(Value::Int(i)) => i.to_string() == value,
                _ => false,
            };
            if !stored {
                return Err(format!(
                    "give `{key}` the value {value:?}: expected {}",
                    spec.ty.describe()
                ));
            }
        }
        Ok(counted)
    }

    /// The counted fields from each field's values (see [`values`]); `Err` names the first
    /// field that holds several.
    pub(crate) fn from_values(values: &[(&'static str, Vec<String>)]) -> Result<Counted, String> {
        let mut counted = Counted::default();
        for (key, values) in values {
            if values.len() > 1 {
                return Err((*key).to_string());
            }
            counted
                .set(key, values.first().cloned())
                .map_err(|e| e.to_string())?;
        }
        Ok(counted)
    }
}

/// Every value each counted field holds in `doc` (as it stood at `heads`, or now): none when
/// unset, several where concurrent edits left them side by side.
pub(crate) fn values<D: ReadDoc>(
    doc: &D,
    heads: Option<&[ChangeHash]>,
) -> Result<Vec<(&'static str, Vec<String>)>, ModelError> {
    let all = |obj: &ObjId, key: &str| match heads {
        Some(heads) => doc.get_all_at(obj, key, heads),
        None => doc.get_all(obj, key),
    };
    let mut out = Vec::with_capacity(COUNTED.len());
    for key in COUNTED {
        let spec = field(key)?;
        let obj = match spec.group() {
            None => Some(ROOT),
            Some(group) => all(&ROOT, group)
                .map_err(ModelError::corrupt)?
                .into_iter()
                .find_map(|(value, id)| {
                    matches!(value, automerge::Value::Object(ObjType::Map)).then_some(id)
                }),
        };
        let mut values = Vec::new();
        if let Some(obj) = obj {
            for (value, _) in all(&obj, spec.leaf()).map_err(ModelError::corrupt)? {
                let automerge::Value::Scalar(scalar) = value else {
                    continue;
                };
                match scalar.as_ref() {
                    ScalarValue::Str(s) if !s.is_empty() => values.push(s.to_string()),
                    ScalarValue::Int(i) => values.push(i.to_string()),
                    _ => {}
                }
            }
        }
        out.push((key, values));
    }
    Ok(out)
}

impl CaseDoc {
    /// The counted fields as the office confirmed them, when the case is confirmed: what the
    /// newest confirmation recorded, or, for one recorded before confirmations carried their
    /// values, what the case held at that confirmation (see the module's documentation).
    /// `None` when the case is not confirmed.
    pub fn confirmed(&self) -> Result<Option<Counted>, ModelError> {
        if self.status()? != Status::Confirmed {
            return Ok(None);
        }
        let text = |entry: &ObjId, key: &str| match self.doc.get(entry, key) {
            Ok(Some((automerge::Value::Scalar(v), _))) => match v.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        };
        for (_, _, entry) in self.list_entries("verifications")?.into_iter().rev() {
            if text(&entry, "status").as_deref() != Some("confirmed") {
                continue;
            }
            if let Some(record) = text(&entry, "counted") {
                return Counted::from_record(&record)
                    .map(Some)
                    .map_err(|why| ModelError::Corrupt(format!("a confirmation {why}")));
            }
            let Some(hash) = self.doc.hash_for_opid(&entry) else {
                return Ok(None);
            };
            // Where concurrent values stood side by side then, Automerge's pick: the case
            // still holds them all, so it shows as changed since confirmed.
            let then = values(&self.doc, Some(&[hash]))?
                .into_iter()
                .map(|(key, mut values)| (key, values.pop().into_iter().collect()))
                .collect::<Vec<_>>();
            return Counted::from_values(&then)
                .map(Some)
                .map_err(ModelError::Corrupt);
        }
        Ok(None)
    }

    /// Each counted field whose values are no longer the one the office confirmed: `old` is
    /// the confirmed value, `new` what the case holds now (values left side by side by
    /// concurrent edits joined by ` | `). Empty when the case is not confirmed, or nothing
    /// counted changed since.
    pub fn changed_since_confirmed(&self) -> Result<Vec<FieldChange>, ModelError> {
        Ok(match self.confirmed()? {
            Some(confirmed) => changed(&confirmed, &values(&self.doc, None)?),
            None => Vec::new(),
        })
    }
}

/// The fields of `now` (see [`values`]) that differ from `confirmed`.
pub(crate) fn changed(
    confirmed: &Counted,
    now: &[(&'static str, Vec<String>)],
) -> Vec<FieldChange> {
    now.iter()
        .filter_map(|(key, values)| {
            let old = confirmed.get(key);
            let same = match (values.as_slice(), &old) {
                ([], None) => true,
                ([one], Some(old)) => one == old,
                _ => false,
            };
            (!same).then(|| FieldChange {
                field: (*key).to_string(),
                old,
                new: (!values.is_empty()).then(|| values.join(" | ")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counted_key_is_a_field_and_the_record_names_them_in_order() {
        for key in COUNTED {
            assert!(field(key).is_ok(), "{key}");
        }
        let record = Counted {
            kind: "killed".into(),
            ..Counted::default()
        }
        .to_record();
        let keys: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&record)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
        let mut sorted = COUNTED.map(str::to_string).to_vec();
        sorted.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, sorted);
        // In the struct's order, which is COUNTED's.
        assert!(record.starts_with("{\"kind\":\"killed\",\"incident.cause\":null"));
        assert!(record.ends_with("\"identification.status\":null}"));
    }

    #[test]
    fn a_record_is_read_only_in_the_one_form_it_is_written() {
        let good = Counted {
            kind: "killed".into(),
            cause: Some("captivity".into()),
            incident_date: Some("2024-01-01/2024-01-03".into()),
            found_at: Some("2024-01-04T10:00:00Z".into()),
            age_years: Some(40),
            ..Counted::default()
        };
        let record = good.to_record();
        assert_eq!(Counted::from_record(&record), Ok(good.clone()));
        let bad = [
            record.replace("\"kind\":\"killed\",", ""),
            record.replace("{", "{ "),
            record.replace("}", ",\"status\":\"confirmed\"}"),
            record.replace(
                "\"kind\":\"killed\"",
                "\"kind\":\"killed\",\"kind\":\"injured\"",
            ),
            record.replace("captivity", "Captivity"),
            record.replace("killed", "dead"),
            record.replace("2024-01-04T10:00:00Z", "2024-01-04 10:00"),
            record.replace("40", "400"),
            record.replace("40", "\"40\""),
            "[]".into(),
            "".into(),
        ];
        for text in bad {
            assert!(Counted::from_record(&text).is_err(), "{text}");
        }
    }
}
