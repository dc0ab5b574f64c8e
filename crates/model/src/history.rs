//! Who changed what, when: one entry per Automerge change.

use std::collections::{BTreeSet, HashMap};

use automerge::{legacy, ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ROOT};
use serde::Serialize;

use crate::json::scalar_json;
use crate::{fields, CaseDoc, FieldSpec, FieldType};

/// One change to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When the change was made, milliseconds since the epoch (as claimed by its device).
    pub time_ms: i64,
    /// Hex of the actor (device) that made it.
    pub actor: String,
    /// Keys it touched, read from its operations (never from the message its author wrote):
    /// field keys, `note`, `custody`, `source`, and `created` for the change that created
    /// the case.
    pub fields: Vec<String>,
    /// Hex of the change hash.
    pub hash: String,
    /// When this device received the change (milliseconds since the epoch), if it came
    /// from another device and the caller knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_ms: Option<i64>,
    /// Why the claimed time cannot be right, if it cannot: a device's clock (or its owner)
    /// wrote it, and it is shown, never silently trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doubt: Option<String>,
}

/// What one field held before a change and right after it (or, for a case changed since
/// the office confirmed it, when the office confirmed it and now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldChange {
    /// The field key.
    pub field: String,
    /// Its value as of the change's parents, `None` when unset. Values that concurrent edits
    /// left side by side are joined by ` | `.
    pub old: Option<String>,
    /// Its value right after the change, the same way.
    pub new: Option<String>,
}

/// A claimed time this far past the arrival is not believed.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl CaseDoc {
    /// Every change, causes before effects; changes made concurrently are ordered by time,
    /// then actor, then hash, so every device lists the same history in the same order.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history_received(&HashMap::new())
    }

    /// [`CaseDoc::history`], with the time each change from another device arrived here
    /// (by change hash) beside the time it claims, and a doubt where the claim cannot hold:
    /// a time before the case's creation, or more than a day after its arrival.
    pub fn history_received(&self, received: &HashMap<ChangeHash, i64>) -> Vec<HistoryEntry> {
        let metas = self.doc.get_changes_meta(&[]);
        let known: HashMap<ChangeHash, usize> =
            metas.iter().enumerate().map(|(i, m)| (m.hash, i)).collect();
        let mut waiting_on: Vec<usize> = vec![0; metas.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); metas.len()];
        for (i, meta) in metas.iter().enumerate() {
            for dep in meta.deps.iter().filter_map(|d| known.get(d)) {
                waiting_on[i] += 1;
                dependents[*dep].push(i);
            }
        }
        let order_key = |i: usize| {
            (
                metas[i].timestamp,
                metas[i].actor.to_hex_string(),
                metas[i].hash,
                i,
            )
        };
        let mut ready: BTreeSet<_> = (0..metas.len())
            .filter(|i| waiting_on[*i] == 0)
            .map(order_key)
            .collect();
        let created = crate::judge::creation(&self.doc);
        let created_ms = created
            .and_then(|hash| self.doc.get_change_meta_by_hash(&hash))
            .map(|meta| meta.timestamp);
        let labels = labels(&self.doc);
        let mut out = Vec::with_capacity(metas.len());
        while let Some((time_ms, actor, hash, i)) = ready.pop_first() {
            let fields = touched(&self.doc, &hash, &labels, created == Some(hash));
            let received_ms = received.get(&hash).copied();
            let doubt = if created_ms.is_some_and(|c| time_ms < c) {
                Some("dated before the case was created".to_string())
            } else if received_ms.is_some_and(|r| time_ms > r.saturating_add(DAY_MS)) {
                Some("dated more than a day after it arrived here".to_string())
            } else {
                None
            };
            out.push(HistoryEntry {
                time_ms,
                actor,
                fields,
                hash: hash.to_string(),
                received_ms,
                doubt,
            });
            for &next in &dependents[i] {
                waiting_on[next] -= 1;
                if waiting_on[next] == 0 {
                    ready.insert(order_key(next));
                }
            }
        }
        out
    }
}

impl CaseDoc {
    /// What each field `entry` touched held before it and right after it (list entries such
    /// as notes are not fields and have no old value: they are left out).
    pub fn field_changes(&self, entry: &HistoryEntry) -> Vec<FieldChange> {
        let Some(meta) = entry
            .hash
            .parse::<ChangeHash>()
            .ok()
            .and_then(|hash| self.doc.get_change_meta_by_hash(&hash))
        else {
            return Vec::new();
        };
        let after = [meta.hash];
        entry
            .fields
            .iter()
            .filter_map(|key| crate::field(key).ok())
            .map(|spec| FieldChange {
                field: spec.key.to_string(),
                old: value_at(&self.doc, spec, &meta.deps),
                new: value_at(&self.doc, spec, &after),
            })
            .collect()
    }
}

