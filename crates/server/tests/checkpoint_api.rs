//! The office's checkpoints over real HTTPS: the office posts its teams' parts, each device
//! reads its own team's (the office's staff devices any team's) in order, page by page; every
//! other post, forged or stale part, and checkpoint sent as a change is refused whole.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_crypto::{DeviceKeys, Keyring, SealedChange, SealedKind, TeamKey};
use cairn_protocol::checkpoint::{
    checkpoints_path, follows, CheckpointPage, Entry, Loaded, Part, PartBody, PartHeader, Place,
};
use cairn_protocol::{encode_push, paths, Outcome, CHECKPOINT_CONTENT_TYPE};
use common::{Answer, TestServer};

/// Small enough that two parts fill a page, and three parts no post.
const MAX_REQUEST: usize = 2048;

/// Part `part` of `parts` of generation `generation` (full when it names no `prev`), sealed
/// by `keys` under `key`; about 800 bytes, since its log entry does not deflate.
fn part(
    keys: &DeviceKeys,
    key: &TeamKey,
    generation: u64,
    (part, parts): (u32, u32),
    prev: Option<u64>,
) -> Vec<u8> {
    sealed_part(
        keys,
        key,
        SealedKind::Checkpoint,
        generation,
        (part, parts),
        prev,
    )
}

fn sealed_part(
    keys: &DeviceKeys,
    key: &TeamKey,
    kind: SealedKind,
    generation: u64,
    (part, parts): (u32, u32),
    prev: Option<u64>,
) -> Vec<u8> {
    let noise: Vec<u8> = (0..600).map(|_| rand::random::<u8>()).collect();
    let body = PartBody {
        prev,
        cursor: generation * 10,
        made_at: 1_700_000_000,
        teams: vec![],
        authors: vec![],
        refused: vec![],
        entries: vec![Entry::Log {
            changes: vec![noise],
        }],
    };
    let place = Place {
        part,
        parts,
        full: prev.is_none(),
    };
    SealedChange::seal(keys, key, kind, place.to_id(), generation, &body.encode())
        .unwrap()
        .to_bytes()
}

async fn post(server: &TestServer, keys: &DeviceKeys, parts: &[Vec<u8>]) -> Answer {
    post_body(server, keys, encode_push(parts)).await
}

async fn post_body(server: &TestServer, keys: &DeviceKeys, body: Vec<u8>) -> Answer {
    server.signed(keys, "POST", paths::CHECKPOINTS, body).await
}

