//! The push step: send this device's changes above what the server acknowledged, in batches
//! that shrink when the server finds them too large. The one module that writes how far the
//! server took them ([`cairn_vault::OutboxProgress`]): the push's answers, the acknowledgement
//! each pull page carries, and the watch over changes the office does not confirm.

use cairn_protocol::{ErrorCode, Outcome};
use cairn_vault::{Unconfirmed, Vault};

use crate::engine::{retry, Link, Summary};
use crate::SyncError;

/// Pushes everything above what the server acknowledged, storing each answer's `acked` at
/// once. Returns the failure to report once the pull is done (a single change larger than the
/// server accepts stays pending; what others sent is still received), or fails outright.
pub(crate) async fn push_step(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
) -> Result<Option<SyncError>, SyncError> {
    let total = vault.own_log_len()?;
    let mut acked = vault.outbox_progress()?.acked;
    let mut max_count = 1000;
    let mut resent = false;
    let mut blocked = None;
    // The highest own change this sync sent in a request that got no answer: the server may
    // have stored it, and a later answer then calls it a duplicate; it was still sent now.
    let unanswered = std::cell::Cell::new(0u64);
    loop {
        let batch = batch(vault, acked, link.options.batch_bytes, max_count)?;
        if batch.is_empty() {
            break;
        }
        let first = acked + 1;
        // Like pull pages, a batch that keeps failing on a poor link is cut down on each try;
        // the answer's `acked` says how far the server got.
        let sending = std::cell::Cell::new(batch.len());
        let keys = vault.keys();
        let pushed = retry(link.options, summary, || {
            let count = sending.get();
            sending.set((count / 4).max(1));
            let (last, unanswered, batch) = (first + count as u64 - 1, &unanswered, &batch);
            async move {
                let answer = link.client.push(keys, &batch[..count]).await;
                if answer.as_ref().is_err_and(SyncError::is_transient) {
                    unanswered.set(unanswered.get().max(last));
                }
                answer
            }
        })
        .await;
        let response = match pushed {
            // The server's limit is lower than ours: send fewer at a time, down to one.
            Err(SyncError::Refused {
                code: Some(ErrorCode::TooLarge),
                ..
            }) if batch.len() > 1 => {
                max_count = (batch.len() / 2).max(1);
                continue;
            }
            Err(SyncError::Refused {
                code: code @ Some(ErrorCode::TooLarge),
                message,
            }) => {
                // Still receive what others sent; report the failure at the end.
                blocked = Some(SyncError::Refused {
                    code,
                    message: format!(
                        "own change {first} alone is larger than the server accepts ({message}); it stays pending"
                    ),
                });
                break;
            }
            // Receiving still works: report it at the end, like a change too large.
            Err(SyncError::ServerDiskFull) => {
                blocked = Some(SyncError::ServerDiskFull);
                break;
            }
            other => other?,
        };
        // Sent now: what this answer stored, and what it acknowledges that an unanswered
        // request of this sync carried (listed as a duplicate, or not listed at all).
        let mut sent: std::collections::BTreeSet<u64> = (acked + 1..=response.acked)
            .filter(|seq| *seq <= unanswered.get())
            .collect();
        for result in &response.results {
            match result.outcome {
                Outcome::Stored => {
                    sent.insert(result.seq);
                }
                Outcome::Duplicate => {}
                Outcome::Refused => summary.rejected.push(format!(
                    "own change {} refused by the server: {}",
                    result.seq,
                    result.reason.as_deref().unwrap_or("no reason given")
                )),
            }
        }
        summary.sent += sent.len() as u64;
        // The server's word is what counts: if it holds less than it once acknowledged (it
        // was restored from a backup), what it lost is sent again, once per sync. It never
        // holds more than this device made (a count above that is the server's error, said by
        // the pull step).
        let lost = response.acked < acked;
        if lost {
            summary.warnings.push(format!(
                "the server now holds this device's changes only up to {} (it had {acked}): it lost the rest, perhaps restored from a backup (the server is at fault); sending them again",
                response.acked
            ));
        }
        cairn_vault::failpoint::hit("push:answered");
        acked = server_acked(vault, response.acked.min(total))?;
        link.progress.pushed(acked, total);
        if lost && !resent {
            resent = true;
            continue;
        }
        if response.acked < first {
            // The server keeps refusing the next change: stop, report, keep it for later.
            break;
        }
    }
    Ok(blocked)
}

