//! The deep check: for each case this device loaded whole from an office checkpoint, fetch
//! every signed change the server stores of it and let the vault judge them against what the
//! checkpoint said (see `cairn_vault`'s `deep_check_case`). A device that trusted the office
//! for a document can so verify, whenever it likes, that the signed changes make it.

use cairn_vault::Vault;
use serde::Serialize;

use crate::engine::{client_for, retry, Options, Progress, Summary};
use crate::roster::stored_roster;
use crate::SyncError;

/// What a deep check found, case by case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeepReport {
    /// Every case loaded from a checkpoint, in id order.
    pub cases: Vec<DeepCase>,
}

/// What a deep check found of one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeepCase {
    /// The case's reference.
    pub case: String,
    /// The case's id.
    pub id: String,
    /// Its signed changes that verified.
    pub changes: usize,
    /// Of those, changes the judge refused as every replica does (no failure).
    pub refused: usize,
    /// What failed, one sentence each; empty when the case passed.
    pub problems: Vec<String>,
}

impl DeepReport {
    /// Signed changes verified, over every case.
    pub fn changes(&self) -> usize {
        self.cases.iter().map(|c| c.changes).sum()
    }

    /// The cases that failed.
    pub fn failed(&self) -> impl Iterator<Item = &DeepCase> {
        self.cases.iter().filter(|c| !c.problems.is_empty())
    }
}

/// Fetches the signed changes of every case loaded from a checkpoint and checks them (see
/// the module). A case that fails is in the report; an error means the check could not run
/// (not joined, the server unreachable, the vault unreadable).
pub async fn deep_check(
    vault: &Vault,
    options: &Options,
    progress: &dyn Progress,
) -> Result<DeepReport, SyncError> {
    let client = client_for(&vault.endpoint()?, options.timeouts)?;
    let roster = stored_roster(vault)?;
    let cases = vault.checkpointed_cases()?;
    let total = cases.len() as u64;
    let mut report = DeepReport::default();
    // Round trips are not reported: this is no sync.
    let mut summary = Summary::default();
    for (done, case) in cases.iter().enumerate() {
        progress.deep_checked(done as u64, total);
        let mut fetched = Vec::new();
        let mut after = 0;
        loop {
            let page = retry(options, &mut summary, || {
                client.case_changes(vault.keys(), &case.id, after)
            })
            .await?;
            // A server that sends no change yet says there are more would loop forever.
            let moved = page.next > after && !page.changes.is_empty();
            after = page.next;
            fetched.extend(page.changes.into_iter().map(|(_, bytes)| bytes));
            if !page.more || !moved {
                break;
            }
        }
        let verdict = vault.deep_check_case(case, &fetched, &roster)?;
        report.cases.push(DeepCase {
            case: case.reference.clone(),
            id: case.id.to_string(),
            changes: verdict.verified,
            refused: verdict.refused,
            problems: verdict.problems,
        });
    }
    progress.deep_checked(total, total);
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

    use cairn_model::Kind;

    use super::*;
    use crate::engine::sync;
    use crate::testing::Setup;

    #[tokio::test]
    async fn a_late_device_verifies_its_checkpointed_cases_and_names_a_missing_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let mut writer = setup.field(dir.path(), "a", "T1").await;
        let now = time::OffsetDateTime::now_utc();
        for _ in 0..3 {
            writer.create_case(Kind::Remains, "KHR", &[], now).unwrap();
        }
        sync(&mut writer, &Options::default(), &()).await.unwrap();
        // The office pulls them and publishes its checkpoint; the late device loads it.
        sync(&mut setup.office, &Options::default(), &())
            .await
            .unwrap();
        let mut late = setup.field(dir.path(), "b", "T1").await;
        sync(&mut late, &Options::default(), &()).await.unwrap();
        assert_eq!(late.checkpointed_cases().unwrap().len(), 3);

        let report = deep_check(&late, &Options::default(), &()).await.unwrap();
        assert_eq!(report.cases.len(), 3);
        assert_eq!(report.failed().count(), 0, "{report:?}");
        assert!(report.changes() >= 3, "{report:?}");

        let server_db = rusqlite::Connection::open(dir.path().join("srv/server.db")).unwrap();
        server_db
            .execute(
                "DELETE FROM changes WHERE author = ?1 AND seq = 1",
                [writer.keys().id().0.as_slice()],
            )
            .unwrap();
        let report = deep_check(&late, &Options::default(), &()).await.unwrap();
        let failed: Vec<&DeepCase> = report.failed().collect();
        assert_eq!(failed.len(), 1, "{report:?}");
        let named = format!("change 1 of device {}", writer.keys().id().short());
        assert!(
            failed[0]
                .problems
                .iter()
                .any(|p| p.contains(&named) && p.contains("not on the server")),
            "{:?}",
            failed[0].problems
        );
    }

    #[tokio::test]
    async fn a_device_that_never_joined_is_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let vault = crate::testing::vault(dir.path(), "alone", cairn_vault::Role::Field, "T1");
        let outcome = deep_check(&vault, &Options::default(), &()).await;
        assert!(matches!(outcome, Err(SyncError::NotJoined)), "{outcome:?}");
    }
}
