//! Enrollment over real HTTPS: valid, repeated, expired, used, malformed, not office-signed.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_crypto::DeviceKeys;
use cairn_protocol::{paths, unix_now, EnrollResponse, Enrollment, Invite};
use common::TestServer;

#[tokio::test]
async fn enrollment_cases() {
    let server = TestServer::start();

    // Valid, then the same again (a retry after a lost answer): both succeed.
    let a = DeviceKeys::generate();
    let invite = server.invite("T03");
    let ea = Enrollment::create(&a, invite.clone(), Some("tablet A".into())).unwrap();
    for _ in 0..2 {
        let answer = server.enroll_with(&ea).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let body: EnrollResponse = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body.team, "T03");
        assert_eq!(body.device, a.id().to_string());
    }

    // The same invite by another device.
    let b = DeviceKeys::generate();
    let eb = Enrollment::create(&b, invite, None).unwrap();
    let answer = server.enroll_with(&eb).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "invite_used")
    );
    assert!(answer.error().message.contains("new invite"));

    // Expired.
    let old = Invite::issue(
        &server.office,
        "T03",
        &server.base(),
        &server.fingerprint,
        unix_now() - 1,
    )
    .unwrap();
    let answer = server
        .enroll_with(&Enrollment::create(&b, old, None).unwrap())
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (410, "invite_expired")
    );

    // Signed by some other office.
    let mallory = DeviceKeys::generate();
    let forged = Invite::issue(
        &mallory,
        "T03",
        &server.base(),
        &server.fingerprint,
        unix_now() + 60,
    )
    .unwrap();
    let answer = server
        .enroll_with(&Enrollment::create(&b, forged, None).unwrap())
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "invite_invalid")
    );

    // A device signature that does not hold.
    let mut tampered = Enrollment::create(&b, server.invite("T03"), None).unwrap();
    tampered.name = Some("someone else".into());
    let answer = server.enroll_with(&tampered).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "bad_signature")
    );

    // Malformed bodies.
    let good = serde_json::to_string(&Enrollment::create(&b, server.invite("T03"), None).unwrap())
        .unwrap();
    let broken_invite = good.replacen("cairn-invite-v1.", "cairn-invite-v1.!!", 1);
    for body in [
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        broken_invite.into_bytes(),
        vec![0xff; 40],
    ] {
        let answer = server.send("POST", paths::ENROLL, body, None).await;
        assert_eq!((answer.status, answer.code().as_str()), (400, "malformed"));
    }

    // A device already enrolled cannot take a second invite.
    let again = Enrollment::create(&a, server.invite("T04"), None).unwrap();
    let answer = server.enroll_with(&again).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (409, "already_enrolled")
    );

    // b was never enrolled by any of the failures above.
    let answer = server.signed(&b, "GET", paths::ROSTER, vec![]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "not_enrolled")
    );
}
