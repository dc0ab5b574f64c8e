//! One test suite for every storage backend: SQLite always, PostgreSQL when
//! `CAIRN_TEST_POSTGRES_URL` is set (each run in a fresh schema, dropped at the end).
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::future::Future;
use std::sync::Arc;

mod common;

use cairn_crypto::{DeviceId, DeviceKeys, TeamKey};
use cairn_protocol::{DevicePublic, Held, Receipt, Statement};
use cairn_server::storage::{
    BlobInfo, CheckpointOutcome, ChunkOutcome, InsertOutcome, Joined, NewChange, NewCheckpointPart,
    NewChunk, PostgresStorage, ReceiptOutcome, SqliteStorage, Storage, StorageError, StoredBlob,
};

const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A change of team T1.
fn change(author: &DeviceId, seq: u64, tag: &str) -> NewChange {
    change_in(author, seq, tag, "T1")
}

fn change_in(author: &DeviceId, seq: u64, tag: &str, team: &str) -> NewChange {
    NewChange {
        author: *author,
        seq,
        case_id: [seq as u8; 16],
        team: team.to_owned(),
        bytes: format!("sealed {author} {seq} {tag}").into_bytes(),
    }
}

/// Statements `1..=n` of a chain by `office`, each admitting a new device into T1.
fn chain(office: &DeviceKeys, n: u64) -> Vec<Statement> {
    let key = TeamKey::generate("T1", 1);
    let mut out: Vec<Statement> = Vec::new();
    for counter in 1..=n {
        let prev = out.last().map_or([0; 32], Statement::hash);
        let device = DevicePublic::from_keys(&DeviceKeys::generate());
        out.push(common::admit(
            office,
            counter,
            prev,
            &key,
            &device,
            "https://h:1",
            FP,
            10,
        ));
    }
    out
}

async fn statements_append_only_after_the_head(s: impl Storage) {
    let office = DeviceKeys::generate();
    let all = chain(&office, 4);
    assert!(s.statements().await.unwrap().is_empty());
    assert!(s.append_statements(0, &all[..2], None).await.unwrap());
    assert_eq!(s.statements().await.unwrap(), all[..2]);
    // The chain moved on (or never got there): nothing is stored.
    assert!(!s.append_statements(1, &all[1..2], None).await.unwrap());
    assert!(!s.append_statements(3, &all[3..], None).await.unwrap());
    // Numbers that do not follow `after` are refused outright.
    assert!(s.append_statements(2, &all[3..], None).await.is_err());
    assert!(s.append_statements(1, &all[2..3], None).await.is_err());
    assert_eq!(s.statements().await.unwrap().len(), 2);
    let device = all[2].device().unwrap();
    let joined = Joined {
        device,
        counter: 3,
        at: 77,
    };
    assert!(s
        .append_statements(2, &all[2..], Some(joined))
        .await
        .unwrap());
    assert_eq!(s.statements().await.unwrap(), all);
    assert_eq!(s.joined(&device).await.unwrap(), Some(3));
    // A join with no statement is recorded whatever the head; the first join is kept.
    let first = all[0].device().unwrap();
    for counter in [1, 4] {
        let j = Joined {
            device: first,
            counter,
            at: 78,
        };
        assert!(s.append_statements(0, &[], Some(j)).await.unwrap());
    }
    assert_eq!(s.joined(&first).await.unwrap(), Some(1));
    assert_eq!(s.joined(&office.id()).await.unwrap(), None);
}

async fn concurrent_appends_of_one_number_store_one(s: impl Storage + Clone) {
    let office = DeviceKeys::generate();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = s.clone();
        let first = chain(&office, 1);
        tasks.push(tokio::spawn(async move {
            s.append_statements(0, &first, None).await
        }));
    }
    let mut stored = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(s.statements().await.unwrap().len(), 1);
}

async fn receipts_only_move_forward(s: impl Storage) {
    let office = DeviceKeys::generate();
    let held = vec![Held {
        device: DeviceKeys::generate().id(),
        upto: 4,
    }];
    let whole = |counter: u64, at: u64| Receipt::issue(&office, counter, at, held.clone());
    let r = |counter: u64, at: u64| whole(counter, at).for_team(&office, "T1", |_| true);
    let t2 = |counter: u64, at: u64| whole(counter, at).for_team(&office, "T2", |_| false);
    assert_eq!(s.receipt("T1").await.unwrap(), None);
    assert_eq!(s.receipt_counter(None).await.unwrap(), None);
    assert_eq!(s.receipt_counter(Some("T1")).await.unwrap(), None);
    assert_eq!(
        s.store_receipts(&[r(2, 5)]).await.unwrap(),
        ReceiptOutcome::Stored
    );
    assert_eq!(
        s.store_receipts(&[r(2, 5)]).await.unwrap(),
        ReceiptOutcome::Same
    );
    assert_eq!(
        s.store_receipts(&[r(1, 9)]).await.unwrap(),
        ReceiptOutcome::Stale { held: 2 }
    );
    assert_eq!(
        s.store_receipts(&[r(2, 6)]).await.unwrap(),
        ReceiptOutcome::Stale { held: 2 }
    );
    assert_eq!(s.receipt("T1").await.unwrap(), Some(r(2, 5)));
    // All or none: a set with one stale receipt stores none of the others.
    assert_eq!(
        s.store_receipts(&[t2(1, 9), r(1, 9)]).await.unwrap(),
        ReceiptOutcome::Stale { held: 2 }
    );
    assert_eq!(s.receipt("T2").await.unwrap(), None);
    assert_eq!(
        s.store_receipts(&[r(3, 1), t2(3, 1)]).await.unwrap(),
        ReceiptOutcome::Stored
    );
    assert_eq!(s.receipt("T1").await.unwrap(), Some(r(3, 1)));
    assert_eq!(s.receipt("T2").await.unwrap(), Some(t2(3, 1)));
    assert_eq!(s.receipt("T3").await.unwrap(), None);
    // A team's own counter; the newest of any for the office.
    assert_eq!(
        s.store_receipts(&[t2(4, 1)]).await.unwrap(),
        ReceiptOutcome::Stored
    );
    assert_eq!(s.receipt_counter(Some("T1")).await.unwrap(), Some(3));
    assert_eq!(s.receipt_counter(Some("T3")).await.unwrap(), None);
    assert_eq!(s.receipt_counter(None).await.unwrap(), Some(4));
}

