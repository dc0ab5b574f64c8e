//! Bulk import: many new cases in one transaction, for records kept elsewhere.
//!
//! The same steps as [`Vault::create_case`], once per case, under one write lock and one
//! commit: either every case is stored or none is, and the vault is unlocked once for all.

use cairn_model::{CaseDoc, Edit, Kind, Reference};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cases::{append_own, begin, case_row, CaseRow};
use crate::{store, Created, Vault, VaultError};

/// One case to create: what `create_case` takes.
#[derive(Clone, Debug)]
pub struct NewCase {
    /// Kind of case.
    pub kind: Kind,
    /// Place code of its reference (validated again here).
    pub place: String,
    /// Edits applied in its creating change.
    pub edits: Vec<Edit>,
}

/// A built case: its id, its creating change and its encrypted row.
type Built = Result<(Uuid, Vec<u8>, CaseRow), VaultError>;

impl Vault {
    /// Records every case of `cases` in one transaction and returns what was made, in order.
    /// If any case fails, nothing is stored. `progress` is called with the number of cases
    /// done so far, now and then.
    pub fn create_cases(
        &mut self,
        cases: &[NewCase],
        now: OffsetDateTime,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Created>, VaultError> {
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
        let office = self.office_id()?;
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
        let mut settings = store::read_settings(&tx, cipher, &path)?;
        let key =
            crate::keyring::sealing_key(&tx, cipher, keyring, &settings, &settings.team, &path)?;
        // Building each document and its encrypted row is most of the work and needs nothing
        // of the database, so workers do it (in order, a bounded number ahead) while this
        // thread seals the changes and stores them in the one transaction.
        let count = u32::try_from(cases.len())
            .ok()
            .and_then(|n| settings.next_reference.checked_add(n))
            .ok_or_else(|| VaultError::CaseFull("no reference numbers are left".into()))?;
        let jobs: Vec<(Reference, Kind, &[Edit])> = cases
            .iter()
            .zip(places)
            .zip(&edits)
            .zip(settings.next_reference..count)
            .map(|(((case, place), edits), number)| {
                let reference = Reference {
                    place,
                    team: settings.team.to_ascii_uppercase(),
                    device_tag: actor.tag(),
                    number,
                };
                (reference, case.kind, edits.as_slice())
            })
            .collect();
        settings.next_reference = count;
        let workers = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .clamp(1, 4);
        let out = std::thread::scope(|scope| -> Result<Vec<Created>, VaultError> {
            let mut built = Vec::with_capacity(workers);
            for first in 0..workers {
                let (send, receive) = std::sync::mpsc::sync_channel::<Built>(32);
                built.push(receive);
                let (jobs, actor, author, office) = (&jobs, &actor.0, &author, &office);
                let path = &path;
                scope.spawn(move || {
                    for (reference, kind, edits) in jobs.iter().skip(first).step_by(workers) {
                        let id = Uuid::new_v4();
                        let made = CaseDoc::create(actor, id, reference, *kind, author, now, edits)
                            .map_err(VaultError::from)
                            .and_then(|(mut doc, change)| {
                                doc.set_office(office.as_ref().map(|o| o.as_slice()));
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
            let mut out = Vec::with_capacity(jobs.len());
            for (i, (reference, _, _)) in jobs.iter().enumerate() {
                let (id, change, row) = built[i % workers].recv().map_err(|_| {
                    cairn_model::ModelError::Corrupt("a worker of the import stopped".into())
                })??;
                let seq = append_own(&tx, keys, &key, id, &change, &path)?;
                row.store(&tx, &path)?;
                out.push(Created {
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
        tx.commit().map_err(|e| VaultError::sqlite(&path, e))?;
        progress(cases.len());
        self.settings = settings;
        Ok(out)
    }
}
