//! The pull step: pages after the cursor, each applied with its cursor in one vault
//! transaction as soon as it arrives, the roster step run on every page, and the next page
//! already asked for while one is applied.

use cairn_crypto::SealedHeader;
use cairn_protocol::{PullPage, Receipt, Roster};
use cairn_vault::{Role, Vault};

use crate::client::{PullAhead, Versions};
use crate::engine::{retry, Link, Summary};
use crate::roster::{refresh_roster, roster_step, stored_roster};
use crate::SyncError;

/// Pulls pages until the server says there is no more. Each page is applied with the cursor
/// after it in one vault transaction before the next is handled, so a pull cut off anywhere
/// keeps every page it applied and fetches none of them again. The next page is asked for
/// before the current one is applied (it travels meanwhile); the cursor stored is always that
/// of the last page applied, never of one only fetched. Returns, after a complete pull, the
/// changes the server seems to withhold (also among the summary's warnings).
pub(crate) async fn pull_step(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
) -> Result<Vec<String>, SyncError> {
    let mut roster = stored_roster(vault)?;
    let mut page_size = link.options.page;
    let mut fetched: u64 = 0;
    let mut ahead: Option<PullAhead> = None;
    let mut claimed: u64 = 0;
    // What the next page is asked after: the stored cursor, then the page before it (the
    // vault stores it with that page; this only says where the server is to go on).
    let mut after = vault.pull_cursor()?;
    loop {
        let (page, versions) = match ahead.take() {
            Some(ahead) => match ahead.answer().await {
                Ok(answer) => answer,
                // It is asked for again, with retries.
                Err(e) => {
                    tracing::info!(error = %e, "the page asked for ahead failed");
                    fetch(link, vault, after, &mut page_size, summary).await?
                }
            },
            None => fetch(link, vault, after, &mut page_size, summary).await?,
        };
        let logged = vault.own_log_len()?;
        // More than this vault made: who is at fault is told once the receipt is fresh.
        if page.acked > logged {
            claimed = claimed.max(page.acked);
        }
        crate::push::server_acked(vault, page.acked.min(logged))?;
        roster_step(link, vault, summary, versions.roster, &mut roster).await?;
        // A device may have enrolled between the server's roster check and this page: look
        // again before refusing an author nobody here has heard of.
        let unknown = page.changes.iter().any(|(_, bytes)| {
            SealedHeader::parse(bytes).is_ok_and(|h| roster.member(&h.author).is_none())
        });
        if unknown {
            roster = refresh_roster(link, vault, summary).await?;
        }
        summary.roster_problems = roster.problems.clone();
        if page.more && page.next <= after {
            return Err(SyncError::Protocol(
                "the server asked for another page without moving the cursor".into(),
            ));
        }
        if page.more {
            summary.round_trips += 1;
            ahead = Some(link.client.pull_ahead(vault.keys(), page.next, page_size));
        }
        fetched += page.changes.len() as u64;
        let PullPage {
            more,
            next,
            changes,
            ..
        } = page;
        let changes = changes.into_iter().map(|(_, bytes)| bytes).collect();
        apply(vault, summary, &roster, changes, next)?;
        after = next;
        cairn_vault::failpoint::hit("pull:page");
        link.progress.pulled(fetched);
        if !more {
            cut_off_revoked(vault, &roster, summary)?;
            crate::receipt::receipt_step(link, vault, summary, versions, fetched > 0, &roster)
                .await?;
            let receipt = vault.receipt()?;
            let logged = vault.own_log_len()?;
            if claimed > logged {
                let warning = over_acked(claimed, logged, receipt.as_ref(), &vault.keys().id());
                summary.warnings.push(warning);
            }
            if vault.settings().role != Role::Office {
                crate::push::resend_step(link, vault, summary, versions.receipt).await?;
            }
            let withheld = delivery_warnings(vault, receipt.as_ref(), &roster)?;
            summary.warnings.extend(withheld.iter().cloned());
            return Ok(withheld);
        }
    }
}

/// One page after `after`, with retries; a link that drops mid-page gets smaller pages, so
/// each one can still get through, and pages grow back after a success.
async fn fetch(
    link: &Link<'_>,
    vault: &Vault,
    after: u64,
    page_size: &mut u32,
    summary: &mut Summary,
) -> Result<(PullPage, Versions), SyncError> {
    let next = std::cell::Cell::new(*page_size);
    let tried = std::cell::Cell::new(*page_size);
    let answer = retry(link.options, summary, || {
        let limit = next.get();
        tried.set(limit);
        next.set((limit / 4).max(1));
        link.client.pull(vault.keys(), after, limit)
    })
    .await?;
    *page_size = if tried.get() < *page_size {
        tried.get()
    } else {
        (*page_size * 2).min(link.options.page)
    };
    Ok(answer)
}

