//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use automerge::{ActorId, Automerge};
use cairn_model::{CaseDoc, Edit, Kind, ModelError, Reference};
use time::OffsetDateTime;
use uuid::Uuid;

/// Actor ids shaped like the Ed25519 public keys devices use.
pub const A: [u8; 32] = [0xAA; 32];
pub const B: [u8; 32] = [0xBB; 32];

/// 2024-05-01T10:00:00Z plus `minutes`.
pub fn at(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_714_557_600 + minutes * 60).unwrap()
}

pub fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn reference() -> Reference {
    "KHR-T03-7KQ2-0017".parse().unwrap()
}

/// A new case made on device A, and the raw bytes of its creating change.
pub fn new_case(edits: &[Edit]) -> (CaseDoc, Vec<u8>) {
    let id = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    CaseDoc::create(
        &A,
        id,
        &reference(),
        Kind::Remains,
        "device-a",
        at(0),
        edits,
    )
    .unwrap()
}

/// Device B's copy of a case, built from its changes alone.
pub fn fork_for_b(doc: &CaseDoc) -> CaseDoc {
    CaseDoc::from_changes(&doc.changes(), &B, &[]).unwrap()
}

pub fn hex(actor: &[u8]) -> String {
    actor.iter().map(|b| format!("{b:02x}")).collect()
}

/// A change made by hand on a raw copy of `doc`, as `actor`: what a hostile device forges.
pub fn forge(
    doc: &CaseDoc,
    actor: &[u8],
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    let mut raw = Automerge::load(&doc.save())
        .unwrap()
        .with_actor(ActorId::from(actor));
    let mut tx = raw.transaction();
    f(&mut tx);
    let (hash, _) = tx.commit();
    automerge::ReadDoc::get_change_by_hash(&raw, &hash.unwrap())
        .unwrap()
        .raw_bytes()
        .to_vec()
}

/// Asserts `doc` refuses `change` for a reason naming `reason`, and stays as it was.
pub fn refused(doc: &mut CaseDoc, change: Vec<u8>, reason: &str) {
    let heads = doc.heads();
    match doc.apply_changes(&[change]) {
        Err(ModelError::RefusedChange { reason: why, .. }) => {
            assert!(why.contains(reason), "{why}")
        }
        other => panic!("expected a refusal naming {reason:?}, got {other:?}"),
    }
    assert_eq!(doc.heads(), heads);
}
