//! One case's changes over real HTTPS (`GET /v2/changes`), as a deep check fetches them: each
//! device reads exactly what pull would give it of that case, page by page; a device of
//! another team learns nothing of the case, and a bad case id is refused.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_crypto::{DeviceKeys, SealedChange, SealedKind, TeamKey};
use cairn_protocol::{case_changes_path, PullPage, PULL_CONTENT_TYPE};
use common::TestServer;

const CASE: [u8; 16] = [1; 16];
const OTHER_CASE: [u8; 16] = [2; 16];

fn change(keys: &DeviceKeys, key: &TeamKey, case: [u8; 16], seq: u64) -> Vec<u8> {
    SealedChange::seal(keys, key, SealedKind::CaseChange, case, seq, b"change")
        .unwrap()
        .to_bytes()
}

/// Every page of `case` that `keys` may read, checking each page's cursor.
async fn all_changes(server: &TestServer, keys: &DeviceKeys, case: &[u8; 16]) -> Vec<Vec<u8>> {
    let mut after = 0;
    let mut out = Vec::new();
    loop {
        let answer = server
            .signed(keys, "GET", &case_changes_path(case, after), vec![])
            .await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some(PULL_CONTENT_TYPE)
        );
        let page = PullPage::decode(&answer.body).unwrap();
        assert!(page.changes.iter().all(|(seq, _)| *seq > after));
        after = page.next;
        out.extend(page.changes.into_iter().map(|(_, bytes)| bytes));
        if !page.more {
            return out;
        }
    }
}

fn cases_of(changes: &[Vec<u8>]) -> Vec<([u8; 16], String)> {
    changes
        .iter()
        .map(|bytes| {
            let sealed = SealedChange::from_bytes(bytes).unwrap();
            (sealed.case_id, sealed.team)
        })
        .collect()
}

#[tokio::test]
async fn each_device_reads_its_own_teams_changes_of_a_case_and_nothing_else() {
    let server = TestServer::start_with(&[("max_page", "2")]);
    let office = &server.office;
    let t01 = server.device("T01").await;
    let t01b = server.device("T01").await;
    let t02 = server.device("T02").await;
    let t01_key = server.key("T01");
    let t02_key = server.key("T02");
    let mine: Vec<Vec<u8>> = (1..=3)
        .map(|seq| change(&t01, &t01_key, CASE, seq))
        .collect();
    server.push(&t01, &mine).await.push();
    server
        .push(&t01, &[change(&t01, &t01_key, OTHER_CASE, 4)])
        .await
        .push();
    server
        .push(office, &[change(office, &t01_key, CASE, 1)])
        .await
        .push();
    // A T02 device naming the same case id seals under its own team's key.
    server
        .push(&t02, &[change(&t02, &t02_key, CASE, 1)])
        .await
        .push();

    // Pages of two: the case's four T01 changes take two pages, in server order.
    let seen_by_teammate = all_changes(&server, &t01b, &CASE).await;
    assert_eq!(seen_by_teammate.len(), 4);
    assert_eq!(&seen_by_teammate[..3], &mine[..]);
    assert!(cases_of(&seen_by_teammate)
        .iter()
        .all(|(case, team)| *case == CASE && team == "T01"));

    let seen_by_t02 = all_changes(&server, &t02, &CASE).await;
    assert_eq!(
        cases_of(&seen_by_t02),
        vec![(CASE, "T02".to_owned())],
        "a T02 device got a T01 change of the case"
    );
    assert!(all_changes(&server, &t02, &OTHER_CASE).await.is_empty());
    assert_eq!(all_changes(&server, office, &CASE).await.len(), 5);
    assert!(all_changes(&server, &t01, &[9; 16]).await.is_empty());
}

#[tokio::test]
async fn a_bad_case_id_or_an_unsigned_request_is_refused() {
    let server = TestServer::start();
    let t01 = server.device("T01").await;
    for path in [
        "/v2/changes?case=0101".to_owned(),
        format!("/v2/changes?case={}", "zz".repeat(16)),
        format!("/v2/changes?case={}", "01".repeat(17)),
        "/v2/changes?after=0".to_owned(),
        format!("/v2/changes?case={}&after=-1", "01".repeat(16)),
    ] {
        let answer = server.signed(&t01, "GET", &path, vec![]).await;
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.code(), "malformed", "{path}");
    }
    let unsigned = server
        .send("GET", &case_changes_path(&CASE, 0), vec![], None)
        .await;
    assert_eq!(unsigned.status, 401);
    // A device not (or no longer) in the roster is refused before anything is read.
    let stranger = DeviceKeys::generate();
    let answer = server
        .signed(&stranger, "GET", &case_changes_path(&CASE, 0), vec![])
        .await;
    assert!(
        answer.status == 401 || answer.status == 403,
        "{}",
        answer.status
    );
}
