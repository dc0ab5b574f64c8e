//! Recording cases: every command is one transaction that appends a sealed change to the log
//! and refreshes the case's encrypted snapshot and summary.

use cairn_crypto::{SealedChange, SealedKind};
use cairn_model::{CaseDoc, Edit, Kind, Reference};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{store, Vault, VaultError};

/// What `create_case` made.
#[derive(Clone, Debug)]
pub struct Created {
    /// The case's random id.
    pub id: Uuid,
    /// Its human reference.
    pub reference: String,
    /// The number of the sealed change in this device's log.
    pub seq: u64,
}

/// One change in a case's history, with what it did to each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryStep {
    /// When, by whom, which keys.
    pub entry: cairn_model::HistoryEntry,
    /// Each field it set or cleared, with its old and new value.
    pub fields: Vec<cairn_model::FieldChange>,
}

/// A case's list line, kept encrypted beside its snapshot so listing needs no document loads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseSummary {
    /// The case's random id.
    pub id: Uuid,
    /// Its human reference.
    pub reference: String,
    /// Kind (killed, injured, missing, remains, detained).
    pub kind: String,
    /// Evidentiary status.
    pub status: String,
    /// When this vault last stored the case (RFC 3339): for the office, the sync that brought
    /// its newest change. The case's own last change is `changed_at`.
    pub updated_at: String,
    /// The case's place code: the one the office corrected it to, else its reference's.
    #[serde(default)]
    pub place: String,
    /// The place code its reference records, when the office corrected it to `place`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_place: Option<String>,
    /// The case's team (from its reference).
    #[serde(default)]
    pub team: String,
    /// `incident.cause`, if set.
    #[serde(default)]
    pub cause: Option<String>,
    /// `incident.date` (a date or a range), if set.
    #[serde(default)]
    pub incident_date: Option<String>,
    /// `person.civilian`, if set.
    #[serde(default)]
    pub civilian: Option<String>,
    /// `identification.status`, if set.
    #[serde(default)]
    pub identification: Option<String>,
    /// Whether a field holds concurrent values.
    #[serde(default)]
    pub conflicts: bool,
    /// The time the case's newest change claims (RFC 3339).
    #[serde(default)]
    pub changed_at: String,
    /// Hex of the device that made that change.
    #[serde(default)]
    pub changed_by: String,
    /// The state of the office's newest review.
    #[serde(default)]
    pub review: Option<String>,
    /// Whether a device other than the office changed it since the office last reviewed it
    /// (or it was never reviewed).
    #[serde(default)]
    pub needs_review: bool,
    /// `found.at`, if set.
    #[serde(default)]
    pub found_at: Option<String>,
    /// The counted fields as the office confirmed them (see [`CaseDoc::confirmed`]), when the
    /// case is confirmed and some changed since: what the report counts it by. (When none
    /// changed, the case's own values above are the ones confirmed, and the summary stays
    /// short.)
    #[serde(default)]
    pub confirmed: Option<cairn_model::Counted>,
    /// Each counted field changed since the office confirmed the case: `old` as confirmed,
    /// `new` now (empty when nothing changed, or the case is not confirmed).
    #[serde(default)]
    pub changed_since_confirmed: Vec<cairn_model::FieldChange>,
    /// The office's link decisions in force with other cases.
    #[serde(default)]
    pub links: Vec<cairn_model::CaseLink>,
    /// What record linkage compares of the case.
    #[serde(default)]
    pub profile: cairn_model::Profile,
    /// The case's version when summarised: its Automerge heads, hex. Empty in a summary
    /// written before summaries carried them (read the case for them).
    #[serde(default)]
    pub heads: Vec<String>,
    /// The rules the summary was worked out under ([`SUMMARY_VERSION`]); one from older rules
    /// is worked out again from its case when read.
    #[serde(default)]
    pub summary_version: u32,
}

/// The rules summaries are worked out under: 1 since only the office's status is read and a
/// confirmed case counts by what the office confirmed; 2 since they carry links and what
/// record linkage compares.
pub const SUMMARY_VERSION: u32 = 2;

impl CaseSummary {
    /// The case as a report counts it: by the values the office confirmed, for a confirmed
    /// case edited since.
    pub fn report_case(self) -> cairn_model::report::ReportCase {
        let c = self;
        let (kind, cause, incident_date, found_at, civilian, identification) = match c.confirmed {
            Some(k) => (
                k.kind,
                k.cause,
                k.incident_date,
                k.found_at,
                k.civilian,
                k.identification,
            ),
            None => (
                c.kind,
                c.cause,
                c.incident_date,
                c.found_at,
                c.civilian,
                c.identification,
            ),
        };
        cairn_model::report::ReportCase {
            kind,
            status: c.status,
            cause,
            incident_date,
            found_at,
            civilian,
            identification,
            place: c.place,
            reference: c.reference,
            id: c.id.to_string(),
            links: c.links,
        }
    }

    /// The day `cairn report` counts the case on (see [`cairn_model::report::case_day`]), from
    /// the values it counts it by: the confirmed ones for a confirmed case.
    pub fn day(&self) -> Option<time::Date> {
        let (kind, found_at, incident_date) = match &self.confirmed {
            Some(c) => (&c.kind, &c.found_at, &c.incident_date),
            None => (&self.kind, &self.found_at, &self.incident_date),
        };
        cairn_model::report::case_day(kind, found_at.as_deref(), incident_date.as_deref())
    }
}

