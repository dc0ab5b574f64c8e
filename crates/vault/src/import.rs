//! Bulk import: many new cases in one transaction, for records kept elsewhere.
//!
//! The same steps as [`Vault::create_case`], once per case, under one write lock and one
//! commit: either every case is stored or none is, and the vault is unlocked once for all.
//!
//! An import can be run again: each case says what identifies the row it comes from (a
//! source id, or the file and the row's content), and a keyed digest of that is kept in the
//! `imported` table in the same transaction as the cases. A row whose digest is there is not
//! imported again, so an import killed after its commit but before it said so, re-run, adds
//! nothing twice. The digest is keyed with the vault's key: the table tells whoever reads the
//! file without it nothing of the rows, only how many there were.

use cairn_model::{CaseDoc, Edit, Kind, Reference};
use rusqlite::OptionalExtension;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cases::{append_own, case_row, CaseRow};
use crate::transactions::begin;
use crate::{store, Created, Vault, VaultError};

/// One case to create: what `create_case` takes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCase {
    /// Kind of case.
    pub kind: Kind,
    /// Place code of its reference (validated again here).
    pub place: String,
    /// Edits applied in its creating change.
    pub edits: Vec<Edit>,
    /// What identifies the row it comes from (its source id, or its file and content), if
    /// any: a row this vault imported before is not imported again.
    pub row: Option<Vec<u8>>,
}

/// The table of imported rows: keyed digests only. Made by the first import.
pub(crate) const IMPORTED: &str = "
CREATE TABLE IF NOT EXISTS imported (
    digest BLOB PRIMARY KEY
) STRICT, WITHOUT ROWID;
";

/// What the digests of imported rows are for (it keys them apart from any other digest).
const ROW_DIGEST: &str = "imported rows";

/// A built case: its id, its creating change and its encrypted row.
type Built = Result<(Uuid, Vec<u8>, CaseRow), VaultError>;

