//! A hostile teammate: enrolled like any device, it seals whatever it likes and pushes it
//! through the real server. Each of its changes is refused, with a reason, on its teammates
//! and at the office; every honest change before and after gets through; memory stays low.

use std::io::Write;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ReadDoc, ROOT};
use cairn_e2e::{Device, Server};

/// The most a `cairn sync` may take while refusing all of this.
const PEAK_KIB: u64 = 100 * 1024;

/// The case as device `d` holds it, as raw Automerge, writing as `d`.
fn raw_doc(d: &Device, id: uuid::Uuid) -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::from(d.keys().id().0.as_slice()));
    let changes = d
        .raw_changes(id)
        .iter()
        .map(|raw| automerge::Change::try_from(raw.as_slice()).expect("change"))
        .collect::<Vec<_>>();
    doc.apply_changes(changes).expect("apply");
    doc
}

/// One change made on a copy of `base` by `f`, dated `time_ms`.
fn forge(
    base: &Automerge,
    time_ms: i64,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    let mut doc = base.clone();
    let mut tx = doc.transaction();
    f(&mut tx);
    let (hash, _) =
        tx.commit_with(automerge::transaction::CommitOptions::default().with_time(time_ms));
    let hash = hash.expect("a change");
    doc.get_change_by_hash(&hash)
        .expect("change")
        .raw_bytes()
        .to_vec()
}

/// A compressed Automerge change chunk that inflates to 256 MiB of zeros.
fn deflate_bomb() -> Vec<u8> {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        deflate.write_all(&zeros).expect("deflate");
    }
    let body = deflate.finish().expect("deflate");
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut len = body.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        chunk.push(if len == 0 { byte } else { byte | 0x80 });
        if len == 0 {
            break;
        }
    }
    chunk.extend(body);
    chunk
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Syncs `d` with `-v`, asserts its peak memory, returns the summary.
fn sync(d: &Device) -> serde_json::Value {
    let (out, kib) = d.ok_measured(&["sync", "--json"]);
    eprintln!("cairn sync peak memory: {kib} KiB");
    assert!(kib < PEAK_KIB, "cairn sync peaked at {kib} KiB");
    serde_json::from_str(&out).expect("summary")
}

fn notes(d: &Device, reference: &str) -> Vec<String> {
    d.json(&["case", "show", reference])["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n["text"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_hostile_teammate_is_refused_and_blocks_nobody() {
    let office = Device::office();
    let server = Server::start(&office);
    let join = |team: &str| {
        let d = Device::init(team);
        server.join(&office, &d, team, &server.url());
        d
    };
    let a = join("T03");
    let b = join("T03");
    let evil = join("T03");
    for d in [&a, &b, &evil, &office] {
        sync(d);
    }
    let reference = a.new_case(&["--kind", "killed", "--place", "KHR", "--note", "first"]);
    let id: uuid::Uuid = a.json(&["case", "show", &reference])["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("case id");
    sync(&a);
    a.ok(&["case", "edit", &reference, "--note", "before"]);
    sync(&a);
    sync(&evil);

    // Everything the hostile device sends is sealed under the team's key: all read it.
    let base = raw_doc(&evil, id);
    let notes_list = base.get(ROOT, "notes").expect("get").expect("notes").1;
    let stolen_tag = a.keys().id().tag();
    let evil_id = evil.keys().id();
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("compressed", deflate_bomb()),
        (
            "over the limit",
            forge(&base, now_ms(), |tx| {
                let n = tx
                    .insert_object(&notes_list, 2, automerge::ObjType::Map)
                    .expect("insert");
                tx.put(&n, "at", "2026-11-25T10:00:00Z").expect("put");
                tx.put(&n, "author", "evil").expect("put");
                tx.put(&n, "text", "x".repeat(1_100_000)).expect("put");
            }),
        ),
        (
            "changes the case's reference",
            forge(&base, now_ms(), |tx| {
                tx.put(ROOT, "reference", format!("KHR-T04-{stolen_tag}-0001"))
                    .expect("put")
            }),
        ),
        (
            "schema",
            forge(&base, now_ms(), |tx| {
                tx.put(ROOT, "schema", 2u64).expect("put")
            }),
        ),
        (
            "only the office does",
            forge(&base, now_ms(), |tx| {
                tx.put(ROOT, "status", "confirmed").expect("put")
            }),
        ),
        (
            "deletes or moves an entry of notes",
            forge(&base, now_ms(), |tx| {
                tx.delete(&notes_list, 0).expect("delete")
            }),
        ),
    ];
    for (_, plain) in &hostile {
        evil.smuggle(id, plain, "T03");
    }
    // A creation of a new case under A's tag.
    let other_case = uuid::Uuid::new_v4();
    let (_, stolen) = cairn_model::CaseDoc::create(
        &evil_id.0,
        other_case,
        &format!("KHR-T03-{stolen_tag}-0099")
            .parse()
            .expect("reference"),
        cairn_model::Kind::Killed,
        "evil",
        time::OffsetDateTime::now_utc(),
        &[],
    )
    .expect("create");
    evil.smuggle(other_case, &stolen, "T03");
    // A change dated 1970: applied (a dead clock is not an attack), but shown as doubtful.
    let dated = forge(&base, 0, |tx| {
        let person = tx.get(ROOT, "person").expect("get").expect("person").1;
        tx.put(&person, "sex", "male").expect("put");
    });
    evil.smuggle(id, &dated, "T03");
    assert_eq!(sync(&evil)["sent"], 8);

    a.ok(&["case", "edit", &reference, "--note", "after"]);
    sync(&a);

    let reasons = [
        "compressed",
        "over the limit",
        "changes the case's reference",
        "schema",
        "deletes or moves an entry of notes",
        "under tag",
        "only the office does",
    ];
    for d in [&b, &office] {
        let summary = sync(d);
        let refused: Vec<&str> = summary["refused"]
            .as_array()
            .expect("refused")
            .iter()
            .filter_map(|r| r["reason"].as_str())
            .collect();
        assert_eq!(refused.len(), 7, "{summary}");
        for reason in reasons {
            assert!(
                refused.iter().any(|r| r.contains(reason)),
                "no `{reason}` in {refused:?}"
            );
        }
        // Refusals are judged and reported once.
        assert_eq!(sync(d)["refused"], serde_json::json!([]));
    }
    sync(&a);
    let shows: Vec<String> = [&a, &b, &office]
        .iter()
        .map(|d| d.ok(&["case", "show", &reference, "--json"]))
        .collect();
    assert_eq!(shows[0], shows[1], "A and B differ");
    assert_eq!(shows[0], shows[2], "A and the office differ");
    assert_eq!(notes(&office, &reference), ["first", "before", "after"]);
    let case: serde_json::Value = serde_json::from_str(&shows[0]).expect("json");
    assert_eq!(case["reference"], reference.as_str());
    assert_eq!(case["person"]["sex"], "male");
    assert_eq!(
        office.json(&["case", "list"]).as_array().map(Vec::len),
        Some(1)
    );

    let history = office.json(&["case", "history", &reference]);
    let doubted: Vec<&serde_json::Value> = history
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["doubt"].is_string())
        .collect();
    assert_eq!(doubted.len(), 1, "{history}");
    assert_eq!(doubted[0]["time"], "1970-01-01T00:00:00Z");
    assert!(doubted[0]["received"].is_string());
    let text = office.ok(&["case", "history", &reference]);
    assert!(text.contains("dated before the case was created"), "{text}");
    for d in [&a, &b, &office] {
        d.ok(&["check"]);
    }
}