/// Applies pulled changes with the cursor after them, in one vault transaction (the one place
/// the sync client moves the cursor: with no change, where a cold start begins the pull).
pub(crate) fn apply(
    vault: &mut Vault,
    summary: &mut Summary,
    roster: &Roster,
    changes: Vec<Vec<u8>>,
    next: u64,
) -> Result<(), SyncError> {
    let report = vault.apply_pulled(&changes, next, roster)?;
    summary.received += report.applied as u64;
    summary.duplicates += report.duplicates as u64;
    summary.unreadable += report.unreadable as u64;
    summary.refused.extend(report.refused);
    Ok(())
}

/// What the server claiming more of this device's changes than this vault holds means, from
/// what this device can know: if the office's receipt confirms more than this vault holds
/// too, this vault was put back from an older copy; otherwise the server's count is wrong.
fn over_acked(
    acked: u64,
    logged: u64,
    receipt: Option<&Receipt>,
    me: &cairn_crypto::DeviceId,
) -> String {
    let confirmed = receipt.map_or(0, |r| r.upto(me));
    if confirmed > logged {
        format!(
            "the office confirmed holding changes 1 to {confirmed} of this device, but this vault holds only {logged}: it was put back from an older copy (this device is at fault); new changes may be refused until the office is consulted"
        )
    } else {
        format!(
            "the server claims to hold {acked} changes of this device, but this device made only {logged} and the office confirms {confirmed}: the server's count is wrong (the server is at fault; tell its administrator); this device goes by its own log and the office's receipts"
        )
    }
}

/// Takes out the changes of revoked devices above their cut-off that arrived before this
/// vault learnt of the revocation: every replica refuses them, so every replica ends with
/// the same set.
pub(crate) fn cut_off_revoked(
    vault: &mut Vault,
    roster: &Roster,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let revoked: Vec<(cairn_crypto::DeviceId, u64)> = roster
        .members()
        .filter_map(|m| m.revoked.map(|last| (m.id, last)))
        .collect();
    for (device, last) in revoked {
        let cut = vault.cut_off(&device, last)?;
        if let Some((first, newest)) = cut.seqs {
            summary.warnings.push(format!(
                "device {} was revoked after its change {last}: its changes {first} to {newest}, which had arrived here before the revocation, were taken out of {} case(s), as every replica refuses them",
                device.short(),
                cut.cases
            ));
        }
    }
    Ok(())
}

