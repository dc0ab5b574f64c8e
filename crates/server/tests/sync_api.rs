//! Push, pull, the roster, revocation and receipts over real HTTPS.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_crypto::{DeviceKeys, TeamKey};
use cairn_protocol::{
    encode_push, paths, pull_path, sign_request, unix_now, Act, DevicePublic, Held, OfficeKeys,
    Outcome, PullPage, Receipt, Revoke, Roster, Statement, RECEIPT_VERSION, ROSTER_VERSION,
};
use common::{admit, sealed, TestServer};

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
        .map(|seq| server.sealed(&a, seq, b"entry"))
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
    let replay = server.sealed(&a, 2, b"rewritten history");
    let mut forged = server.sealed(&a, 5, b"entry");
    let at = forged.len() - 80;
    forged[at] ^= 1;
    let foreign = server.sealed(&b, 1, b"entry");
    let zero = server.sealed(&a, 0, b"entry");
    let good = server.sealed(&a, 4, b"entry");
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
    let mut body = encode_push(&[server.sealed(&a, 6, b"x")]);
    body.truncate(body.len() - 1);
    let answer = server.signed(&a, "POST", paths::PUSH, body).await;
    assert_eq!((answer.status, answer.code().as_str()), (400, "malformed"));

    // A device outside the roster.
    let stranger = DeviceKeys::generate();
    let answer = server
        .push(&stranger, &[sealed(&stranger, &server.key("T1"), 1, b"x")])
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "not_enrolled")
    );

    // The office may always push, without joining, any team's changes.
    let r = server
        .push(
            office,
            &[
                sealed(office, &server.key("T1"), 1, b"office note"),
                sealed(office, &server.key("T9"), 2, b"office note"),
            ],
        )
        .await
        .push();
    assert_eq!(
        (r.results[0].outcome, r.results[1].outcome),
        (Stored, Stored)
    );
    assert_eq!(r.acked, 2);

    // A draft (epoch 0), another team's change, a team name no team has: refused.
    let draft = sealed(&a, &TeamKey::generate("T1", 0), 5, b"draft");
    let elsewhere = sealed(&a, &server.key("T2"), 5, b"elsewhere");
    let office_team = sealed(&a, &TeamKey::generate("office", 1), 5, b"x");
    let r = server
        .push(&a, &[draft, elsewhere, office_team])
        .await
        .push();
    assert!(r.results.iter().all(|x| x.outcome == Refused), "{r:?}");
    let reason = |i: usize| r.results[i].reason.clone().unwrap_or_default();
    assert!(reason(0).contains("epoch 0"), "{}", reason(0));
    assert!(reason(1).contains("belongs to team T1"), "{}", reason(1));
    assert!(reason(2).contains("team"), "{}", reason(2));
    assert_eq!(r.acked, 4);
    // The office's draft is refused too.
    let r = server
        .push(
            office,
            &[sealed(office, &TeamKey::generate("T1", 0), 3, b"x")],
        )
        .await
        .push();
    assert_eq!(r.results[0].outcome, Refused);
}

#[tokio::test]
async fn request_authentication() {
    let server = TestServer::start();
    let a = server.device("T1").await;
    let body = encode_push(&[server.sealed(&a, 1, b"x")]);

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
    let server = TestServer::start_with(&[("max_page", "5")]);
    let a = server.device("T1").await;
    let office = &server.office;
    let mut seq = 0;
    let mut push = |n: u64| {
        let batch: Vec<Vec<u8>> = (seq + 1..=seq + n)
            .map(|s| server.sealed(&a, s, b"p"))
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
        .signed(office, "GET", "/v2/pull?after=banana", vec![])
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (400, "malformed"));
}

