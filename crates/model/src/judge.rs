//! What a change received from another device may do to a case.
//!
//! Bytes from a peer are hostile until checked. [`screen_change`] refuses, before anything is
//! inflated or decoded further, what Cairn's own encoding never produces (a compressed chunk
//! is a deflate bomb waiting to happen) and anything over [`MAX_CHANGE_BYTES`]. After a merge,
//! [`judge`] reads the merged document itself (never a cached copy) and refuses a result that
//! rewrites the case's identity, deletes or rewrites an append-only entry, replaces one of the
//! case's objects, or leaves a value the command line would refuse.

use std::collections::HashSet;

use automerge::{
    legacy, ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, ROOT,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::fields::{groups, CONSENTS, LATE_GROUPS, OFFICE_STATUSES, REVIEW_STATES, STATUSES};
use crate::records::{attachment_problem, RELATIONS};
use crate::{fields, FieldType, ModelError, Reference, Value};

/// The largest Automerge change accepted from another device, in bytes. A field edit is a few
/// hundred bytes; a long narrative pasted at once stays far below this.
pub const MAX_CHANGE_BYTES: usize = 1 << 20;

/// The most operations one received change may carry. Automerge's run-length encoding lets a
/// few bytes claim billions of operations, all walked (and then stored) on decode; Cairn's
/// own changes stay far below this, since a text field holds at most
/// [`crate::MAX_TEXT_CHARS`] characters and a change deletes and inserts each at most once.
pub const MAX_CHANGE_OPS: u64 = 250_000;

/// Header keys, fixed when the case is created.
pub(crate) const HEADER: [&str; 5] = ["schema", "id", "reference", "created_at", "created_by"];

/// The append-only lists and the keys each of their entries may hold (the first ones
/// required).
const LISTS: [(&str, &[&str], usize); 7] = [
    ("notes", &["at", "author", "text", "withdraws"], 3),
    (
        "custody",
        &["at", "author", "to", "from", "place", "purpose", "seal"],
        3,
    ),
    (
        "sources",
        &["at", "author", "type", "consent", "contact"],
        4,
    ),
    (
        "verifications",
        &["at", "author", "status", "basis", "counted"],
        3,
    ),
    ("reviews", &["at", "author", "state", "comment"], 3),
    (
        "links",
        &[
            "at", "author", "relation", "other_id", "other", "basis", "remains",
        ],
        6,
    ),
    (
        "attachments",
        &[
            "at",
            "author",
            "blob",
            "sha256",
            "name",
            "media_type",
            "size",
            "chunks",
            "team",
            "caption",
            "exif_time",
            "lat",
            "lon",
        ],
        9,
    ),
];

/// Keys of list entries that hold numbers, not text: whole numbers, then decimal ones.
const WHOLE_KEYS: [&str; 2] = ["size", "chunks"];
const DECIMAL_KEYS: [&str; 2] = ["lat", "lon"];

/// The list of attachments. It is not made with the case (the creation change is frozen:
/// cases made before attachments existed must rebuild to the same heads), but by the first
/// attach, on any device. Two devices attaching first concurrently make two lists, kept side
/// by side as conflicting values of the key and read together ([`crate::CaseDoc::attachments`]):
/// what is refused is a change that replaces or removes a list that was there.
pub(crate) const ATTACHMENTS: &str = "attachments";

/// Lists only the office's devices write. They are made by the first entry, not with the
/// case; the office and a staff device (or two staff devices) writing the first entry
/// concurrently make two, kept side by side (see `office_list`).
pub(crate) const OFFICE_LISTS: [&str; 3] = ["verifications", "reviews", "links"];

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;

/// What screening learnt of a received change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screened {
    /// The actor (device key bytes) the change claims as its author.
    pub actor: Vec<u8>,
    /// The time the change claims, in milliseconds since the epoch.
    pub time_ms: i64,
    /// The change's hash.
    pub hash: ChangeHash,
    /// How many operations it holds.
    pub ops: u64,
}

/// Checks a raw change received from another device before it costs anything: its size,
/// then its chunk type (Cairn writes only uncompressed change chunks, so a compressed one is
/// refused without being inflated), then its structure.
pub fn screen_change(raw: &[u8]) -> Result<Screened, ModelError> {
    screen(raw, false).map(|(screened, _, _)| screened)
}

/// How many operations a change of this device's own holds, read from its columns' run
/// lengths without decoding it (what [`screen_change`] reports, at a fraction of its cost).
pub fn own_change_ops(raw: &[u8]) -> Result<u64, ModelError> {
    raw.get(9..)
        .filter(|_| raw.len() >= 9 && raw[..4] == MAGIC && raw[8] == CHUNK_CHANGE)
        .and_then(|_| claims(raw))
        .map(|c| c.ops)
        .ok_or_else(|| ModelError::Corrupt("a change made here is not an Automerge change".into()))
}

/// A received change that passed [`screen_change`], kept parsed with what it writes to, so
/// that merging it ([`crate::CaseDoc::from_screened`], [`crate::CaseDoc::apply_screened`])
/// does not parse it again.
#[derive(Clone)]
pub struct ScreenedChange {
    screened: Screened,
    change: Change,
    scope: Option<Scope>,
}

impl ScreenedChange {
    /// Screens `raw` ([`screen_change`]) and keeps what screening parsed.
    pub fn new(raw: &[u8]) -> Result<ScreenedChange, ModelError> {
        let (screened, change, scope) = screen(raw, true)?;
        Ok(ScreenedChange {
            screened,
            change,
            scope,
        })
    }

    /// What screening learnt.
    pub fn screened(&self) -> &Screened {
        &self.screened
    }

    /// The change, ready to merge.
    pub(crate) fn pending(&self) -> (Change, Option<Scope>) {
        (self.change.clone(), self.scope.clone())
    }
}

