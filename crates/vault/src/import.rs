//! Bulk import: many new cases in one transaction, for records kept elsewhere.
//!
//! The same steps as [`Vault::create_case`], once per case, under one write lock and one
//! commit: either every case is stored or none is, and the vault is unlocked once for all.

use cairn_model::{CaseDoc, Edit, Kind, Reference};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cases::{append_own, begin, write_case};
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
        let tx = begin(conn, &path)?;
        let mut settings = store::read_settings(&tx, cipher, &path)?;
        let key =
            crate::keyring::sealing_key(&tx, cipher, keyring, &settings, &settings.team, &path)?;
        let mut out = Vec::with_capacity(cases.len());
        for (i, ((case, place), edits)) in cases.iter().zip(places).zip(&edits).enumerate() {
            let reference = Reference {
                place,
                team: settings.team.clone(),
                device_tag: actor.tag(),
                number: settings.next_reference,
            };
            settings.next_reference += 1;
            let id = Uuid::new_v4();
            let (mut doc, change) =
                CaseDoc::create(&actor.0, id, &reference, case.kind, &author, now, edits)?;
            doc.set_office(office.as_ref().map(|o| o.as_slice()));
            let seq = append_own(&tx, keys, &key, id, &change, &path)?;
            write_case(&tx, cipher, id, &mut doc, now, &path)?;
            out.push(Created {
                id,
                reference: reference.to_string(),
                seq,
            });
            if i % 64 == 63 {
                progress(i + 1);
            }
        }
        store::write_settings(&tx, cipher, &settings, &path)?;
        tx.commit().map_err(|e| VaultError::sqlite(&path, e))?;
        progress(cases.len());
        self.settings = settings;
        Ok(out)
    }
}