#[tokio::test]
async fn teams_see_exactly_their_own_teams_changes() {
    let server = TestServer::start();
    let office = &server.office;
    let t03 = server.device("T03").await;
    let t03b = server.device("T03").await;
    let t04 = server.device("T04").await;
    server
        .push(&t03, &[server.sealed(&t03, 1, b"t03")])
        .await
        .push();
    server
        .push(&t04, &[server.sealed(&t04, 1, b"t04")])
        .await
        .push();
    server
        .push(
            office,
            &[
                sealed(office, &server.key("T03"), 1, b"office for T03"),
                sealed(office, &server.key("T05"), 2, b"office for T05"),
            ],
        )
        .await
        .push();

    assert_eq!(pull(&server, office, 0, None).await.changes.len(), 4);
    let team_of = |bytes: &[u8]| cairn_crypto::SealedChange::from_bytes(bytes).unwrap().team;
    let seen_by_t03b = pull(&server, &t03b, 0, None).await;
    assert_eq!(
        seen_by_t03b.changes.len(),
        2,
        "its teammate's and the office's for T03"
    );
    assert!(seen_by_t03b
        .changes
        .iter()
        .all(|(_, b)| team_of(b) == "T03"));
    let seen_by_t04 = pull(&server, &t04, 0, None).await;
    assert_eq!(seen_by_t04.changes.len(), 1, "only its own");
    assert!(
        seen_by_t04.changes.iter().all(|(_, b)| team_of(b) == "T04"),
        "a T04 device received a change of another team"
    );
}

fn revocation(server: &TestServer, device: &DeviceKeys, team: &str, last_seq: u64) -> Statement {
    let key = TeamKey::generate(team, 2);
    let grants =
        vec![cairn_protocol::Grant::new(&key, &DevicePublic::from_keys(&server.office)).unwrap()];
    server.issue(Act::Revoke(Revoke {
        device: device.id(),
        last_seq,
        team: team.into(),
        epoch: 2,
        grants,
        earlier: String::new(),
    }))
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
                .map(|s| server.sealed(&a, s, b"r"))
                .collect::<Vec<_>>(),
        )
        .await
        .push();

    let answer = server.signed(&b, "GET", paths::ROSTER, vec![]).await;
    assert_eq!(answer.status, 200);
    let statements: Vec<Statement> = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(statements, server.chain());
    let roster = Roster::build(&OfficeKeys::from_keys(office), &statements);
    assert!(roster.problems.is_empty(), "{:?}", roster.problems);
    assert_eq!(roster.head(), 2);
    assert_eq!(roster.epoch("T1"), 1);

    // A field device may not post statements, even genuine ones.
    let revoked = revocation(&server, &a, "T1", 4);
    let body = serde_json::to_vec(std::slice::from_ref(&revoked)).unwrap();
    let answer = server.signed(&b, "POST", paths::ROSTER, body).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "office_only")
    );

    // The office posts it; posting it again (and the whole chain) changes nothing.
    for batch in [vec![revoked.clone()], server.chain()] {
        let answer = server.post_roster(&batch).await;
        assert_eq!(
            answer.status,
            204,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    let answer = server
        .push(&a, &[server.sealed(&a, 5, b"after loss")])
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "revoked"));
    let answer = server.signed(&a, "GET", &pull_path(0, None), vec![]).await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "revoked"));

    let answer = server.signed(&b, "GET", paths::ROSTER, vec![]).await;
    let statements: Vec<Statement> = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(statements.len(), 3, "two admissions and one revocation");
    let roster = Roster::build(&OfficeKeys::from_keys(office), &statements);
    assert_eq!(roster.member(&a.id()).unwrap().revoked, Some(4));
    assert_eq!(roster.epoch("T1"), 2);
    // a's changes made before the loss still reach its team; the head travels with a page.
    let answer = server.signed(&b, "GET", &pull_path(0, None), vec![]).await;
    assert_eq!(answer.header(ROSTER_VERSION).as_deref(), Some("3"));
    assert_eq!(answer.header(RECEIPT_VERSION), None, "no receipt yet");
    assert_eq!(PullPage::decode(&answer.body).unwrap().changes.len(), 4);
}