/// See [`Vault::cases_mark`]: equal marks, the same cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CasesMark([i64; 4]);

/// Which cases a list shows (`cairn case list` and the office's pages): each part that is
/// set narrows it.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    /// The case's kind.
    pub kind: Option<String>,
    /// Its effective evidentiary status.
    pub status: Option<String>,
    /// Its incident's cause.
    pub cause: Option<String>,
    /// Its place code.
    pub place: Option<String>,
    /// Its team (any letter case).
    pub team: Option<String>,
    /// Only cases with concurrent values left.
    pub conflicts: bool,
    /// Only cases on or after this day, as `cairn report` dates them ([`CaseSummary::day`]).
    pub from: Option<time::Date>,
    /// Only cases on or before this day.
    pub to: Option<time::Date>,
}

impl CaseFilter {
    /// Whether `c` is one of the cases this filter shows.
    pub fn matches(&self, c: &CaseSummary) -> bool {
        let is =
            |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        let dated = self.from.is_some() || self.to.is_some();
        is(&self.kind, &c.kind)
            && is(&self.status, &c.status)
            && is(&self.cause, c.cause.as_deref().unwrap_or_default())
            && is(&self.place, &c.place)
            && self
                .team
                .as_deref()
                .is_none_or(|t| c.team.eq_ignore_ascii_case(t.trim()))
            && (!self.conflicts || c.conflicts)
            && (!dated
                || c.day().is_some_and(|d| {
                    self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
                }))
    }
}

fn snapshot_slot(id: &Uuid) -> Vec<u8> {
    [b"case-snapshot:".as_slice(), id.as_bytes()].concat()
}

fn summary_slot(id: &Uuid) -> Vec<u8> {
    [b"case-summary:".as_slice(), id.as_bytes()].concat()
}

impl Vault {
    /// Records a new case and returns its reference. One transaction: the reference counter,
    /// the sealed change and the snapshot are written together or not at all.
    pub fn create_case(
        &mut self,
        kind: Kind,
        place: &str,
        edits: &[Edit],
        now: OffsetDateTime,
    ) -> Result<Created, VaultError> {
        self.record_case(kind, place, edits, now, None)
    }

    /// [`Vault::create_case`], removing the draft `draft` (if given) in the same transaction.
    pub(crate) fn record_case(
        &mut self,
        kind: Kind,
        place: &str,
        edits: &[Edit],
        now: OffsetDateTime,
        draft: Option<&Uuid>,
    ) -> Result<Created, VaultError> {
        self.refuse_while_restoring()?;
        let place = cairn_model::validate_place(place)?;
        let edits = self.as_allowed(edits)?;
        let office = self.office_devices()?;
        let path = self.home.database();
        let actor = self.keys.id();
        let Vault {
            conn,
            keys,
            cipher,
            keyring,
            ..
        } = self;
        let tx = crate::transactions::begin(conn, &path)?;
        // Re-read inside the transaction: another cairn process may have used a number.
        let mut settings = store::read_settings(&tx, cipher, &path)?;
        let key =
            crate::keyring::sealing_key(&tx, cipher, keyring, &settings, &settings.team, &path)?;
        let reference = Reference {
            place,
            // References write teams in capitals (the office's team is `office`): as every
            // replica reads the case back.
            team: settings.team.to_ascii_uppercase(),
            device_tag: actor.tag(),
            number: settings.next_reference,
        };
        settings.next_reference += 1;
        let id = Uuid::new_v4();
        let (mut doc, change) =
            CaseDoc::create(&actor.0, id, &reference, kind, &actor.short(), now, &edits)?;
        doc.set_office(&office);
        let seq = append_own(&tx, cipher, keys, &key, id, &change, &path)?;
        write_case(&tx, cipher, id, &mut doc, now, &path)?;
        store::write_settings(&tx, cipher, &settings, &path)?;
        if let Some(draft) = draft {
            crate::failpoint::hit("draft:case-written");
            crate::drafts::remove(&tx, draft, &path)?;
            crate::failpoint::hit("draft:dropped");
        }
        crate::head::commit(&tx, &path)?;
        self.settings = settings;
        Ok(Created {
            id,
            reference: reference.to_string(),
            seq,
        })
    }

