//! Push, pull, roster and revocation over real HTTPS.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_crypto::DeviceKeys;
use cairn_protocol::{
    encode_push, paths, pull_path, sign_request, unix_now, OfficeKeys, Outcome, PullPage,
    Revocation, Roster, Statement,
};
use common::{sealed, TestServer};

async fn pull(server: &TestServer, keys: &DeviceKeys, after: u64, limit: Option<u32>) -> PullPage {
    let answer = server
        .signed(keys, "GET", &pull_path(after, limit), vec![])
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    PullPage::decode(&answer.body).unwrap()
}

#[tokio::test]
async fn push_outcomes() {
    let server = TestServer::start();
    let a = server.device("T1").await;
    let b = server.device("T1").await;
    let office = &server.office;
    let batch: Vec<Vec<u8>> = (1..=3)
        .map(|seq| sealed(&a, office, seq, b"entry"))
        .collect();

    let r = server.push(&a, &batch).await.push();
    assert!(
        r.results.iter().all(|x| x.outcome == Outcome::Stored),
        "{r:?}"
    );
    assert_eq!(
        r.results.iter().map(|x| x.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(r.acked, 3);

    // Resent after a timeout: nothing changes.
    let r = server.push(&a, &batch).await.push();
    assert!(
        r.results.iter().all(|x| x.outcome == Outcome::Duplicate),
        "{r:?}"
    );
    assert_eq!(r.acked, 3);

    // A different change under a used number, a forged signature, someone else's change,
    // number 0, garbage, and a good one: each judged on its own.
    let replay = sealed(&a, office, 2, b"rewritten history");
    let mut forged = sealed(&a, office, 5, b"entry");
    let at = forged.len() - 80;
    forged[at] ^= 1;
    let foreign = sealed(&b, office, 1, b"entry");
    let zero = sealed(&a, office, 0, b"entry");
    let good = sealed(&a, office, 4, b"entry");
    let r = server
        .push(
            &a,
            &[
                replay,
                forged,
                foreign,
                zero,
                b"not a sealed change".to_vec(),
                good,
            ],
        )
        .await
        .push();
    let outcomes: Vec<Outcome> = r.results.iter().map(|x| x.outcome).collect();
    use Outcome::*;
    assert_eq!(
        outcomes,
        vec![Refused, Refused, Refused, Refused, Refused, Stored],
        "{r:?}"
    );
    let reasons: Vec<String> = r
        .results
        .iter()
        .map(|x| x.reason.clone().unwrap_or_default())
        .collect();
    assert!(reasons[0].contains("replay"), "{}", reasons[0]);
    assert!(reasons[1].contains("does not verify"), "{}", reasons[1]);
    assert!(
        reasons[2].contains("not by the device sending it"),
        "{}",
        reasons[2]
    );
    assert!(reasons[3].contains("out of range"), "{}", reasons[3]);
    assert!(reasons[4].contains("malformed"), "{}", reasons[4]);
    assert_eq!(r.acked, 4);

    // Broken framing is a malformed request, not a partial store.
    let mut body = encode_push(&[sealed(&a, office, 6, b"x")]);
    body.truncate(body.len() - 1);
    let answer = server.signed(&a, "POST", paths::PUSH, body).await;
    assert_eq!((answer.status, answer.code().as_str()), (400, "malformed"));

    // A device outside the roster.
    let stranger = DeviceKeys::generate();
    let answer = server
        .push(&stranger, &[sealed(&stranger, office, 1, b"x")])
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "not_enrolled")
    );

    // The office may always push, without enrolling.
    let r = server
        .push(office, &[sealed(office, office, 1, b"office note")])
        .await
        .push();
    assert_eq!(r.results[0].outcome, Stored);
    assert_eq!(r.acked, 1);
}