#[tokio::test]
async fn hostile_roster_posts_are_refused_whole() {
    let server = TestServer::start();
    let _a = server.device("T1").await;
    let held = server.chain();
    let c = DeviceKeys::generate();
    let key = server.key("T1");
    let next = |signer: &DeviceKeys, counter: u64, prev: [u8; 32]| {
        admit(
            signer,
            counter,
            prev,
            &key,
            &DevicePublic::from_keys(&c),
            &server.base(),
            server.process.fingerprint(),
            unix_now() + 60,
        )
    };
    let s2 = next(&server.office, 2, held[0].hash());
    let s3 = next(&server.office, 3, s2.hash());
    let roster_len = || async {
        let answer = server
            .signed(&server.office, "GET", paths::ROSTER, vec![])
            .await;
        serde_json::from_slice::<Vec<Statement>>(&answer.body)
            .unwrap()
            .len()
    };

    // A gap: statement 3 without 2.
    let answer = server.post_roster(std::slice::from_ref(&s3)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_behind")
    );
    // Another statement 1 than the one held.
    let other_first = next(&server.office, 1, [0; 32]);
    let answer = server.post_roster(&[other_first]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_conflict")
    );
    // The next number, not linked to the statement before it.
    let unlinked = next(&server.office, 2, [7; 32]);
    let answer = server.post_roster(&[unlinked]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_conflict")
    );
    // Not signed by the office (relayed by the office itself all the same).
    let mallory = DeviceKeys::generate();
    let forged = next(&mallory, 2, held[0].hash());
    let answer = server.post_roster(&[forged]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_conflict")
    );
    // A good statement followed by a bad one: nothing is stored.
    let bad3 = next(&server.office, 3, [1; 32]);
    let answer = server.post_roster(&[s2.clone(), bad3]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_conflict")
    );
    assert_eq!(roster_len().await, 1, "all or nothing");
    // Malformed.
    let answer = server
        .signed(
            &server.office,
            "POST",
            paths::ROSTER,
            b"{\"counter\":1}".to_vec(),
        )
        .await;
    assert_eq!((answer.status, answer.code().as_str()), (400, "malformed"));
    // Good ones, out of order: both stored; c is then a member without joining.
    let answer = server.post_roster(&[s3, s2]).await;
    assert_eq!(
        answer.status,
        204,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(roster_len().await, 3);
    let r = server
        .push(&c, &[sealed(&c, &key, 1, b"admitted by the office alone")])
        .await
        .push();
    assert_eq!(r.acked, 1);
}

#[tokio::test]
async fn receipts_move_only_forward_and_each_team_reads_its_own() {
    let server = TestServer::start();
    let office = &server.office;
    let a = server.device("T1").await;
    let b = server.device("T2").await;
    let answer = server.signed(&a, "GET", paths::RECEIPT, vec![]).await;
    assert_eq!((answer.status, answer.code().as_str()), (404, "not_found"));

    let held = vec![
        Held {
            device: a.id(),
            upto: 3,
        },
        Held {
            device: b.id(),
            upto: 9,
        },
    ];
    let teams = |whole: Receipt| {
        vec![
            whole.for_team(office, "T1", |d| *d == a.id()),
            whole.for_team(office, "T2", |d| *d == b.id()),
        ]
    };
    let r1 = teams(Receipt::issue(office, 1, unix_now(), held.clone()));
    let r2 = teams(Receipt::issue(office, 2, unix_now(), held.clone()));
    let post = |keys: &'static str, r: &[Receipt]| {
        let body = serde_json::to_vec(r).unwrap();
        let keys = if keys == "office" { office } else { &a };
        server.signed(keys, "POST", paths::RECEIPT, body)
    };
    // Only the office posts, and only its own signature counts.
    let answer = post("a", &r2).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "office_only")
    );
    let forged = Receipt::issue(&a, 5, unix_now(), held.clone()).for_team(&a, "T1", |_| true);
    let answer = post("office", &[forged]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "bad_signature")
    );
    // A whole receipt (every team's counts), a team's receipt naming another team's device,
    // one team twice or two counters in one post: refused, nothing stored.
    let whole = Receipt::issue(office, 3, unix_now(), held.clone());
    let mixed = whole.for_team(office, "T1", |_| true);
    let other = teams(Receipt::issue(office, 4, unix_now(), held.clone()));
    for bad in [
        vec![whole.clone()],
        vec![mixed],
        vec![r2[0].clone(), r2[0].clone()],
        vec![r2[0].clone(), other[1].clone()],
        vec![],
    ] {
        let answer = post("office", &bad).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (400, "malformed"),
            "{bad:?}"
        );
    }
    let answer = server.signed(&a, "GET", paths::RECEIPT, vec![]).await;
    assert_eq!(answer.status, 404);

    assert_eq!(post("office", &r2).await.status, 204);
    assert_eq!(
        post("office", &r2).await.status,
        204,
        "the same again: nothing changes"
    );
    // An older one, or another one with the same counter, does not replace it.
    let answer = post("office", &r1).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_conflict")
    );
    let other2 = teams(Receipt::issue(office, 2, unix_now() + 1, vec![]));
    let answer = post("office", &other2).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_conflict")
    );

    // Each member reads its own team's receipt, naming its own team's devices only.
    for (keys, mine, theirs, index) in [(&a, a.id(), b.id(), 0), (&b, b.id(), a.id(), 1)] {
        let answer = server.signed(keys, "GET", paths::RECEIPT, vec![]).await;
        assert_eq!(answer.status, 200);
        let body = String::from_utf8(answer.body.clone()).unwrap();
        assert!(body.contains(&mine.to_string()) && !body.contains(&theirs.to_string()));
        let got: Receipt = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(got, r2[index]);
        got.verify(&office.id()).unwrap();
        let answer = server
            .signed(keys, "GET", &pull_path(0, None), vec![])
            .await;
        assert_eq!(answer.header(RECEIPT_VERSION).as_deref(), Some("2"));
        assert_eq!(answer.header(ROSTER_VERSION).as_deref(), Some("2"));
    }
    // The office fetches none (it keeps the whole receipt), and hears of the newest.
    let answer = server.signed(office, "GET", paths::RECEIPT, vec![]).await;
    assert_eq!(answer.status, 404);
    let answer = server
        .signed(office, "GET", &pull_path(0, None), vec![])
        .await;
    assert_eq!(answer.header(RECEIPT_VERSION).as_deref(), Some("2"));
}