async fn insert_outcomes_and_acks(s: impl Storage) {
    let a = DeviceKeys::generate().id();
    let b = DeviceKeys::generate().id();
    assert_eq!(s.acked(&a).await.unwrap(), 0);
    assert!(s.insert_changes(vec![]).await.unwrap().is_empty());
    let out = s
        .insert_changes(vec![
            change(&a, 1, "x"),
            change(&a, 2, "x"),
            change(&a, 4, "x"),
            change(&b, 1, "x"),
        ])
        .await
        .unwrap();
    assert_eq!(out, vec![InsertOutcome::Stored; 4]);
    assert_eq!(
        s.acked(&a).await.unwrap(),
        2,
        "4 is stored but 3 is missing"
    );
    assert_eq!(s.acked(&b).await.unwrap(), 1);
    // A resent batch changes nothing; a different change under a used number is a conflict;
    // repeats inside one batch are settled against each other.
    let out = s
        .insert_changes(vec![
            change(&a, 1, "x"),
            change(&a, 2, "forged"),
            change(&a, 3, "x"),
            change(&a, 3, "x"),
            change(&a, 5, "x"),
            change(&a, 5, "other"),
        ])
        .await
        .unwrap();
    use InsertOutcome::*;
    assert_eq!(
        out,
        vec![Duplicate, Conflict, Stored, Duplicate, Stored, Conflict]
    );
    assert_eq!(s.acked(&a).await.unwrap(), 5, "3 filled the gap up to 5");
    let all = s.pull(0, None, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    let a2: Vec<u8> = change(&a, 2, "x").bytes;
    assert!(
        all.iter().any(|(_, bytes)| *bytes == a2),
        "the original survives a conflict"
    );
    assert!(!all.iter().any(|(_, bytes)| bytes.ends_with(b"forged")));
}

async fn pull_pages_and_filters(s: impl Storage) {
    let a = DeviceKeys::generate().id();
    let b = DeviceKeys::generate().id();
    let c = DeviceKeys::generate().id();
    let mut batch = Vec::new();
    for seq in 1..=10 {
        batch.push(change(&a, seq, "p"));
        batch.push(change_in(&b, seq, "p", "T2"));
    }
    batch.push(change(&c, 1, "p"));
    s.insert_changes(batch).await.unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    for _ in 0..100 {
        let page = s.pull(after, None, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        assert!(page.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(page[0].0 > after);
        after = page.last().map(|p| p.0).unwrap_or(after);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 21);
    let t2 = s.pull(0, Some("T2"), 100).await.unwrap();
    assert_eq!(t2.len(), 10);
    let t1 = s.pull(0, Some("T1"), 100).await.unwrap();
    assert_eq!(t1.len(), 11, "a's and c's");
    assert!(t1.iter().all(|(n, _)| !t2.iter().any(|(m, _)| m == n)));
    assert!(s.pull(0, Some("T9"), 100).await.unwrap().is_empty());
    assert!(
        s.pull(0, Some("t1"), 100).await.unwrap().is_empty(),
        "teams are exact"
    );
    assert!(s.pull(0, None, 0).await.unwrap().is_empty());
    assert!(s.pull(u64::MAX, None, 10).await.unwrap().is_empty());
    let last = seen.last().map(|p| p.0).unwrap();
    assert!(s.pull(last, None, 10).await.unwrap().is_empty());
}

async fn lengths_first_then_only_what_is_asked(s: impl Storage) {
    let a = DeviceKeys::generate().id();
    let b = DeviceKeys::generate().id();
    let sized = |author: &DeviceId, seq: u64, len: usize| NewChange {
        author: *author,
        seq,
        case_id: [1; 16],
        team: if *author == a { "A" } else { "B" }.to_owned(),
        bytes: vec![seq as u8; len],
    };
    s.insert_changes(vec![
        sized(&a, 1, 100),
        sized(&b, 1, 5_000),
        sized(&a, 2, 70_000),
        sized(&a, 3, 1),
    ])
    .await
    .unwrap();
    let plan = s.pull_lengths(0, None, 10).await.unwrap();
    let lengths: Vec<u64> = plan.iter().map(|(_, len)| *len).collect();
    assert_eq!(
        lengths,
        vec![100, 5_000, 70_000, 1],
        "sizes in order, nothing loaded"
    );
    assert!(plan.windows(2).all(|w| w[0].0 < w[1].0));
    let only_a = s.pull_lengths(0, Some("A"), 2).await.unwrap();
    assert_eq!(
        only_a.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![100, 70_000]
    );
    assert!(s.pull_lengths(0, Some("C"), 2).await.unwrap().is_empty());
    assert!(s.pull_lengths(plan[3].0, None, 2).await.unwrap().is_empty());
    // Load a chosen few (unknown numbers are skipped), in order whatever the request order.
    let loaded = s
        .load_changes(&[plan[3].0, plan[0].0, plan[3].0 + 1_000])
        .await
        .unwrap();
    assert_eq!(
        loaded,
        vec![(plan[0].0, vec![1u8; 100]), (plan[3].0, vec![3u8; 1])]
    );
    assert!(s.load_changes(&[]).await.unwrap().is_empty());
}

async fn one_cases_lengths_by_team_and_cursor(s: impl Storage) {
    let a = DeviceKeys::generate().id();
    let b = DeviceKeys::generate().id();
    let of = |author: &DeviceId, seq: u64, case: u8, team: &str| NewChange {
        author: *author,
        seq,
        case_id: [case; 16],
        team: team.to_owned(),
        bytes: vec![case; 10 + seq as usize],
    };
    s.insert_changes(vec![
        of(&a, 1, 1, "T1"),
        of(&a, 2, 2, "T1"),
        of(&b, 1, 1, "T2"),
        of(&a, 3, 1, "T1"),
    ])
    .await
    .unwrap();
    let every = s.case_lengths([1; 16], 0, None, 10).await.unwrap();
    assert_eq!(
        every.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![11, 11, 13],
        "case 1's three changes, in order, of every team"
    );
    assert!(every.windows(2).all(|w| w[0].0 < w[1].0));
    let t1 = s.case_lengths([1; 16], 0, Some("T1"), 10).await.unwrap();
    assert_eq!(t1.iter().map(|p| p.1).collect::<Vec<_>>(), vec![11, 13]);
    let after_first = s
        .case_lengths([1; 16], t1[0].0, Some("T1"), 10)
        .await
        .unwrap();
    assert_eq!(after_first, vec![t1[1]]);
    assert_eq!(
        s.case_lengths([1; 16], 0, Some("T1"), 1).await.unwrap(),
        vec![t1[0]]
    );
    assert!(s
        .case_lengths([1; 16], 0, Some("T3"), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .case_lengths([9; 16], 0, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .case_lengths([1; 16], 0, None, 0)
        .await
        .unwrap()
        .is_empty());
}

async fn quota_counts_new_bytes_and_refuses_whole_batches(s: impl Storage) {
    let a = DeviceKeys::generate().id();
    let b = DeviceKeys::generate().id();
    let sized = |seq: u64, len: usize| NewChange {
        author: a,
        seq,
        case_id: [2; 16],
        team: "T1".into(),
        bytes: vec![7; len],
    };
    assert_eq!(s.stored_bytes(&a).await.unwrap(), 0);
    let quota = Some(1_000);
    let out = s
        .insert_changes_within(vec![sized(1, 400), sized(2, 400)], quota)
        .await
        .unwrap();
    assert_eq!(out, vec![InsertOutcome::Stored; 2]);
    assert_eq!(s.stored_bytes(&a).await.unwrap(), 800);
    // Resending what is stored costs nothing, even at the edge of the quota.
    let out = s
        .insert_changes_within(vec![sized(1, 400), sized(2, 400), sized(3, 200)], quota)
        .await
        .unwrap();
    use InsertOutcome::*;
    assert_eq!(out, vec![Duplicate, Duplicate, Stored]);
    assert_eq!(s.stored_bytes(&a).await.unwrap(), 1_000);
    // One byte more is refused, and nothing of that batch is stored.
    match s
        .insert_changes_within(vec![sized(4, 10), sized(5, 1)], quota)
        .await
    {
        Err(StorageError::QuotaFull { used, quota }) => {
            assert_eq!((used, quota), (1_000, 1_000));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.stored_bytes(&a).await.unwrap(), 1_000);
    assert_eq!(
        s.acked(&a).await.unwrap(),
        3,
        "the refused batch left no trace"
    );
    assert_eq!(s.pull(0, None, 100).await.unwrap().len(), 3);
    // Another author has its own count.
    s.insert_changes_within(
        vec![NewChange {
            author: b,
            seq: 1,
            case_id: [2; 16],
            team: "T1".into(),
            bytes: vec![1; 999],
        }],
        quota,
    )
    .await
    .unwrap();
    assert_eq!(s.stored_bytes(&b).await.unwrap(), 999);
    // Without a quota everything is counted all the same.
    s.insert_changes(vec![sized(4, 10)]).await.unwrap();
    assert_eq!(s.stored_bytes(&a).await.unwrap(), 1_010);
}

async fn concurrent_pushes_are_seen_in_order(s: impl Storage + Clone) {
    let writers: Vec<DeviceId> = (0..4).map(|_| DeviceKeys::generate().id()).collect();
    let reader = {
        let s = s.clone();
        tokio::spawn(async move {
            // A reader following the cursor while writers insert must end up with everything.
            // Bounded in time, not in reads: writers that fsync on a busy disk are slow.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut after = 0;
            let mut got = 0usize;
            while std::time::Instant::now() < deadline {
                let page = s.pull(after, None, 7).await.unwrap();
                if let Some(last) = page.last() {
                    after = last.0;
                }
                got += page.len();
                if got == 4 * 50 {
                    break;
                }
                if page.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            got
        })
    };
    let mut tasks = Vec::new();
    for w in writers.clone() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for start in (1..=50).step_by(5) {
                let batch = (start..start + 5).map(|seq| change(&w, seq, "c")).collect();
                s.insert_changes(batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        reader.await.unwrap(),
        200,
        "the cursor never skipped a change"
    );
    for w in &writers {
        assert_eq!(s.acked(w).await.unwrap(), 50);
    }
}

fn blob_info(author: &DeviceId, count: u32) -> BlobInfo {
    BlobInfo {
        author: *author,
        case_id: [7; 16],
        team: "T1".into(),
        count,
        size: u64::from(count) * 100,
    }
}

fn chunk(blob: u8, info: &BlobInfo, index: u32, tag: &str) -> NewChunk {
    NewChunk {
        blob: [blob; 16],
        index,
        info: info.clone(),
        bytes: format!("chunk {blob} {index} {tag}").repeat(4).into_bytes(),
    }
}

async fn blob_chunks_are_stored_in_order_once_and_agree(s: impl Storage) {
    let a = DeviceKeys::generate().id();
    let info = blob_info(&a, 3);
    assert_eq!(s.blob(&a, &[1; 16]).await.unwrap(), None);
    // A blob starts at chunk 0; nothing skips ahead.
    assert_eq!(
        s.insert_chunks(vec![chunk(1, &info, 1, "x")], None)
            .await
            .unwrap(),
        vec![ChunkOutcome::Gap { held: 0 }]
    );
    assert_eq!(s.blob(&a, &[1; 16]).await.unwrap(), None);
    let out = s
        .insert_chunks(
            vec![
                chunk(1, &info, 0, "x"),
                chunk(1, &info, 2, "x"),
                chunk(1, &info, 1, "x"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            ChunkOutcome::Stored,
            ChunkOutcome::Gap { held: 1 },
            ChunkOutcome::Stored
        ]
    );
    assert_eq!(
        s.blob(&a, &[1; 16]).await.unwrap(),
        Some(StoredBlob {
            info: info.clone(),
            held: 2
        })
    );
    // Sent again: the same bytes are a duplicate, other bytes a conflict; nothing changes.
    let out = s
        .insert_chunks(
            vec![chunk(1, &info, 0, "x"), chunk(1, &info, 1, "other")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(out, vec![ChunkOutcome::Duplicate, ChunkOutcome::Conflict]);
    // Another author, case, team, count or size than the first chunk's; an index past the count.
    let mut others = vec![blob_info(&a, 4)];
    for change in 0..3 {
        let mut i = info.clone();
        match change {
            0 => i.case_id = [8; 16],
            1 => i.team = "T2".into(),
            _ => i.size += 1,
        }
        others.push(i);
    }
    for other in &others {
        assert_eq!(
            s.insert_chunks(vec![chunk(1, other, 2, "x")], None)
                .await
                .unwrap(),
            vec![ChunkOutcome::Mismatch],
            "{other:?}"
        );
    }
    assert_eq!(
        s.insert_chunks(vec![chunk(1, &info, 3, "x")], None)
            .await
            .unwrap(),
        vec![ChunkOutcome::Mismatch]
    );
    assert_eq!(s.blob(&a, &[1; 16]).await.unwrap().unwrap().held, 2);
    // Another author's chunk of the same id is its own blob's: a's is untouched.
    let b = DeviceKeys::generate().id();
    let theirs = blob_info(&b, 3);
    assert_eq!(
        s.insert_chunks(vec![chunk(1, &theirs, 0, "b")], None)
            .await
            .unwrap(),
        vec![ChunkOutcome::Stored]
    );
    assert_eq!(s.blob(&b, &[1; 16]).await.unwrap().unwrap().held, 1);
    assert_eq!(s.blob(&a, &[1; 16]).await.unwrap().unwrap().held, 2);
    assert_eq!(
        s.insert_chunks(vec![chunk(1, &info, 2, "x")], None)
            .await
            .unwrap(),
        vec![ChunkOutcome::Stored]
    );
    assert_eq!(s.blob(&a, &[1; 16]).await.unwrap().unwrap().held, 3);
    // Loading from an index, as many as fit the byte budget, at least one.
    let all = s.load_chunks(&a, &[1; 16], 0, 10, 1 << 20).await.unwrap();
    let want: Vec<(u32, Vec<u8>)> = (0..3).map(|i| (i, chunk(1, &info, i, "x").bytes)).collect();
    assert_eq!(all, want);
    assert_eq!(
        s.load_chunks(&a, &[1; 16], 1, 10, 1 << 20).await.unwrap(),
        want[1..]
    );
    assert_eq!(
        s.load_chunks(&a, &[1; 16], 1, 1, 1 << 20).await.unwrap(),
        want[1..2]
    );
    let one = want[0].1.len();
    assert_eq!(
        s.load_chunks(&a, &[1; 16], 0, 10, one + 1).await.unwrap(),
        want[..1]
    );
    assert_eq!(
        s.load_chunks(&a, &[1; 16], 0, 10, 1).await.unwrap(),
        want[..1]
    );
    assert!(s
        .load_chunks(&a, &[1; 16], 3, 10, 1 << 20)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .load_chunks(&a, &[9; 16], 0, 10, 1 << 20)
        .await
        .unwrap()
        .is_empty());
    // Chunk bytes count in the author's usage.
    let total: usize = want.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(s.stored_bytes(&a).await.unwrap(), total as u64);
}

async fn quota_counts_chunks_with_changes(s: impl Storage) {
    let a = DeviceKeys::generate().id();
    let c = change(&a, 1, "k");
    let change_len = c.bytes.len() as u64;
    s.insert_changes(vec![c]).await.unwrap();
    let info = blob_info(&a, 3);
    let len = chunk(2, &info, 0, "q").bytes.len() as u64;
    let quota = change_len + 2 * len;
    // Three chunks do not fit beside the change: nothing of the batch is stored.
    let three: Vec<NewChunk> = (0..3).map(|i| chunk(2, &info, i, "q")).collect();
    let err = s
        .insert_chunks(three.clone(), Some(quota))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::QuotaFull { .. }), "{err}");
    assert_eq!(s.blob(&a, &[2; 16]).await.unwrap(), None);
    assert_eq!(s.stored_bytes(&a).await.unwrap(), change_len);
    // Two do; duplicates cost nothing; then the quota is full for changes too.
    let out = s
        .insert_chunks(three[..2].to_vec(), Some(quota))
        .await
        .unwrap();
    assert_eq!(out, vec![ChunkOutcome::Stored; 2]);
    let out = s
        .insert_chunks(three[..2].to_vec(), Some(quota))
        .await
        .unwrap();
    assert_eq!(out, vec![ChunkOutcome::Duplicate; 2]);
    assert_eq!(s.stored_bytes(&a).await.unwrap(), quota);
    let err = s
        .insert_changes_within(vec![change(&a, 2, "k")], Some(quota))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::QuotaFull { .. }), "{err}");
}

async fn concurrent_uploads_of_one_blob_store_each_chunk_once(s: impl Storage + Clone) {
    let a = DeviceKeys::generate().id();
    let info = blob_info(&a, 20);
    let chunks: Vec<NewChunk> = (0..20).map(|i| chunk(3, &info, i, "c")).collect();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, chunks) = (s.clone(), chunks.clone());
        tasks.push(tokio::spawn(async move {
            for c in chunks {
                s.insert_chunks(vec![c], None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.blob(&a, &[3; 16]).await.unwrap().unwrap().held, 20);
    let total: usize = chunks.iter().map(|c| c.bytes.len()).sum();
    assert_eq!(s.stored_bytes(&a).await.unwrap(), total as u64);
}

/// Part `part` of `parts` of `team`'s generation `generation` (full or not), its bytes
/// tagged.
fn cp(
    team: &str,
    generation: u64,
    part: u32,
    parts: u32,
    full: bool,
    tag: &str,
) -> NewCheckpointPart {
    NewCheckpointPart {
        team: team.to_owned(),
        generation,
        part,
        parts,
        full,
        bytes: format!("{team} {generation}/{part} of {parts} {tag}").into_bytes(),
    }
}

fn bytes_of(parts: &[&NewCheckpointPart]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.bytes.clone()).collect()
}

fn stored(parts: usize, of: &[&NewCheckpointPart]) -> CheckpointOutcome {
    CheckpointOutcome::Stored {
        parts,
        bytes: of.iter().map(|p| p.bytes.len()).sum(),
    }
}

async fn checkpoint_parts_are_kept_by_generation(s: impl Storage) {
    const ALL: usize = 1 << 20;
    let t1 = |g, part, parts, full| cp("T1", g, part, parts, full, "x");
    assert_eq!(
        s.checkpoint_parts("T1", None, ALL).await.unwrap(),
        (vec![], false)
    );
    assert_eq!(
        s.store_checkpoint_parts(vec![]).await.unwrap(),
        stored(0, &[])
    );
    // Half a full generation: served after a part named, but nothing is whole to start from.
    let (g3a, g3b) = (t1(3, 0, 2, true), t1(3, 1, 2, true));
    assert_eq!(
        s.store_checkpoint_parts(vec![g3a.clone()]).await.unwrap(),
        stored(1, &[&g3a])
    );
    assert_eq!(
        s.checkpoint_parts("T1", None, ALL).await.unwrap(),
        (vec![], false)
    );
    assert_eq!(
        s.checkpoint_parts("T1", Some((0, 0)), ALL).await.unwrap(),
        (bytes_of(&[&g3a]), false)
    );
    // The same part again is taken (a re-post); other bytes at its place, or a place its
    // generation does not have, refuse the whole batch.
    assert_eq!(
        s.store_checkpoint_parts(vec![g3a.clone()]).await.unwrap(),
        stored(0, &[])
    );
    let forged = cp("T1", 3, 0, 2, true, "forged");
    assert_eq!(
        s.store_checkpoint_parts(vec![g3b.clone(), forged])
            .await
            .unwrap(),
        CheckpointOutcome::Conflict {
            team: "T1".into(),
            generation: 3,
            part: 0
        }
    );
    for odd in [t1(3, 1, 3, true), t1(3, 1, 2, false)] {
        assert_eq!(
            s.store_checkpoint_parts(vec![odd]).await.unwrap(),
            CheckpointOutcome::Mismatch {
                team: "T1".into(),
                generation: 3
            }
        );
    }
    assert_eq!(
        s.checkpoint_parts("T1", Some((0, 0)), ALL).await.unwrap(),
        (bytes_of(&[&g3a]), false),
        "nothing of a refused batch is kept"
    );
    // Whole: served from its first part; then an incremental generation after it.
    let g4 = t1(4, 0, 1, false);
    assert_eq!(
        s.store_checkpoint_parts(vec![g3b.clone(), g4.clone()])
            .await
            .unwrap(),
        stored(2, &[&g3b, &g4])
    );
    assert_eq!(
        s.checkpoint_parts("T1", None, ALL).await.unwrap(),
        (bytes_of(&[&g3a, &g3b, &g4]), false)
    );
    assert_eq!(
        s.checkpoint_parts("T1", Some((3, 0)), ALL).await.unwrap(),
        (bytes_of(&[&g3b, &g4]), false)
    );
    assert_eq!(
        s.checkpoint_parts("T1", Some((4, 0)), ALL).await.unwrap(),
        (vec![], false)
    );
    // Pages cut by bytes: at least one part each, `more` while parts are left.
    let one = g3a.bytes.len();
    assert_eq!(
        s.checkpoint_parts("T1", None, 1).await.unwrap(),
        (bytes_of(&[&g3a]), true)
    );
    assert_eq!(
        s.checkpoint_parts("T1", None, 2 * (one + 4)).await.unwrap(),
        (bytes_of(&[&g3a, &g3b]), true)
    );
    assert_eq!(
        s.checkpoint_parts("T1", Some((3, 1)), 1).await.unwrap(),
        (bytes_of(&[&g4]), false)
    );
    // Older than the whole full generation: stale, whatever its kind; the batch with it too.
    let g5 = t1(5, 0, 1, false);
    for old in [t1(2, 0, 1, true), t1(1, 0, 1, false)] {
        let generation = old.generation;
        assert_eq!(
            s.store_checkpoint_parts(vec![g5.clone(), old])
                .await
                .unwrap(),
            CheckpointOutcome::Stale {
                team: "T1".into(),
                generation,
                newest: 3
            }
        );
    }
    // Another team's generations are its own.
    let other = cp("T2", 1, 0, 1, true, "y");
    assert_eq!(
        s.store_checkpoint_parts(vec![other.clone()]).await.unwrap(),
        stored(1, &[&other])
    );
    // A newer full generation: the older ones stay until it is whole, then go.
    let (g6a, g6b) = (t1(6, 0, 2, true), t1(6, 1, 2, true));
    s.store_checkpoint_parts(vec![g6a.clone()]).await.unwrap();
    assert_eq!(
        s.checkpoint_parts("T1", None, ALL).await.unwrap(),
        (bytes_of(&[&g3a, &g3b, &g4, &g6a]), false)
    );
    s.store_checkpoint_parts(vec![g6b.clone()]).await.unwrap();
    assert_eq!(
        s.checkpoint_parts("T1", None, ALL).await.unwrap(),
        (bytes_of(&[&g6a, &g6b]), false)
    );
    assert_eq!(
        s.checkpoint_parts("T1", Some((3, 1)), ALL).await.unwrap(),
        (bytes_of(&[&g6a, &g6b]), false),
        "a device that held a deleted generation is served the new full one"
    );
    assert_eq!(
        s.store_checkpoint_parts(vec![g4.clone()]).await.unwrap(),
        CheckpointOutcome::Stale {
            team: "T1".into(),
            generation: 4,
            newest: 6
        }
    );
    // Made whole within one batch; the team's other generations are untouched.
    let (g8a, g8b) = (t1(8, 0, 2, true), t1(8, 1, 2, true));
    assert_eq!(
        s.store_checkpoint_parts(vec![g8a.clone(), g8b.clone()])
            .await
            .unwrap(),
        stored(2, &[&g8a, &g8b])
    );
    assert_eq!(
        s.checkpoint_parts("T1", None, ALL).await.unwrap(),
        (bytes_of(&[&g8a, &g8b]), false)
    );
    assert_eq!(
        s.checkpoint_parts("T2", None, ALL).await.unwrap(),
        (bytes_of(&[&other]), false)
    );
}

// ---- harnesses ----

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(SqliteStorage) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("server.db"))
        .await
        .unwrap();
    test(storage).await;
}

async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(PostgresStorage) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let storage = PostgresStorage::open_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    let outcome = tokio::spawn(test(storage)).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

suite!(
    statements_append_only_after_the_head,
    concurrent_appends_of_one_number_store_one,
    receipts_only_move_forward,
    insert_outcomes_and_acks,
    pull_pages_and_filters,
    lengths_first_then_only_what_is_asked,
    one_cases_lengths_by_team_and_cursor,
    quota_counts_new_bytes_and_refuses_whole_batches,
    concurrent_pushes_are_seen_in_order,
    blob_chunks_are_stored_in_order_once_and_agree,
    quota_counts_chunks_with_changes,
    concurrent_uploads_of_one_blob_store_each_chunk_once,
    checkpoint_parts_are_kept_by_generation,
);

#[tokio::test]
async fn sqlite_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let a = DeviceKeys::generate().id();
    {
        let s = SqliteStorage::open(&path).await.unwrap();
        s.insert_changes(vec![change(&a, 1, "k"), change(&a, 2, "k")])
            .await
            .unwrap();
    }
    let s = Arc::new(SqliteStorage::open(&path).await.unwrap());
    assert_eq!(s.acked(&a).await.unwrap(), 2);
    assert_eq!(
        s.stored_bytes(&a).await.unwrap(),
        (change(&a, 1, "k").bytes.len() + change(&a, 2, "k").bytes.len()) as u64
    );
    assert_eq!(s.pull(0, None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn sqlite_refuses_a_protocol_v1_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    // What a server of protocol v1 left: its tables, schema version 2.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE used_invites (invite_id TEXT PRIMARY KEY); PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    let err = SqliteStorage::open(&path).await.err().unwrap();
    assert!(matches!(err, StorageError::OldSchema), "{err}");
    assert!(err.to_string().contains("protocol v1"), "{err}");
    // A newer one is refused too; the current one opens.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(conn);
    assert!(SqliteStorage::open(&path).await.is_err());
    let fresh = dir.path().join("fresh.db");
    SqliteStorage::open(&fresh).await.unwrap();
    SqliteStorage::open(&fresh).await.unwrap();
}

#[tokio::test]
async fn postgres_refuses_a_protocol_v1_database() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    // A current one opens twice; then a v1 table appears beside it.
    let reopened = match PostgresStorage::open_in_schema(&url, Some(&schema)).await {
        Ok(_) => PostgresStorage::open_in_schema(&url, Some(&schema))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    client
        .batch_execute(&format!(
            "CREATE TABLE {schema}.used_invites (invite_id TEXT PRIMARY KEY)"
        ))
        .await
        .unwrap();
    let old = PostgresStorage::open_in_schema(&url, Some(&schema)).await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    reopened.unwrap();
    assert!(matches!(old, Err(StorageError::OldSchema)));
}

/// The blob tables as schema 4 made them (keyed by blob id alone), with one blob of two
/// chunks by `author` in them.
fn schema_4_blobs(author: &DeviceId, bytea: &str, integer: &str) -> String {
    format!(
        "DROP TABLE blob_chunks; DROP TABLE blobs;
         CREATE TABLE blobs (blob {bytea} PRIMARY KEY, author {bytea} NOT NULL,
             case_id {bytea} NOT NULL, team TEXT NOT NULL, count {integer} NOT NULL,
             size {integer} NOT NULL, held {integer} NOT NULL);
         CREATE TABLE blob_chunks (blob {bytea} NOT NULL REFERENCES blobs (blob),
             idx {integer} NOT NULL, bytes {bytea} NOT NULL, PRIMARY KEY (blob, idx));
         INSERT INTO blobs VALUES ({blob}, {author}, {case}, 'T1', 2, 200, 2);
         INSERT INTO blob_chunks VALUES ({blob}, 0, {zero}), ({blob}, 1, {one});",
        blob = hex_literal(&[4; 16], bytea),
        author = hex_literal(&author.0, bytea),
        case = hex_literal(&[7; 16], bytea),
        zero = hex_literal(b"chunk zero", bytea),
        one = hex_literal(b"chunk one", bytea),
    )
}

fn hex_literal(bytes: &[u8], bytea: &str) -> String {
    if bytea == "BYTEA" {
        format!("'\\x{}'::bytea", hex::encode(bytes))
    } else {
        format!("x'{}'", hex::encode(bytes))
    }
}

/// What [`schema_4_blobs`] stored reads the same after the upgrade, under its author.
async fn schema_4_blobs_read_after_the_upgrade(s: impl Storage, author: DeviceId) {
    assert_eq!(
        s.blob(&author, &[4; 16]).await.unwrap(),
        Some(StoredBlob {
            info: BlobInfo {
                author,
                case_id: [7; 16],
                team: "T1".into(),
                count: 2,
                size: 200,
            },
            held: 2
        })
    );
    assert_eq!(
        s.load_chunks(&author, &[4; 16], 0, 10, 1 << 20)
            .await
            .unwrap(),
        vec![(0, b"chunk zero".to_vec()), (1, b"chunk one".to_vec())]
    );
    let other = DeviceKeys::generate().id();
    assert_eq!(s.blob(&other, &[4; 16]).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_upgrades_schema_4_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    drop(SqliteStorage::open(&path).await.unwrap());
    let author = DeviceKeys::generate().id();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&schema_4_blobs(&author, "BLOB", "INTEGER"))
        .unwrap();
    conn.execute_batch("PRAGMA user_version = 4;").unwrap();
    drop(conn);
    let s = SqliteStorage::open(&path).await.unwrap();
    schema_4_blobs_read_after_the_upgrade(s, author).await;
}

#[tokio::test]
async fn postgres_upgrades_schema_4_blobs() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    drop(
        PostgresStorage::open_in_schema(&url, Some(&schema))
            .await
            .unwrap(),
    );
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    let author = DeviceKeys::generate().id();
    client
        .batch_execute(&format!(
            "SET search_path = {schema}; {} UPDATE cairn_schema SET version = 4;",
            schema_4_blobs(&author, "BYTEA", "BIGINT")
        ))
        .await
        .unwrap();
    let upgraded = PostgresStorage::open_in_schema(&url, Some(&schema)).await;
    let outcome = match upgraded {
        Ok(s) => tokio::spawn(schema_4_blobs_read_after_the_upgrade(s, author)).await,
        Err(e) => panic!("{e}"),
    };
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The single receipt of schemas 3 to 5, which named every team's counts.
const SCHEMA_5_RECEIPT: &str = "CREATE TABLE receipt (id INT PRIMARY KEY CHECK (id = 1),
    counter BIGINT NOT NULL, body TEXT NOT NULL);
    INSERT INTO receipt VALUES (1, 7, '{\"counter\":7}');";

/// After the upgrade from schema 5 the old receipt is gone (no member reads it again), and
/// team receipts are stored from counter 1 on.
async fn schema_5_receipt_is_dropped(s: impl Storage) {
    assert_eq!(s.receipt_counter(None).await.unwrap(), None);
    let office = DeviceKeys::generate();
    let r = Receipt::issue(&office, 1, 1, Vec::new()).for_team(&office, "T1", |_| true);
    assert_eq!(
        s.store_receipts(std::slice::from_ref(&r)).await.unwrap(),
        ReceiptOutcome::Stored
    );
    assert_eq!(s.receipt("T1").await.unwrap(), Some(r));
}

#[tokio::test]
async fn sqlite_upgrades_schema_5_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    drop(SqliteStorage::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!("{SCHEMA_5_RECEIPT} PRAGMA user_version = 5;"))
        .unwrap();
    drop(conn);
    let s = SqliteStorage::open(&path).await.unwrap();
    schema_5_receipt_is_dropped(s).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'receipt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn postgres_upgrades_schema_5_receipt() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    drop(
        PostgresStorage::open_in_schema(&url, Some(&schema))
            .await
            .unwrap(),
    );
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "SET search_path = {schema}; {SCHEMA_5_RECEIPT} UPDATE cairn_schema SET version = 5;"
        ))
        .await
        .unwrap();
    let upgraded = PostgresStorage::open_in_schema(&url, Some(&schema)).await;
    let outcome = match upgraded {
        Ok(s) => tokio::spawn(schema_5_receipt_is_dropped(s)).await,
        Err(e) => panic!("{e}"),
    };
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// After the upgrade from schema 6 (no checkpoints), checkpoint parts are stored and served.
async fn schema_6_takes_checkpoints(s: impl Storage) {
    let part = cp("T1", 1, 0, 1, true, "x");
    assert_eq!(
        s.store_checkpoint_parts(vec![part.clone()]).await.unwrap(),
        stored(1, &[&part])
    );
    assert_eq!(
        s.checkpoint_parts("T1", None, 1 << 20).await.unwrap(),
        (bytes_of(&[&part]), false)
    );
}

#[tokio::test]
async fn sqlite_upgrades_schema_6() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    drop(SqliteStorage::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE checkpoints; PRAGMA user_version = 6;")
        .unwrap();
    drop(conn);
    schema_6_takes_checkpoints(SqliteStorage::open(&path).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_upgrades_schema_6() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    drop(
        PostgresStorage::open_in_schema(&url, Some(&schema))
            .await
            .unwrap(),
    );
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "SET search_path = {schema}; DROP TABLE checkpoints; UPDATE cairn_schema SET version = 6;"
        ))
        .await
        .unwrap();
    let upgraded = PostgresStorage::open_in_schema(&url, Some(&schema)).await;
    let outcome = match upgraded {
        Ok(s) => tokio::spawn(schema_6_takes_checkpoints(s)).await,
        Err(e) => panic!("{e}"),
    };
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Changes 1 to 3 of a device, stored; returns the device and the last server number.
async fn three_changes(s: &impl Storage) -> (DeviceId, u64) {
    let a = DeviceKeys::generate().id();
    let changes = (1..=3).map(|seq| change(&a, seq, "k")).collect();
    s.insert_changes(changes).await.unwrap();
    let last = s.pull(0, None, 10).await.unwrap().last().unwrap().0;
    (a, last)
}

/// After change 1's row was dropped from the database (its `acks` row still claims it, as a
/// damaged or compromised database would have it): the author sends it again, and it is
/// stored again (storing goes by `(author, seq)`, never by the acknowledgement), served after
/// everything readers have seen, and the same bytes once more are a duplicate.
async fn stored_again_after_its_row_was_dropped(s: &impl Storage, a: &DeviceId, last: u64) {
    assert_eq!(
        s.acked(a).await.unwrap(),
        3,
        "the acknowledgement still claims it"
    );
    let again = s.insert_changes(vec![change(a, 1, "k")]).await.unwrap();
    assert_eq!(again, [InsertOutcome::Stored]);
    let served = s.pull(last, None, 10).await.unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].1, change(a, 1, "k").bytes);
    assert_eq!(s.acked(a).await.unwrap(), 3);
    let twice = s.insert_changes(vec![change(a, 1, "k")]).await.unwrap();
    assert_eq!(twice, [InsertOutcome::Duplicate]);
}

#[tokio::test]
async fn sqlite_stores_again_a_change_whose_row_was_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let s = SqliteStorage::open(&path).await.unwrap();
    let (a, last) = three_changes(&s).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM changes WHERE seq = 1", [])
        .unwrap();
    stored_again_after_its_row_was_dropped(&s, &a, last).await;
}

#[tokio::test]
async fn postgres_stores_again_a_change_whose_row_was_dropped() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(connection);
    let s = PostgresStorage::open_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    let (a, last) = three_changes(&s).await;
    client
        .batch_execute(&format!("DELETE FROM {schema}.changes WHERE seq = 1"))
        .await
        .unwrap();
    let checked = tokio::spawn(async move {
        stored_again_after_its_row_was_dropped(&s, &a, last).await;
    })
    .await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = conn.await;
    checked.unwrap();
}