impl Vault {
    /// Records every case of `cases` whose row was not imported before, in one transaction,
    /// and returns for each case what was made, in order (`None`: its row was imported
    /// already, by an earlier import or earlier in `cases`). If any case fails, nothing is
    /// stored. `progress` is called with the number of cases done so far, now and then.
    pub fn create_cases(
        &mut self,
        cases: &[NewCase],
        now: OffsetDateTime,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Option<Created>>, VaultError> {
        let team = self.settings.team.clone();
        self.create_cases_in_team(&team, cases, now, progress)
    }

    /// [`Vault::create_cases`] into `team`: the cases carry its code in their references and
    /// are sealed under its key, so its members read them. Only the office, which holds every
    /// team's key, imports into a team not its own (a list kept for one team's area).
    pub fn create_cases_in_team(
        &mut self,
        team: &str,
        cases: &[NewCase],
        now: OffsetDateTime,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Option<Created>>, VaultError> {
        if !team.eq_ignore_ascii_case(&self.settings.team) && !self.speaks_for_office() {
            return Err(VaultError::OfficeOnly("imports cases into another team"));
        }
        self.refuse_while_restoring()?;
        let places = cases
            .iter()
            .map(|c| cairn_model::validate_place(&c.place))
            .collect::<Result<Vec<_>, _>>()?;
        // As `create_case` does: what only the office may do is refused, a field device's
        // proposal is written as its status and a note.
        let edits = cases
            .iter()
            .map(|c| self.as_allowed(&c.edits))
            .collect::<Result<Vec<_>, _>>()?;
        let office = self.office_devices()?;
        let path = self.home.database();
        let actor = self.keys.id();
        let author = actor.short();
        let Vault {
            conn,
            keys,
            cipher,
            keyring,
            ..
        } = self;
        let cipher = &*cipher;
        let tx = begin(conn, &path)?;
        let sql = |e| VaultError::sqlite(&path, e);
        // Which rows are new: not imported before, nor earlier in this file.
        tx.execute_batch(IMPORTED).map_err(sql)?;
        let mut seen = std::collections::HashSet::new();
        let mut fresh = Vec::with_capacity(cases.len());
        {
            let mut imported = tx
                .prepare_cached("SELECT 1 FROM imported WHERE digest = ?1")
                .map_err(sql)?;
            for case in cases {
                let digest = case.row.as_deref().map(|row| cipher.tag(ROW_DIGEST, row));
                let known = match &digest {
                    Some(d) => {
                        !seen.insert(*d)
                            || imported
                                .query_row([d.as_slice()], |_| Ok(()))
                                .optional()
                                .map_err(sql)?
                                .is_some()
                    }
                    None => false,
                };
                fresh.push((!known).then_some(digest));
            }
        }
        let mut settings = store::read_settings(&tx, cipher, &path)?;
        let team = if team.eq_ignore_ascii_case(&settings.team) {
            settings.team.clone()
        } else {
            team.to_owned()
        };
        let key = crate::keyring::sealing_key(&tx, cipher, keyring, &settings, &team, &path)?;
        // Building each document and its encrypted row is most of the work and needs nothing
        // of the database, so workers do it (in order, a bounded number ahead) while this
        // thread seals the changes and stores them in the one transaction.
        let new_cases = fresh.iter().filter(|f| f.is_some()).count();
        let count = u32::try_from(new_cases)
            .ok()
            .and_then(|n| settings.next_reference.checked_add(n))
            .ok_or_else(|| VaultError::CaseFull("no reference numbers are left".into()))?;
        // (its index in `cases`, reference, kind, edits) of each case to make.
        let jobs: Vec<(usize, Reference, Kind, &[Edit])> = cases
            .iter()
            .zip(places)
            .zip(&edits)
            .enumerate()
            .filter(|(i, _)| fresh[*i].is_some())
            .zip(settings.next_reference..count)
            .map(|((i, ((case, place), edits)), number)| {
                let reference = Reference {
                    place,
                    team: team.to_ascii_uppercase(),
                    device_tag: actor.tag(),
                    number,
                };
                (i, reference, case.kind, edits.as_slice())
            })
            .collect();
        settings.next_reference = count;
        let workers = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .clamp(1, 4);
        let out = std::thread::scope(|scope| -> Result<Vec<Option<Created>>, VaultError> {
            let mut built = Vec::with_capacity(workers);
            for first in 0..workers {
                let (send, receive) = std::sync::mpsc::sync_channel::<Built>(32);
                built.push(receive);
                let (jobs, actor, author, office) = (&jobs, &actor.0, &author, &office);
                let path = &path;
                scope.spawn(move || {
                    for (_, reference, kind, edits) in jobs.iter().skip(first).step_by(workers) {
                        let id = Uuid::new_v4();
                        let made = CaseDoc::create(actor, id, reference, *kind, author, now, edits)
                            .map_err(VaultError::from)
                            .and_then(|(mut doc, change)| {
                                doc.set_office(office);
                                let row = case_row(cipher, id, &mut doc, now, path)?;
                                Ok((id, change, row))
                            });
                        let failed = made.is_err();
                        // A closed channel means the import already failed.
                        if send.send(made).is_err() || failed {
                            return;
                        }
                    }
                });
            }
            let mut out: Vec<Option<Created>> = vec![None; cases.len()];
            for (i, (at, reference, _, _)) in jobs.iter().enumerate() {
                let (id, change, row) = built[i % workers].recv().map_err(|_| {
                    cairn_model::ModelError::Corrupt("a worker of the import stopped".into())
                })??;
                let seq = append_own(&tx, cipher, keys, &key, id, &change, &path)?;
                row.store(&tx, cipher, &path)?;
                if let Some(Some(digest)) = &fresh[*at] {
                    tx.prepare_cached("INSERT INTO imported (digest) VALUES (?1)")
                        .and_then(|mut insert| insert.execute([digest.as_slice()]))
                        .map_err(sql)?;
                }
                out[*at] = Some(Created {
                    id,
                    reference: reference.to_string(),
                    seq,
                });
                if i % 64 == 63 {
                    progress(i + 1);
                }
            }
            Ok(out)
        })?;
        store::write_settings(&tx, cipher, &settings, &path)?;
        crate::failpoint::hit("import-before-commit");
        crate::head::commit(&tx, &path)?;
        crate::failpoint::hit("import-after-commit");
        progress(cases.len());
        self.settings = settings;
        Ok(out)
    }
}
