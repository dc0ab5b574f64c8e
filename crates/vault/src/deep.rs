//! What a deep check judges of a case loaded from an office checkpoint: the signed changes
//! the server stores for it (fetched by the sync crate) must each verify and belong to the
//! case, come from a device the roster admits, include every change the checkpoint said its
//! document held with the same size, and build, through the judge, a case holding every head
//! of that document. Then the document loaded whole is exactly what the signed changes make,
//! and trusting the office for it added nothing.

use std::collections::{BTreeMap, BTreeSet};

use cairn_crypto::{DeviceId, SealedChange, SealedKind};
use cairn_model::{screen_change, CaseDoc, ChangeHash, ModelError};
use cairn_protocol::Roster;
use rusqlite::params;
use uuid::Uuid;

use crate::{Vault, VaultError};

/// A case this device loaded from an office checkpoint, with what the checkpoint said of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointedCase {
    /// The case's id.
    pub id: Uuid,
    /// Its reference, to name it.
    pub reference: String,
    /// The heads of the newest checkpoint document loaded for it.
    pub heads: Vec<ChangeHash>,
    /// Each change its documents held, by author and number: its sealed size in bytes.
    pub holds: BTreeMap<(DeviceId, u64), u64>,
}

/// What a deep check found of one case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeepVerdict {
    /// Signed changes that verified, belong to the case and that the roster admits.
    pub verified: usize,
    /// Of those, changes the judge refused, as every replica refuses them: in no document,
    /// and no failure.
    pub refused: usize,
    /// What failed, one sentence each naming the case and the change; empty when it passed.
    pub problems: Vec<String>,
}

impl Vault {
    /// The cases loaded from office checkpoints, in id order, with the changes and heads the
    /// checkpoints gave them.
    pub fn checkpointed_cases(&self) -> Result<Vec<CheckpointedCase>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let me = self.keys.id();
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let mut out = Vec::new();
        for id in crate::checkpoint::based_cases(&tx, &path)? {
            let heads = crate::checkpoint::base_heads(&tx, &id, &path)?.unwrap_or_default();
            let reference = crate::cases::load(&tx, &self.cipher, &id, &me.0, &[], &path)?
                .reference()
                .to_string();
            let mut stmt = tx
                .prepare_cached("SELECT author, seq, bytes FROM checkpointed WHERE case_id = ?1")
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![id.as_bytes().as_slice()], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sql)?;
            let mut holds = BTreeMap::new();
            for row in rows {
                let (author, seq, bytes) = row.map_err(sql)?;
                let author =
                    <[u8; 32]>::try_from(author.as_slice()).map_err(|_| VaultError::Corrupt {
                        path: path.clone(),
                        detail: format!(
                            "a checkpointed change of case {reference} names no device"
                        ),
                    })?;
                holds.insert((DeviceId(author), seq.max(0) as u64), bytes.max(0) as u64);
            }
            out.push(CheckpointedCase {
                id,
                reference,
                heads,
                holds,
            });
        }
        Ok(out)
    }

    /// Judges the sealed changes the server holds for `case` (`fetched`, all of them) against
    /// what its checkpoint said, with `roster` the roster this device holds. Problems are the
    /// verdict's; an error only means the check itself could not run.
    pub fn deep_check_case(
        &self,
        case: &CheckpointedCase,
        fetched: &[Vec<u8>],
        roster: &Roster,
    ) -> Result<DeepVerdict, VaultError> {
        let me = self.keys.id();
        let office = self.office_devices()?;
        let reference = &case.reference;
        let mut verdict = DeepVerdict::default();
        let mut problems = Vec::new();
        // Every (author, number) the server sent, sound or not, so a bad change is named once.
        let mut sent: BTreeMap<(DeviceId, u64), &[u8]> = BTreeMap::new();
        let mut raw = Vec::new();
        for bytes in fetched {
            let sealed = match SealedChange::from_bytes(bytes) {
                Ok(sealed) => sealed,
                Err(e) => {
                    problems.push(format!(
                        "case {reference}: a change the server sent for it is not a sealed change ({e})"
                    ));
                    continue;
                }
            };
            let name = format!(
                "case {reference}: change {} of device {}",
                sealed.seq,
                sealed.author.short()
            );
            match sent.insert((sealed.author, sealed.seq), bytes) {
                Some(earlier) if earlier != bytes.as_slice() => {
                    problems.push(format!("{name} was sent twice with different bytes"));
                    continue;
                }
                Some(_) => continue,
                None => {}
            }
            // The signature first: what an unsigned header claims is not worth judging.
            let plain = match sealed.open(&self.keyring) {
                Ok(plain) => plain,
                Err(e) => {
                    problems.push(format!("{name} does not verify ({e})"));
                    continue;
                }
            };
            if let Some(problem) = judge_change(case, &sealed, bytes.len(), roster) {
                problems.push(format!("{name} {problem}"));
                continue;
            }
            raw.push(plain);
            verdict.verified += 1;
        }
        for (author, seq) in case.holds.keys() {
            if !sent.contains_key(&(*author, *seq)) {
                problems.push(format!(
                    "case {reference}: change {seq} of device {}, which the office's checkpoint holds, is not on the server",
                    author.short()
                ));
            }
        }
        // The document is rebuilt only from sound changes: with any refused, its heads would
        // be missing for a reason already named.
        if problems.is_empty() {
            match rebuild(case, raw, &me.0, &office) {
                Ok(refused) => verdict.refused = refused,
                Err(problem) => problems.push(problem),
            }
        }
        verdict.problems = problems;
        Ok(verdict)
    }
}