#[tokio::test]
async fn request_authentication() {
    let server = TestServer::start();
    let a = server.device("T1").await;
    let body = encode_push(&[sealed(&a, &server.office, 1, b"x")]);

    let answer = server.send("POST", paths::PUSH, body.clone(), None).await;
    assert_eq!((answer.status, answer.code().as_str()), (401, "bad_auth"));
    let answer = server
        .send("POST", paths::PUSH, body.clone(), Some("Bearer abc".into()))
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (401, "bad_auth"));

    let stale = sign_request(&a, "POST", paths::PUSH, &body, unix_now() - 3_600);
    let answer = server
        .send("POST", paths::PUSH, body.clone(), Some(stale))
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (401, "clock_skew"));
    assert!(answer.error().message.contains("clock"));

    // Signed for another body.
    let other = sign_request(&a, "POST", paths::PUSH, b"other", unix_now());
    let answer = server
        .send("POST", paths::PUSH, body.clone(), Some(other))
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "bad_signature")
    );

    // Signed by one device, claiming another.
    let b = server.device("T1").await;
    let claimed = sign_request(&a, "POST", paths::PUSH, &body, unix_now())
        .replace(&a.id().to_string(), &b.id().to_string());
    let answer = server.send("POST", paths::PUSH, body, Some(claimed)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "bad_signature")
    );
}

#[tokio::test]
async fn pull_pages_at_the_edges_of_the_page_size() {
    // max_page = 5: 4, 5 and 6 changes waiting.
    let server = TestServer::start_with(|c| c.replace("max_page = 1000", "max_page = 5"));
    let a = server.device("T1").await;
    let office = &server.office;
    let mut seq = 0;
    let mut push = |n: u64| {
        let batch: Vec<Vec<u8>> = (seq + 1..=seq + n)
            .map(|s| sealed(&a, office, s, b"p"))
            .collect();
        seq += n;
        batch
    };

    let batch = push(4);
    server.push(&a, &batch).await.push();
    let page = pull(&server, office, 0, None).await;
    assert_eq!((page.changes.len(), page.more), (4, false));
    assert_eq!(page.next, page.changes[3].0);

    let batch = push(1);
    server.push(&a, &batch).await.push();
    let page = pull(&server, office, 0, None).await;
    assert_eq!((page.changes.len(), page.more), (5, false));

    let batch = push(1);
    server.push(&a, &batch).await.push();
    // A larger limit is capped at max_page.
    let first = pull(&server, office, 0, Some(1000)).await;
    assert_eq!((first.changes.len(), first.more), (5, true));
    let second = pull(&server, office, first.next, None).await;
    assert_eq!((second.changes.len(), second.more), (1, false));
    assert!(second.changes[0].0 > first.next);
    let done = pull(&server, office, second.next, None).await;
    assert_eq!(
        (done.changes.len(), done.more, done.next),
        (0, false, second.next)
    );

    // A smaller limit is honoured; the caller's own acked travels with every page.
    let page = pull(&server, &a, 0, Some(2)).await;
    assert_eq!((page.changes.len(), page.more, page.acked), (2, true, 6));

    let answer = server
        .signed(office, "GET", "/v1/pull?after=banana", vec![])
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (400, "malformed"));
}

#[tokio::test]
async fn teams_see_their_own_and_the_office() {
    let server = TestServer::start();
    let office = &server.office;
    let t1 = server.device("T1").await;
    let t1b = server.device("T1").await;
    let t2 = server.device("T2").await;
    server
        .push(&t1, &[sealed(&t1, office, 1, b"t1")])
        .await
        .push();
    server
        .push(&t2, &[sealed(&t2, office, 1, b"t2")])
        .await
        .push();
    server
        .push(office, &[sealed(office, office, 1, b"office")])
        .await
        .push();

    assert_eq!(pull(&server, office, 0, None).await.changes.len(), 3);
    let seen_by_t1b = pull(&server, &t1b, 0, None).await;
    assert_eq!(seen_by_t1b.changes.len(), 2, "its team's and the office's");
    let seen_by_t2 = pull(&server, &t2, 0, None).await;
    assert_eq!(seen_by_t2.changes.len(), 2);
    let t1_bytes = sealed(&t1, office, 1, b"t1");
    assert!(!seen_by_t2
        .changes
        .iter()
        .any(|(_, b)| b.len() == t1_bytes.len() && b[..60] == t1_bytes[..60]));
}

