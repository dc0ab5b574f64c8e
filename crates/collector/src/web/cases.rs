//! The cases' summaries as the table and the map read them, kept between requests: listing
//! 100,000 summaries decrypts each one (most of a second), so they are listed again only when
//! the vault's [`CasesMark`] says a case changed.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use cairn_vault::{CaseSummary, CasesMark, Vault};

use super::AppState;
use crate::error::CliError;

/// Every case's summary, newest change first, with what the pages work out of all of them.
pub(crate) struct Cases {
    mark: CasesMark,
    /// Newest change first (then by reference), as the table shows them.
    pub(crate) all: Vec<CaseSummary>,
    /// The cases linked into one person with a case the office decided is someone else.
    pub(crate) contradicts: HashMap<String, Vec<String>>,
    /// The place codes and teams of the cases, sorted, for the filters' choices.
    pub(crate) places: Vec<String>,
    pub(crate) teams: Vec<String>,
}

impl Cases {
    fn list(vault: &Vault, mark: CasesMark) -> Result<Cases, CliError> {
        let mut all = vault.list()?;
        all.sort_by(|a, b| {
            b.changed_at
                .cmp(&a.changed_at)
                .then_with(|| a.reference.cmp(&b.reference))
        });
        let contradicts = crate::office::contradictions(&all);
        let sorted = |pick: fn(&CaseSummary) -> &String| {
            let mut list: Vec<String> = all.iter().map(pick).cloned().collect();
            list.sort_unstable();
            list.dedup();
            list
        };
        Ok(Cases {
            mark,
            places: sorted(|c| &c.place),
            teams: sorted(|c| &c.team),
            contradicts,
            all,
        })
    }

    /// When the data was taken: the vault's last complete sync, else its newest change.
    pub(crate) fn data_as_of(&self, vault: &Vault) -> Result<String, CliError> {
        Ok(data_as_of(vault, self.all.first())?)
    }
}

/// The sentence every page of figures and cases carries: when its data was taken.
pub(crate) fn data_as_of(
    vault: &Vault,
    newest: Option<&CaseSummary>,
) -> Result<String, cairn_vault::VaultError> {
    let newest = newest.map(|c| c.changed_at.as_str());
    Ok(match (vault.last_sync()?.at, newest) {
        (Some(at), _) => format!("Data as of {at}, this vault's last complete sync."),
        (None, Some(at)) => {
            format!("Data as of {at}, the newest change here (this vault has never synced).")
        }
        (None, None) => "No data yet: this vault holds no case and has never synced.".to_owned(),
    })
}

impl AppState {
    /// The cases' summaries: those kept, if no case changed since, else listed again. The
    /// lock is held while listing, so requests that come meanwhile wait for that list rather
    /// than each make their own.
    pub(crate) fn cases(&self, vault: &Vault) -> Result<Arc<Cases>, CliError> {
        let mark = vault.cases_mark()?;
        // Only whole lists are ever stored: a poisoned lock still holds one.
        let mut slot = self.cases.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = slot.as_ref().filter(|k| k.mark == mark) {
            return Ok(Arc::clone(kept));
        }
        let fresh = Arc::new(Cases::list(vault, mark)?);
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// The id of the case `wanted` names (as every command reads a case's name), from the
    /// kept summaries, so the vault reads that case alone; a name of no case is given on as
    /// typed, for the vault's own refusal.
    pub(crate) fn case_key(&self, vault: &Vault, wanted: &str) -> Result<String, CliError> {
        let cases = self.cases(vault)?;
        Ok(match cairn_vault::resolve_case(&cases.all, wanted) {
            Ok(at) => cases.all[at].id.to_string(),
            Err(_) => wanted.to_owned(),
        })
    }
}
