//! Concurrent values of the same field, kept until someone picks one.
//!
//! When two devices set a field without having seen each other's change, Automerge keeps
//! both values and picks one winner the same way everywhere. The model shows the winner in
//! [`CaseDoc::to_json`] and every value here, until a later `Set` (or clearing the field)
//! replaces them all.

use automerge::{ObjId as ExId, ReadDoc};
use serde::Serialize;

use crate::json::{container, scalar_json};
use crate::{fields, CaseDoc, FieldType};

/// A field holding more than one value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// The field key, e.g. `incident.cause`.
    pub key: String,
    /// Every value, oldest change first (then by actor, then by value).
    pub values: Vec<ConflictValue>,
}

/// One of the values of a conflicting field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictValue {
    /// The value.
    pub value: serde_json::Value,
    /// Hex of the actor (device) that set it.
    pub actor: String,
    /// Time of the change that set it, in milliseconds since the epoch (0 if unknown).
    pub time_ms: i64,
}

impl CaseDoc {
    /// Every field with more than one value, in field display order. Text fields never
    /// conflict: concurrent typing merges. Nor does the status: only the office's counts
    /// (see [`CaseDoc::status`]).
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut out = Vec::new();
        let settable = |f: &&crate::FieldSpec| f.ty != FieldType::Text && f.key != "status";
        for spec in fields().iter().filter(settable) {
            let Some(obj) = container(&self.doc, spec) else {
                continue;
            };
            let all = self.doc.get_all(&obj, spec.leaf()).unwrap_or_default();
            if all.len() < 2 {
                continue;
            }
            let mut values: Vec<ConflictValue> = all
                .iter()
                .map(|(value, op)| ConflictValue {
                    value: match value {
                        automerge::Value::Scalar(v) => scalar_json(v),
                        automerge::Value::Object(ty) => format!("({ty:?})").into(),
                    },
                    actor: match op {
                        ExId::Id(_, actor, _) => actor.to_hex_string(),
                        ExId::Root => String::new(),
                    },
                    time_ms: self.op_time(op),
                })
                .collect();
            values.sort_by(|a, b| {
                (a.time_ms, &a.actor, a.value.to_string()).cmp(&(
                    b.time_ms,
                    &b.actor,
                    b.value.to_string(),
                ))
            });
            out.push(Conflict {
                key: spec.key.to_string(),
                values,
            });
        }
        out
    }

    /// Time of the change that made operation `op`, 0 if not known.
    fn op_time(&self, op: &ExId) -> i64 {
        self.doc
            .hash_for_opid(op)
            .and_then(|hash| self.doc.get_change_meta_by_hash(&hash))
            .map_or(0, |meta| meta.timestamp)
    }
}
