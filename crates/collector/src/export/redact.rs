//! `--redact`: field keys, groups and lists removed from everything an export writes.

use serde_json::Value;

use crate::error::CliError;

/// The lists of a case, as `--redact` names them, with the name a history gives an entry.
const LISTS: [(&str, &str); 7] = [
    ("notes", "note"),
    ("custody", "custody"),
    ("sources", "source"),
    ("verifications", "verification"),
    ("reviews", "review"),
    ("links", "link"),
    ("attachments", "attachment"),
];

/// What to leave out: field keys, groups and lists.
#[derive(Debug, Default)]
pub struct Redaction(Vec<String>);

impl Redaction {
    /// Checks every name: a field key, a group of fields, or a list.
    pub fn parse(names: &[String]) -> Result<Redaction, CliError> {
        let mut out = Vec::new();
        for name in names {
            let name = name.trim().to_lowercase();
            if name.is_empty() {
                continue;
            }
            let known = cairn_model::fields()
                .iter()
                .any(|f| f.key == name || f.group() == Some(name.as_str()))
                || LISTS.iter().any(|(list, _)| *list == name);
            if !known {
                return Err(CliError::usage(format!(
                    "--redact {name}: not a field key, group or list; give keys of `cairn fields` (person.name), groups (person) or lists ({})",
                    LISTS.map(|(l, _)| l).join(", ")
                )));
            }
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(Redaction(out))
    }

    /// Whether nothing is redacted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, as given (lowercase).
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether `key` (a field key, `group.member`, or a list) is left out.
    pub fn hides(&self, key: &str) -> bool {
        let group = key.split_once('.').map(|(g, _)| g);
        self.0.iter().any(|r| r == key || Some(r.as_str()) == group)
    }

    /// Removes every redacted key from a case's JSON (`case show --json` shape), and from
    /// what its confirmations bound and what changed since.
    pub fn case_json(&self, case: &mut Value) {
        let Value::Object(root) = case else { return };
        if let Some(Value::Array(verifications)) = root.get_mut("verifications") {
            for v in verifications {
                if let Some(Value::Object(counted)) = v.get_mut("counted") {
                    counted.retain(|key, _| !self.hides(key));
                }
            }
        }
        if let Some(Value::Array(changed)) = root.get_mut("changed_since_confirmed") {
            changed.retain(|c| !c["field"].as_str().is_some_and(|f| self.hides(f)));
            if changed.is_empty() {
                root.remove("changed_since_confirmed");
            }
        }
        for name in &self.0 {
            match name.split_once('.') {
                None => {
                    root.remove(name.as_str());
                }
                Some((group, leaf)) => {
                    if let Some(Value::Object(map)) = root.get_mut(group) {
                        map.remove(leaf);
                        if map.is_empty() {
                            root.remove(group);
                        }
                    }
                }
            }
        }
    }

    /// A history entry's touched keys without the redacted ones; an entry that touched only
    /// redacted keys says `redacted`, so that the change is still accounted for.
    pub fn history_fields(&self, fields: &[String]) -> Vec<String> {
        if self.0.is_empty() {
            return fields.to_vec();
        }
        let mut out: Vec<String> = fields
            .iter()
            .filter(|f| {
                let list = LISTS
                    .iter()
                    .find(|(_, entry)| entry == f)
                    .map_or(f.as_str(), |(list, _)| list);
                !self.hides(list)
            })
            .cloned()
            .collect();
        if out.is_empty() && !fields.is_empty() {
            out.push("redacted".to_string());
        }
        out
    }
}
