//! Joining over real HTTPS: valid, repeated, expired, replayed by another key, not
//! office-signed, ahead of the server's chain, conflicting, malformed.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use cairn_crypto::DeviceKeys;
use cairn_protocol::{
    paths, sign_request, unix_now, Act, DevicePublic, JoinResponse, Revoke, Statement,
};
use common::{admit, TestServer};

#[tokio::test]
async fn joining() {
    let server = TestServer::start();

    // Valid, then the same again (a retry after a lost answer): both succeed.
    let a = DeviceKeys::generate();
    let sa = server.admission(&a, "T03", unix_now() + 3600);
    for _ in 0..2 {
        let answer = server.join_with(&a, &sa).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let body: JoinResponse = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body.team, "T03");
        assert_eq!(body.device, a.id().to_string());
    }
    let answer = server.signed(&a, "GET", paths::ROSTER, vec![]).await;
    assert_eq!(answer.status, 200);
    let chain: Vec<Statement> = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(chain, vec![sa.clone()]);

    // The same admission replayed by another key: a captured admission admits nobody else.
    let b = DeviceKeys::generate();
    let answer = server.join_with(&b, &sa).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "admission_invalid")
    );
    assert!(answer.error().message.contains("another device"));

    // Admitted by some other office, with this server's next number and link.
    let mallory = DeviceKeys::generate();
    let forged = admit(
        &mallory,
        2,
        sa.hash(),
        &server.key("T03"),
        &DevicePublic::from_keys(&b),
        &server.base(),
        server.process.fingerprint(),
        unix_now() + 60,
    );
    let answer = server.join_with(&b, &forged).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "admission_invalid")
    );

    // A revocation is no admission.
    let revoke = Act::Revoke(Revoke {
        device: a.id(),
        last_seq: 0,
        team: "T03".into(),
        epoch: 2,
        grants: vec![],
        earlier: String::new(),
    });
    let revocation = Statement::issue(&server.office, 2, sa.hash(), unix_now(), revoke).unwrap();
    let answer = server.join_with(&a, &revocation).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "admission_invalid")
    );

    // Another statement 1 (signed by the office, but not the one the server holds).
    let other_first = admit(
        &server.office,
        1,
        [0; 32],
        &server.key("T03"),
        &DevicePublic::from_keys(&b),
        &server.base(),
        server.process.fingerprint(),
        unix_now() + 60,
    );
    let answer = server.join_with(&b, &other_first).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_conflict")
    );

    // Expired (statement 2 of the office's chain: the server never gets it from b).
    let sb = server.admission(&b, "T03", unix_now() - 1);
    let answer = server.join_with(&b, &sb).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (410, "admission_expired")
    );
    // So statement 3 is ahead of what the server holds.
    let c = DeviceKeys::generate();
    let sc = server.admission(&c, "T04", unix_now() + 3600);
    let answer = server.join_with(&c, &sc).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "roster_behind")
    );
    assert!(
        answer.error().message.contains("cairn sync"),
        "{}",
        answer.error().message
    );
    // The office sends its chain: b is a member through it (though its own join of an
    // expired admission stays refused), and c's join is then one the chain holds.
    let answer = server.post_roster(&server.chain()).await;
    assert_eq!(
        answer.status,
        204,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer = server.join_with(&b, &sb).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (410, "admission_expired")
    );
    assert_eq!(
        server.signed(&b, "GET", paths::ROSTER, vec![]).await.status,
        200
    );
    assert_eq!(server.join_with(&c, &sc).await.status, 200);

    // A request with no signature, or signed for another body.
    let body = serde_json::to_vec(&sc).unwrap();
    let answer = server.send("POST", paths::JOIN, body.clone(), None).await;
    assert_eq!((answer.status, answer.code().as_str()), (401, "bad_auth"));
    let other = sign_request(&c, "POST", paths::JOIN, b"other", unix_now());
    let answer = server.send("POST", paths::JOIN, body, Some(other)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "bad_signature")
    );

    // Malformed bodies.
    let good = serde_json::to_string(&sc).unwrap();
    for body in [
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        good.replacen("\"counter\":3", "\"counter\":0", 1)
            .into_bytes(),
        good.replacen("https://", "http://", 1).into_bytes(),
        vec![0xff; 40],
    ] {
        let answer = server.signed(&c, "POST", paths::JOIN, body).await;
        assert_eq!((answer.status, answer.code().as_str()), (400, "malformed"));
    }

    // None of the failures above made a member.
    let answer = server.signed(&mallory, "GET", paths::ROSTER, vec![]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "not_enrolled")
    );
}

#[tokio::test]
async fn a_device_that_joined_may_join_again_after_its_admission_expired() {
    let server = TestServer::start();
    let a = DeviceKeys::generate();
    let sa = server.admission(&a, "T1", unix_now() + 2);
    assert_eq!(server.join_with(&a, &sa).await.status, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answer = server.join_with(&a, &sa).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    // A device the office admitted and sent, but which never joined itself, may not.
    let b = DeviceKeys::generate();
    let sb = server.admission(&b, "T1", unix_now() + 2);
    assert_eq!(
        server.post_roster(std::slice::from_ref(&sb)).await.status,
        204
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answer = server.join_with(&b, &sb).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (410, "admission_expired")
    );
}

#[tokio::test]
async fn a_revoked_device_cannot_join_again() {
    let server = TestServer::start();
    let a = server.device("T1").await;
    let sa = server.chain()[0].clone();
    let revoke = Act::Revoke(Revoke {
        device: a.id(),
        last_seq: 0,
        team: "T1".into(),
        epoch: 2,
        grants: vec![],
        earlier: String::new(),
    });
    let revocation = server.issue(revoke);
    assert_eq!(server.post_roster(&[revocation]).await.status, 204);
    let answer = server.join_with(&a, &sa).await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "revoked"));
}