/// [`screen_change`], also handing back the parsed change and, if `with_scope`, what it
/// writes to ([`Scope::of`]), read from the same decoding.
pub(crate) fn screen(
    raw: &[u8],
    with_scope: bool,
) -> Result<(Screened, Change, Option<Scope>), ModelError> {
    if raw.len() > MAX_CHANGE_BYTES {
        return Err(refuse(format!(
            "its content is {} bytes, over the limit of {MAX_CHANGE_BYTES}",
            raw.len()
        )));
    }
    // Magic (4 bytes), checksum (4), chunk type (1).
    if raw.len() < 9 || raw[..4] != MAGIC {
        return Err(refuse("its content is not an Automerge change"));
    }
    match raw[8] {
        CHUNK_CHANGE => {}
        CHUNK_COMPRESSED => {
            return Err(refuse(
                "its content is a compressed Automerge chunk, which Cairn never writes (refused unopened)",
            ))
        }
        CHUNK_DOCUMENT => return Err(refuse("its content is a whole document, not a change")),
        other => return Err(refuse(format!("its content is an Automerge chunk of type {other}, not a change"))),
    }
    let claims =
        claims(raw).ok_or_else(|| refuse("its content is not a valid Automerge change"))?;
    let ops = claims.ops;
    if ops > MAX_CHANGE_OPS || claims.preds > MAX_CHANGE_OPS {
        return Err(refuse(format!(
            "its content claims {ops} operations and {} references to earlier ones, over the limit of {MAX_CHANGE_OPS}",
            claims.preds
        )));
    }
    if !claims.counters_in_range {
        return Err(refuse(
            "its content numbers operations beyond what Automerge can hold",
        ));
    }
    if !claims.actors_in_range {
        return Err(refuse("its content refers to a device it does not list"));
    }
    if claims.longest_key > MAX_KEY_BYTES {
        return Err(refuse(format!(
            "its content names a key of {} bytes, over the limit of {MAX_KEY_BYTES}",
            claims.longest_key
        )));
    }
    let change = Change::try_from(raw)
        .map_err(|e| refuse(format!("its content is not a valid Automerge change: {e}")))?;
    // Automerge rebuilds a change from its operations whenever it saves or hands one out; a
    // change whose bytes are not what it would rebuild gets another hash there, and replicas
    // that reloaded it would no longer agree on the history.
    let decoded = change.decode();
    let scope = with_scope.then(|| Scope::of_decoded(&change, &decoded));
    if Change::from(decoded).hash() != change.hash() {
        return Err(refuse(
            "its content is not in Automerge's own encoding (it would change on reload)",
        ));
    }
    let screened = Screened {
        actor: change.actor_id().to_bytes().to_vec(),
        time_ms: change.timestamp(),
        hash: change.hash(),
        ops,
    };
    Ok((screened, change, scope))
}

/// What a change chunk's columns claim, read without walking its operations.
struct Claims {
    /// Operations (Automerge walks them until the action column ends).
    ops: u64,
    /// Predecessor references, summed over every operation (each becomes a list entry).
    preds: u64,
    /// The longest map key or mark name (each operation of a run copies its string).
    longest_key: u64,
    /// Whether every device index its operations use names one of its devices (Automerge
    /// would panic on another while decoding it).
    actors_in_range: bool,
    /// Whether every operation number it holds or names fits in 32 bits (likewise).
    counters_in_range: bool,
}

/// The longest map key a received change may use; Cairn's own are a few words.
const MAX_KEY_BYTES: u64 = 64;

/// Reads what an uncompressed change chunk's columns claim, from their run lengths alone, in
/// time linear in the bytes. `None` if the layout is not a change's.
fn claims(raw: &[u8]) -> Option<Claims> {
    // Column specifications: id << 4 | type, not deflated (Automerge refuses deflated
    // columns in a change chunk).
    const ACTION: u64 = (4 << 4) | 2; // unsigned integers
    const PRED_GROUP: u64 = 7 << 4; // group: how many predecessors each operation has
    const KEY_STRING: u64 = (1 << 4) | 5; // strings
    const MARK_NAME: u64 = (10 << 4) | 5; // strings
    const ACTOR_INDEXES: [u64; 3] = [1, (1 << 4) | 1, (7 << 4) | 1]; // object, key, predecessor
    const OBJECT_COUNTER: u64 = 2; // unsigned integers
    const DELTA_COUNTERS: [u64; 2] = [(1 << 4) | 3, (7 << 4) | 3]; // key, predecessor
    let mut r = Reader(raw.get(9..)?);
    let len = usize::try_from(r.uleb()?).ok()?;
    let mut r = Reader(r.take(len)?);
    let deps = usize::try_from(r.uleb()?).ok()?;
    r.take(deps.checked_mul(32)?)?;
    r.bytes()?; // actor
    r.uleb()?; // seq
    let start_op = r.uleb()?;
    r.sleb()?; // time
    r.bytes()?; // message
    let others = r.uleb()?;
    for _ in 0..others {
        r.bytes()?; // other actors
    }
    let devices = others.saturating_add(1);
    let columns = r.uleb()?;
    let mut specs = Vec::new();
    for _ in 0..columns.min(raw.len() as u64) {
        specs.push((r.uleb()?, usize::try_from(r.uleb()?).ok()?));
    }
    let mut claims = Claims {
        ops: 0,
        preds: 0,
        longest_key: 0,
        actors_in_range: true,
        counters_in_range: true,
    };
    for (spec, len) in specs {
        let data = r.take(len)?;
        match spec {
            ACTION => claims.ops = claims.ops.max(runs(data, |r| r.uleb().map(|_| 1))?.0),
            PRED_GROUP => claims.preds = claims.preds.max(runs(data, |r| r.uleb())?.1),
            OBJECT_COUNTER => {
                claims.counters_in_range &= runs(data, |r| r.uleb())?.2 <= u64::from(u32::MAX);
            }
            spec if DELTA_COUNTERS.contains(&spec) => {
                claims.counters_in_range &= deltas_in_range(data)?;
            }
            spec if ACTOR_INDEXES.contains(&spec) => {
                // The largest index used, plus one (a run of nulls uses none).
                let used = runs(data, |r| r.uleb().map(|i| i.saturating_add(1)))?.2;
                claims.actors_in_range &= used <= devices;
            }
            KEY_STRING | MARK_NAME => {
                let longest = runs(data, |r| r.bytes().map(|b| b.len() as u64))?.2;
                claims.longest_key = claims.longest_key.max(longest);
            }
            _ => {}
        }
    }
    claims.counters_in_range &= start_op.saturating_add(claims.ops) <= u64::from(u32::MAX);
    Some(claims)
}

/// Whether the running sum of a run-length encoded column of signed deltas (operation
/// numbers) stays within 0..=u32::MAX; the sum moves linearly within a run, so its ends tell.
fn deltas_in_range(data: &[u8]) -> Option<bool> {
    let mut r = Reader(data);
    let mut sum: i128 = 0;
    let fits = |v: i128| (0..=i128::from(u32::MAX)).contains(&v);
    while !r.0.is_empty() {
        match r.sleb()? {
            n if n > 0 => {
                sum += i128::from(n) * i128::from(r.sleb()?);
                if !fits(sum) {
                    return Some(false);
                }
            }
            n if n < 0 => {
                for _ in 0..n.unsigned_abs() {
                    sum += i128::from(r.sleb()?);
                    if !fits(sum) {
                        return Some(false);
                    }
                }
            }
            _ => {
                r.uleb()?; // a run of nulls
            }
        }
    }
    Some(true)
}

