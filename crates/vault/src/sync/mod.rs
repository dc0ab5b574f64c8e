//! What sync needs from the vault: the outbox, the pull cursor, and applying a page of
//! received sealed changes in one transaction together with the cursor that follows it.
//!
//! The vault speaks no protocol: the caller hands it the roster, whose verdict says which
//! authors it admits, and says whom to encrypt to; the vault verifies, decrypts, applies and
//! stores. It only keeps the roster's signed statements (protocol types) for the sync client,
//! never judging them itself.
//!
//! One file per step, each using only those before it: `report` (what applying a page did),
//! `open` (verify, decrypt, screen), `refused` (what was judged before), `merge` (into the
//! cases, within what a case may hold: `crate::budget`); and `outbox` (what this device
//! sends).

pub(crate) mod merge;
mod open;
mod outbox;
pub(crate) mod refused;
mod report;

use std::collections::{BTreeMap, HashMap};

use cairn_crypto::SealedChange;
use cairn_protocol::Roster;
use uuid::Uuid;

use crate::cases::snapshot_of;
use crate::transactions::begin;
use crate::{Vault, VaultError};

use crate::budget::batch_fits;
pub use crate::budget::{MAX_AUTHOR_OPS, MAX_CASE_BYTES, MAX_CASE_OPS};
use crate::cores::on_all_cores;

/// Snapshots worked on ahead of the transaction at once, at most: a page of giant cases
/// does not hold them all in memory.
const AHEAD_BYTES: usize = 64 << 20;
use merge::{
    apply_case, has_waiting, insert_record, merge_alone, store_ahead, stored_bytes, Merge,
};
use open::{open_all, Content, Opened, Received};
use refused::{different, refused_before, remember_refused};
pub use report::{ApplyReport, Refused};

impl Vault {
    /// Whether this vault may take `team` (see [`Vault::set_team`]), without changing it.
    pub fn check_team(&self, team: &str) -> Result<(), VaultError> {
        if self.settings.team != team && self.own_log_len()? > 0 {
            return Err(VaultError::TeamMismatch {
                have: self.settings.team.clone(),
                admitted: team.to_owned(),
            });
        }
        Ok(())
    }

    /// Adopts the team an admission names. Refused once this device has recorded anything under
    /// another team, since its references carry the team.
    pub fn set_team(&mut self, team: &str) -> Result<(), VaultError> {
        self.update().team(team).commit().map(|_| ())
    }

