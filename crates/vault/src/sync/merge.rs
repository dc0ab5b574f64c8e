//! Merging received changes into their cases: ahead on all cores when nothing is held back
//! for a case, else in the transaction with the changes held back for it, one at a time
//! when a batch is refused; then the checks a merged case must pass.

use cairn_crypto::SealedChange;
use cairn_model::CaseDoc;
use cairn_protocol::Roster;
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::open::Received;
use super::refused::{refused_for, remember_refused};
use super::report::{ApplyReport, Refused};
use crate::budget::within_budget;
use crate::cases::{case_row, load, open_snapshot, snapshot_of, CaseRow};
use crate::VaultError;

/// Why merging a case's changes stopped.
pub(super) enum Failure {
    /// The changes do not fit the case: refuse them, go on with the page.
    Refuse(String),
    /// The vault itself failed: stop.
    Fatal(VaultError),
}

impl From<VaultError> for Failure {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Model(cairn_model::ModelError::Refused(reason)) => Failure::Refuse(reason),
            VaultError::Model(m) => {
                Failure::Refuse(format!("its content does not fit the case: {m}"))
            }
            other => Failure::Fatal(other),
        }
    }
}

/// Stores a case's changes and the merge worked out ahead for it, in a savepoint; false if
/// its author's budget refuses them (the careful way then says why).
pub(super) fn store_ahead(
    tx: &mut rusqlite::Transaction<'_>,
    merge: &Merge<'_>,
    id: Uuid,
    changes: &[Received<'_>],
    merged: &Merged,
) -> Result<bool, VaultError> {
    let savepoint = tx
        .savepoint()
        .map_err(|e| VaultError::sqlite(merge.path, e))?;
    match insert_changes(&savepoint, merge, id, changes) {
        Ok(()) => {}
        // Dropping the savepoint rolls it back.
        Err(Failure::Refuse(_)) => return Ok(false),
        Err(Failure::Fatal(e)) => return Err(e),
    }
    merged.store(&savepoint, merge.cipher, id, merge.path)?;
    savepoint
        .commit()
        .map_err(|e| VaultError::sqlite(merge.path, e))?;
    Ok(true)
}

/// Merges a case's changes in the transaction: all at once; if that is refused, one at a
/// time in the server's order, so one bad change never takes honest ones down with it.
pub(super) fn apply_case(
    tx: &mut rusqlite::Transaction<'_>,
    keyring: &cairn_crypto::Keyring,
    merge: &Merge<'_>,
    id: Uuid,
    changes: &[Received<'_>],
    roster: &Roster,
    report: &mut ApplyReport,
) -> Result<(), VaultError> {
    let path = merge.path;
    let mut attempt = |tx: &mut rusqlite::Transaction<'_>, batch: &[Received<'_>]| {
        let savepoint = tx.savepoint().map_err(|e| VaultError::sqlite(path, e))?;
        let case = Case {
            conn: &savepoint,
            keyring,
            merge,
            id,
        };
        match merge_case(&case, batch, roster) {
            Ok(held) => {
                savepoint
                    .commit()
                    .map_err(|e| VaultError::sqlite(path, e))?;
                report.refused.extend(held);
                Ok(None)
            }
            // Dropping the savepoint rolls it back.
            Err(Failure::Refuse(reason)) => Ok(Some(reason)),
            Err(Failure::Fatal(e)) => Err(e),
        }
    };
    let outcomes: Vec<(&Received<'_>, Option<String>)> = match attempt(tx, changes)? {
        None => {
            report.applied += changes.len();
            return Ok(());
        }
        Some(reason) if changes.len() == 1 => vec![(&changes[0], Some(reason))],
        Some(_) => {
            let mut outcomes = Vec::with_capacity(changes.len());
            for single in changes.chunks(1) {
                outcomes.push((&single[0], attempt(tx, single)?));
            }
            outcomes
        }
    };
    for (change, outcome) in outcomes {
        match outcome {
            None => report.applied += 1,
            Some(reason) => {
                remember_refused(tx, &change.sealed, change.bytes, path)?;
                report.refused.push(refused_for(change, reason));
            }
        }
    }
    Ok(())
}

/// What merging needs besides the database: the same for every case of a page.
pub(super) struct Merge<'a> {
    pub(super) cipher: &'a cairn_crypto::LocalCipher,
    pub(super) me: &'a cairn_crypto::DeviceId,
    /// The actors deciding for the office (the office and its staff devices): the only ones
    /// that confirm, reject and review.
    pub(super) office: &'a [[u8; 32]],
    pub(super) now: time::OffsetDateTime,
    pub(super) path: &'a std::path::Path,
}

