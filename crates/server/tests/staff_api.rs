//! A staff device over real HTTPS: a member of the office's own team, it receives every
//! change and writes to any team's cases like the office, and reads and uploads any team's
//! attachments; but it never sends an office record, a roster statement or a receipt, and a
//! field device still writes only its own team's.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_crypto::{chunk_count, BlobId, DeviceKeys, SealedChange, SealedChunk, SealedKind};
use cairn_protocol::{
    blob_path, blob_status_path, encode_frame, paths, pull_path, sign_request, unix_now,
    BlobStatus, Held, Outcome, PullPage, Receipt,
};
use common::{sealed, TestServer};

async fn pull(server: &TestServer, keys: &DeviceKeys) -> PullPage {
    let answer = server
        .signed(keys, "GET", &pull_path(0, None), vec![])
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    PullPage::decode(&answer.body).unwrap()
}

/// `POST` of `keys`'s own blob (signed over an empty body, as every upload is).
async fn upload(
    server: &TestServer,
    keys: &DeviceKeys,
    blob: BlobId,
    body: Vec<u8>,
) -> common::Answer {
    let path = blob_path(&keys.id().to_string(), &blob.to_string());
    let auth = sign_request(keys, "POST", &path, b"", unix_now());
    server.send("POST", &path, body, Some(auth)).await
}

/// The status of `author`'s blob as `reader` asks it.
async fn status(
    server: &TestServer,
    reader: &DeviceKeys,
    author: &DeviceKeys,
    blob: BlobId,
) -> common::Answer {
    let path = blob_status_path(&author.id().to_string(), &blob.to_string());
    server.signed(reader, "GET", &path, vec![]).await
}

fn team_of(bytes: &[u8]) -> String {
    SealedChange::from_bytes(bytes).unwrap().team
}

#[tokio::test]
async fn a_staff_device_reads_and_writes_every_team_but_never_speaks_for_the_office_key() {
    let server = TestServer::start();
    let office = &server.office;
    let a = server.device("T1").await;
    let b = server.device("T2").await;
    let staff = server.device("office").await;
    server.push(&a, &[server.sealed(&a, 1, b"a")]).await.push();
    server.push(&b, &[server.sealed(&b, 1, b"b")]).await.push();
    server
        .push(
            office,
            &[sealed(office, &server.key("office"), 1, b"office's own")],
        )
        .await
        .push();

    // It receives every change, the office's own team's included; a field device its own.
    let seen = pull(&server, &staff).await;
    let mut teams: Vec<String> = seen.changes.iter().map(|(_, c)| team_of(c)).collect();
    teams.sort();
    assert_eq!(teams, ["T1", "T2", "office"]);
    assert_eq!(pull(&server, &a).await.changes.len(), 1);

    // It writes to any team's cases and to the office's own; an office record (a published
    // edition, the office key's alone) is refused.
    let record = SealedChange::seal(
        &staff,
        &server.key("office"),
        SealedKind::OfficeRecord,
        [2; 16],
        4,
        b"{}",
    )
    .unwrap()
    .to_bytes();
    let r = server
        .push(
            &staff,
            &[
                sealed(&staff, &server.key("T1"), 1, b"verified"),
                sealed(&staff, &server.key("T2"), 2, b"linked"),
                sealed(&staff, &server.key("office"), 3, b"its own case"),
                record,
            ],
        )
        .await
        .push();
    let outcomes: Vec<Outcome> = r.results.iter().map(|x| x.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Stored,
            Outcome::Stored,
            Outcome::Stored,
            Outcome::Refused
        ],
        "{r:?}"
    );
    let reason = r.results[3].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("only the office writes"), "{reason}");
    assert_eq!(r.acked, 3);
    // Field devices receive the staff device's change to their team, not the others.
    let to_a = pull(&server, &a).await;
    assert_eq!(to_a.changes.len(), 2);
    assert!(to_a.changes.iter().all(|(_, c)| team_of(c) == "T1"));

    // A field device still writes only its own team's cases, never the office's.
    let r = server
        .push(&a, &[sealed(&a, &server.key("office"), 2, b"forged")])
        .await
        .push();
    assert_eq!(r.results[0].outcome, Outcome::Refused, "{r:?}");

    // It never posts roster statements or receipts: those are the office key's.
    let extra = server.issue(cairn_protocol::Act::Grant(cairn_protocol::KeyGrant {
        team: "T1".into(),
        epoch: 1,
        grants: vec![],
    }));
    let body = serde_json::to_vec(&[extra]).unwrap();
    let answer = server.signed(&staff, "POST", paths::ROSTER, body).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "office_only")
    );
    let held = vec![Held {
        device: a.id(),
        upto: 1,
    }];
    let receipt = Receipt::issue(office, 1, unix_now(), held).for_team(office, "T1", |_| true);
    let body = serde_json::to_vec(&[receipt]).unwrap();
    let answer = server.signed(&staff, "POST", paths::RECEIPT, body).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "office_only")
    );

    // Attachments: it uploads one for T2 and a T2 device reads it; it reads T1's; a field
    // device of T1 cannot upload one for T2.
    let size = 100;
    let chunk = |keys: &DeviceKeys, team: &str, blob: BlobId| {
        let count = chunk_count(size).unwrap();
        let plain = vec![7u8; size as usize];
        let c = SealedChunk::seal(
            keys,
            &server.key(team),
            [5; 16],
            blob,
            0,
            count,
            size,
            &plain,
        )
        .unwrap()
        .to_bytes();
        encode_frame(&c)
    };
    let held = |answer: common::Answer| {
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        serde_json::from_slice::<BlobStatus>(&answer.body)
            .unwrap()
            .held
    };
    let staffs = BlobId::random();
    assert_eq!(
        held(upload(&server, &staff, staffs, chunk(&staff, "T2", staffs)).await),
        1
    );
    assert_eq!(held(status(&server, &b, &staff, staffs).await), 1);
    let of_a = BlobId::random();
    assert_eq!(
        held(upload(&server, &a, of_a, chunk(&a, "T1", of_a)).await),
        1
    );
    assert_eq!(held(status(&server, &staff, &a, of_a).await), 1);
    assert_eq!(
        held(status(&server, &b, &a, of_a).await),
        0,
        "another team learns nothing"
    );
    let wrong = BlobId::random();
    let answer = upload(&server, &a, wrong, chunk(&a, "T2", wrong)).await;
    assert_eq!(
        answer.status,
        422,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}
