//! A case as an Automerge document: creating, loading, saving, editing and merging it.
//!
//! Every local modification is exactly one Automerge change, and the raw bytes of that change
//! are handed back to the caller, who seals, stores and ships them. Changes from other devices
//! come back in through [`CaseDoc::apply_changes`]; applying the same changes in any order, any
//! number of times, gives the same document.

use std::collections::HashMap;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{
    hydrate, ActorId, Automerge, Change, ChangeHash, ObjType, ReadDoc, ScalarValue, TextEncoding,
    ROOT,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::edit::{apply, fold, Stamp};
use crate::fields::groups;
use crate::judge::{creator, judge, screen, Layout, Scope, ScreenedChange, View, ATTACHMENTS};
use crate::{fields, Attachment, Case, Edit, FieldType, Kind, ModelError, Reference, Status};

/// The schema version this crate writes and reads.
pub const SCHEMA: u64 = 1;

/// The append-only lists at the document root.
pub(crate) const LISTS: [&str; 3] = ["notes", "custody", "sources"];

/// One case document.
#[derive(Debug, Clone)]
pub struct CaseDoc {
    pub(crate) doc: Automerge,
    id: Uuid,
    reference: Reference,
    /// Received changes whose dependencies are not here yet. Cairn holds them itself rather
    /// than in Automerge's queue, so each is checked and judged when it becomes applicable.
    /// Not part of [`CaseDoc::save`]: whoever stores changes offers them again.
    waiting: Vec<Change>,
    /// The actors deciding for the office (the office and its staff devices), which alone
    /// confirm, reject and review (see [`CaseDoc::set_office`]).
    pub(crate) office: Vec<ActorId>,
}

impl CaseDoc {
    /// Creates a new case and applies `edits`, all in one Automerge change whose raw bytes
    /// are returned beside the document.
    ///
    /// The change writes the header (schema, id, reference, created_at, created_by), the kind,
    /// status `alleged`, and every group map, text object and list, empty: creating them here,
    /// once, means no two devices ever create the same object concurrently.
    pub fn create(
        actor: &[u8],
        id: Uuid,
        reference: &Reference,
        kind: Kind,
        author: &str,
        now: OffsetDateTime,
        edits: &[Edit],
    ) -> Result<(CaseDoc, Vec<u8>), ModelError> {
        let mut doc = Automerge::new().with_actor(actor_id(actor)?);
        let stamp = stamp(author, now)?;
        let mut tx = doc.transaction();
        let mut touched = vec!["created".to_string()];
        let mut root = initial_root(id, reference, kind, &stamp, tx.text_encoding());
        let folded = fold_sets(&mut root, edits, &stamp, tx.text_encoding(), &mut touched)?;
        // One batch: Automerge inserts a whole tree in two splices instead of one per
        // operation, which was most of the cost of making a case (a bulk import makes
        // thousands).
        tx.init_root_from_hydrate(&root)
            .map_err(ModelError::corrupt)?;
        apply_all(&mut tx, &edits[folded..], &stamp, &mut touched)?;
        let hash = commit(tx, &touched, now)?;
        let case = CaseDoc {
            doc,
            id,
            reference: reference.clone(),
            waiting: Vec::new(),
            office: Vec::new(),
        };
        // Read back what was written, so a bug here shows up now rather than on another
        // device: in full in debug builds (every test), the header in release, where a bulk
        // import makes thousands and the full read costs a third of each.
        if cfg!(debug_assertions) {
            case.case()?;
        } else {
            case.headline()?;
        }
        let bytes = case.change_bytes(hash)?;
        Ok((case, bytes))
    }

    /// Loads a document written by [`CaseDoc::save`]; local changes will be made as `actor`.
    pub fn load(bytes: &[u8], actor: &[u8]) -> Result<CaseDoc, ModelError> {
        let actor = actor_id(actor)?;
        let doc = Automerge::load(bytes).map_err(ModelError::corrupt)?;
        CaseDoc::from_automerge(doc.with_actor(actor))
    }

    /// Builds a case first seen here from its received changes, judging each as
    /// [`CaseDoc::apply_changes`] does. While the creation is not among them the answer is
    /// [`ModelError::Incomplete`]; a change that lands before it (it does not depend on the
    /// creation, so it is no edit of this case) is refused.
    ///
    /// `office` are the actors deciding for the office (see [`CaseDoc::set_office`]).
    pub fn from_changes(
        raw_changes: &[Vec<u8>],
        actor: &[u8],
        office: &[[u8; 32]],
    ) -> Result<CaseDoc, ModelError> {
        CaseDoc::from_pending(decode_changes(raw_changes)?, actor, office)
    }

    /// [`CaseDoc::from_changes`] with changes screened already.
    pub fn from_screened<'a>(
        changes: impl IntoIterator<Item = &'a ScreenedChange>,
        actor: &[u8],
        office: &[[u8; 32]],
    ) -> Result<CaseDoc, ModelError> {
        let pending = changes.into_iter().map(ScreenedChange::pending).collect();
        CaseDoc::from_pending(pending, actor, office)
    }

    fn from_pending(
        pending: Vec<Pending>,
        actor: &[u8],
        office: &[[u8; 32]],
    ) -> Result<CaseDoc, ModelError> {
        let mut doc = Automerge::new().with_actor(actor_id(actor)?);
        let office = actors_of(office);
        let waiting = merge(&mut doc, pending, &office)?;
        if !has_case(&doc)? {
            return Err(ModelError::Incomplete);
        }
        let mut case = CaseDoc::from_automerge(doc)?;
        case.waiting = waiting;
        case.office = office;
        Ok(case)
    }

    /// Names the actors deciding for the office for the changes applied from now on: the
    /// office and its staff devices (revoked ones too: their changes up to their cut-off keep
    /// their authority). Only they confirm or reject a case, write its verifications and
    /// reviews, or change a status one of them set. Without any, nobody may.
    pub fn set_office(&mut self, office: &[[u8; 32]]) {
        self.office = actors_of(office);
    }

    /// Replays changes this vault already accepted (its own log), without judging them again.
    /// Changes still waiting for a dependency are left out, as in [`CaseDoc::save`].
    pub fn from_log(raw_changes: &[Vec<u8>], actor: &[u8]) -> Result<CaseDoc, ModelError> {
        let doc = Automerge::new().with_actor(actor_id(actor)?);
        replay(doc, raw_changes)
    }

    /// [`CaseDoc::from_log`] for a case whose first changes came whole in an office checkpoint:
    /// this case as it was at the checkpoint's `heads`, then the log.
    pub fn from_log_at(
        &self,
        heads: &[ChangeHash],
        raw_changes: &[Vec<u8>],
        actor: &[u8],
    ) -> Result<CaseDoc, ModelError> {
        let base = self.doc.fork_at(heads).map_err(ModelError::corrupt)?;
        replay(base.with_actor(actor_id(actor)?), raw_changes)
    }

    /// Checks that `doc` holds a case this version understands.
    fn from_automerge(doc: Automerge) -> Result<CaseDoc, ModelError> {
        let schema: Option<u64> = autosurgeon::hydrate_prop(&doc, &ROOT, "schema")
            .map_err(|e| ModelError::Corrupt(format!("no schema version: {e}")))?;
        match schema {
            Some(SCHEMA) => {}
            Some(other) => return Err(ModelError::UnsupportedSchema(other)),
            None => return Err(ModelError::Corrupt("no schema version".to_string())),
        }
        // Only the header: hydrating the whole case here would double the cost of every load
        // (a sync applies thousands); the full view is checked when it is read.
        let id: Uuid = autosurgeon::hydrate_prop(&doc, &ROOT, "id")
            .map_err(|e| ModelError::Corrupt(format!("no case id: {e}")))?;
        let reference: Reference = autosurgeon::hydrate_prop(&doc, &ROOT, "reference")
            .map_err(|e| ModelError::Corrupt(format!("no reference: {e}")))?;
        Ok(CaseDoc {
            doc,
            id,
            reference,
            waiting: Vec::new(),
            office: Vec::new(),
        })
    }

    /// The case's kind and evidentiary status (as a list line shows them), read without
    /// hydrating the whole case. Where concurrent edits conflict on the kind, Automerge's
    /// pick is shown; the status is [`CaseDoc::status`].
    pub fn headline(&self) -> Result<(Kind, Status), ModelError> {
        let kind: Kind = autosurgeon::hydrate_prop(&self.doc, &ROOT, "kind")
            .map_err(|e| ModelError::Corrupt(format!("kind: {e}")))?;
        Ok((kind, self.status()?))
    }

    /// The case's evidentiary status: the one the office gave it, else `alleged` (what every
    /// case starts as). Only the office writes the status; a value another device wrote (a
    /// field proposal, or a forgery beside the office's word, accepted before that rule and
    /// still held in a case stored then) is never read, so it shows nowhere and counts for
    /// nothing.
    pub fn status(&self) -> Result<Status, ModelError> {
        let office = self.office.as_slice();
        let all = self
            .doc
            .get_all(ROOT, "status")
            .map_err(ModelError::corrupt)?;
        // The office writes one change after another: it never leaves two values of its own.
        let Some((value, _)) = all
            .into_iter()
            .rev()
            .find(|(_, id)| crate::judge::written_by(id, office))
        else {
            return Ok(Status::Alleged);
        };
        match value {
            automerge::Value::Scalar(v) => match v.as_ref() {
                ScalarValue::Str(s) => s.parse(),
                _ => Err(ModelError::Corrupt("the status is not text".into())),
            },
            automerge::Value::Object(_) => {
                Err(ModelError::Corrupt("the status is not text".into()))
            }
        }
    }

    /// The place code the office corrected the case to, if it did (the reference keeps the
    /// place the case was recorded at). Only the office's value is read, as for the status.
    pub fn corrected_place(&self) -> Result<Option<String>, ModelError> {
        let office = self.office.as_slice();
        let all = self
            .doc
            .get_all(ROOT, "place")
            .map_err(ModelError::corrupt)?;
        let newest = all
            .into_iter()
            .rev()
            .find(|(_, id)| crate::judge::written_by(id, office));
        Ok(match newest {
            Some((automerge::Value::Scalar(v), _)) => match v.as_ref() {
                ScalarValue::Str(s) if !s.is_empty() => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        })
    }

    /// Takes every change of `other` this document lacks, unjudged: for a document the office
    /// judged whole (an office checkpoint's).
    pub fn merge_trusted(&mut self, other: &CaseDoc) -> Result<(), ModelError> {
        let mut other = other.doc.clone();
        self.doc
            .merge(&mut other)
            .map(|_| ())
            .map_err(ModelError::corrupt)
    }

    /// The whole document, compacted, for storage.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The whole document, compacted but with no column deflated: what an office checkpoint
    /// carries (its part is deflated whole, which also takes out what repeats from one case to
    /// the next, and a receiver then inflates nothing Automerge would inflate unbounded).
    pub fn save_uncompressed(&self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    /// Applies raw changes received from any device.
    ///
    /// Each change is screened first (see [`screen_change`]), then applied on its own as
    /// soon as every change it depends on is here, and the merged case judged: if it breaks a
    /// rule of the case (its identity changes, an append-only entry goes or changes, a value
    /// the command line would refuse appears) the answer is [`ModelError::RefusedChange`],
    /// naming that change, and the document is left as it was. Judging one change at a time
    /// means how changes are grouped into pages never changes what is accepted. Changes
    /// already present are ignored; a change whose dependencies have not arrived waits (see
    /// [`CaseDoc::missing_deps`]) and is judged when they do.
    pub fn apply_changes(&mut self, raw_changes: &[Vec<u8>]) -> Result<(), ModelError> {
        self.apply_pending(decode_changes(raw_changes)?)
    }

    /// [`CaseDoc::apply_changes`] with changes screened already.
    pub fn apply_screened<'a>(
        &mut self,
        changes: impl IntoIterator<Item = &'a ScreenedChange>,
    ) -> Result<(), ModelError> {
        self.apply_pending(changes.into_iter().map(ScreenedChange::pending).collect())
    }

    /// [`CaseDoc::apply_screened`] for a case its caller drops if a change is refused: no
    /// copy of the case is kept to undo a refused change, so the case is handed back merged
    /// or not at all.
    pub fn merged_with<'a>(
        mut self,
        changes: impl IntoIterator<Item = &'a ScreenedChange>,
    ) -> Result<CaseDoc, ModelError> {
        let mut pending: Vec<Pending> = self.waiting.iter().map(|c| (c.clone(), None)).collect();
        pending.extend(changes.into_iter().map(ScreenedChange::pending));
        self.waiting = merge(&mut self.doc, pending, &self.office)?;
        Ok(self)
    }

    fn apply_pending(&mut self, received: Vec<Pending>) -> Result<(), ModelError> {
        let mut changes: Vec<Pending> = self.waiting.iter().map(|c| (c.clone(), None)).collect();
        changes.extend(received);
        // A refused change leaves the case as it was: merge into a copy.
        let mut merged = self.doc.clone();
        let waiting = merge(&mut merged, changes, &self.office)?;
        self.doc = merged;
        self.waiting = waiting;
        Ok(())
    }

    /// The device key (Automerge actor) that created the case, if the document holds one
    /// creation, as it must.
    pub fn creator(&self) -> Option<Vec<u8>> {
        creator(&self.doc)
    }

    /// Applies `edits` as one change made by `author` at `now`, and returns its raw bytes, or
    /// `None` if the edits change nothing.
    ///
    /// The change records `now` in milliseconds and, as its message, a JSON array of the keys
    /// it touched (`"note"`, `"custody"` and `"source"` for appended entries). If any edit is
    /// invalid, nothing is written.
    pub fn edit(
        &mut self,
        edits: &[Edit],
        author: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Vec<u8>>, ModelError> {
        let stamp = stamp(author, now)?;
        let before = self.doc.clone();
        let mut tx = self.doc.transaction();
        let mut touched = Vec::new();
        apply_all(&mut tx, edits, &stamp, &mut touched)?;
        if touched.is_empty() {
            tx.rollback();
            return Ok(None);
        }
        // Other devices refuse a larger change; never make one they would refuse.
        if tx.pending_ops() as u64 > crate::MAX_CHANGE_OPS {
            tx.rollback();
            return Err(ModelError::TooLarge);
        }
        let hash = commit(tx, &touched, now)?;
        // Nor one their judge would refuse (a field device changing a status the office set):
        // this replica would hold what no other does.
        let scope = match self.doc.get_change_by_hash(&hash) {
            Some(change) => Scope::of(&change),
            None => Scope::everything(),
        };
        let judged = judge(
            Some(View::now(&before)),
            &self.doc,
            &scope,
            &self.office,
            None,
        );
        if let Err(e) = judged {
            self.doc = before;
            return Err(match e {
                ModelError::Refused(reason) => ModelError::Refused(format!(
                    "every other device would refuse this edit: {reason}"
                )),
                other => other,
            });
        }
        self.change_bytes(hash).map(Some)
    }

    /// Every attachment the case lists, in an order every replica shares. Two devices that
    /// attached the first files concurrently each made a list; both are read.
    pub fn attachments(&self) -> Result<Vec<Attachment>, ModelError> {
        Ok(self
            .attachments_with_writers()?
            .into_iter()
            .map(|(entry, _)| entry)
            .collect())
    }

    /// Each attachment with the actor (hex) whose change wrote its entry. Unlike the entry's
    /// `author` text, which its writer chose, this is the signed change's own: it names where
    /// the blob's bytes are fetched from.
    pub fn attachments_with_writers(&self) -> Result<Vec<(Attachment, String)>, ModelError> {
        let mut out = Vec::new();
        let lists = self
            .doc
            .get_all(ROOT, ATTACHMENTS)
            .map_err(ModelError::corrupt)?;
        for (value, list) in lists {
            if !matches!(value, automerge::Value::Object(ObjType::List)) {
                return Err(ModelError::Corrupt(format!(
                    "`{ATTACHMENTS}` is not a list"
                )));
            }
            for index in 0..self.doc.length(&list) {
                let writer = match self.doc.get(&list, index).map_err(ModelError::corrupt)? {
                    Some((_, automerge::ObjId::Id(_, actor, _))) => actor.to_hex_string(),
                    _ => {
                        return Err(ModelError::Corrupt(format!(
                            "an entry of `{ATTACHMENTS}` is not an object"
                        )))
                    }
                };
                let entry = autosurgeon::hydrate_prop(&self.doc, &list, index)
                    .map_err(ModelError::corrupt)?;
                out.push((entry, writer));
            }
        }
        Ok(out)
    }

    /// Each note's id, in order: its entry's Automerge object id (`counter@actor`), the same
    /// on every replica, which a withdrawal names. The actor is the note's writer.
    pub fn note_ids(&self) -> Result<Vec<String>, ModelError> {
        let obj = match self.doc.get(ROOT, "notes").map_err(ModelError::corrupt)? {
            Some((automerge::Value::Object(ObjType::List), obj)) => obj,
            _ => return Ok(Vec::new()),
        };
        (0..self.doc.length(&obj))
            .map(|index| match self.doc.get(&obj, index) {
                Ok(Some((_, automerge::ObjId::Id(counter, actor, _)))) => {
                    Ok(format!("{counter}@{}", actor.to_hex_string()))
                }
                _ => Err(ModelError::Corrupt(
                    "an entry of `notes` is not an object".into(),
                )),
            })
            .collect()
    }

    /// For each entry of the append-only list `list` (`notes`, `custody`, `sources`,
    /// `verifications`, `reviews`, `attachments`), in the order [`CaseDoc::case`] and
    /// [`CaseDoc::attachments`] read them, the actor (hex) whose signed change wrote it. An
    /// entry is written whole by one change and never edited (the judge sees to both), so
    /// this is who wrote everything it says, whatever its `author` text claims.
    pub fn entry_signers(&self, list: &str) -> Result<Vec<String>, ModelError> {
        if list == ATTACHMENTS {
            return Ok(self
                .attachments_with_writers()?
                .into_iter()
                .map(|(_, writer)| writer)
                .collect());
        }
        Ok(self
            .list_entries(list)?
            .into_iter()
            .map(|(_, _, entry)| match entry {
                automerge::ObjId::Id(_, actor, _) => actor.to_hex_string(),
                automerge::ObjId::Root => String::new(),
            })
            .collect())
    }

    /// Every entry of the list `list` (not attachments, see
    /// [`CaseDoc::attachments_with_writers`]): the list it is in, its index there, and the
    /// entry. One list's entries in its order. The office's lists are made by whichever of the
    /// office's devices writes first, so two of them deciding at once leave two lists side by
    /// side (the judge keeps both): then the entries of every copy, ordered by their `at`
    /// (ties keep the lists' order, the same on every replica), so no device's decision is
    /// hidden behind the other's list and every replica reads one sequence.
    pub(crate) fn list_entries(
        &self,
        list: &str,
    ) -> Result<Vec<(automerge::ObjId, usize, automerge::ObjId)>, ModelError> {
        let lists = self.doc.get_all(ROOT, list).map_err(ModelError::corrupt)?;
        let mut entries = Vec::new();
        for (value, obj) in &lists {
            if !matches!(value, automerge::Value::Object(ObjType::List)) {
                return Err(ModelError::Corrupt(format!("`{list}` is not a list")));
            }
            for index in 0..self.doc.length(obj) {
                match self.doc.get(obj, index).map_err(ModelError::corrupt)? {
                    Some((automerge::Value::Object(_), entry)) => {
                        entries.push((obj.clone(), index, entry));
                    }
                    _ => {
                        return Err(ModelError::Corrupt(format!(
                            "an entry of `{list}` is not an object"
                        )))
                    }
                }
            }
        }
        if lists.len() > 1 {
            entries.sort_by_cached_key(|(_, _, entry)| match self.doc.get(entry, "at") {
                Ok(Some((automerge::Value::Scalar(v), _))) => match v.as_ref() {
                    ScalarValue::Str(at) => at.to_string(),
                    _ => String::new(),
                },
                _ => String::new(),
            });
        }
        Ok(entries)
    }

    /// The entries of the office's list `list` as typed values, every copy's (see
    /// [`CaseDoc::list_entries`]).
    fn office_list<T: autosurgeon::Hydrate>(&self, list: &str) -> Result<Vec<T>, ModelError> {
        self.list_entries(list)?
            .iter()
            .map(|(obj, index, _)| {
                autosurgeon::hydrate_prop(&self.doc, obj, *index).map_err(ModelError::corrupt)
            })
            .collect()
    }

    /// The case as typed Rust values (winning values where scalars conflict; the status is
    /// [`CaseDoc::status`]).
    pub fn case(&self) -> Result<Case, ModelError> {
        let mut case: Case = autosurgeon::hydrate(&self.doc).map_err(ModelError::corrupt)?;
        case.status = self.status()?;
        case.verifications = self.office_list("verifications")?;
        case.reviews = self.office_list("reviews")?;
        case.links = self.office_list("links")?;
        Ok(case)
    }

    /// The case id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The case reference.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The hashes of the latest changes; equal heads mean equal documents.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The case as it was when its heads were `heads` (hex, as [`CaseDoc::heads`] prints
    /// them): what an edition counted. Refused when this document does not hold them all.
    pub fn at(&self, heads: &[String]) -> Result<CaseDoc, ModelError> {
        let heads = heads
            .iter()
            .map(|h| h.parse::<ChangeHash>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ModelError::corrupt("a version that is not a list of change hashes"))?;
        if heads
            .iter()
            .any(|h| self.doc.get_change_by_hash(h).is_none())
        {
            return Err(ModelError::corrupt(
                "a version of the case this vault does not hold",
            ));
        }
        let mut case =
            CaseDoc::from_automerge(self.doc.fork_at(&heads).map_err(ModelError::corrupt)?)?;
        case.office.clone_from(&self.office);
        Ok(case)
    }

    /// Whether the change `hash` is in this document (applied, not waiting).
    pub fn holds(&self, hash: &ChangeHash) -> bool {
        has_change(&self.doc, hash)
    }

    /// Hashes of changes that waiting changes depend on but that have not arrived yet.
    pub fn missing_deps(&self) -> Vec<ChangeHash> {
        let mut missing: Vec<ChangeHash> = self
            .waiting
            .iter()
            .flat_map(|c| c.deps().iter().copied())
            .filter(|d| !has_change(&self.doc, d) && !self.waiting.iter().any(|w| w.hash() == *d))
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// Raw bytes of every change in the document, dependencies first.
    pub fn changes(&self) -> Vec<Vec<u8>> {
        self.doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    /// Hex of the actor id local changes are made as.
    pub fn actor(&self) -> String {
        self.doc.get_actor().to_hex_string()
    }

    fn change_bytes(&self, hash: ChangeHash) -> Result<Vec<u8>, ModelError> {
        self.doc
            .get_change_by_hash(&hash)
            .map(|c| c.raw_bytes().to_vec())
            .ok_or_else(|| ModelError::Corrupt(format!("change {hash} vanished after commit")))
    }
}

/// Applies `changes` one by one as each becomes applicable, judging each; returns those still
/// waiting for a dependency. A refused change leaves `doc` holding part of what was offered
/// (perhaps the refused change itself): the caller drops it or restores its own copy.
///
/// The judge reads the case before each change off `doc` itself, as at the heads it had
/// ([`View::at`]): no copy of the case is made per change.
fn merge(
    doc: &mut Automerge,
    mut pending: Vec<Pending>,
    office: &[ActorId],
) -> Result<Vec<Change>, ModelError> {
    pending.retain(|(c, _)| !has_change(doc, &c.hash()));
    let mut known = actors(doc);
    // What the judge found in the case as it stands, once it has judged a change of it.
    let mut layout: Option<Layout> = None;
    while let Some(i) = pending.iter().position(|(c, _)| applicable(doc, c)) {
        let (change, scope) = pending.remove(i);
        let hash = change.hash();
        let refused = |reason: String| ModelError::RefusedChange { hash, reason };
        check_fit(doc, &known, &change).map_err(|e| refused(e.to_string()))?;
        known.insert(change.actor_id().clone(), change.seq());
        let scope = scope.unwrap_or_else(|| Scope::of(&change));
        let bytes = change.raw_bytes().to_vec();
        if let Some(object) = scope.unknown_object(doc) {
            return Err(refused(format!(
                "it writes to an object {object} the case does not have"
            )));
        }
        let heads = doc.get_heads();
        let had_case = has_case(doc)?;
        // Debug builds (every test, every fuzz run) also judge against a copy of the case
        // as it was, and insist on the same verdict (`judge_with`).
        let copy = cfg!(debug_assertions).then(|| doc.clone());
        guarded(|| doc.apply_changes([change]))
            .and_then(|applied| applied.map_err(|e| e.to_string()))
            .map_err(refused)?;
        // What Automerge hands out again (and saves) must be these very bytes, or replicas
        // that reload the case would know the change under another hash. Checked before the
        // judge: Automerge takes a predecessor wherever it finds it, so a change naming one
        // at another key or object would hide what the judge does not look at; such a change
        // is rebuilt in another form (or Automerge panics rebuilding it).
        let kept = guarded(|| {
            doc.get_change_by_hash(&hash)
                .is_some_and(|kept| kept.raw_bytes() == bytes.as_slice())
        });
        if kept != Ok(true) {
            return Err(refused(
                "Automerge would keep it in another form than it came in".into(),
            ));
        }
        let before = View::at(doc, &heads);
        let judged = match (had_case, has_case(doc)?) {
            (true, _) => judge_with(before, copy.as_ref(), doc, &scope, office, layout.as_ref()),
            (false, true) => judge(None, doc, &Scope::everything(), office, None),
            (false, false) => Err(ModelError::Refused(
                "it writes to the case before its creation, without depending on it".into(),
            )),
        };
        match judged {
            Ok(found) => layout = Some(found),
            Err(e) => {
                return Err(refused(match e {
                    ModelError::Refused(reason) => reason,
                    other => other.to_string(),
                }));
            }
        }
        pending.retain(|(c, _)| !has_change(doc, &c.hash()));
    }
    Ok(pending.into_iter().map(|(c, _)| c).collect())
}

/// [`judge`] with the layout found by the last judge of this case. Debug builds (every test,
/// every fuzz run) also judge without it, against `copy` (the case as it was, kept apart),
/// and insist on the same verdict and layout: the layout only ever saves reading what a
/// change did not write to, and reading the merged case as at its earlier heads reads what
/// the case held then.
fn judge_with(
    before: View<'_>,
    copy: Option<&Automerge>,
    after: &Automerge,
    scope: &Scope,
    office: &[ActorId],
    known: Option<&Layout>,
) -> Result<Layout, ModelError> {
    let judged = judge(Some(before), after, scope, office, known);
    #[cfg(debug_assertions)]
    if let Some(copy) = copy {
        let unaided = judge(Some(View::now(copy)), after, scope, office, None);
        assert_eq!(
            judged.as_ref().map_err(ToString::to_string),
            unaided.as_ref().map_err(ToString::to_string),
            "the judge's layout or its view of the case before changed its verdict"
        );
    }
    #[cfg(not(debug_assertions))]
    let _ = copy;
    judged
}

/// Runs `work` on Automerge with a received change, turning a panic inside Automerge into an
/// error. Every panic found so far is prevented by the checks before this; this is the
/// backstop, so that one peer's bytes can never stop a sync. The caller restores the
/// document after a failure.
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    // One hook for the process, silent on a thread while it runs guarded work: the panic is
    // reported as a refusal instead. (Swapping the hook per call races between the cores
    // that merge cases, and could leave the process silent.)
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    QUIET.with(|quiet| quiet.set(false));
    result.map_err(|_| "Automerge could not apply it".to_string())
}

/// Whether every change `change` depends on is in `doc`.
fn applicable(doc: &Automerge, change: &Change) -> bool {
    change.deps().iter().all(|d| has_change(doc, d))
}

/// Whether `doc` holds the change `hash`. Asks the change graph: `get_change_by_hash` would
/// rebuild the whole change from the operations just to say yes.
fn has_change(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

/// Checks that a change fits where it lands, as Automerge would have made it there: every
/// device it names already has a change in the case (its author excepted, for its first one:
/// automerge 0.12 panics on an unknown one), it is its author's next number, it holds
/// operations, and they are numbered right after everything it depends on (a gap or an
/// overlap leaves a case that no longer loads once saved).
fn check_fit(
    doc: &Automerge,
    known: &HashMap<ActorId, u64>,
    change: &Change,
) -> Result<(), ModelError> {
    let refuse = |reason: &str| Err(ModelError::Refused(reason.into()));
    let author = change.actor_id();
    if change.seq() != known.get(author).copied().unwrap_or(0) + 1 {
        return refuse("it is not its author's next change to this case");
    }
    if change
        .actors()
        .any(|a| !known.contains_key(a) && a != author)
    {
        return refuse("it names a device this case has no change from");
    }
    if change.is_empty() {
        return refuse("it changes nothing");
    }
    let after = change
        .deps()
        .iter()
        .filter_map(|d| doc.get_change_meta_by_hash(d))
        .map(|meta| meta.max_op)
        .max()
        .unwrap_or(0);
    if change.start_op().get() != after + 1 {
        return refuse("its operations are not numbered after those it depends on");
    }
    Ok(())
}

/// Each device with a change in `doc`, and its last number.
fn actors(doc: &Automerge) -> HashMap<ActorId, u64> {
    let mut out = HashMap::new();
    for meta in doc.get_changes_meta(&[]) {
        let seq = out.entry(meta.actor.into_owned()).or_insert(0);
        *seq = meta.seq.max(*seq);
    }
    out
}

/// Whether the document holds a case's creation yet.
fn has_case(doc: &Automerge) -> Result<bool, ModelError> {
    Ok(!doc
        .get_all(ROOT, "schema")
        .map_err(ModelError::corrupt)?
        .is_empty())
}

/// The actors of the office's devices.
fn actors_of(office: &[[u8; 32]]) -> Vec<ActorId> {
    office.iter().map(|o| ActorId::from(&o[..])).collect()
}

fn actor_id(actor: &[u8]) -> Result<ActorId, ModelError> {
    if actor.is_empty() {
        return Err(ModelError::InvalidActor);
    }
    Ok(ActorId::from(actor))
}

fn stamp(author: &str, now: OffsetDateTime) -> Result<Stamp<'_>, ModelError> {
    let at = now
        .format(&Rfc3339)
        .map_err(|_| ModelError::BadClock(now.to_string()))?;
    Ok(Stamp { at, author })
}

/// Screens, then decodes, every change, with what it writes to; one bad change fails them all.
fn decode_changes(raw_changes: &[Vec<u8>]) -> Result<Vec<Pending>, ModelError> {
    raw_changes
        .iter()
        .map(|raw| screen(raw, true).map(|(_, change, scope)| (change, scope)))
        .collect()
}

/// A change waiting to be applied, with what it writes to if that is known already.
type Pending = (Change, Option<Scope>);

/// The tree a new case starts as: the header (schema, id, reference, kind, status `alleged`,
/// created_at, created_by) and every group map, text object and list, empty.
fn initial_root(
    id: Uuid,
    reference: &Reference,
    kind: Kind,
    stamp: &Stamp<'_>,
    encoding: TextEncoding,
) -> hydrate::Map {
    let mut root = hydrate::Map::default();
    put(&mut root, "schema", ScalarValue::Uint(SCHEMA).into());
    // As autosurgeon writes a Uuid: its 16 bytes.
    put(
        &mut root,
        "id",
        ScalarValue::Bytes(id.as_bytes().to_vec()).into(),
    );
    let scalars = [
        ("reference", reference.to_string()),
        ("kind", kind.to_string()),
        ("status", Status::Alleged.to_string()),
        ("created_at", stamp.at.clone()),
        ("created_by", stamp.author.to_string()),
    ];
    for (key, value) in scalars {
        put(&mut root, key, ScalarValue::Str(value.into()).into());
    }
    for group in groups() {
        put(&mut root, group, hydrate::Map::default().into());
    }
    for spec in fields().iter().filter(|f| f.ty == FieldType::Text) {
        let text = hydrate::Text::new(encoding, "").into();
        match spec.group().and_then(|g| group_mut(&mut root, g)) {
            Some(group) => put(group, spec.leaf(), text),
            None => put(&mut root, spec.leaf(), text),
        }
    }
    for list in LISTS {
        put(
            &mut root,
            list,
            hydrate::Value::from(Vec::<hydrate::Value>::new()),
        );
    }
    root
}

/// Writes the leading field edits of a new case into its tree, as [`crate::edit`] would
/// write them into the document; returns how many it took. It stops at the first edit that
/// is not a field (a note, a verification...): those, and all after them, are applied to the
/// document in their order.
fn fold_sets(
    root: &mut hydrate::Map,
    edits: &[Edit],
    stamp: &Stamp<'_>,
    encoding: TextEncoding,
    touched: &mut Vec<String>,
) -> Result<usize, ModelError> {
    for (i, edit) in edits.iter().enumerate() {
        match fold(root, edit, stamp, encoding)? {
            None => return Ok(i),
            Some(Some(key)) if !touched.iter().any(|t| t == key) => touched.push(key.into()),
            Some(_) => {}
        }
    }
    Ok(edits.len())
}

pub(crate) fn put(map: &mut hydrate::Map, key: &str, value: hydrate::Value) {
    map.insert(
        key.to_string(),
        hydrate::MapValue {
            value,
            conflict: false,
        },
    );
}

pub(crate) fn group_mut<'m>(
    root: &'m mut hydrate::Map,
    group: &str,
) -> Option<&'m mut hydrate::Map> {
    match root.get_mut(group) {
        Some(hydrate::Value::Map(map)) => Some(map),
        _ => None,
    }
}