/// Walks a run-length encoded column whose values `value` reads (and measures): returns how
/// many values it holds, the sum of their measures, and the largest measure.
fn runs(data: &[u8], value: impl Fn(&mut Reader<'_>) -> Option<u64>) -> Option<(u64, u64, u64)> {
    let mut r = Reader(data);
    let (mut count, mut sum, mut largest) = (0u64, 0u64, 0u64);
    while !r.0.is_empty() {
        match r.sleb()? {
            // A run: one value repeated.
            n if n > 0 => {
                let v = value(&mut r)?;
                count = count.saturating_add(n.unsigned_abs());
                sum = sum.saturating_add(v.saturating_mul(n.unsigned_abs()));
                largest = largest.max(v);
            }
            // Literals: that many values, each at least a byte, so bounded by the data.
            n if n < 0 => {
                for _ in 0..n.unsigned_abs() {
                    let v = value(&mut r)?;
                    count = count.saturating_add(1);
                    sum = sum.saturating_add(v);
                    largest = largest.max(v);
                }
            }
            // A run of nulls.
            _ => count = count.saturating_add(r.uleb()?),
        }
    }
    Some((count, sum, largest))
}

/// A cursor over LEB128-encoded bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uleb()?).ok()?;
        self.take(n)
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = *self.take(1)?.first()?;
            if shift >= 64 {
                return None;
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Some(value);
            }
        }
    }
}

fn refuse(reason: impl Into<String>) -> ModelError {
    ModelError::Refused(reason.into())
}

/// A case as the judge reads it: a document as it stands ([`View::now`]), or the merged
/// document read as it was at the heads it had before the change being judged
/// ([`View::at`]), so that no copy of the case is kept just to judge against it.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    doc: &'a Automerge,
    at: Option<&'a [ChangeHash]>,
}

impl<'a> View<'a> {
    /// `doc` as it stands.
    pub(crate) fn now(doc: &'a Automerge) -> View<'a> {
        View { doc, at: None }
    }

    /// `doc` as it was at `heads` (which it holds).
    pub(crate) fn at(doc: &'a Automerge, heads: &'a [ChangeHash]) -> View<'a> {
        View {
            doc,
            at: Some(heads),
        }
    }

    fn get_all(
        &self,
        obj: &ObjId,
        key: &str,
    ) -> Result<Vec<(automerge::Value<'a>, ObjId)>, ModelError> {
        match self.at {
            None => self.doc.get_all(obj, key),
            Some(heads) => self.doc.get_all_at(obj, key, heads),
        }
        .map_err(ModelError::corrupt)
    }

    fn map_range(&self, obj: &ObjId) -> automerge::iter::MapRange<'a> {
        match self.at {
            None => self.doc.map_range(obj, ..),
            Some(heads) => self.doc.map_range_at(obj, .., heads),
        }
    }

    /// The ids of the entries of the list `obj`, in order.
    fn list_ids(&self, obj: &ObjId) -> Vec<ObjId> {
        match self.at {
            None => self.doc.list_range(obj, ..).map(|item| item.id()).collect(),
            Some(heads) => (self.doc.list_range_at(obj, .., heads))
                .map(|item| item.id())
                .collect(),
        }
    }

    /// The hashes of the changes this view holds that are not among `deps` and what they
    /// depend on.
    fn changes_after(&self, deps: &[ChangeHash]) -> HashSet<ChangeHash> {
        let after_deps = self.doc.get_changes_meta(deps).into_iter().map(|m| m.hash);
        match self.at {
            None => after_deps.collect(),
            Some(heads) => {
                let not_here: HashSet<ChangeHash> = (self.doc.get_changes_meta(heads))
                    .into_iter()
                    .map(|m| m.hash)
                    .collect();
                after_deps.filter(|h| !not_here.contains(h)).collect()
            }
        }
    }
}

/// Judges the merged document `after` against `before` (the case as it was, `None` for a
/// case first seen now). `Ok` means the merge keeps every rule of a case. Together the rules
/// imply that the whole case hydrates, without paying for a hydrate on every change.
///
/// Only what the merge wrote to can have changed, so with a `before` the rules are checked on
/// the objects that the applied change's operations target ([`Scope::of`]), and the cost
/// follows the size of the change, not of the case.
///
/// `office` are the actors deciding for the office (the office and its staff devices): only
/// they confirm or reject a case, write the office's lists, or change a status one of them
/// set. None known lets nobody do so.
///
/// `known` is the [`Layout`] the judge found in `before` (`None`: read it all again). The
/// answer is `after`'s layout, for judging the next change.
pub(crate) fn judge(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
    office: &[ActorId],
    known: Option<&Layout>,
) -> Result<Layout, ModelError> {
    // A layout is only ever that of a judged `before`.
    let known = known.filter(|_| before.is_some() && !scope.everything);
    if scope.touches(&ROOT) {
        header(before, after)?;
        office_status(before, after, scope, office)?;
    }
    let (groups, texts) = objects(before, after, scope, known)?;
    values(after, &groups, scope)?;
    let lists = lists(before, after, scope, office, known)?;
    unique_blobs(before, after, scope, &lists)?;
    Ok(Layout {
        groups,
        texts,
        lists,
    })
}