    /// Withdraws note `number` of `case` (counted from 1, as `cairn case show` lists the
    /// notes), saying why; returns the change's log number. Only the note's writer or the
    /// office withdraws it, and a withdrawal or a note withdrawn already is not withdrawn.
    pub fn withdraw_note(
        &mut self,
        case: &str,
        number: usize,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<u64, VaultError> {
        let doc = self.case(case)?;
        let shown = doc.to_json_with_signers()?;
        let notes = shown["notes"].as_array().map_or(&[][..], Vec::as_slice);
        let refuse = |why: String| Err(VaultError::NoteNotWithdrawn(why));
        let Some(note) = number.checked_sub(1).and_then(|i| notes.get(i)) else {
            return refuse(format!(
                "case {case} has {} note(s); give the number the case shows it under",
                notes.len()
            ));
        };
        if note.get("withdraws").is_some() {
            return refuse(format!("note {number} is itself a withdrawal"));
        }
        if note.get("withdrawn").is_some() {
            return refuse(format!("note {number} is withdrawn already"));
        }
        let me = hex::encode(self.keys.id().0);
        if !self.speaks_for_office() && note["signed_by"].as_str() != Some(&me) {
            return refuse(format!(
                "note {number} was written by another device: only its writer or the office withdraws it"
            ));
        }
        let Some(id) = doc.note_ids()?.into_iter().nth(number - 1) else {
            return refuse(format!("case {case} has no note {number}"));
        };
        let edit = Edit::WithdrawNote {
            note: id,
            reason: reason.to_owned(),
        };
        self.edit_case(case, &[edit], now)?
            .ok_or_else(|| VaultError::NoteNotWithdrawn("nothing was written".into()))
    }

    /// Applies edits to a case in one change. Returns the change's log number, or `None` when
    /// the edits changed nothing (setting a field to the value it has).
    pub fn edit_case(
        &mut self,
        case: &str,
        edits: &[Edit],
        now: OffsetDateTime,
    ) -> Result<Option<u64>, VaultError> {
        let edits = self.as_allowed(edits)?;
        self.in_case(case, now, |_| Ok((edits, ())))
            .map(|(seq, ())| seq)
    }

    /// Settles a conflict on `field` with `value`, one of the values in conflict, as
    /// `edit_case` with `Edit::set` would. The check and the edit read the case in one
    /// transaction, so a change that another process stores in between cannot make it settle
    /// a conflict that is no longer the case's.
    pub fn settle_conflict(
        &mut self,
        case: &str,
        field: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<Option<u64>, VaultError> {
        self.in_case(case, now, |c| {
            let held = c
                .doc
                .conflicts()
                .into_iter()
                .find(|conflict| conflict.key == field)
                .is_some_and(|conflict| {
                    conflict.values.iter().any(|v| match &v.value {
                        serde_json::Value::String(s) => s == value,
                        other => other.to_string().as_str() == value,
                    })
                });
            if !held {
                return Err(VaultError::NotInConflict(field.to_string()));
            }
            Ok((vec![Edit::set(field, value)], ()))
        })
        .map(|(seq, ())| seq)
    }

    /// One transaction on one case: `prepare` sees the case and what seals for it, may write
    /// (attachment chunks, flags) and returns the edits to make. Everything is committed
    /// together if the edits change the case, and rolled back if they change nothing.
    pub(crate) fn in_case<T>(
        &mut self,
        case: &str,
        now: OffsetDateTime,
        prepare: impl FnOnce(&CaseTx<'_>) -> Result<(Vec<Edit>, T), VaultError>,
    ) -> Result<(Option<u64>, T), VaultError> {
        self.refuse_while_restoring()?;
        let office = self.office_devices()?;
        let path = self.home.database();
        let actor = self.keys.id();
        let Vault {
            conn,
            keys,
            cipher,
            keyring,
            settings,
            ..
        } = self;
        let tx = crate::transactions::begin(conn, &path)?;
        let summary = find(&tx, cipher, case, &path)?;
        let team = case_team(&summary.reference, &settings.team);
        let key = crate::keyring::sealing_key(&tx, cipher, keyring, settings, &team, &path)?;
        crate::head::verify_case(&tx, cipher, &summary.id, &summary.reference, &path)?;
        let mut doc = load(&tx, cipher, &summary.id, &actor.0, &office, &path)?;
        let (edits, value) = prepare(&CaseTx {
            tx: &tx,
            cipher,
            keys,
            key: &key,
            doc: &doc,
            summary: &summary,
            path: &path,
        })?;
        // Dropping the transaction rolls back whatever `prepare` wrote.
        let Some(change) = doc.edit(&edits, &actor.short(), now)? else {
            return Ok((None, value));
        };
        let seq = append_own(&tx, cipher, keys, &key, summary.id, &change, &path)?;
        write_case(&tx, cipher, summary.id, &mut doc, now, &path)?;
        crate::head::commit(&tx, &path)?;
        Ok((Some(seq), value))
    }

    /// Loads a case by reference (any letter case) or id.
    pub fn case(&self, case: &str) -> Result<CaseDoc, VaultError> {
        let path = self.home.database();
        let summary = find(&self.conn, &self.cipher, case, &path)?;
        crate::head::verify_case(
            &self.conn,
            &self.cipher,
            &summary.id,
            &summary.reference,
            &path,
        )?;
        load(
            &self.conn,
            &self.cipher,
            &summary.id,
            &self.keys.id().0,
            &self.office_devices()?,
            &path,
        )
    }

    /// The office's device id (Automerge actor): this vault's own for the office, the one
    /// named at `join` for a field device (`None` before it joined).
    pub fn office_id(&self) -> Result<Option<[u8; 32]>, VaultError> {
        if self.settings.role == crate::Role::Office {
            return Ok(Some(self.keys.id().0));
        }
        let office = self.endpoint()?.office;
        Ok(office
            .and_then(|text| text.parse::<cairn_protocol::OfficeKeys>().ok())
            .map(|keys| keys.signing.0))
    }

    /// The devices deciding for the office, as the roster this vault holds names them: the
    /// office, then its staff devices (revoked ones too: their changes up to their cut-off
    /// keep their authority). Empty before a field device joined. Every replica decides from
    /// the roster it holds, so they all decide alike once they hold the same one.
    pub fn office_devices(&self) -> Result<Vec<[u8; 32]>, VaultError> {
        let office = if self.settings.role == crate::Role::Office {
            cairn_protocol::OfficeKeys::from_keys(&self.keys)
        } else {
            match self
                .endpoint()?
                .office
                .as_deref()
                .and_then(|text| text.parse::<cairn_protocol::OfficeKeys>().ok())
            {
                Some(office) => office,
                None => return Ok(Vec::new()),
            }
        };
        let chain = self.roster_chain()?.statements;
        // The same statements give the same answer: read again only when they changed.
        let head = RosterHead {
            office: office.signing.0,
            statements: chain.len(),
            last: chain.last().map(|s| s.office_signature),
        };
        let mut cached = self
            .deciders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((held, devices)) = cached.as_ref() {
            if *held == head {
                return Ok(devices.clone());
            }
        }
        let roster = cairn_protocol::Roster::build(&office, &chain);
        let devices: Vec<[u8; 32]> = roster.office_devices().into_iter().map(|d| d.0).collect();
        *cached = Some((head, devices.clone()));
        Ok(devices)
    }

    /// Whether this vault decides for the office: the office's or a staff device's.
    pub fn speaks_for_office(&self) -> bool {
        matches!(self.settings.role, crate::Role::Office | crate::Role::Staff)
    }

    /// `edits` as this device may make them: the status, verifying and reviewing are the
    /// office's (and its staff devices'). A field device's verification is a proposal, kept
    /// as a note that says what it proposes and on what grounds; setting the status by hand
    /// is refused.
    pub(crate) fn as_allowed(&self, edits: &[Edit]) -> Result<Vec<Edit>, VaultError> {
        if self.speaks_for_office() {
            return Ok(edits.to_vec());
        }
        let mut out = Vec::with_capacity(edits.len());
        for edit in edits {
            edit.check()?;
            match edit {
                Edit::Verify { status, .. }
                    if cairn_model::OFFICE_STATUSES
                        .contains(&status.trim().to_lowercase().as_str()) =>
                {
                    return Err(VaultError::OfficeOnly("confirms or rejects a case"))
                }
                Edit::Review { .. } => return Err(VaultError::OfficeOnly("reviews a case")),
                Edit::Link { .. } => return Err(VaultError::OfficeOnly("links cases")),
                Edit::Set { key, .. } | Edit::Unset { key }
                    if key.trim().eq_ignore_ascii_case("status") =>
                {
                    return Err(VaultError::OfficeOnly("sets a case's status"))
                }
                Edit::Set { key, .. } | Edit::Unset { key }
                    if key.trim().eq_ignore_ascii_case("place") =>
                {
                    return Err(VaultError::OfficeOnly("corrects a case's place"))
                }
                Edit::Verify { status, basis } => {
                    let status = status.trim().to_lowercase();
                    let text = match basis.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
                        Some(basis) => format!("Proposed {status}: {basis}"),
                        None => format!("Proposed {status}."),
                    };
                    out.push(Edit::Note { text });
                }
                other => out.push(other.clone()),
            }
        }
        Ok(out)
    }

    /// A case's history, with the time each change from another device arrived here beside
    /// the time it claims (see [`CaseDoc::history_received`]), and each change's fields with
    /// their old and new values (see [`CaseDoc::field_changes`]).
    pub fn history(&self, case: &str) -> Result<Vec<HistoryStep>, VaultError> {
        let path = self.home.database();
        let sql = |e| VaultError::sqlite(&path, e);
        let doc = self.case(case)?;
        let mut stmt = self
            .conn
            .prepare("SELECT author, seq, sealed FROM changes WHERE case_id = ?1 AND received = 1")
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![doc.id().as_bytes().as_slice()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(sql)?;
        let mut received = std::collections::HashMap::new();
        for row in rows {
            let (author, seq, stored) = row.map_err(sql)?;
            let (sealed, at) = crate::at_rest::open_stored(&self.cipher, &author, seq, &stored)?;
            let Some(at) = at else { continue };
            let plain = SealedChange::from_bytes(&sealed)?.open(&self.keyring)?;
            received.insert(cairn_model::screen_change(&plain)?.hash, at);
        }
        Ok(doc
            .history_received(&received)
            .into_iter()
            .map(|entry| (doc.field_changes(&entry), entry))
            .map(|(fields, entry)| HistoryStep { entry, fields })
            .collect())
    }

    /// Every case's summary, ordered by reference.
    pub fn list(&self) -> Result<Vec<CaseSummary>, VaultError> {
        let mut out = Vec::new();
        self.each_summary(|s| {
            out.push(s);
            Ok::<(), VaultError>(())
        })?;
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Every case's summary, one at a time in the order this vault stored the cases, for
    /// walks whose memory must not grow with the number of cases (an export).
    pub fn each_summary<E: From<VaultError>>(
        &self,
        mut each: impl FnMut(CaseSummary) -> Result<(), E>,
    ) -> Result<(), E> {
        let path = self.home.database();
        each_summary(&self.conn, &self.cipher, &path, |summary| {
            // A summary written before summaries carried the case's own fields and last
            // change, or under older rules, is read again from its case (and stays as stored
            // until the case changes).
            let summary =
                if summary.changed_at.is_empty() || summary.summary_version < SUMMARY_VERSION {
                    let doc = load(
                        &self.conn,
                        &self.cipher,
                        &summary.id,
                        &self.keys.id().0,
                        &self.office_devices()?,
                        &path,
                    )?;
                    summary_of(summary.id, &doc, summary.updated_at)?
                } else {
                    summary
                };
            each(summary)
        })
    }

    /// A mark that changes whenever a case is stored, changed or removed: a reader that keeps
    /// the summaries of a [`Vault::list`] (the office's pages) lists again only when it
    /// differs. Every write of a case goes with a change written or removed in the same
    /// transaction, so the changes' count and highest row, with the cases' count, tell.
    pub fn cases_mark(&self) -> Result<CasesMark, VaultError> {
        let path = self.home.database();
        let (changes, last) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(max(rowid), 0) FROM changes",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(|e| VaultError::sqlite(&path, e))?;
        let (cases, waiting) = self
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM waiting)",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(|e| VaultError::sqlite(&path, e))?;
        Ok(CasesMark([changes, last, cases, waiting]))
    }

    /// How many cases the vault holds.
    pub fn case_count(&self) -> Result<u64, VaultError> {
        let path = self.home.database();
        self.conn
            .query_row("SELECT count(*) FROM cases", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| VaultError::sqlite(&path, e))
    }

    /// How many changes this device has written (the highest number in its log).
    pub fn own_log_len(&self) -> Result<u64, VaultError> {
        let path = self.home.database();
        last_own_seq(&self.conn, &self.keys.id().0, &path)
    }
}

/// What [`Vault::in_case`] hands its `prepare` step: the open transaction, the case as it is,
/// and the key and device that seal its next change.
pub(crate) struct CaseTx<'t> {
    pub tx: &'t Transaction<'t>,
    pub cipher: &'t cairn_crypto::LocalCipher,
    pub keys: &'t cairn_crypto::DeviceKeys,
    pub key: &'t cairn_crypto::TeamKey,
    pub doc: &'t CaseDoc,
    pub summary: &'t CaseSummary,
    pub path: &'t std::path::Path,
}

/// The team whose key seals a case's changes: its reference's, written as this vault writes
/// its own team (references write teams in capitals; the office's own key is `office`).
pub(crate) fn case_team(reference: &str, own_team: &str) -> String {
    let team = reference
        .parse::<Reference>()
        .map(|r| r.team)
        .unwrap_or_default();
    if team.eq_ignore_ascii_case(own_team) {
        own_team.to_string()
    } else {
        team
    }
}

pub(crate) fn last_own_seq(
    conn: &rusqlite::Connection,
    author: &[u8; 32],
    path: &std::path::Path,
) -> Result<u64, VaultError> {
    // Cached statements here and below: an import runs them once per case. A restored office
    // (or staff device) may hold its own earlier changes inside checkpoint documents only.
    conn.prepare_cached(
        "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM changes WHERE author = ?1),
                    (SELECT COALESCE(MAX(seq), 0) FROM checkpointed WHERE author = ?1))",
    )
    .and_then(|mut stmt| stmt.query_row(params![author.as_slice()], |r| r.get::<_, i64>(0)))
    .map(|n| n as u64)
    .map_err(|e| VaultError::sqlite(path, e))
}

pub(crate) fn append_own(
    tx: &Transaction<'_>,
    cipher: &cairn_crypto::LocalCipher,
    keys: &cairn_crypto::DeviceKeys,
    key: &cairn_crypto::TeamKey,
    case_id: Uuid,
    change: &[u8],
    path: &std::path::Path,
) -> Result<u64, VaultError> {
    let author = keys.id();
    let seq = last_own_seq(tx, &author.0, path)? + 1;
    let sealed = SealedChange::seal(
        keys,
        key,
        SealedKind::CaseChange,
        *case_id.as_bytes(),
        seq,
        change,
    )?;
    let ops = cairn_model::own_change_ops(change)?;
    let draft = key.epoch() == 0;
    let sealed = sealed.to_bytes();
    // Never write what other devices would refuse.
    crate::budget::within_budget(tx, &case_id, &author, sealed.len() as i64, ops as i64, path)?
        .map_err(VaultError::CaseFull)?;
    insert_own(tx, cipher, &author, seq, case_id, &sealed, draft, ops, path)?;
    Ok(seq)
}

/// Stores this device's sealed change `seq` (a case change or an office record, filed under
/// `id`) in its log, encrypted under the vault key.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_own(
    tx: &Transaction<'_>,
    cipher: &cairn_crypto::LocalCipher,
    author: &cairn_crypto::DeviceId,
    seq: u64,
    id: Uuid,
    sealed: &[u8],
    draft: bool,
    ops: u64,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    let stored = crate::at_rest::seal_change(cipher, author, seq, None, sealed)?;
    tx.prepare_cached(
        "INSERT INTO changes (author, seq, case_id, sealed, draft, ops)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            author.0.as_slice(),
            seq as i64,
            id.as_bytes().as_slice(),
            stored,
            draft,
            ops as i64
        ])
    })
    .map(|_| ())
    .map_err(|e| VaultError::sqlite(path, e))
}