/// One case of the vault, inside a page's transaction.
struct Case<'a> {
    conn: &'a rusqlite::Connection,
    keyring: &'a cairn_crypto::Keyring,
    merge: &'a Merge<'a>,
    id: Uuid,
}

/// A case merged with its changes, ready to store.
pub(super) struct Merged {
    /// Its new row; none while its creation has not arrived.
    row: Option<CaseRow>,
    /// Whether it waits for a change it depends on.
    waiting: bool,
}

impl Merged {
    fn store(
        &self,
        conn: &rusqlite::Connection,
        cipher: &cairn_crypto::LocalCipher,
        id: Uuid,
        path: &std::path::Path,
    ) -> Result<(), VaultError> {
        set_waiting(conn, &id, self.waiting, path)?;
        // What has arrived is saved even while a dependency is missing, so the case stays
        // visible.
        match &self.row {
            Some(row) => row.store(conn, cipher, path),
            None => Ok(()),
        }
    }
}

/// Records a case's received changes in the log, within their authors' budgets.
fn insert_changes(
    conn: &rusqlite::Connection,
    merge: &Merge<'_>,
    id: Uuid,
    changes: &[Received<'_>],
) -> Result<(), Failure> {
    let path = merge.path;
    let received_at = (merge.now.unix_timestamp_nanos() / 1_000_000) as i64;
    for c in changes {
        let (bytes, ops) = (c.bytes.len() as i64, c.change.screened().ops as i64);
        within_budget(conn, &id, &c.sealed.author, bytes, ops, path)?.map_err(Failure::Refuse)?;
        let stored = crate::at_rest::seal_change(
            merge.cipher,
            &c.sealed.author,
            c.sealed.seq,
            Some(received_at),
            c.bytes,
        )?;
        conn.prepare_cached(
            "INSERT INTO changes (author, seq, case_id, sealed, received, draft, ops)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                c.sealed.author.0.as_slice(),
                c.sealed.seq as i64,
                id.as_bytes().as_slice(),
                stored,
                c.sealed.epoch == 0,
                ops
            ])
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    }
    Ok(())
}

/// Merges a batch into a case with nothing held back for it, from the case's encrypted
/// snapshot (none for a case not seen before); needs nothing of the database.
pub(super) fn merge_alone(
    merge: &Merge<'_>,
    id: Uuid,
    snapshot: Option<&[u8]>,
    changes: &[Received<'_>],
) -> Result<Merged, Failure> {
    let screened = || changes.iter().map(|c| &*c.change);
    let office = merge.office;
    let judged = match snapshot {
        None => match CaseDoc::from_screened(screened(), &merge.me.0, office) {
            Err(cairn_model::ModelError::Incomplete) => {
                return Ok(Merged {
                    row: None,
                    waiting: true,
                })
            }
            other => other,
        },
        Some(sealed) => {
            // Dropped if refused: nothing of it need be kept to undo a change.
            let doc = open_snapshot(merge.cipher, &id, sealed, &merge.me.0, merge.office)?;
            doc.merged_with(screened())
        }
    };
    let doc = judged.map_err(|e| match e {
        cairn_model::ModelError::RefusedChange { reason, .. } => Failure::Refuse(reason),
        e => VaultError::from(e).into(),
    })?;
    let authors: Vec<Author<'_>> = changes
        .iter()
        .map(|c| (&c.sealed, Ok(c.team.as_deref())))
        .collect();
    settle(merge, id, doc, snapshot.is_none(), &authors)
}

/// A change offered to a case, with the roster's word on its author: the author's team
/// (`None` for the office) or why the author is refused.
type Author<'a> = (&'a SealedChange, Result<Option<&'a str>, &'a str>);

