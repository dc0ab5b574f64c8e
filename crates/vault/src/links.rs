//! The office's link decisions: each recorded in both cases, every decision of a batch in
//! one transaction, so a crash leaves all of them or none and never one case linked to
//! another that does not know it.

use std::collections::HashMap;

use cairn_model::{CaseDoc, Edit};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cases::{append_own, load, summaries, write_case, CaseSummary};
use crate::transactions::begin;
use crate::{Vault, VaultError};

/// One decision on two cases: `a` and `b` by reference (any letter case) or id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkDecision {
    /// One case.
    pub a: String,
    /// The other case.
    pub b: String,
    /// same_person, identifies (one of the two holds remains, the other is a missing person)
    /// or distinct.
    pub relation: String,
    /// On what grounds.
    pub basis: String,
}

impl Vault {
    /// Records `decisions`, each in both its cases, in one transaction: all or none. Only the
    /// office links. Returns how many decisions changed something: one equal to the decision
    /// in force on its pair, basis and all, adds nothing (a new basis is recorded).
    pub fn link(
        &mut self,
        decisions: &[LinkDecision],
        now: OffsetDateTime,
    ) -> Result<usize, VaultError> {
        if !self.speaks_for_office() {
            return Err(VaultError::OfficeOnly("links cases"));
        }
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
        let tx = begin(conn, &path)?;
        let all = summaries(&tx, cipher, &path)?;
        let by_name: HashMap<String, &CaseSummary> = all
            .iter()
            .flat_map(|s| [(s.reference.to_lowercase(), s), (s.id.to_string(), s)])
            .collect();
        // Whole references by the map (a decisions file may name thousands); parts of one
        // as every command takes them.
        let find = |name: &str| match by_name.get(&name.trim().to_lowercase()) {
            Some(found) => Ok(*found),
            None => crate::cases::resolve_case(&all, name).map(|at| &all[at]),
        };
        let mut docs: HashMap<Uuid, CaseDoc> = HashMap::new();
        let mut changed = 0;
        for decision in decisions {
            let (a, b) = (find(&decision.a)?, find(&decision.b)?);
            let remains = remains_of(a, b, &decision.relation)?;
            let mut wrote = false;
            for (this, other) in [(a, b), (b, a)] {
                let doc = match docs.entry(this.id) {
                    std::collections::hash_map::Entry::Occupied(held) => held.into_mut(),
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        crate::head::verify_case(&tx, cipher, &this.id, &this.reference, &path)?;
                        slot.insert(load(&tx, cipher, &this.id, &actor.0, &office, &path)?)
                    }
                };
                // The same decision on the same grounds is already in force: nothing to add
                // (a file of decisions run twice, a form sent twice).
                let relation = decision.relation.trim().to_lowercase();
                let basis = decision.basis.trim();
                let other_id = other.id.to_string();
                let case = doc.case()?;
                let same = case
                    .current_links()
                    .into_iter()
                    .any(|l| l.other_id == other_id && l.relation == relation && l.basis == basis);
                if same {
                    continue;
                }
                let edit = Edit::Link {
                    relation,
                    other_id,
                    other: other.reference.clone(),
                    basis: basis.to_string(),
                    remains: remains.map(|r| r.to_string()),
                };
                let Some(change) = doc.edit(&[edit], &actor.short(), now)? else {
                    continue;
                };
                let team = crate::cases::case_team(&this.reference, &settings.team);
                let key =
                    crate::keyring::sealing_key(&tx, cipher, keyring, settings, &team, &path)?;
                append_own(&tx, cipher, keys, &key, this.id, &change, &path)?;
                crate::failpoint::hit("link:one-case");
                wrote = true;
            }
            changed += usize::from(wrote);
        }
        for (id, doc) in docs.iter_mut() {
            write_case(&tx, cipher, *id, doc, now, &path)?;
        }
        crate::head::commit(&tx, &path)?;
        Ok(changed)
    }
}

/// Checks a decision's two cases and, for `identifies`, says which holds the remains.
fn remains_of(
    a: &CaseSummary,
    b: &CaseSummary,
    relation: &str,
) -> Result<Option<Uuid>, VaultError> {
    if a.id == b.id {
        return Err(VaultError::BadLink(format!(
            "{} with itself: a link joins two cases",
            a.reference
        )));
    }
    if relation.trim().eq_ignore_ascii_case("identifies") {
        return match (a.kind.as_str(), b.kind.as_str()) {
            // A person held may die in captivity and be found: their remains identify them
            // as they would a missing person's.
            ("remains", "missing" | "detained") => Ok(Some(a.id)),
            ("missing" | "detained", "remains") => Ok(Some(b.id)),
            (ka, kb) => Err(VaultError::BadLink(format!(
                "{} and {} as `identifies`: it links remains with a missing or detained person, and they \
                 are {ka} and {kb}. Link other records of one person as same_person",
                a.reference, b.reference
            ))),
        };
    }
    Ok(None)
}