/// What is wrong with one sealed change of `case` whose signature holds: its kind, its
/// case, the roster's word on its author, and its size against the checkpoint's.
fn judge_change(
    case: &CheckpointedCase,
    sealed: &SealedChange,
    size: usize,
    roster: &Roster,
) -> Option<String> {
    if sealed.kind != SealedKind::CaseChange {
        return Some("is not a case change".to_owned());
    }
    if sealed.case_id != *case.id.as_bytes() {
        return Some(format!(
            "is signed for case {}, not this one",
            Uuid::from_bytes(sealed.case_id)
        ));
    }
    if let Err(refusal) = roster.verdict(&sealed.author, sealed.seq, &sealed.team) {
        return Some(format!("is refused by the roster: {refusal}"));
    }
    match case.holds.get(&(sealed.author, sealed.seq)) {
        Some(&held) if held != size as u64 => Some(format!(
            "is {size} bytes on the server, but the office's checkpoint held one of {held} bytes"
        )),
        _ => None,
    }
}

/// Builds the case from its changes with the judge, leaving out each change it refuses as a
/// replica receiving it would (the office left it out of its document too); then says what
/// is wrong when the result lacks a head of the checkpoint's document. Returns how many
/// changes were refused.
fn rebuild(
    case: &CheckpointedCase,
    mut raw: Vec<Vec<u8>>,
    actor: &[u8; 32],
    office: &[[u8; 32]],
) -> Result<usize, String> {
    let reference = &case.reference;
    let cannot =
        |e: ModelError| format!("case {reference}: its signed changes do not build the case ({e})");
    let mut refused = 0;
    let rebuilt = loop {
        match CaseDoc::from_changes(&raw, actor, office) {
            Ok(doc) => break doc,
            Err(ModelError::RefusedChange { hash, reason }) => {
                let culprit = raw
                    .iter()
                    .position(|r| screen_change(r).is_ok_and(|c| c.hash == hash));
                let Some(i) = culprit else {
                    return Err(cannot(ModelError::RefusedChange { hash, reason }));
                };
                raw.remove(i);
                refused += 1;
            }
            Err(e) => return Err(cannot(e)),
        }
    };
    let lacking: BTreeSet<String> = case
        .heads
        .iter()
        .filter(|h| !rebuilt.holds(h))
        .map(|h| hex::encode(&h.0[..6]))
        .collect();
    if lacking.is_empty() {
        return Ok(refused);
    }
    Err(format!(
        "case {reference}: its signed changes do not make the document the office's checkpoint brought (it lacks change {})",
        lacking.into_iter().collect::<Vec<_>>().join(", ")
    ))
}