/// Stores `acked` as the server's word on how far it holds this device's changes (from a
/// push's answer or a pull page; the caller caps it at what this vault made). Returns it.
pub(crate) fn server_acked(vault: &mut Vault, acked: u64) -> Result<u64, SyncError> {
    Ok(vault.update_outbox(|o| o.acked = acked)?.acked)
}

/// The most own changes sent again at once, from the first one the office lacks.
const RESEND_CHANGES: usize = 64;
/// The most times one change is sent again; each time after twice as many office receipts.
pub(crate) const MAX_RESENDS: u32 = 6;

/// What a receipt confirming changes `1..=confirmed` of this device says, in words: "1 to 0"
/// would read as a range.
fn confirms(confirmed: u64) -> String {
    match confirmed {
        0 => "confirms none of this device's changes".to_string(),
        k => format!("confirms only changes 1 to {k}"),
    }
}

/// After a complete pull on a field device: the office's newest receipt is its signed word on
/// what it holds. If it lacks an own change the server acknowledged, and the receipt was made
/// after a pull that should have carried it (it is newer than the receipt the server had when
/// this device first saw the change unconfirmed), the change and those after it (one batch)
/// are sent again, and the server stores what it had lost whatever its bookkeeping claimed.
/// The warning names who is at fault: a server that stores a change again had lost it; one
/// that already holds it is not passing it to the office. Bounded: at most [`MAX_RESENDS`]
/// times per change, backing off (1, 2, 4... newer receipts between tries).
///
/// `server_receipt` is the newest receipt counter the server announced in this pull.
pub(crate) async fn resend_step(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
    server_receipt: Option<u64>,
) -> Result<(), SyncError> {
    let Some(receipt) = vault.receipt()? else {
        return Ok(());
    };
    let outbox = vault.outbox_progress()?;
    let confirmed = receipt.upto(&vault.keys().id());
    if confirmed >= outbox.acked {
        vault.update_outbox(|o| o.unconfirmed = None)?;
        return Ok(());
    }
    let first = confirmed + 1;
    let watch = match outbox.unconfirmed {
        Some(watch) if watch.seq == first => watch,
        // Newly unconfirmed: wait for a receipt the office makes after its next pull.
        _ => Unconfirmed {
            seq: first,
            resent: 0,
            after_receipt: server_receipt.unwrap_or(0).max(receipt.counter),
        },
    };
    let due = receipt.counter > watch.after_receipt;
    if !due || watch.resent >= MAX_RESENDS {
        if due {
            summary.warnings.push(format!(
                "change {first} of this device was sent again {MAX_RESENDS} times and the office's receipt {} still {}: the server is not passing it on (the server is at fault); tell the office",
                receipt.counter,
                confirms(confirmed)
            ));
        }
        vault.update_outbox(|o| o.unconfirmed = Some(watch))?;
        return Ok(());
    }
    let mut changes = batch(vault, confirmed, link.options.batch_bytes, RESEND_CHANGES)?;
    changes.truncate(usize::try_from(outbox.acked - confirmed).unwrap_or(usize::MAX));
    let response = retry(link.options, summary, || {
        link.client.push(vault.keys(), &changes)
    })
    .await?;
    let mut lost = Vec::new();
    for result in &response.results {
        match result.outcome {
            Outcome::Stored => lost.push(result.seq),
            Outcome::Duplicate => {}
            Outcome::Refused => summary.rejected.push(format!(
                "own change {} refused by the server when sent again: {}",
                result.seq,
                result.reason.as_deref().unwrap_or("no reason given")
            )),
        }
    }
    summary.warnings.push(match (lost.first(), lost.last()) {
        (Some(from), Some(to)) => format!(
            "the server had lost {} of this device although it acknowledged holding changes 1 to {} (the office's receipt {} {}): sent again; the server is at fault, tell its administrator",
            if from == to { format!("change {from}") } else { format!("changes {from} to {to}") },
            outbox.acked,
            receipt.counter,
            confirms(confirmed)
        ),
        _ => format!(
            "the server says it holds change {first} of this device, but the office's receipt {}, made after that, {}: sent again; the server may be withholding it from the office",
            receipt.counter,
            confirms(confirmed)
        ),
    });
    let resent = watch.resent + 1;
    let watch = Unconfirmed {
        seq: first,
        resent,
        // The next try after 1, 2, 4... newer receipts.
        after_receipt: receipt.counter + (1u64 << (resent - 1)) - 1,
    };
    vault.update_outbox(|o| o.unconfirmed = Some(watch))?;
    Ok(())
}