fn posted(answer: &Answer) {
    assert_eq!(
        answer.status,
        204,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// The answer's error code, after checking its status.
fn refused(answer: &Answer, status: u16) -> (String, String) {
    assert_eq!(
        answer.status,
        status,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let error = answer.error();
    (error.code, error.message)
}

async fn page(
    server: &TestServer,
    keys: &DeviceKeys,
    team: &str,
    after: Option<(u64, u32)>,
) -> CheckpointPage {
    let answer = server
        .signed(keys, "GET", &checkpoints_path(team, after), vec![])
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some(CHECKPOINT_CONTENT_TYPE)
    );
    CheckpointPage::decode(&answer.body).unwrap()
}

/// Every part of `team` after `after`, page by page: each page within the request limit.
async fn all_parts(
    server: &TestServer,
    keys: &DeviceKeys,
    team: &str,
    mut after: Option<(u64, u32)>,
) -> (Vec<Vec<u8>>, usize) {
    let (mut parts, mut pages) = (Vec::new(), 0);
    loop {
        let got = page(server, keys, team, after).await;
        pages += 1;
        assert!(
            got.encode().len() <= MAX_REQUEST + 9,
            "a page over the limit"
        );
        if let Some(last) = got.parts.last() {
            let header = PartHeader::of(&SealedChange::from_bytes(last).unwrap()).unwrap();
            after = Some((header.generation, header.place.part));
        }
        assert!(!got.more || !got.parts.is_empty(), "more, but nothing");
        parts.extend(got.parts);
        if !got.more {
            return (parts, pages);
        }
    }
}

/// What a device loading `parts` in order ends with: each must follow the one before.
fn load(key: &TeamKey, parts: &[Vec<u8>]) -> Loaded {
    let mut ring = Keyring::default();
    ring.insert(TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes()));
    let mut held = None;
    for bytes in parts {
        let sealed = SealedChange::from_bytes(bytes).unwrap();
        let part = Part {
            header: PartHeader::of(&sealed).unwrap(),
            body: PartBody::decode(&sealed.open(&ring).unwrap()).unwrap(),
        };
        held = Some(follows(held, &part).unwrap());
    }
    held.unwrap()
}

fn limits() -> [(&'static str, String); 1] {
    [("max_request_bytes", MAX_REQUEST.to_string())]
}

#[tokio::test]
async fn sqlite() {
    let limits = limits();
    let settings: Vec<(&str, &str)> = limits.iter().map(|(k, v)| (*k, v.as_str())).collect();
    devices_read_their_teams_checkpoints_in_order_and_every_bad_post_is_refused(
        TestServer::start_with(&settings),
    )
    .await;
}

#[tokio::test]
async fn postgres() {
    let limits = limits();
    let settings: Vec<(&str, &str)> = limits.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::with_postgres_server_set(
        &settings,
        devices_read_their_teams_checkpoints_in_order_and_every_bad_post_is_refused,
    )
    .await;
}

async fn devices_read_their_teams_checkpoints_in_order_and_every_bad_post_is_refused(
    server: TestServer,
) {
    let office = &server.office;
    let t01 = server.key("T01");
    let a = server.device("T01").await;
    let b = server.device("T02").await;
    let staff = server.device("office").await;

    // Nothing yet: an empty page, for the team's own device too.
    assert_eq!(
        page(&server, &a, "T01", None).await,
        CheckpointPage::default()
    );

    // A full generation of two parts, then one that adds to it.
    let g5 = [
        part(office, &t01, 5, (0, 2), None),
        part(office, &t01, 5, (1, 2), None),
    ];
    let g6 = part(office, &t01, 6, (0, 1), Some(5));
    posted(&post(&server, office, &g5).await);
    posted(&post(&server, office, std::slice::from_ref(&g6)).await);
    // Sent again after a cut link: taken, nothing changes.
    posted(&post(&server, office, &g5[1..]).await);
    let expected = vec![g5[0].clone(), g5[1].clone(), g6.clone()];

    // The team's device reads them in order, two pages at this limit, and can load them.
    let (parts, pages) = all_parts(&server, &a, "T01", None).await;
    assert_eq!((parts.clone(), pages), (expected.clone(), 2));
    assert_eq!(
        load(&t01, &parts),
        Loaded {
            generation: 6,
            part: 0,
            parts: 1
        }
    );
    assert_eq!(
        all_parts(&server, &a, "T01", Some((5, 0))).await.0,
        expected[1..]
    );
    assert!(page(&server, &a, "T01", Some((6, 0)))
        .await
        .parts
        .is_empty());

    // Another team's device is refused them; the staff device reads every team's.
    let answer = server
        .signed(&b, "GET", &checkpoints_path("T01", None), vec![])
        .await;
    let (code, message) = refused(&answer, 403);
    assert_eq!(code, "office_only");
    assert!(
        message.contains("team T02") && message.contains("team T01"),
        "{message}"
    );
    assert!(page(&server, &b, "T02", None).await.parts.is_empty());
    assert_eq!(all_parts(&server, &staff, "T01", None).await.0, expected);
    assert_eq!(all_parts(&server, office, "T01", None).await.0, expected);
    // A query that names half a place, or no valid team.
    for query in [
        "/v2/checkpoints?team=T01&generation=5",
        "/v2/checkpoints?team=T%2001",
        "/v2/checkpoints",
    ] {
        let answer = server.signed(&staff, "GET", query, vec![]).await;
        assert_eq!(refused(&answer, 400).0, "malformed", "{query}");
    }

    // Only the office posts: not a field device, not a staff device.
    let g7 = [
        part(office, &t01, 7, (0, 2), None),
        part(office, &t01, 7, (1, 2), None),
    ];
    for keys in [&a, &staff] {
        let (code, _) = refused(&post(&server, keys, &g7[..1]).await, 403);
        assert_eq!(code, "office_only");
    }
    // A part sealed by a device key that claims the office as its author: its signature
    // fails.
    let mut forged = part(&a, &t01, 7, (0, 2), None);
    forged[21..53].copy_from_slice(&office.id().0);
    let (code, message) = refused(&post(&server, office, &[forged]).await, 401);
    assert_eq!(code, "bad_signature");
    assert!(message.contains("checkpoint part 1"), "{message}");
    // A part written by another device, posted by the office.
    let (code, _) = refused(
        &post(&server, office, &[part(&a, &t01, 7, (0, 2), None)]).await,
        403,
    );
    assert_eq!(code, "office_only");
    // A case change on this route; after a good part, which is not kept either.
    let change = sealed_part(office, &t01, SealedKind::CaseChange, 7, (0, 2), None);
    let (code, message) = refused(&post(&server, office, &[g7[0].clone(), change]).await, 400);
    assert_eq!(code, "malformed");
    assert!(
        message.contains("checkpoint part 2") && message.contains("/v2/push"),
        "{message}"
    );
    // A checkpoint as a change: refused by the push, which names the route.
    let pushed = server.push(office, &[g7[0].clone()]).await.push();
    assert_eq!(pushed.results[0].outcome, Outcome::Refused);
    let reason = pushed.results[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("checkpoints go to /v2/checkpoints"),
        "{reason}"
    );
    // Another part where one is stored: refused, with the good part beside it.
    let other = part(office, &t01, 5, (1, 2), None);
    let (code, message) = refused(&post(&server, office, &[g7[0].clone(), other]).await, 409);
    assert_eq!(code, "roster_conflict");
    assert!(
        message.contains("another part 2 of team T01's checkpoint 5"),
        "{message}"
    );
    // Older than the whole full generation 5, full or not.
    for old in [
        part(office, &t01, 4, (0, 1), None),
        part(office, &t01, 3, (0, 1), Some(2)),
    ] {
        let (code, message) = refused(&post(&server, office, &[old]).await, 409);
        assert_eq!(code, "roster_conflict");
        assert!(
            message.contains("older than its whole full checkpoint 5"),
            "{message}"
        );
    }
    // Cut short, over the limit, or empty.
    let whole = encode_push(&g7[..1]);
    let (code, _) = refused(
        &post_body(&server, office, whole[..whole.len() - 9].to_vec()).await,
        400,
    );
    assert_eq!(code, "malformed");
    let mut cut_part = g7[0].clone();
    cut_part.truncate(cut_part.len() - 9);
    let (code, _) = refused(&post(&server, office, &[cut_part]).await, 400);
    assert_eq!(code, "malformed");
    let three = [g7[0].clone(), g7[1].clone(), g6.clone()];
    let (code, _) = refused(&post(&server, office, &three).await, 413);
    assert_eq!(code, "too_large");
    let (code, _) = refused(&post_body(&server, office, vec![]).await, 400);
    assert_eq!(code, "malformed");
    // None of these changed what is served.
    assert_eq!(all_parts(&server, &a, "T01", None).await.0, expected);

    // A newer full generation: half of it changes nothing for a device starting cold...
    posted(&post(&server, office, &g7[..1]).await);
    assert_eq!(
        all_parts(&server, &a, "T01", None).await.0[..3],
        expected[..]
    );
    // ...and once whole, the older ones are gone: every device starts at it.
    posted(&post(&server, office, &g7[1..]).await);
    let (parts, _) = all_parts(&server, &a, "T01", None).await;
    assert_eq!(parts, g7);
    assert_eq!(load(&t01, &parts).generation, 7);
    assert_eq!(all_parts(&server, &a, "T01", Some((5, 1))).await.0, g7);
    assert_eq!(all_parts(&server, &staff, "T01", Some((0, 0))).await.0, g7);
    let (code, _) = refused(&post(&server, office, std::slice::from_ref(&g6)).await, 409);
    assert_eq!(code, "roster_conflict");
}