pub(crate) fn write_case(
    tx: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    id: Uuid,
    doc: &mut CaseDoc,
    now: OffsetDateTime,
    path: &std::path::Path,
) -> Result<(), VaultError> {
    case_row(cipher, id, doc, now, path)?.store(tx, cipher, path)
}

/// A case's row of the `cases` table, encrypted: its snapshot and its summary.
pub(crate) struct CaseRow {
    id: Uuid,
    snapshot: Vec<u8>,
    summary: Vec<u8>,
    /// What the case lists, registered in the blob table beside it.
    attachments: Vec<crate::blobs::Listed>,
}

impl CaseRow {
    pub(crate) fn store(
        &self,
        tx: &rusqlite::Connection,
        cipher: &cairn_crypto::LocalCipher,
        path: &std::path::Path,
    ) -> Result<(), VaultError> {
        tx.prepare_cached(
            "INSERT INTO cases (case_id, snapshot, summary) VALUES (?1, ?2, ?3)
             ON CONFLICT (case_id) DO UPDATE SET snapshot = excluded.snapshot, summary = excluded.summary",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![self.id.as_bytes().as_slice(), self.snapshot, self.summary])
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
        crate::blobs::register(tx, cipher, self.id, &self.attachments, path)
    }
}

/// Works out and encrypts a case's row; needs nothing of the database (an import does it
/// on its worker threads).
pub(crate) fn case_row(
    cipher: &cairn_crypto::LocalCipher,
    id: Uuid,
    doc: &mut CaseDoc,
    now: OffsetDateTime,
    path: &std::path::Path,
) -> Result<CaseRow, VaultError> {
    let saved = doc.save();
    case_row_saved(cipher, id, doc, &saved, now, path)
}

/// [`case_row`] of a case whose saved form is at hand (an office checkpoint's document).
pub(crate) fn case_row_saved(
    cipher: &cairn_crypto::LocalCipher,
    id: Uuid,
    doc: &mut CaseDoc,
    saved: &[u8],
    now: OffsetDateTime,
    path: &std::path::Path,
) -> Result<CaseRow, VaultError> {
    let summary = summary_of(id, doc, crate::timestamps::rfc3339(now))?;
    let summary = serde_json::to_vec(&summary).map_err(|e| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let snapshot = cipher.encrypt(&snapshot_slot(&id), saved)?;
    let summary = cipher.encrypt(&summary_slot(&id), &summary)?;
    Ok(CaseRow {
        id,
        snapshot,
        summary,
        attachments: crate::blobs::listed(cipher, doc)?,
    })
}

impl CaseSummary {
    /// The summary of `doc` (a case as loaded, or as it was at some heads), `updated_at`
    /// standing for when it was stored.
    pub fn of(doc: &CaseDoc, updated_at: String) -> Result<CaseSummary, VaultError> {
        summary_of(doc.id(), doc, updated_at)
    }
}

/// A case's summary, `updated_at` being when it was stored here.
fn summary_of(id: Uuid, doc: &CaseDoc, updated_at: String) -> Result<CaseSummary, VaultError> {
    let o = doc.overview()?;
    let reference = doc.reference();
    let corrected = doc
        .corrected_place()?
        .filter(|place| *place != reference.place);
    let changed = OffsetDateTime::from_unix_timestamp_nanos(i128::from(o.changed_ms) * 1_000_000)
        .map(crate::timestamps::rfc3339)
        .unwrap_or_default();
    Ok(CaseSummary {
        id,
        reference: reference.to_string(),
        kind: o.kind,
        status: o.status,
        updated_at,
        place: corrected.clone().unwrap_or_else(|| reference.place.clone()),
        recorded_place: corrected.map(|_| reference.place.clone()),
        team: reference.team.clone(),
        cause: o.cause,
        incident_date: o.incident_date,
        civilian: o.civilian,
        identification: o.identification,
        conflicts: o.conflicts,
        changed_at: changed,
        changed_by: o.changed_by,
        review: o.review,
        needs_review: o.needs_review,
        found_at: o.found_at,
        confirmed: o
            .confirmed
            .filter(|_| !o.changed_since_confirmed.is_empty()),
        changed_since_confirmed: o.changed_since_confirmed,
        links: o.links,
        profile: o.profile,
        heads: doc.heads().iter().map(ToString::to_string).collect(),
        summary_version: SUMMARY_VERSION,
    })
}

pub(crate) fn summaries(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    path: &std::path::Path,
) -> Result<Vec<CaseSummary>, VaultError> {
    let mut out = Vec::new();
    each_summary(conn, cipher, path, |s| {
        out.push(s);
        Ok::<(), VaultError>(())
    })?;
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(out)
}

/// Decrypts the summaries one at a time, in the order the vault stored the cases, so a walk
/// over every case holds one summary at a time.
pub(crate) fn each_summary<E: From<VaultError>>(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    path: &std::path::Path,
    mut each: impl FnMut(CaseSummary) -> Result<(), E>,
) -> Result<(), E> {
    let sql = |e| VaultError::sqlite(path, e);
    let corrupt = |detail: String| VaultError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let mut stmt = conn
        .prepare("SELECT case_id, summary FROM cases ORDER BY rowid")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let id: Vec<u8> = row.get(0).map_err(sql)?;
        let sealed: Vec<u8> = row.get(1).map_err(sql)?;
        let id = Uuid::from_slice(&id).map_err(|e| corrupt(format!("bad case id: {e}")))?;
        let plain = cipher
            .decrypt(&summary_slot(&id), &sealed)
            .map_err(VaultError::from)?;
        let summary: CaseSummary =
            serde_json::from_slice(&plain).map_err(|e| corrupt(format!("bad summary: {e}")))?;
        each(summary)?;
    }
    Ok(())
}

pub(crate) fn find(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    case: &str,
    path: &std::path::Path,
) -> Result<CaseSummary, VaultError> {
    // A case named by its id (as `resolve_case` writes it) is read alone: at 100,000 cases,
    // decrypting every summary to find one is most of a second.
    let wanted = case.trim();
    if let Some(id) = Uuid::parse_str(wanted)
        .ok()
        .filter(|id| id.to_string() == wanted)
    {
        if let Some(summary) = summary_by_id(conn, cipher, &id, path)? {
            return Ok(summary);
        }
    }
    let mut all = summaries(conn, cipher, path)?;
    let at = resolve_case(&all, case)?;
    Ok(all.swap_remove(at))
}

/// The summary of the case with this id, if the vault holds it.
fn summary_by_id(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<Option<CaseSummary>, VaultError> {
    let sealed: Option<Vec<u8>> = conn
        .prepare_cached("SELECT summary FROM cases WHERE case_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![id.as_bytes().as_slice()], |r| r.get(0))
                .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = cipher
        .decrypt(&summary_slot(id), &sealed)
        .map_err(VaultError::from)?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| VaultError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("bad summary: {e}"),
        })
}

/// The index in `cases` of the case `wanted` names: its reference (any letter case) or id,
/// else the one case whose reference ends with it after a `-` (`0017`, `7kq2-0017`). Every
/// command that takes a case goes through here.
pub fn resolve_case(cases: &[CaseSummary], wanted: &str) -> Result<usize, VaultError> {
    let wanted = wanted.trim();
    if let Some(at) = cases
        .iter()
        .position(|c| c.reference.eq_ignore_ascii_case(wanted) || c.id.to_string() == wanted)
    {
        return Ok(at);
    }
    let tail = format!("-{}", wanted.to_uppercase());
    let ends = |c: &CaseSummary| !wanted.is_empty() && c.reference.to_uppercase().ends_with(&tail);
    let found: Vec<usize> = (0..cases.len()).filter(|&i| ends(&cases[i])).collect();
    match found[..] {
        [at] => Ok(at),
        [] => Err(VaultError::UnknownCase(wanted.to_string())),
        _ => {
            let mut all: Vec<&str> = found.iter().map(|&i| cases[i].reference.as_str()).collect();
            all.sort_unstable();
            // The first few: a short tail may end thousands of references.
            let mut some = all[..all.len().min(5)].join(", ");
            if all.len() > 5 {
                some.push_str(&format!(" and {} more", all.len() - 5));
            }
            Err(VaultError::AmbiguousCase {
                wanted: wanted.to_string(),
                count: all.len(),
                some,
            })
        }
    }
}

/// What a cached answer of [`Vault::office_devices`] was read from: the office, how many
/// statements the vault held and the newest one's signature (a statement is only ever
/// appended, or the chain replaced by a longer one holding it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RosterHead {
    office: [u8; 32],
    statements: usize,
    last: Option<[u8; 64]>,
}