/// The checks a merged case must pass whatever was offered to it, then its new row.
fn settle(
    merge: &Merge<'_>,
    id: Uuid,
    mut doc: CaseDoc,
    is_new: bool,
    authors: &[Author<'_>],
) -> Result<Merged, Failure> {
    if doc.id() != id {
        return Err(Failure::Refuse(
            "it files a case under another case's id".into(),
        ));
    }
    // Only its team and the office write to a case: the reference's team decides whom the
    // office encrypts the case to. Changes held for a case not seen before were never checked.
    let team = &doc.reference().team;
    for (sealed, verdict) in authors {
        match verdict {
            Err(reason) => return Err(Failure::Refuse((*reason).to_owned())),
            // The server relays a change by the team it is sealed for: one sealed for another
            // team than its case's (the office's or a staff device's, whose verdict names no
            // team) would reach the office but never the case's team, leaving replicas apart.
            _ if !sealed.team.eq_ignore_ascii_case(team) => {
                return Err(Failure::Refuse(format!(
                    "it is sealed for team {}, not for its case's team {team}: the case's team would never receive it",
                    sealed.team
                )))
            }
            Ok(Some(other)) if !other.eq_ignore_ascii_case(team) => {
                return Err(Failure::Refuse(format!(
                    "a device of team {other} may not write to a case of team {team}"
                )))
            }
            Ok(_) => {}
        }
    }
    if is_new {
        creation_fits_author(&doc, authors.iter().map(|(s, _)| *s))?;
    }
    let waiting = !doc.missing_deps().is_empty();
    let row = case_row(merge.cipher, id, &mut doc, merge.now, merge.path)?;
    Ok(Merged {
        row: Some(row),
        waiting,
    })
}

/// Stores a case's received changes and merges them into its snapshot, with any change held
/// back for it earlier that they release. Returns the held-back changes refused on release
/// (dropped from the log alone: the batch goes on without them).
fn merge_case(
    case: &Case<'_>,
    changes: &[Received<'_>],
    roster: &Roster,
) -> Result<Vec<Refused>, Failure> {
    let Case {
        conn, merge, id, ..
    } = *case;
    let path = merge.path;
    insert_changes(conn, merge, id, changes)?;
    if !has_waiting(conn, &id, path)? {
        let merged = merge_alone(merge, id, snapshot_of(conn, &id, path)?.as_deref(), changes)?;
        merged.store(conn, merge.cipher, id, path)?;
        return Ok(Vec::new());
    }
    let mut before = match load(conn, merge.cipher, &id, &merge.me.0, merge.office, path) {
        Ok(doc) => Some(doc),
        Err(VaultError::UnknownCase(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let is_new = before.is_none();
    // A case with changes held back for a dependency (or stored before its creation
    // arrived) is offered everything stored for it, in the order it arrived (the model
    // skips what it has).
    let mut offered = case_log(case)?;
    let in_batch = |s: &Stored| {
        changes
            .iter()
            .any(|c| c.sealed.author == s.sealed.author && c.sealed.seq == s.sealed.seq)
    };
    let mut held_refused = Vec::new();
    // The model judges each change on the merged case: identity, append-only lists, values.
    let merged = loop {
        let raw: Vec<Vec<u8>> = offered.iter().map(|s| s.plain.clone()).collect();
        let result = if is_new {
            match CaseDoc::from_changes(&raw, &merge.me.0, merge.office) {
                Err(cairn_model::ModelError::Incomplete) => Ok(None),
                other => other.map(Some),
            }
        } else {
            // A refused apply leaves the case as it was, ready for the next try.
            match before.as_mut() {
                Some(doc) => doc.apply_changes(&raw).map(|()| before.take()),
                None => return Err(VaultError::UnknownCase(id.to_string()).into()),
            }
        };
        let (hash, reason) = match result {
            Ok(doc) => break doc,
            Err(cairn_model::ModelError::RefusedChange { hash, reason }) => (hash, reason),
            Err(e) => return Err(VaultError::from(e).into()),
        };
        let culprit = offered
            .iter()
            .position(|s| cairn_model::screen_change(&s.plain).is_ok_and(|c| c.hash == hash));
        match culprit {
            Some(i) if !in_batch(&offered[i]) => {
                // Held back earlier and refused now it applies: it goes, the batch stays.
                let held = offered.remove(i);
                conn.execute(
                    "DELETE FROM changes WHERE author = ?1 AND seq = ?2",
                    params![held.sealed.author.0.as_slice(), held.sealed.seq as i64],
                )
                .map_err(|e| VaultError::sqlite(path, e))?;
                remember_refused(conn, &held.sealed, &held.bytes, path)?;
                held_refused.push(Refused {
                    author: held.sealed.author.short(),
                    seq: held.sealed.seq,
                    reason,
                });
            }
            _ => return Err(Failure::Refuse(reason)),
        }
    };
    let Some(doc) = merged else {
        set_waiting(conn, &id, true, path)?;
        return Ok(held_refused);
    };
    let verdicts: Vec<_> = offered
        .iter()
        .map(|s| {
            roster
                .verdict(&s.sealed.author, s.sealed.seq, &s.sealed.team)
                .map_err(|refusal| refusal.to_string())
        })
        .collect();
    let authors: Vec<Author<'_>> = offered
        .iter()
        .zip(&verdicts)
        .map(|(s, v)| (&s.sealed, v.as_ref().copied().map_err(String::as_str)))
        .collect();
    settle(merge, id, doc, is_new, &authors)?.store(conn, merge.cipher, id, path)?;
    Ok(held_refused)
}

/// A creation carries its author's own tag (and, for a field device, its team) in its
/// reference, so that no device mints references in another's name.
fn creation_fits_author<'a>(
    doc: &CaseDoc,
    mut authors: impl Iterator<Item = &'a SealedChange>,
) -> Result<(), Failure> {
    let creator = doc.creator();
    let Some(author) = authors.find(|s| creator.as_deref() == Some(s.author.0.as_slice())) else {
        return Err(Failure::Refuse(
            "the case's creation is not signed by its author".into(),
        ));
    };
    let reference = doc.reference();
    let tag = author.author.tag();
    if reference.device_tag != tag {
        return Err(Failure::Refuse(format!(
            "it creates {reference} under tag {}, but its author's tag is {tag}",
            reference.device_tag
        )));
    }
    Ok(())
}

pub(super) fn stored_bytes(
    tx: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    sealed: &SealedChange,
    path: &std::path::Path,
) -> Result<Option<Vec<u8>>, VaultError> {
    let stored: Option<Vec<u8>> = tx
        .prepare_cached("SELECT sealed FROM changes WHERE author = ?1 AND seq = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(
                params![sealed.author.0.as_slice(), sealed.seq as i64],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    stored
        .map(|s| crate::at_rest::open_change(cipher, &sealed.author, sealed.seq, &s).map(|o| o.0))
        .transpose()
}

/// Every stored change of a case, opened, in the order they arrived.
fn case_log(case: &Case<'_>) -> Result<Vec<Stored>, VaultError> {
    let sql = |e| VaultError::sqlite(case.merge.path, e);
    let mut stmt = case
        .conn
        .prepare("SELECT author, seq, sealed FROM changes WHERE case_id = ?1 ORDER BY rowid")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![case.id.as_bytes().as_slice()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (author, seq, stored) = row.map_err(sql)?;
        let (bytes, _) = crate::at_rest::open_stored(case.merge.cipher, &author, seq, &stored)?;
        let sealed = SealedChange::from_bytes(&bytes)?;
        let plain = sealed.open(case.keyring)?;
        out.push(Stored {
            sealed,
            bytes,
            plain,
        });
    }
    Ok(out)
}

/// A change as stored in the log, opened.
struct Stored {
    sealed: SealedChange,
    bytes: Vec<u8>,
    plain: Vec<u8>,
}

/// Stores a received office record in the log, so that its author's numbers stay whole here
/// (a restored office numbers its next change after it) and it is a duplicate when it comes
/// again.
pub(super) fn insert_record(
    tx: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    sealed: &SealedChange,
    bytes: &[u8],
    now: time::OffsetDateTime,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let received_at = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let stored =
        crate::at_rest::seal_change(cipher, &sealed.author, sealed.seq, Some(received_at), bytes)?;
    tx.prepare_cached(
        "INSERT INTO changes (author, seq, case_id, sealed, received, draft, ops)
         VALUES (?1, ?2, ?3, ?4, 1, 0, 0)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            sealed.author.0.as_slice(),
            sealed.seq as i64,
            sealed.case_id.as_slice(),
            stored,
        ])
    })
    .map(|_| ())
    .map_err(|e| VaultError::sqlite(path, e))
}

pub(crate) fn has_waiting(
    tx: &rusqlite::Connection,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    tx.prepare_cached("SELECT 1 FROM waiting WHERE case_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![id.as_bytes().as_slice()], |_| Ok(()))
                .optional()
        })
        .map(|r| r.is_some())
        .map_err(|e| VaultError::sqlite(path, e))
}

pub(crate) fn set_waiting(
    tx: &rusqlite::Connection,
    id: &Uuid,
    waiting: bool,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let sql = if waiting {
        "INSERT OR IGNORE INTO waiting (case_id) VALUES (?1)"
    } else {
        "DELETE FROM waiting WHERE case_id = ?1"
    };
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(params![id.as_bytes().as_slice()]))
        .map(|_| ())
        .map_err(|e| VaultError::sqlite(path, e))
}