#[tokio::test]
async fn limits_health_and_unknown_paths() {
    let server = TestServer::start_with(&[("max_request_bytes", "65536")]);
    let a = server.device("T1").await;
    let big: Vec<Vec<u8>> = (1..=3)
        .map(|s| server.sealed(&a, s, &vec![b'x'; 30_000]))
        .collect();
    let answer = server.push(&a, &big).await;
    assert_eq!((answer.status, answer.code().as_str()), (413, "too_large"));
    assert!(answer.error().message.contains("65536"));
    let answer = server
        .signed(&a, "POST", paths::JOIN, vec![b' '; 70_000])
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
    common::with_postgres_server(|mut server| async move {
        let office = &server.office;
        let a = server.device("T1").await;
        let batch: Vec<Vec<u8>> = (1..=3).map(|s| server.sealed(&a, s, b"pg")).collect();
        let r = server.push(&a, &batch).await.push();
        assert_eq!(r.acked, 3);
        let r = server.push(&a, &batch).await.push();
        assert!(r.results.iter().all(|x| x.outcome == Outcome::Duplicate));
        let page = pull(&server, office, 0, None).await;
        assert_eq!(page.changes.len(), 3);
        assert_eq!(page.changes[0].1, batch[0]);
        let log = server.process.stop();
        assert!(log.contains("database=postgres"), "{log}");
    })
    .await;
}