pub(crate) fn load(
    conn: &rusqlite::Connection,
    cipher: &cairn_crypto::LocalCipher,
    id: &Uuid,
    actor: &[u8; 32],
    office: &[[u8; 32]],
    path: &std::path::Path,
) -> Result<CaseDoc, VaultError> {
    let sealed =
        snapshot_of(conn, id, path)?.ok_or_else(|| VaultError::UnknownCase(id.to_string()))?;
    open_snapshot(cipher, id, &sealed, actor, office)
}

/// A case's encrypted snapshot, if the vault holds the case.
pub(crate) fn snapshot_of(
    conn: &rusqlite::Connection,
    id: &Uuid,
    path: &std::path::Path,
) -> Result<Option<Vec<u8>>, VaultError> {
    conn.prepare_cached("SELECT snapshot FROM cases WHERE case_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![id.as_bytes().as_slice()], |r| r.get(0))
                .optional()
        })
        .map_err(|e| VaultError::sqlite(path, e))
}

/// Decrypts and loads a snapshot read with [`snapshot_of`]; needs nothing of the database.
pub(crate) fn open_snapshot(
    cipher: &cairn_crypto::LocalCipher,
    id: &Uuid,
    sealed: &[u8],
    actor: &[u8; 32],
    office: &[[u8; 32]],
) -> Result<CaseDoc, VaultError> {
    let bytes = cipher.decrypt(&snapshot_slot(id), sealed)?;
    let mut doc = CaseDoc::load(&bytes, actor)?;
    doc.set_office(office);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use cairn_crypto::{KeyFileCost, SecretString};

    use super::*;
    use crate::{Home, NewVault, Role};

    /// A field vault of T03 in `dir`.
    fn field_vault(dir: &std::path::Path) -> Vault {
        Home::new(dir.join("v"))
            .create(
                &SecretString::from("pass".to_owned()),
                KeyFileCost::LogN(4),
                NewVault {
                    team: "T03".into(),
                    name: None,
                    role: Role::Field,
                },
                OffsetDateTime::now_utc(),
            )
            .unwrap()
    }

    #[test]
    fn a_reference_is_found_whole_or_by_an_unambiguous_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = field_vault(dir.path());
        vault
            .create_case(Kind::Killed, "KHR", &[], OffsetDateTime::now_utc())
            .unwrap();
        let template = vault.list().unwrap().remove(0);
        let summary = |reference: &str| CaseSummary {
            id: Uuid::new_v4(),
            reference: reference.to_string(),
            ..template.clone()
        };
        let cases = [
            summary("KHR-T03-7KQ2-0017"),
            summary("KHR-T03-9ABC-0017"),
            summary("GAZ-T01-7KQ2-0018"),
        ];
        assert_eq!(resolve_case(&cases, "khr-t03-9abc-0017").unwrap(), 1);
        assert_eq!(resolve_case(&cases, &cases[2].id.to_string()).unwrap(), 2);
        assert_eq!(resolve_case(&cases, " 0018 ").unwrap(), 2);
        assert_eq!(resolve_case(&cases, "7kq2-0017").unwrap(), 0);
        let e = resolve_case(&cases, "0017").unwrap_err().to_string();
        assert!(e.contains("KHR-T03-7KQ2-0017, KHR-T03-9ABC-0017"), "{e}");
        // Only at a `-`: a part of a part is no reference.
        for unknown in ["17", "", "-0017", "KQ2-0017", "0019"] {
            assert!(
                matches!(
                    resolve_case(&cases, unknown),
                    Err(VaultError::UnknownCase(_))
                ),
                "{unknown}"
            );
        }
    }

    /// A vault written before summaries carried the case's own fields still lists each case
    /// with them, its last change time included.
    #[test]
    fn a_summary_of_the_first_format_is_read_again_from_its_case() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = field_vault(dir.path());
        let made = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let edits = [Edit::set("incident.cause", "targeted_strike")];
        let created = vault
            .create_case(Kind::Killed, "KHR", &edits, made)
            .unwrap();
        let today = vault.list().unwrap();
        let old = serde_json::json!({
            "id": created.id,
            "reference": created.reference,
            "kind": "killed",
            "status": "alleged",
            "updated_at": "2030-01-01T00:00:00Z",
        });
        let sealed = vault
            .cipher
            .encrypt(&summary_slot(&created.id), old.to_string().as_bytes())
            .unwrap();
        vault
            .execute_as_owner("UPDATE cases SET summary = ?1", params![sealed])
            .unwrap();
        let listed = vault.list().unwrap();
        assert_eq!(listed[0].changed_at, "2023-11-14T22:13:20Z");
        assert_eq!(listed[0].cause.as_deref(), Some("targeted_strike"));
        assert_eq!(listed[0].updated_at, "2030-01-01T00:00:00Z");
        assert_eq!(
            CaseSummary {
                updated_at: today[0].updated_at.clone(),
                ..listed[0].clone()
            },
            today[0]
        );
    }

    /// The mark a reader keeps its list by moves with every case stored or changed, and only
    /// then: an edit that changes nothing leaves it, another vault's writes are seen.
    #[test]
    fn the_cases_mark_moves_when_a_case_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = field_vault(dir.path());
        let empty = vault.cases_mark().unwrap();
        assert_eq!(vault.cases_mark().unwrap(), empty);
        let now = OffsetDateTime::now_utc();
        let created = vault.create_case(Kind::Killed, "KHR", &[], now).unwrap();
        let one = vault.cases_mark().unwrap();
        assert_ne!(one, empty);
        let reference = created.reference.to_string();
        let cause = [Edit::set("incident.cause", "captivity")];
        assert!(vault.edit_case(&reference, &cause, now).unwrap().is_some());
        let edited = vault.cases_mark().unwrap();
        assert_ne!(edited, one);
        assert!(vault.edit_case(&reference, &cause, now).unwrap().is_none());
        assert_eq!(vault.cases_mark().unwrap(), edited);
        // Seen through another connection, as the office's pages open the vault afresh.
        let keys = vault.keys().to_unlocked_bytes();
        let home = vault.home().clone();
        let other = home
            .open_unlocked(cairn_crypto::DeviceKeys::from_unlocked_bytes(&keys).unwrap())
            .unwrap();
        assert_eq!(other.cases_mark().unwrap(), edited);
        vault.create_case(Kind::Missing, "KHR", &[], now).unwrap();
        assert_ne!(other.cases_mark().unwrap(), edited);
    }

    /// A summary worked out under older rules (which read a field device's status) is worked
    /// out again from its case: what it says of the status is never listed or counted.
    #[test]
    fn a_summary_of_older_rules_is_read_again_from_its_case() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = field_vault(dir.path());
        let now = OffsetDateTime::now_utc();
        let created = vault.create_case(Kind::Killed, "KHR", &[], now).unwrap();
        let today = vault.list().unwrap();
        let mut old = serde_json::to_value(&today[0]).unwrap();
        old["status"] = "under_investigation".into();
        old.as_object_mut().unwrap().remove("summary_version");
        let sealed = vault
            .cipher
            .encrypt(&summary_slot(&created.id), old.to_string().as_bytes())
            .unwrap();
        vault
            .execute_as_owner("UPDATE cases SET summary = ?1", params![sealed])
            .unwrap();
        assert_eq!(vault.list().unwrap(), today);
    }

    /// A case the office records reads back with the same reference after an edit, and on
    /// every replica (references write teams in capitals; the office's team is `office`).
    #[test]
    fn an_office_case_keeps_its_reference() {
        let dir = tempfile::tempdir().unwrap();
        let mut office = Home::new(dir.path().join("o"))
            .create(
                &SecretString::from("pass".to_owned()),
                KeyFileCost::LogN(4),
                NewVault {
                    team: "office".into(),
                    name: None,
                    role: Role::Office,
                },
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let created = office.create_case(Kind::Killed, "KHR", &[], now).unwrap();
        assert!(
            created.reference.starts_with("KHR-OFFICE-"),
            "{}",
            created.reference
        );
        assert_eq!(office.list().unwrap()[0].reference, created.reference);
        office
            .edit_case(
                &created.reference,
                &[Edit::set("incident.cause", "targeted_strike")],
                now,
            )
            .unwrap();
        let listed = office.list().unwrap();
        assert_eq!(listed[0].reference, created.reference);
        let doc = office.case(&created.reference).unwrap();
        assert_eq!(doc.reference().to_string(), created.reference);
    }
}