/// After a complete pull: every teammate's numbers must arrive without gaps, and reach what
/// the office confirmed it holds. The office's own changes are left out on a field device,
/// which receives only those for its team; a staff device receives all, as the office.
fn delivery_warnings(
    vault: &Vault,
    receipt: Option<&Receipt>,
    roster: &Roster,
) -> Result<Vec<String>, SyncError> {
    let me = vault.keys().id();
    let field = vault.settings().role == Role::Field;
    let counted = |id: &cairn_crypto::DeviceId| *id != me && !(field && roster.is_office(id));
    let mut warnings = Vec::new();
    let delivery = vault.delivery()?;
    for (author, contiguous, newest) in &delivery {
        if counted(author) && newest > contiguous {
            warnings.push(format!(
                "change {} of device {} has not arrived: the server may be withholding it",
                contiguous + 1,
                author.short()
            ));
        }
    }
    if let Some(receipt) = receipt {
        for held in &receipt.held {
            if !counted(&held.device)
                || (field
                    && roster.member(&held.device).map(|m| &m.team) != Some(&vault.settings().team))
            {
                continue;
            }
            let here = delivery
                .iter()
                .find(|(a, _, _)| *a == held.device)
                .map_or(0, |(_, c, _)| *c);
            if held.upto > here {
                warnings.push(format!(
                    "changes {} to {} of device {}, which the office holds, have not arrived: the server may be withholding them",
                    here + 1,
                    held.upto,
                    held.device.short()
                ));
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use std::cell::RefCell;

    use cairn_model::Kind;

    use super::*;
    use crate::engine::{client_for, sync, Link, Options, Progress};
    use crate::testing::Setup;
    use crate::Client;
    use cairn_testkit::Relay;

    /// Remembers every count `pulled` was told: one per page.
    #[derive(Default)]
    struct Pages(RefCell<Vec<u64>>);

    impl Progress for Pages {
        fn pushed(&self, _: u64, _: u64) {}
        fn pulled(&self, count: u64) {
            self.0.borrow_mut().push(count);
        }
    }

    #[tokio::test]
    async fn pull_applies_each_page_with_its_cursor_and_stops_when_there_is_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let mut device = setup.field(dir.path(), "a", "T1").await;
        let now = time::OffsetDateTime::now_utc();
        for _ in 0..5 {
            device.create_case(Kind::Remains, "KHR", &[], now).unwrap();
        }
        sync(&mut device, &Options::default(), &()).await.unwrap();

        let office = &mut setup.office;
        let client = client_for(&office.endpoint().unwrap(), Options::default().timeouts).unwrap();
        let options = Options {
            page: 2,
            ..Options::default()
        };
        let pages = Pages::default();
        let link = Link {
            client: &client,
            options: &options,
            progress: &pages,
        };
        let mut summary = Summary::default();
        pull_step(&link, office, &mut summary).await.unwrap();
        assert_eq!(summary.received, 5, "{summary:?}");
        assert_eq!(office.list().unwrap().len(), 5);
        // Pages of 2, 2 and 1; the last said there was no more, and the step stopped there.
        assert_eq!(*pages.0.borrow(), [2, 4, 5]);
        let before = office.pull_cursor().unwrap();
        assert!(before > 0);

        // Nothing new: one empty page, and the cursor stays.
        pages.0.borrow_mut().clear();
        let mut summary = Summary::default();
        pull_step(&link, office, &mut summary).await.unwrap();
        assert_eq!((summary.received, summary.duplicates), (0, 0));
        assert_eq!(*pages.0.borrow(), [0]);
        assert_eq!(office.pull_cursor().unwrap(), before);
    }

    /// At each page, remembers how many changes had arrived and the cursor the vault had
    /// stored by then (read through a second handle on its database), and takes the relay
    /// down once `down_after` changes have arrived.
    struct Watch<'a> {
        home: cairn_vault::Home,
        relay: &'a Relay,
        down_after: u64,
        seen: RefCell<Vec<(u64, u64)>>,
    }

    impl Progress for Watch<'_> {
        fn pushed(&self, _: u64, _: u64) {}
        fn pulled(&self, count: u64) {
            let pass = cairn_crypto::SecretString::from("test".to_owned());
            let stored = self.home.open(&pass).unwrap().pull_cursor().unwrap();
            self.seen.borrow_mut().push((count, stored));
            if count >= self.down_after {
                self.relay.set_down(true);
            }
        }
    }

    /// Pulls with pages of 2 through `relay` into `vault`, taking the link down after
    /// `down_after` changes.
    async fn pull_through(
        relay: &Relay,
        fingerprint: &str,
        vault: &mut Vault,
        down_after: u64,
    ) -> (Result<(), SyncError>, Summary, Vec<(u64, u64)>) {
        let client = Client::new(&relay.url(), fingerprint).unwrap();
        let watch = Watch {
            home: vault.home().clone(),
            relay,
            down_after,
            seen: RefCell::default(),
        };
        let options = Options {
            page: 2,
            attempts: 1,
            ..Options::default()
        };
        let link = Link {
            client: &client,
            options: &options,
            progress: &watch,
        };
        let mut summary = Summary::default();
        let result = pull_step(&link, vault, &mut summary).await.map(drop);
        (result, summary, watch.seen.into_inner())
    }

    /// Each page is stored with its cursor before the next is handled (the next one already
    /// asked for): a link that drops keeps every page applied, and the next pull fetches only
    /// the rest. Fails if pages wait to be applied together.
    #[tokio::test]
    async fn each_page_is_kept_with_its_cursor_and_a_link_that_drops_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[]).await;
        let mut a = setup.field(dir.path(), "a", "T1").await;
        let mut b = setup.field(dir.path(), "b", "T1").await;
        let now = time::OffsetDateTime::now_utc();
        for _ in 0..5 {
            a.create_case(Kind::Remains, "KHR", &[], now).unwrap();
        }
        sync(&mut a, &Options::default(), &()).await.unwrap();
        let relay = Relay::start(setup.server.addr());
        let fingerprint = setup.server.fingerprint().to_owned();

        // Pages of 2, 2 and 1, each stored with its cursor by the time it is reported.
        let (result, summary, seen) =
            pull_through(&relay, &fingerprint, &mut setup.office, u64::MAX).await;
        result.unwrap();
        assert_eq!(summary.received, 5, "{summary:?}");
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 4, 5]);
        assert!(
            seen[0].1 > 0 && seen[1].1 > seen[0].1 && seen[2].1 > seen[1].1,
            "{seen:?}"
        );

        // The link drops once the first page is in: that page is kept with its cursor...
        let (result, summary, seen) = pull_through(&relay, &fingerprint, &mut b, 2).await;
        assert!(result.is_err(), "the link was down");
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].1 > 0, "{seen:?}");
        assert_eq!(
            (summary.received, b.list().unwrap().len()),
            (2, 2),
            "{summary:?}"
        );
        let kept = b.pull_cursor().unwrap();
        assert_eq!(kept, seen[0].1);

        // ...and when it is back, only the rest arrives: nothing twice.
        relay.set_down(false);
        let (result, summary, seen) = pull_through(&relay, &fingerprint, &mut b, u64::MAX).await;
        result.unwrap();
        assert_eq!(
            (summary.received, summary.duplicates),
            (3, 0),
            "{summary:?}"
        );
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(b.list().unwrap().len(), 5);
    }
}