    /// Applies pulled changes (one page or several in a row) and records `cursor`, the one
    /// after the last of them, in the same transaction: they are either wholly applied with
    /// their cursor or not at all, and re-applying them changes nothing. The only writer of
    /// the cursor ([`crate::PullProgress`]), which never moves back; with no change, it moves
    /// the cursor alone (where a cold start from checkpoints begins the pull).
    ///
    /// `roster` gives its verdict on each author and number ([`Roster::verdict`]): the author's
    /// team (`None` for the office, which writes to every team's cases), or why it is refused.
    /// A change that the roster admits but that does not fit its case (bad content,
    /// another team's case, an attempt to change a case's id or reference) is refused alone:
    /// one bad change never blocks the changes after it.
    ///
    /// An office record (a published edition) is kept only if the office wrote it, for team
    /// `office`, and the edition inside is signed by the office and filed under its own id;
    /// it is stored in the log (its author's numbers stay whole) and its edition among the editions
    /// unless one of that id is already kept. Any other record is refused like a bad change.
    pub fn apply_pulled(
        &mut self,
        page: &[Vec<u8>],
        cursor: u64,
        roster: &Roster,
    ) -> Result<ApplyReport, VaultError> {
        let path = self.home.database();
        let now = time::OffsetDateTime::now_utc();
        let me = self.keys.id();
        let office = self.office_id()?;
        let deciders = self.office_devices()?;
        let Vault {
            conn,
            keyring,
            cipher,
            ..
        } = self;
        let keyring = &*keyring;
        // Verifying and decrypting is most of the work and needs no database: spread it
        // over the cores first, then decide and write in one transaction.
        let opened = open_all(page, keyring, office.as_ref());
        let mut tx = begin(conn, &path)?;
        let mut report = ApplyReport::default();
        let mut by_case: BTreeMap<Uuid, Vec<Received<'_>>> = BTreeMap::new();
        // Office records: no case to merge into; kept after the cases, in the same transaction.
        let mut records: Vec<(SealedChange, &[u8], Box<crate::SignedEdition>)> = Vec::new();
        // Each author and number taken from this batch, with its bytes (a second, different
        // change under the same number is a replay or a forgery).
        let mut seen: HashMap<(cairn_crypto::DeviceId, u64), &[u8]> = HashMap::new();
        for (bytes, opened) in page.iter().zip(opened) {
            let (sealed, readable) = match opened {
                Opened::Readable(sealed, change) => (sealed, Some(change)),
                Opened::Unreadable(sealed) => (sealed, None),
                Opened::Refused(refused, None) => {
                    report.refused.push(refused);
                    continue;
                }
                // Signed by its author, then refused for its content: judged once only.
                Opened::Refused(refused, Some(sealed)) => {
                    match refused_before(&tx, &sealed, bytes, &path)? {
                        Some(true) => {}
                        Some(false) => report.refused.push(Refused {
                            reason: different(sealed.seq),
                            ..refused
                        }),
                        None => {
                            remember_refused(&tx, &sealed, bytes, &path)?;
                            report.refused.push(refused);
                        }
                    }
                    continue;
                }
            };
            let refuse = |reason: String| Refused {
                author: sealed.author.short(),
                seq: sealed.seq,
                reason,
            };
            let team = match roster.verdict(&sealed.author, sealed.seq, &sealed.team) {
                Ok(team) => team.map(str::to_owned),
                Err(refusal) => {
                    report.refused.push(refuse(refusal.to_string()));
                    continue;
                }
            };
            let Some(change) = readable else {
                report.unreadable += 1;
                continue;
            };
            // Held in a document an office checkpoint brought: the office judged it there.
            if crate::checkpoint::is_checkpointed(&tx, &sealed.author, sealed.seq, &path)? {
                report.duplicates += 1;
                continue;
            }
            let stored = stored_bytes(&tx, cipher, &sealed, &path)?;
            let existing = stored
                .as_deref()
                .or_else(|| seen.get(&(sealed.author, sealed.seq)).copied());
            match (existing, refused_before(&tx, &sealed, bytes, &path)?) {
                (_, Some(true)) => continue,
                (Some(existing), _) if existing == bytes.as_slice() => {
                    report.duplicates += 1;
                    continue;
                }
                (Some(_), _) | (None, Some(false)) => {
                    report.refused.push(refuse(different(sealed.seq)));
                    continue;
                }
                (None, None) => {}
            }
            seen.insert((sealed.author, sealed.seq), bytes);
            let change = match change {
                Content::Change(change) => change,
                Content::Record(edition) => {
                    records.push((sealed, bytes, edition));
                    continue;
                }
            };
            by_case
                .entry(Uuid::from_bytes(sealed.case_id))
                .or_default()
                .push(Received {
                    sealed,
                    bytes,
                    change,
                    team,
                });
        }
        let merge = Merge {
            cipher,
            me: &me,
            office: &deciders,
            now,
            path: &path,
        };
        let cases: Vec<(Uuid, Vec<Received<'_>>)> = by_case.into_iter().collect();
        let mut start = 0;
        while start < cases.len() {
            // A case's merge needs only its snapshot and its changes: work out a window of
            // cases on all cores first (their snapshots bounded in memory), then store each
            // in the transaction. A case with changes held back for it, or one the model
            // refuses, goes the careful way below.
            let mut snapshots = Vec::new();
            let mut held = 0;
            while start + snapshots.len() < cases.len() && held < AHEAD_BYTES {
                let (id, changes) = &cases[start + snapshots.len()];
                let snapshot = if has_waiting(&tx, id, &path)? || !fits(&tx, id, changes, &path)? {
                    None
                } else {
                    let snapshot = snapshot_of(&tx, id, &path)?;
                    held += snapshot.as_ref().map_or(0, Vec::len);
                    Some(snapshot)
                };
                snapshots.push(snapshot);
            }
            let window = &cases[start..start + snapshots.len()];
            start += window.len();
            let ahead = on_all_cores(
                &window.iter().zip(&snapshots).collect::<Vec<_>>(),
                |((id, changes), snapshot)| {
                    let snapshot = snapshot.as_ref()?;
                    #[cfg(test)]
                    tests::merged_ahead(id);
                    merge_alone(&merge, *id, snapshot.as_deref(), changes).ok()
                },
                || None,
            );
            for ((id, changes), ahead) in window.iter().zip(ahead) {
                if let Some(merged) = ahead {
                    if store_ahead(&mut tx, &merge, *id, changes, &merged)? {
                        report.applied += changes.len();
                        continue;
                    }
                }
                apply_case(&mut tx, keyring, &merge, *id, changes, roster, &mut report)?;
            }
        }
        for (sealed, bytes, edition) in &records {
            insert_record(&tx, cipher, sealed, bytes, now, &path)?;
            if crate::editions::keep_received(&tx, cipher, edition, &path)? {
                report.editions += 1;
            }
            report.applied += 1;
        }
        crate::failpoint::hit("apply:stored");
        crate::sync_state::advance_cursor(&tx, cipher, cursor, &path)?;
        crate::head::commit(&tx, &path)?;
        Ok(report)
    }
}
/// Whether a case's received changes fit its budgets as a whole (see [`batch_fits`]).
fn fits(
    conn: &rusqlite::Connection,
    id: &Uuid,
    changes: &[Received<'_>],
    path: &std::path::Path,
) -> Result<bool, VaultError> {
    let each = changes.iter().map(|c| {
        let ops = c.change.screened().ops as i64;
        (c.sealed.author, c.bytes.len() as i64, ops)
    });
    batch_fits(conn, id, each, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use std::sync::Mutex;

    use cairn_crypto::{KeyFileCost, SecretString, TeamKey};
    use cairn_model::{Edit, Kind};
    use rusqlite::params;

    use super::*;
    use crate::{Home, NewVault, Role};

    /// The case whose merges ahead are counted, and how many there were.
    static WATCHED: Mutex<Option<(Uuid, usize)>> = Mutex::new(None);

    pub(super) fn merged_ahead(id: &Uuid) {
        if let Ok(mut watched) = WATCHED.lock() {
            if let Some((_, count)) = watched.as_mut().filter(|(c, _)| c == id) {
                *count += 1;
            }
        }
    }

    fn vault(dir: &std::path::Path, name: &str) -> Vault {
        let mut v = Home::new(dir.join(name))
            .create(
                &SecretString::from("pass".to_owned()),
                KeyFileCost::LogN(4),
                NewVault {
                    team: "T03".into(),
                    name: None,
                    role: Role::Field,
                },
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
        v.add_keys([&TeamKey::from_bytes("T03", 1, [3; 32])])
            .unwrap();
        v
    }

    /// The budget bounds what a case costs in memory: a batch it refuses is never merged,
    /// ahead or in the transaction; a batch that fits is merged ahead.
    #[test]
    fn a_batch_over_budget_is_never_merged_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, mut b) = (vault(dir.path(), "a"), vault(dir.path(), "b"));
        let now = time::OffsetDateTime::now_utc();
        let roster =
            cairn_testkit::roster(&cairn_crypto::DeviceKeys::generate(), &[(a.keys(), "T03")]);
        let created = a.create_case(Kind::Killed, "KHR", &[], now).unwrap();
        let id = a.case(&created.reference).unwrap().id();
        let sent = |v: &Vault, after: u64| -> Vec<Vec<u8>> {
            v.outbox(after, 100)
                .unwrap()
                .into_iter()
                .map(|(_, b)| b)
                .collect()
        };
        b.apply_pulled(&sent(&a, 0), 1, &roster).unwrap();
        let note = |a: &mut Vault| {
            let edit = [Edit::Note { text: "n".into() }];
            a.edit_case(&created.reference, &edit, now).unwrap();
        };

        *WATCHED.lock().unwrap() = Some((id, 0));
        note(&mut a);
        let fits = b.apply_pulled(&sent(&a, 1), 2, &roster).unwrap();
        assert_eq!(fits.applied, 1);
        assert_eq!(WATCHED.lock().unwrap().map(|(_, n)| n), Some(1));

        b.execute_as_owner(
            "UPDATE changes SET ops = ?1 WHERE seq = 1",
            params![MAX_AUTHOR_OPS - 1],
        )
        .unwrap();
        note(&mut a);
        let over = b.apply_pulled(&sent(&a, 2), 3, &roster).unwrap();
        assert_eq!(over.applied, 0);
        assert!(
            over.refused[0].reason.contains("operations"),
            "{:?}",
            over.refused
        );
        assert_eq!(
            WATCHED.lock().unwrap().take().map(|(_, n)| n),
            Some(1),
            "not merged ahead"
        );
    }
}