/// Where a judged case keeps its objects and list entries. Objects never move (replacing one
/// is refused), and a map or list changes only through operations on it (Automerge takes a
/// predecessor wherever it finds it, so [`crate::CaseDoc`] first checks that a change is kept
/// as it came, which puts its every effect where its operations say): so the judge of the
/// next change takes from here what that change does not write to, rather than reading the
/// document again, and its cost follows the change, not the case. It is the same judge: every
/// check the layout saves is one on a map or list the judge of an earlier change of the same
/// merge read and passed, and nothing has written to since.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    /// Each group's map.
    groups: Vec<(&'static str, ObjId)>,
    /// Each text field's object, by the field's key.
    texts: Vec<(&'static str, ObjId)>,
    /// Each list's objects (several attachment lists, none of an office list not made yet),
    /// each with its entries in order.
    lists: Vec<(&'static str, Vec<ListObject>)>,
}

/// A list object and its entries, in order.
type ListObject = (ObjId, Vec<ObjId>);

impl Layout {
    fn text(&self, key: &str) -> Option<&ObjId> {
        self.texts.iter().find(|(k, _)| *k == key).map(|(_, id)| id)
    }

    fn lists(&self, list: &str) -> Option<&[ListObject]> {
        self.lists
            .iter()
            .find(|(l, _)| *l == list)
            .map(|(_, objs)| objs.as_slice())
    }
}

/// Whether `id` is an operation or object made by one of `writers` (the office's devices).
pub(crate) fn written_by(id: &ObjId, writers: &[ActorId]) -> bool {
    matches!(id, ObjId::Id(_, actor, _) if writers.contains(actor))
}

/// A case's corrected place is the office's word alone, written by no other device at any
/// time. A case's status is the office's word alone: the creation writes `alleged` (the office's
/// own creation may write any status), and after it only the office writes the key, in any
/// form (a value replacing another, one beside another, a deletion, an object). The rule
/// reads the change itself, never what other changes left, so the verdict is the same on
/// every replica whatever the order changes arrive in; and a case holding a value written
/// before the rule (which readers ignore: [`crate::CaseDoc::status`]) takes the office's
/// later changes as any other.
fn office_status(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
    office: &[ActorId],
) -> Result<(), ModelError> {
    if before.is_none() {
        // A corrected place is the office's word alone, from the creation on.
        let places = after.get_all(ROOT, "place").map_err(ModelError::corrupt)?;
        if places.iter().any(|(_, id)| !written_by(id, office)) {
            return Err(refuse(
                "it corrects the case's place, which only the office does",
            ));
        }
        // The creation, which is all the case holds yet.
        for (value, id) in after.get_all(ROOT, "status").map_err(ModelError::corrupt)? {
            let automerge::Value::Scalar(scalar) = value else {
                continue; // `values` refuses it.
            };
            match scalar.as_ref() {
                _ if written_by(&id, office) => {}
                ScalarValue::Str(status) if status.as_str() == "alleged" => {}
                ScalarValue::Str(status) if OFFICE_STATUSES.contains(&status.as_str()) => {
                    return Err(refuse(format!(
                        "it makes the case {status}, which only the office does"
                    )))
                }
                ScalarValue::Str(status) => {
                    return Err(refuse(format!(
                        "it creates the case with the status {status}, which only the office gives"
                    )))
                }
                _ => {} // `values` refuses it.
            }
        }
        return Ok(());
    }
    let from_office = scope.actor.as_ref().is_some_and(|a| office.contains(a));
    if scope.writes_place && !from_office {
        return Err(refuse(
            "it corrects the case's place, which only the office does",
        ));
    }
    if scope.writes_status && !from_office {
        if scope.status_preds.iter().any(|a| office.contains(a)) {
            return Err(refuse(
                "it changes a status the office set, which only the office does",
            ));
        }
        return Err(refuse(
            "it sets the case's status, which only the office does",
        ));
    }
    Ok(())
}

/// The objects a merge wrote to.
#[derive(Clone)]
pub(crate) struct Scope {
    everything: bool,
    root: bool,
    objects: HashSet<(u64, ActorId)>,
    /// Objects given something other than a character inserted or an element deleted: never
    /// right for a text.
    not_text: HashSet<(u64, ActorId)>,
    /// Objects the change itself creates.
    created: HashSet<(u64, ActorId)>,
    /// The change's author (`None` for a case first seen: every rule is read off the case).
    actor: Option<ActorId>,
    /// Whether the change writes the case's status (puts, deletes or makes an object there).
    writes_status: bool,
    /// Authors of the status values the change overwrites or deletes.
    status_preds: Vec<ActorId>,
    /// Whether the change writes the case's corrected place (the office's alone, as the status).
    writes_place: bool,
    /// The changes it depends on (its view of the case when it was made).
    deps: Vec<ChangeHash>,
}

impl Scope {
    /// Everything: a case first seen.
    pub(crate) fn everything() -> Scope {
        Scope {
            everything: true,
            root: true,
            objects: HashSet::new(),
            not_text: HashSet::new(),
            created: HashSet::new(),
            actor: None,
            writes_status: false,
            status_preds: Vec::new(),
            writes_place: false,
            deps: Vec::new(),
        }
    }

    /// What `change` writes to.
    pub(crate) fn of(change: &Change) -> Scope {
        Scope::of_decoded(change, &change.decode())
    }

    /// What `change` writes to, read from its decoded operations (`decoded`).
    fn of_decoded(change: &Change, decoded: &legacy::Change) -> Scope {
        let mut scope = Scope {
            everything: false,
            root: false,
            objects: HashSet::new(),
            not_text: HashSet::new(),
            created: HashSet::new(),
            actor: Some(change.actor_id().clone()),
            writes_status: false,
            status_preds: Vec::new(),
            writes_place: false,
            deps: change.deps().to_vec(),
        };
        let start = change.start_op().get();
        for (i, op) in decoded.operations.iter().enumerate() {
            if matches!(op.action, legacy::OpType::Make(_)) {
                let id = start.saturating_add(i as u64);
                scope.created.insert((id, change.actor_id().clone()));
            }
            let text_like = match &op.action {
                legacy::OpType::Put(ScalarValue::Str(s)) => op.insert && s.chars().count() == 1,
                legacy::OpType::Delete => !op.insert,
                _ => false,
            };
            match &op.obj {
                legacy::ObjectId::Root => {
                    scope.root = true;
                    if matches!(&op.key, legacy::Key::Map(k) if k == "place") {
                        scope.writes_place = true;
                    }
                    if matches!(&op.key, legacy::Key::Map(k) if k == "status") {
                        scope.writes_status = true;
                        let preds = op.pred.iter().map(|legacy::OpId(_, actor)| actor.clone());
                        scope.status_preds.extend(preds);
                    }
                }
                legacy::ObjectId::Id(legacy::OpId(counter, actor)) => {
                    if !text_like {
                        scope.not_text.insert((*counter, actor.clone()));
                    }
                    scope.objects.insert((*counter, actor.clone()));
                }
            }
        }
        scope
    }

    /// The first object the change writes to that neither `doc` nor the change itself has
    /// (Automerge 0.12 panics on one instead of refusing the change).
    pub(crate) fn unknown_object(&self, doc: &Automerge) -> Option<String> {
        self.objects
            .iter()
            .filter(|id| !self.created.contains(id))
            .map(|(counter, actor)| format!("{counter}@{actor}"))
            .find(|id| doc.import(id).is_err())
    }

    /// Whether a text object holds (or may hold, for a case first seen) only characters.
    fn only_characters(&self, doc: &Automerge, text: &ObjId) -> bool {
        if self.everything {
            return doc.list_range(text, ..).all(|item| match item.value {
                automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => {
                    s.chars().count() == 1
                }
                _ => false,
            });
        }
        match text {
            ObjId::Root => false,
            ObjId::Id(counter, actor, _) => !self.not_text.contains(&(*counter, actor.clone())),
        }
    }

    fn touches(&self, obj: &ObjId) -> bool {
        self.everything
            || match obj {
                ObjId::Root => self.root,
                ObjId::Id(counter, actor, _) => self.objects.contains(&(*counter, actor.clone())),
            }
    }
}

/// The header holds one value per key, never changed after creation.
fn header(before: Option<View<'_>>, after: &Automerge) -> Result<(), ModelError> {
    for key in HEADER {
        let now = single_scalar(View::now(after), &ROOT, key)?;
        if let Some(before) = before {
            if single_scalar(before, &ROOT, key)? != now {
                return Err(refuse(format!("it changes the case's {key}")));
            }
        }
        match key {
            "schema" if !matches!(now, ScalarValue::Uint(crate::SCHEMA)) => {
                return Err(refuse(format!(
                    "it sets the case's schema to {}, which this version of Cairn does not write",
                    crate::json::scalar_json(&now)
                )))
            }
            "id" if !matches!(&now, ScalarValue::Bytes(b) if b.len() == 16) => {
                return Err(refuse("it sets a case id that is not one"))
            }
            "reference" => {
                let text = as_str(&now, key)?;
                text.parse::<Reference>().map_err(|_| {
                    refuse(format!("it sets the reference `{text}`, which is not one"))
                })?;
            }
            "created_at" => {
                let text = as_str(&now, key)?;
                OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                    refuse(format!(
                        "it sets the creation time `{text}`, which is not a time"
                    ))
                })?;
            }
            "created_by" => {
                as_str(&now, key)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The objects of one map, read in one pass: looking each key up costs a seek through the
/// document (most of the judge's time before), a pass over a case's small maps far less.
struct MapObjects {
    /// Key, the object's type (`None` for a scalar) and id, and whether the key holds more
    /// than one value.
    items: Vec<(String, Option<ObjType>, ObjId, bool)>,
}

impl MapObjects {
    fn of(doc: View<'_>, obj: &ObjId) -> MapObjects {
        let items = doc
            .map_range(obj)
            .map(|item| {
                let ty = match item.value {
                    automerge::ValueRef::Object(ty) => Some(ty),
                    _ => None,
                };
                let id = item.id();
                (item.key.into_owned(), ty, id, item.conflict)
            })
            .collect();
        MapObjects { items }
    }

    /// The one object of type `ty` at `key`; anything else is left to [`single_object`],
    /// which says what is wrong.
    fn single(
        &self,
        doc: View<'_>,
        parent: &ObjId,
        key: &str,
        ty: ObjType,
    ) -> Result<ObjId, ModelError> {
        match self.items.iter().find(|(k, ..)| k == key) {
            Some((_, Some(found), id, false)) if *found == ty => Ok(id.clone()),
            _ => single_object(doc, parent, key, ty),
        }
    }
}

/// Names and their objects: the groups' maps, or the text fields' objects.
type Groups = Vec<(&'static str, ObjId)>;

/// Every group map, text object and list is the one made at creation: replacing one would
/// hide everything it holds. No key outside the model is written. Returns each group's map
/// and each text field's object.
fn objects(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
    known: Option<&Layout>,
) -> Result<(Groups, Groups), ModelError> {
    let groups = match known {
        // The root is as it was: so are the groups' maps and the lists.
        Some(known) if !scope.touches(&ROOT) => known.groups.clone(),
        _ => root_objects(before, after, scope)?,
    };
    // Each map holding text fields, read once before and after.
    let mut maps: Vec<(ObjId, MapObjects, Option<MapObjects>)> = Vec::new();
    let mut texts = Vec::new();
    for spec in fields().iter().filter(|f| f.ty == FieldType::Text) {
        let obj = match spec.group() {
            Some(g) => match groups.iter().find(|(name, _)| *name == g) {
                Some((_, id)) => id.clone(),
                None => continue,
            },
            None => ROOT,
        };
        // A map nothing wrote to holds the text objects it held.
        let unchanged = known
            .filter(|_| !scope.touches(&obj))
            .and_then(|k| k.text(spec.key));
        if let Some(text) = unchanged {
            if scope.touches(text) && !scope.only_characters(after, text) {
                return Err(refuse(format!(
                    "it puts something other than text in `{}`",
                    spec.key
                )));
            }
            texts.push((spec.key, text.clone()));
            continue;
        }
        if !maps.iter().any(|(o, ..)| *o == obj) {
            // The group map is the same object before and after, so its id serves both.
            let was = before
                .filter(|_| scope.touches(&obj))
                .map(|b| MapObjects::of(b, &obj));
            let now = MapObjects::of(View::now(after), &obj);
            maps.push((obj.clone(), now, was));
        }
        let Some((_, now, was)) = maps.iter().find(|(o, ..)| *o == obj) else {
            continue;
        };
        let was = before.zip(was.as_ref());
        // (No cap on the merged length: two concurrent edits, each fine, could pass it
        // together, and which one is refused would depend on arrival order. Operations per
        // change and per case bound it instead.)
        let text = same_object(
            was,
            (View::now(after), now),
            &obj,
            spec.leaf(),
            ObjType::Text,
        )?;
        if scope.touches(&text) && !scope.only_characters(after, &text) {
            return Err(refuse(format!(
                "it puts something other than text in `{}`",
                spec.key
            )));
        }
        texts.push((spec.key, text));
    }
    // No stray keys at the root or in a group.
    let root_known = |k: &str| {
        HEADER.contains(&k)
            || groups.iter().any(|(g, _)| *g == k)
            || LISTS.iter().any(|(l, _, _)| *l == k)
            || fields().iter().any(|f| f.group().is_none() && f.key == k)
    };
    if scope.touches(&ROOT) {
        if let Some(stray) = after.keys(ROOT).find(|k| !root_known(k)) {
            return Err(refuse(format!("it writes `{stray}`, which no case holds")));
        }
    }
    for (group, obj) in groups.iter().filter(|(_, obj)| scope.touches(obj)) {
        let known = |k: &str| {
            fields()
                .iter()
                .any(|f| f.group() == Some(group) && f.leaf() == k)
        };
        if let Some(stray) = after.keys(obj).find(|k| !known(k)) {
            return Err(refuse(format!(
                "it writes `{group}.{stray}`, which no case holds"
            )));
        }
    }
    Ok((groups, texts))
}

/// The groups' maps, read off the root, each the one there before; with an operation on the
/// root, the case's lists too (the office's lists and attachments are checked with their
/// entries, in `lists`).
fn root_objects(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
) -> Result<Groups, ModelError> {
    // Replacing an object at the root takes an operation on the root.
    let before_root = before.filter(|_| scope.touches(&ROOT));
    let after = View::now(after);
    let root_now = MapObjects::of(after, &ROOT);
    let root_was = before_root.map(|b| (b, MapObjects::of(b, &ROOT)));
    let root_was = root_was.as_ref().map(|(b, m)| (*b, m));
    let names = groups();
    let mut groups = Vec::with_capacity(names.len());
    for group in names {
        let absent = |doc: View<'_>| doc.get_all(&ROOT, group).map(|v| v.is_empty());
        let mut was = root_was;
        if LATE_GROUPS.contains(&group) {
            // A case made before the group existed: the first field set in it makes it, and
            // one that has it cannot lose it.
            let had = match root_was {
                Some((doc, _)) => !absent(doc)?,
                None => false,
            };
            if absent(after)? {
                if had {
                    return Err(refuse(format!("it removes the case's `{group}`")));
                }
                continue;
            }
            was = was.filter(|_| had);
        }
        groups.push((
            group,
            same_object(was, (after, &root_now), &ROOT, group, ObjType::Map)?,
        ));
    }
    if scope.touches(&ROOT) {
        let with_case = |l: &str| !OFFICE_LISTS.contains(&l) && l != ATTACHMENTS;
        for (list, _, _) in LISTS.iter().filter(|(l, _, _)| with_case(l)) {
            same_object(root_was, (after, &root_now), &ROOT, list, ObjType::List)?;
        }
    }
    Ok(groups)
}

/// The one object of type `ty` at `parent[key]`, which must be the one there before. Each
/// side is a document with its map `parent` read ([`MapObjects`]).
fn same_object(
    before: Option<(View<'_>, &MapObjects)>,
    (after, after_map): (View<'_>, &MapObjects),
    parent: &ObjId,
    key: &str,
    ty: ObjType,
) -> Result<ObjId, ModelError> {
    let now = after_map.single(after, parent, key, ty)?;
    if let Some((before, before_map)) = before {
        if before_map.single(before, parent, key, ty)? != now {
            return Err(refuse(format!("it replaces the case's `{key}`")));
        }
    }
    Ok(now)
}

/// Every value of every scalar field (conflicting ones too) is one the command line accepts.
fn values(after: &Automerge, groups: &[(&str, ObjId)], scope: &Scope) -> Result<(), ModelError> {
    for spec in fields().iter().filter(|f| f.ty != FieldType::Text) {
        let obj = match spec.group() {
            Some(group) => match groups.iter().find(|(name, _)| *name == group) {
                Some((_, id)) => id.clone(),
                None => continue,
            },
            None => ROOT,
        };
        if !scope.touches(&obj) {
            continue;
        }
        let all = after
            .get_all(&obj, spec.leaf())
            .map_err(ModelError::corrupt)?;
        if all.is_empty() && matches!(spec.key, "kind" | "status") {
            return Err(refuse(format!("it removes the case's {}", spec.key)));
        }
        for (value, _) in all {
            let automerge::Value::Scalar(scalar) = value else {
                return Err(refuse(format!("it puts an object in `{}`", spec.key)));
            };
            let ok = match (spec.ty, scalar.as_ref()) {
                (FieldType::Int { .. }, ScalarValue::Int(i)) => {
                    spec.ty.parse(spec.key, &i.to_string()) == Ok(Value::Int(*i))
                }
                (FieldType::Float { .. }, ScalarValue::F64(f)) => {
                    f.is_finite() && spec.ty.parse(spec.key, &f.to_string()) == Ok(Value::Float(*f))
                }
                (FieldType::Int { .. } | FieldType::Float { .. }, _) => false,
                (_, ScalarValue::Str(s)) => {
                    spec.ty.parse(spec.key, s) == Ok(Value::Str(s.to_string()))
                }
                _ => false,
            };
            if !ok {
                return Err(refuse(format!(
                    "it sets `{}` to {}: expected {}",
                    spec.key,
                    crate::json::scalar_json(&scalar),
                    spec.ty.describe()
                )));
            }
        }
    }
    Ok(())
}

/// Entries are only ever added: every entry there before is still there, in the same order,
/// with the same content; every entry is a map of known keys, one value each (text, or a
/// number for an attachment's size, chunks and position).
fn lists(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
    office: &[ActorId],
    known: Option<&Layout>,
) -> Result<Vec<(&'static str, Vec<ListObject>)>, ModelError> {
    let mut out = Vec::with_capacity(LISTS.len());
    for (list, keys, required) in LISTS {
        let office_only = OFFICE_LISTS.contains(&list);
        // Lists are made or replaced only by an operation on the root.
        let unchanged = known
            .filter(|_| !scope.touches(&ROOT))
            .and_then(|k| k.lists(list));
        let objs: Vec<ObjId> = match unchanged {
            Some(objs) => objs.iter().map(|(obj, _)| obj.clone()).collect(),
            None if office_only => office_list(before, after, scope, list, office)?,
            None if list == ATTACHMENTS => attachment_lists(before, after, scope)?,
            None => vec![single_object(View::now(after), &ROOT, list, ObjType::List)?],
        };
        let mut judged = Vec::with_capacity(objs.len());
        for obj in objs {
            // Its entries as the judge last found them, if it was there.
            let was = known
                .and_then(|k| k.lists(list))
                .and_then(|objs| objs.iter().find(|(o, _)| *o == obj))
                .map(|(_, entries)| entries.as_slice());
            let entries = appended(
                before,
                after,
                scope,
                office,
                &obj,
                was,
                (list, keys, required),
            )?;
            judged.push((obj, entries));
        }
        out.push((list, judged));
    }
    Ok(out)
}

/// The entries of the list `obj` (one of `list`'s) were only added to, and each new entry is
/// one `list` holds.
///
/// `known` are its entries as the judge last found them in `before`, if it did. Returns its
/// entries now.
fn appended(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
    office: &[ActorId],
    obj: &ObjId,
    known: Option<&[ObjId]>,
    (list, keys, required): (&str, &[&str], usize),
) -> Result<Vec<ObjId>, ModelError> {
    if let Some(known) = known.filter(|_| before.is_some() && !scope.touches(obj)) {
        // No entry added or removed: an entry changes only through operations on it.
        if known.iter().any(|id| scope.touches(id)) {
            return Err(refuse(format!("it rewrites an entry of {list}")));
        }
        return Ok(known.to_vec());
    }
    let office_only = OFFICE_LISTS.contains(&list);
    let old: Vec<ObjId> = match (before, known) {
        // Entries are added and removed by operations on the list itself.
        (Some(_), Some(known)) if scope.touches(obj) => known.to_vec(),
        (Some(before), None) if scope.touches(obj) => before.list_ids(obj),
        _ => Vec::new(),
    };
    let mut rest = old.iter().peekable();
    let mut entries = Vec::new();
    for item in after.list_range(obj, ..) {
        let id = item.id();
        entries.push(id.clone());
        let is_old = if before.is_some() && !scope.touches(obj) {
            true // No entry added or removed: every entry here was here before.
        } else if rest.peek() == Some(&&id) {
            rest.next();
            true
        } else {
            false
        };
        if is_old {
            // An entry changes only through operations on it.
            if scope.touches(&id) && !scope.everything {
                return Err(refuse(format!("it rewrites an entry of {list}")));
            }
            continue;
        }
        let automerge::ValueRef::Object(ObjType::Map) = item.value else {
            return Err(refuse(format!(
                "it puts something other than an entry in {list}"
            )));
        };
        if office_only && !written_by(&id, office) {
            return Err(refuse(format!(
                "it adds to {list}, which only the office does"
            )));
        }
        entry(after, &id, list, keys, required)?;
    }
    // Subsequence: concurrent appends may land between old entries, nothing may go.
    if rest.next().is_some() {
        return Err(refuse(format!("it deletes or moves an entry of {list}")));
    }
    Ok(entries)
}

/// The attachment lists (see [`ATTACHMENTS`]): each a list, and every one there before still
/// there.
fn attachment_lists(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
) -> Result<Vec<ObjId>, ModelError> {
    let lists = |doc: View<'_>| -> Result<Vec<ObjId>, ModelError> {
        let all = doc.get_all(&ROOT, ATTACHMENTS)?;
        all.into_iter()
            .map(|(value, id)| match value {
                automerge::Value::Object(ObjType::List) => Ok(id),
                _ => Err(refuse(format!(
                    "it replaces `{ATTACHMENTS}` with something else"
                ))),
            })
            .collect()
    };
    let now = lists(View::now(after))?;
    // Replaced or removed only by an operation on the root.
    if let Some(before) = before.filter(|_| scope.touches(&ROOT)) {
        if lists(before)?.iter().any(|was| !now.contains(was)) {
            return Err(refuse(format!("it replaces the case's `{ATTACHMENTS}`")));
        }
    }
    Ok(now)
}

/// An attachment's blob id names one file: a new entry may not reuse a blob id that an entry
/// it could see (one its change depends on) or an entry of the same change already lists.
/// Otherwise a teammate could list another's blob id with a file of its own, and devices that
/// fetch by blob id would take one file for the other. Every honest entry has a fresh random
/// id, and an entry made without seeing the other (concurrently) is judged the same in every
/// order: both are kept, and the vault keeps each entry's bytes apart (by blob id, the
/// device that wrote the entry, and its hash), so neither hides the other.
fn unique_blobs(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
    lists: &[(&'static str, Vec<ListObject>)],
) -> Result<(), ModelError> {
    let entries: Vec<&ObjId> = lists
        .iter()
        .filter(|(list, _)| *list == ATTACHMENTS)
        .flat_map(|(_, objs)| objs.iter().flat_map(|(_, entries)| entries))
        .collect();
    let is_new = |id: &ObjId| {
        scope.everything
            || matches!(id, ObjId::Id(counter, actor, _) if scope.created.contains(&(*counter, actor.clone())))
    };
    if !entries.iter().any(|id| is_new(id)) {
        return Ok(());
    }
    let blob = |id: &ObjId| -> Result<Option<String>, ModelError> {
        Ok(match after.get(id, "blob").map_err(ModelError::corrupt)? {
            Some((automerge::Value::Scalar(v), _)) => match v.as_ref() {
                ScalarValue::Str(s) => Some(s.to_ascii_lowercase()),
                _ => None,
            },
            _ => None,
        })
    };
    let mut blobs = Vec::with_capacity(entries.len());
    for id in &entries {
        blobs.push(blob(id)?);
    }
    // The changes this one could not see, read once, only if an id repeats.
    let mut unseen: Option<HashSet<ChangeHash>> = None;
    for (i, id) in entries.iter().enumerate() {
        let Some(mine) = blobs[i].as_ref().filter(|_| is_new(id)) else {
            continue;
        };
        for (j, other) in entries.iter().enumerate() {
            if i == j || blobs[j].as_ref() != Some(mine) {
                continue;
            }
            let seen = match (is_new(other), before) {
                (true, _) | (false, None) => true,
                (false, Some(before)) => {
                    let unseen = unseen.get_or_insert_with(|| before.changes_after(&scope.deps));
                    after
                        .hash_for_opid(other)
                        .is_none_or(|hash| !unseen.contains(&hash))
                }
            };
            if seen {
                return Err(refuse(format!(
                    "it lists an attachment under blob id {mine}, which the case already uses for another"
                )));
            }
        }
    }
    Ok(())
}

/// The office's lists `list`, if the case has one yet: each made by one of the office's
/// devices, and never replaced nor removed. Two of them (the office and a staff device, or two
/// staff devices) making the case's first entry concurrently make two lists, kept side by side
/// as conflicting values of the key, as attachment lists are: refusing the second would leave
/// each replica refusing whichever arrived second, and replicas apart.
fn office_list(
    before: Option<View<'_>>,
    after: &Automerge,
    scope: &Scope,
    list: &str,
    office: &[ActorId],
) -> Result<Vec<ObjId>, ModelError> {
    let find = |doc: View<'_>| -> Result<Vec<ObjId>, ModelError> {
        let all = doc.get_all(&ROOT, list)?;
        all.into_iter()
            .map(|(value, id)| match value {
                automerge::Value::Object(ObjType::List) => Ok(id),
                _ => Err(refuse(format!("it replaces `{list}` with something else"))),
            })
            .collect()
    };
    let now = find(View::now(after))?;
    // Made, replaced or removed only by an operation on the root.
    if scope.touches(&ROOT) {
        let was = before.map(find).transpose()?.unwrap_or_default();
        if was.iter().any(|w| !now.contains(w)) {
            return Err(refuse(if now.is_empty() {
                format!("it removes the case's `{list}`")
            } else {
                format!("it replaces the case's `{list}`")
            }));
        }
        if now
            .iter()
            .any(|n| !was.contains(n) && !written_by(n, office))
        {
            return Err(refuse(format!(
                "it makes {list}, which only the office does"
            )));
        }
    }
    Ok(now)
}

/// Checks a new entry of `list`: known keys, one text value each, the required ones present.
fn entry(
    doc: &Automerge,
    entry: &ObjId,
    list: &str,
    keys: &[&str],
    required: usize,
) -> Result<(), ModelError> {
    let mut content = Vec::new();
    for key in doc.keys(entry) {
        if !keys.contains(&key.as_str()) {
            return Err(refuse(format!("it writes `{key}` in an entry of {list}")));
        }
        // An optional key left empty is written as null.
        let value = match single_scalar(View::now(doc), entry, &key)? {
            ScalarValue::Null if !keys[..required].contains(&key.as_str()) => continue,
            ScalarValue::Uint(n) if WHOLE_KEYS.contains(&key.as_str()) => n.to_string(),
            ScalarValue::F64(f) if DECIMAL_KEYS.contains(&key.as_str()) && f.is_finite() => {
                f.to_string()
            }
            _ if WHOLE_KEYS.contains(&key.as_str()) || DECIMAL_KEYS.contains(&key.as_str()) => {
                return Err(refuse(format!(
                    "it sets `{key}` in an entry of {list} to something other than a number"
                )))
            }
            other => as_str(&other, &key)?.to_string(),
        };
        if key == "at" && OffsetDateTime::parse(&value, &Rfc3339).is_err() {
            return Err(refuse(format!(
                "it adds an entry to {list} dated `{value}`, which is not a time"
            )));
        }
        content.push((key, value));
    }
    for key in &keys[..required] {
        let present = content
            .iter()
            .any(|(k, v)| k == key && !v.trim().is_empty());
        if !present {
            return Err(refuse(format!(
                "it adds an entry to {list} without `{key}`"
            )));
        }
    }
    let value = |key: &str| {
        content
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    match list {
        "sources" if !value("consent").is_some_and(|c| CONSENTS.contains(&c)) => Err(refuse(
            "it adds a source whose consent is not yes, no or unknown",
        )),
        "verifications" => match value("status") {
            Some(s) if !STATUSES.contains(&s) => Err(refuse(format!(
                "it records a verification with the status `{s}`, which is not one"
            ))),
            Some(s)
                if OFFICE_STATUSES.contains(&s)
                    && value("basis").is_none_or(|b| b.trim().is_empty()) =>
            {
                Err(refuse(format!(
                    "it records the case as {s} without a basis"
                )))
            }
            status => match value("counted") {
                None => Ok(()),
                Some(_) if status != Some("confirmed") => Err(refuse(
                    "it records counted values with a verification that does not confirm the case",
                )),
                Some(record) => crate::Counted::from_record(record)
                    .map(|_| ())
                    .map_err(|why| {
                        refuse(format!(
                            "it records a confirmation whose counted values {why}"
                        ))
                    }),
            },
        },
        "reviews" if !value("state").is_some_and(|s| REVIEW_STATES.contains(&s)) => Err(refuse(
            "it records a review whose state is not received, has_issues or approved",
        )),
        "links" => {
            let id = |key: &str| value(key).is_some_and(|v| uuid::Uuid::parse_str(v).is_ok());
            match value("relation") {
                Some(r) if !RELATIONS.contains(&r) => Err(refuse(format!(
                    "it records a link `{r}`, which is not same_person, identifies or distinct"
                ))),
                _ if !id("other_id") => Err(refuse("it records a link to no case id")),
                Some("identifies") if !id("remains") => Err(refuse(
                    "it records an identification without the case that holds the remains",
                )),
                _ => Ok(()),
            }
        }
        ATTACHMENTS => {
            let number = |key: &str| value(key).and_then(|v| v.parse::<f64>().ok());
            let problem = attachment_problem(
                value("blob").unwrap_or_default(),
                value("sha256").unwrap_or_default(),
                value("chunks").and_then(|c| c.parse().ok()).unwrap_or(0),
                number("lat"),
                number("lon"),
            );
            match problem {
                Some(problem) => Err(refuse(format!("it lists an attachment {problem}"))),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The one scalar value at `obj[key]`; none, several or an object is refused.
fn single_scalar(doc: View<'_>, obj: &ObjId, key: &str) -> Result<ScalarValue, ModelError> {
    let all = doc.get_all(obj, key)?;
    match all.as_slice() {
        [(automerge::Value::Scalar(v), _)] => Ok(v.as_ref().clone()),
        [] => Err(refuse(format!("it leaves the case without `{key}`"))),
        [_] => Err(refuse(format!("it puts an object in `{key}`"))),
        _ => Err(refuse(format!("it gives `{key}` a second value"))),
    }
}

/// The id of the one object of type `ty` at `parent[key]`.
fn single_object(
    doc: View<'_>,
    parent: &ObjId,
    key: &str,
    ty: ObjType,
) -> Result<ObjId, ModelError> {
    let all = doc.get_all(parent, key)?;
    match all.as_slice() {
        [(automerge::Value::Object(found), id)] if *found == ty => Ok(id.clone()),
        [] => Err(refuse(format!("it leaves the case without `{key}`"))),
        [_] => Err(refuse(format!("it replaces `{key}` with something else"))),
        _ => Err(refuse(format!("it gives `{key}` a second value"))),
    }
}

fn as_str<'a>(value: &'a ScalarValue, key: &str) -> Result<&'a str, ModelError> {
    match value {
        ScalarValue::Str(s) => Ok(s.as_str()),
        _ => Err(refuse(format!(
            "it sets `{key}` to something other than text"
        ))),
    }
}

/// The change that created the case (the one that wrote its reference).
pub(crate) fn creation(doc: &Automerge) -> Option<ChangeHash> {
    match doc.get_all(ROOT, "reference").ok()?.as_slice() {
        [(_, op)] => doc.hash_for_opid(op),
        _ => None,
    }
}

/// The actor that wrote the case's reference, i.e. created the case.
pub(crate) fn creator(doc: &Automerge) -> Option<Vec<u8>> {
    match doc.get_all(ROOT, "reference").ok()?.as_slice() {
        [(_, ObjId::Id(_, actor, _))] => Some(actor.to_bytes().to_vec()),
        _ => None,
    }
}