/// Own changes above `acked`, at most `max_count`, as many as fit in `max_bytes` (at least one).
fn batch(
    vault: &Vault,
    acked: u64,
    max_bytes: usize,
    max_count: usize,
) -> Result<Vec<Vec<u8>>, SyncError> {
    let mut out = Vec::new();
    let mut size = 0;
    for (_, bytes) in vault.outbox(acked, max_count)? {
        if !out.is_empty() && size + bytes.len() + 4 > max_bytes {
            break;
        }
        size += bytes.len() + 4;
        out.push(bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
    use cairn_model::{Edit, Kind};

    use super::*;
    use crate::engine::{client_for, Options};
    use crate::testing::Setup;

    /// Records a case whose change is about 3 kB (a narrative of distinct words).
    fn record(vault: &mut Vault, n: usize) {
        let narrative: String = (0..500).map(|i| format!("w{n}x{i} ")).collect();
        vault
            .create_case(
                Kind::Killed,
                "KHR",
                &[Edit::set("incident.narrative", &narrative)],
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
    }

    #[tokio::test]
    async fn push_shrinks_batches_on_too_large_and_resends_nothing_acked() {
        let dir = tempfile::tempdir().unwrap();
        let mut setup = Setup::start(dir.path(), &[("max_request_bytes", "10000")]).await;
        let mut device = setup.field(dir.path(), "a", "T1").await;
        for n in 0..5 {
            record(&mut device, n);
        }
        // The premise: the five do not fit in one request, but each fits alone.
        let sizes: Vec<usize> = device
            .outbox(0, 10)
            .unwrap()
            .iter()
            .map(|(_, b)| b.len() + 4)
            .collect();
        assert!(sizes.iter().sum::<usize>() > 10000, "{sizes:?}");
        assert!(sizes.iter().all(|s| *s < 5000), "{sizes:?}");

        // A cursor the push must leave alone (moved as a pull moves it).
        let roster = crate::stored_roster(&device).unwrap();
        device.apply_pulled(&[], 42, &roster).unwrap();
        let client = client_for(&device.endpoint().unwrap(), Options::default().timeouts).unwrap();
        let options = Options::default();
        let link = Link {
            client: &client,
            options: &options,
            progress: &(),
        };
        let mut summary = Summary::default();
        let blocked = push_step(&link, &mut device, &mut summary).await.unwrap();
        assert!(blocked.is_none(), "{blocked:?}");
        assert_eq!(summary.sent, 5, "{summary:?}");
        assert_eq!(
            device.outbox_progress().unwrap().acked,
            5,
            "acked is stored"
        );
        assert_eq!(
            device.pull_cursor().unwrap(),
            42,
            "the cursor is not the push's"
        );
        // The whole outbox was refused as too large, then sent in smaller batches.
        assert!(summary.round_trips >= 4, "{summary:?}");

        // One more change: one request, carrying it alone (the six together would be refused
        // as too large and take more requests).
        record(&mut device, 5);
        let mut summary = Summary::default();
        push_step(&link, &mut device, &mut summary).await.unwrap();
        assert_eq!((summary.sent, summary.round_trips), (1, 1), "{summary:?}");
        assert_eq!(device.outbox_progress().unwrap().acked, 6);

        // Nothing pending: no request at all.
        let mut summary = Summary::default();
        push_step(&link, &mut device, &mut summary).await.unwrap();
        assert_eq!((summary.sent, summary.round_trips), (0, 0), "{summary:?}");
    }
}