fn apply_all(
    tx: &mut Transaction<'_>,
    edits: &[Edit],
    stamp: &Stamp<'_>,
    touched: &mut Vec<String>,
) -> Result<(), ModelError> {
    for edit in edits {
        if let Some(key) = apply(tx, edit, stamp)? {
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
    }
    Ok(())
}

/// Commits with the time in milliseconds and the touched keys as a JSON array.
fn commit(
    tx: Transaction<'_>,
    touched: &[String],
    now: OffsetDateTime,
) -> Result<ChangeHash, ModelError> {
    let millis = i64::try_from(now.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ModelError::BadClock(now.to_string()))?;
    let message = serde_json::Value::from(touched.to_vec()).to_string();
    let options = CommitOptions::default()
        .with_message(message)
        .with_time(millis);
    let (hash, _) = tx.commit_with(options);
    hash.ok_or_else(|| ModelError::Corrupt("the change was empty".to_string()))
}

/// Applies accepted changes onto `doc` as their dependencies allow, unjudged; changes still
/// waiting for a dependency are left out.
fn replay(mut doc: Automerge, raw_changes: &[Vec<u8>]) -> Result<CaseDoc, ModelError> {
    let mut pending = decode_changes(raw_changes)?;
    let mut known = actors(&doc);
    while let Some(i) = pending.iter().position(|(c, _)| applicable(&doc, c)) {
        let (change, _) = pending.remove(i);
        check_fit(&doc, &known, &change)?;
        known.insert(change.actor_id().clone(), change.seq());
        doc.apply_changes([change]).map_err(ModelError::corrupt)?;
    }
    if !has_case(&doc)? {
        return Err(ModelError::Incomplete);
    }
    CaseDoc::from_automerge(doc)
}