/// A field's value as the document stood at `heads`, `None` when unset or empty.
fn value_at(doc: &Automerge, spec: &FieldSpec, heads: &[ChangeHash]) -> Option<String> {
    let obj = match spec.group() {
        None => ROOT,
        Some(group) => match doc.get_at(ROOT, group, heads).ok()?? {
            (automerge::Value::Object(ObjType::Map), id) => id,
            _ => return None,
        },
    };
    let values: Vec<String> = doc
        .get_all_at(&obj, spec.leaf(), heads)
        .ok()?
        .into_iter()
        .filter_map(|(value, id)| match value {
            automerge::Value::Object(ObjType::Text) => doc.text_at(&id, heads).ok(),
            automerge::Value::Object(_) => None,
            automerge::Value::Scalar(v) => match scalar_json(&v) {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            },
        })
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(" | "))
}

/// What each object of the case is called in a history: a group's name (its keys are
/// `group.leaf`), a text field's key, or a list's entry name (`note`, `custody`, `source`)
/// for the list and each of its entries.
fn labels(doc: &Automerge) -> HashMap<(u64, ActorId), Label> {
    let mut out = HashMap::new();
    let mut add = |id: ObjId, label: Label| {
        if let ObjId::Id(counter, actor, _) = id {
            out.insert((counter, actor), label);
        }
    };
    for group in crate::fields::groups() {
        if let Ok(Some((_, id))) = doc.get(ROOT, group) {
            add(id, Label::Group(group));
        }
    }
    for spec in fields().iter().filter(|f| f.ty == FieldType::Text) {
        let parent = match spec.group() {
            Some(group) => match doc.get(ROOT, group) {
                Ok(Some((_, id))) => id,
                _ => continue,
            },
            None => ROOT,
        };
        if let Ok(Some((_, id))) = doc.get(&parent, spec.leaf()) {
            add(id, Label::Field(spec.key));
        }
    }
    for (list, entry) in LIST_ENTRIES {
        // Every value: attachments may be held in two lists (see `CaseDoc::attachments`).
        for (_, id) in doc.get_all(ROOT, list).unwrap_or_default() {
            for item in doc.list_range(&id, ..) {
                add(item.id(), Label::Field(entry));
            }
            add(id, Label::Field(entry));
        }
    }
    out
}

/// Each append-only list at the root, and what a history calls an entry of it.
const LIST_ENTRIES: [(&str, &str); 6] = [
    ("notes", "note"),
    ("custody", "custody"),
    ("sources", "source"),
    ("attachments", "attachment"),
    ("verifications", "verification"),
    ("reviews", "review"),
];

/// How a history names an object.
enum Label {
    /// A group map: its keys are named `group.key`.
    Group(&'static str),
    /// Anything else: every operation on it is named so.
    Field(&'static str),
}

/// The keys change `hash` touched, in the order it touched them. The creation is `created`
/// followed by the fields it filled in (not the header and empty objects every case has).
fn touched(
    doc: &Automerge,
    hash: &ChangeHash,
    labels: &HashMap<(u64, ActorId), Label>,
    creation: bool,
) -> Vec<String> {
    let Some(change) = doc.get_change_by_hash(hash) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    if creation {
        out.push("created".to_string());
    }
    for op in change.decode().operations {
        let skeleton = matches!(op.action, legacy::OpType::Make(_))
            || matches!(op.obj, legacy::ObjectId::Root);
        if creation && skeleton {
            continue;
        }
        let name = match (&op.obj, &op.key) {
            // Making a list (the first entry of a list made after the case) is adding to it.
            (legacy::ObjectId::Root, legacy::Key::Map(key)) => LIST_ENTRIES
                .iter()
                .find(|(list, _)| list == key)
                .map_or(key.as_str(), |(_, entry)| entry)
                .to_string(),
            (legacy::ObjectId::Id(legacy::OpId(counter, actor)), key) => {
                match (labels.get(&(*counter, actor.clone())), key) {
                    (Some(Label::Group(group)), legacy::Key::Map(leaf)) => {
                        format!("{group}.{leaf}")
                    }
                    (Some(Label::Field(name)), _) => name.to_string(),
                    _ => continue,
                }
            }
            _ => continue,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}