#[tokio::test]
async fn roster_and_revocation() {
    let server = TestServer::start();
    let office = &server.office;
    let a = server.device("T1").await;
    let b = server.device("T1").await;
    server
        .push(
            &a,
            &(1..=4)
                .map(|s| sealed(&a, office, s, b"r"))
                .collect::<Vec<_>>(),
        )
        .await
        .push();

    let answer = server.signed(&b, "GET", paths::ROSTER, vec![]).await;
    assert_eq!(answer.status, 200);
    let statements: Vec<Statement> = serde_json::from_slice(&answer.body).unwrap();
    let roster = Roster::build(&OfficeKeys::from_keys(office), &statements, unix_now());
    assert!(roster.problems.is_empty());
    assert_eq!(roster.recipients_for_team("T1").len(), 3);

    // A revocation not signed by the office is refused.
    let fake = Revocation::issue(&b, a.id(), 0, unix_now());
    let answer = server
        .signed(
            &b,
            "POST",
            paths::REVOKE,
            serde_json::to_vec(&fake).unwrap(),
        )
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "bad_signature")
    );

    let revocation = Revocation::issue(office, a.id(), 4, unix_now());
    for _ in 0..2 {
        let answer = server
            .signed(
                office,
                "POST",
                paths::REVOKE,
                serde_json::to_vec(&revocation).unwrap(),
            )
            .await;
        assert_eq!(
            answer.status,
            204,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    let answer = server
        .push(&a, &[sealed(&a, office, 5, b"after loss")])
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "revoked"));
    let answer = server.signed(&a, "GET", &pull_path(0, None), vec![]).await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "revoked"));

    let answer = server.signed(&b, "GET", paths::ROSTER, vec![]).await;
    let statements: Vec<Statement> = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(statements.len(), 3, "two enrollments and one revocation");
    let roster = Roster::build(&OfficeKeys::from_keys(office), &statements, unix_now());
    assert_eq!(roster.member(&a.id()).unwrap().revoked, Some(4));
    assert_eq!(
        roster.recipients_for_team("T1").len(),
        2,
        "no longer encrypted to a"
    );
    // a's changes made before the loss still reach its team.
    assert_eq!(pull(&server, &b, 0, None).await.changes.len(), 4);
}

#[tokio::test]
async fn limits_health_and_unknown_paths() {
    let server = TestServer::start_with(|c| {
        c.replace("max_request_bytes = 4194304", "max_request_bytes = 65536")
    });
    let a = server.device("T1").await;
    let big: Vec<Vec<u8>> = (1..=3)
        .map(|s| sealed(&a, &server.office, s, &vec![b'x'; 30_000]))
        .collect();
    let answer = server.push(&a, &big).await;
    assert_eq!((answer.status, answer.code().as_str()), (413, "too_large"));
    assert!(answer.error().message.contains("65536"));
    let answer = server
        .send("POST", paths::ENROLL, vec![b' '; 70_000], None)
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (413, "too_large"));
    // Just under the limit is fine.
    let r = server.push(&a, &big[..2]).await.push();
    assert_eq!(r.acked, 2);

    let answer = server.send("GET", paths::HEALTHZ, vec![], None).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ok"[..]));
    let answer = server.send("GET", "/v2/anything", vec![], None).await;
    assert_eq!((answer.status, answer.code().as_str()), (404, "not_found"));
}

#[tokio::test]
async fn postgres_backend_end_to_end() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let admin = |sql: String| {
        let url = url.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(connection);
            client.batch_execute(&sql).await.unwrap();
            drop(client);
            let _ = task.await;
        }
    };
    admin(format!("CREATE SCHEMA {schema}")).await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let outcome = tokio::spawn(async move {
        let mut server = TestServer::start_with(|c| {
            c.replace(
                "database = \"server.db\"",
                &format!("database = \"{scoped}\""),
            )
        });
        let office = &server.office;
        let a = server.device("T1").await;
        let batch: Vec<Vec<u8>> = (1..=3).map(|s| sealed(&a, office, s, b"pg")).collect();
        let r = server.push(&a, &batch).await.push();
        assert_eq!(r.acked, 3);
        let r = server.push(&a, &batch).await.push();
        assert!(r.results.iter().all(|x| x.outcome == Outcome::Duplicate));
        let page = pull(&server, office, 0, None).await;
        assert_eq!(page.changes.len(), 3);
        assert_eq!(page.changes[0].1, batch[0]);
        let log = server.stop();
        assert!(log.contains("database=postgres"), "{log}");
    })
    .await;
    admin(format!("DROP SCHEMA {schema} CASCADE")).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
