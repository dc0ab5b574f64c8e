//! What a thief without the passphrase reads from `vault.db` (issue #19, item 12): no team
//! name, no attachment's size or chunk count, no arrival time, in any column or anywhere in
//! the raw bytes of the file and its WAL. And a vault of the format before, which kept them
//! in clear, carried over whole at open, even when the carrying over is killed midway.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use cairn_crypto::{DeviceId, KeyFileCost, LocalCipher, SecretString, TeamKey};
use cairn_model::{Edit, Kind};
use cairn_vault::at_rest;
use cairn_vault::{Home, NewAttachment, NewVault, Role, Vault};
use rand::RngCore;
use rusqlite::params;

/// Team names long enough that finding one by chance in ciphertext is out of the question.
const NORTH: &str = "NRIDGE7Q";
const SOUTH: &str = "SMARSH4K";
/// 211 whole chunks and a short one: a size and a chunk count no counter reaches here.
const SIZE: usize = 211 * 16 * 1024 + 77;
const COUNT: i64 = 212;

fn pass() -> SecretString {
    SecretString::from("pass".to_owned())
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn now_ms() -> i64 {
    (now().unix_timestamp_nanos() / 1_000_000) as i64
}

fn key(team: &str) -> TeamKey {
    TeamKey::from_bytes(team, 1, [if team == NORTH { 1 } else { 2 }; 32])
}

fn vault(dir: &Path, name: &str, team: &str, role: Role) -> Vault {
    let mut v = Home::new(dir.join(name))
        .create(
            &pass(),
            KeyFileCost::LogN(4),
            NewVault {
                team: team.into(),
                name: None,
                role,
            },
            now(),
        )
        .unwrap();
    let keys: Vec<TeamKey> = match role {
        Role::Office => vec![key(NORTH), key(SOUTH)],
        _ => vec![key(team)],
    };
    v.add_keys(&keys).unwrap();
    v
}

/// Two field devices of two teams with a case each (one with an attachment), and the office
/// holding both cases as received changes and the attachment as fetched chunks.
struct World {
    dir: tempfile::TempDir,
    north: Vault,
    office: Vault,
    file: Vec<u8>,
    sha: String,
    references: Vec<String>,
    /// When the office received the changes: every arrival time lies within.
    received: (i64, i64),
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut north = vault(dir.path(), "north", NORTH, Role::Field);
    let mut south = vault(dir.path(), "south", SOUTH, Role::Field);
    let mut office = vault(dir.path(), "office", "office", Role::Office);
    let mut references = Vec::new();
    for v in [&mut north, &mut south] {
        let created = v
            .create_case(
                Kind::Missing,
                "KHR",
                &[Edit::set("person.sex", "female")],
                now(),
            )
            .unwrap();
        v.edit_case(
            &created.reference,
            &[Edit::Note { text: "n".into() }],
            now(),
        )
        .unwrap();
        references.push(created.reference);
    }
    let mut file = vec![0u8; SIZE];
    rand::rngs::OsRng.fill_bytes(&mut file);
    let path = dir.path().join("photo.bin");
    std::fs::write(&path, &file).unwrap();
    let attachment = NewAttachment {
        path,
        name: "photo.bin".into(),
        media_type: "application/octet-stream".into(),
        caption: None,
        exif_time: None,
        gps: None,
        limit: 1 << 30,
    };
    let sha = north
        .attach(&references[0], attachment, now(), &mut |_| {})
        .unwrap()
        .entry
        .sha256;
    let start = now_ms();
    let roster = cairn_testkit::roster(
        &cairn_crypto::DeviceKeys::generate(),
        &[(north.keys(), NORTH), (south.keys(), SOUTH)],
    );
    for v in [&north, &south] {
        let page: Vec<Vec<u8>> = v
            .outbox(0, 100)
            .unwrap()
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        let report = office.apply_pulled(&page, 1, &roster).unwrap();
        assert!(report.applied >= 2, "{report:?}");
    }
    let end = now_ms();
    let wanted = office.wanted_blobs().unwrap();
    assert_eq!(wanted.len(), 1);
    let w = &wanted[0];
    assert_eq!((w.count as i64, w.size), (COUNT, SIZE as u64));
    for chunk in north.sealed_chunks(&w.blob, 0, 1000).unwrap() {
        office.store_fetched_chunk(w, &chunk).unwrap();
    }
    office.finish_blob(w.slot).unwrap();
    north.mark_chunks_uploaded(&w.blob, 5).unwrap();
    World {
        dir,
        north,
        office,
        file,
        sha,
        references,
        received: (start, end),
    }
}

/// The raw bytes of the database and its WAL.
fn raw(home: &Home) -> Vec<u8> {
    let mut bytes = std::fs::read(home.database()).unwrap();
    let wal = PathBuf::from(format!("{}-wal", home.database().display()));
    if let Ok(more) = std::fs::read(wal) {
        bytes.extend(more);
    }
    bytes
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Counters that are not an attachment's facts: numbers of changes, chunks, rows, versions.
const COUNTERS: [&str; 7] = [
    "changes.seq",
    "changes.ops",
    "refused.seq",
    "blobs.slot",
    "blob_chunks.slot",
    "blob_chunks.idx",
    "meta.version",
];

/// Asserts that nothing in the vault's files names a team, the attachment's size or chunk
/// count, or a time within `received`.
fn assert_nothing_shows(home: &Home, received: (i64, i64)) {
    let bytes = raw(home);
    for team in [NORTH, SOUTH] {
        for name in [team.to_string(), team.to_ascii_lowercase()] {
            assert!(!contains(&bytes, name.as_bytes()), "{name} in {home:?}");
        }
    }
    // An arrival time is a 6-byte integer in SQLite's records (and the low 6 bytes of an
    // 8-byte one): none in the window the changes arrived in.
    let found = bytes.windows(6).position(|w| {
        let mut b = [0u8; 8];
        b[2..].copy_from_slice(w);
        (received.0..=received.1).contains(&i64::from_be_bytes(b))
    });
    assert_eq!(found, None, "an arrival time in {home:?}");

    let conn = rusqlite::Connection::open(home.database()).unwrap();
    let tables: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, column) in columns.iter().enumerate() {
                let at = format!("{table}.{column}");
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Integer(n) => {
                        assert!(!(received.0..=received.1).contains(&n), "{at} is a time");
                        if !COUNTERS.contains(&at.as_str()) {
                            assert!(n != SIZE as i64 && n != COUNT, "{at} = {n}");
                        }
                    }
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        for team in [NORTH, SOUTH] {
                            assert!(!contains(&t.to_ascii_uppercase(), team.as_bytes()), "{at}");
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    // Every stored chunk has one length: the last one does not give the file's size.
    let lengths: Vec<i64> = {
        let mut stmt = conn
            .prepare("SELECT DISTINCT length(sealed) FROM blob_chunks")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert!(lengths.len() <= 1, "{lengths:?}");
}

#[test]
fn vault_db_names_no_team_size_or_arrival_time() {
    let w = world();
    for v in [&w.north, &w.office] {
        assert_nothing_shows(v.home(), w.received);
    }
    // And all of it is still there for whoever holds the keys.
    let history = w.office.history(&w.references[1]).unwrap();
    assert!(history.iter().all(|s| s
        .entry
        .received_ms
        .is_some_and(|t| (w.received.0..=w.received.1).contains(&t))));
    let out = w.dir.path().join("out.bin");
    let mut office = w.office;
    office
        .attachment_get(&w.references[0], &w.sha, &out)
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), w.file);
    assert_eq!(w.north.blob_outbox().unwrap()[0].held_by_server, 5);
    office.check().unwrap();
    w.north.check().unwrap();
}

/// Rewrites a vault as format 2 kept it: sealed changes, chunks and attachment facts in
/// clear, arrival times in a column of their own.
fn to_format_2(home: &Home, cipher: &LocalCipher) {
    let conn = rusqlite::Connection::open(home.database()).unwrap();
    // As cairn wrote it: what is deleted is zeroed.
    conn.execute_batch(
        "PRAGMA secure_delete = ON;
         ALTER TABLE changes ADD COLUMN received_at INTEGER;",
    )
    .unwrap();
    let rows: Vec<(i64, Vec<u8>, i64, Vec<u8>)> = {
        let mut stmt = conn
            .prepare("SELECT rowid, author, seq, sealed FROM changes")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for (rowid, author, seq, stored) in rows {
        let author = DeviceId(author.try_into().unwrap());
        let (sealed, at) = at_rest::open_change(cipher, &author, seq as u64, &stored).unwrap();
        conn.execute(
            "UPDATE changes SET sealed = ?2, received_at = ?3 WHERE rowid = ?1",
            params![rowid, sealed, at],
        )
        .unwrap();
    }
    conn.execute_batch(
        "ALTER TABLE changes DROP COLUMN received;
         ALTER TABLE changes DROP COLUMN draft;
         ALTER TABLE blobs ADD COLUMN team TEXT NOT NULL DEFAULT '';
         ALTER TABLE blobs ADD COLUMN count INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE blobs ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE blobs ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;",
    )
    .unwrap();
    type Row = (i64, Vec<u8>, Vec<u8>, Vec<u8>);
    let rows: Vec<Row> = {
        let mut stmt = conn
            .prepare("SELECT slot, blob, author, facts FROM blobs")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for (slot, blob, author, stored) in rows {
        let f = at_rest::open_facts(cipher, &blob, &author, &stored).unwrap();
        conn.execute(
            "UPDATE blobs SET team = ?2, count = ?3, size = ?4, uploaded = ?5 WHERE slot = ?1",
            params![slot, f.team, f.count, f.size as i64, f.uploaded],
        )
        .unwrap();
    }
    let rows: Vec<(i64, u32, Vec<u8>)> = {
        let mut stmt = conn
            .prepare("SELECT slot, idx, sealed FROM blob_chunks")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for (slot, idx, stored) in rows {
        let sealed = at_rest::open_chunk(cipher, slot, idx, &stored).unwrap();
        conn.execute(
            "UPDATE blob_chunks SET sealed = ?3 WHERE slot = ?1 AND idx = ?2",
            params![slot, idx, sealed],
        )
        .unwrap();
    }
    conn.execute_batch(
        "ALTER TABLE blobs DROP COLUMN facts;
         ALTER TABLE blob_chunks DROP COLUMN draft;",
    )
    .unwrap();
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'format'",
        params![2i64.to_be_bytes().to_vec()],
    )
    .unwrap();
}

fn format(home: &Home) -> i64 {
    let conn = rusqlite::Connection::open(home.database()).unwrap();
    let v: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .unwrap();
    i64::from_be_bytes(v.try_into().unwrap())
}

/// Everything a vault shows of its cases, changes and attachments.
#[derive(Debug, PartialEq)]
struct Seen {
    list: Vec<cairn_vault::CaseSummary>,
    history: Vec<Vec<cairn_vault::HistoryStep>>,
    outbox: Vec<(u64, Vec<u8>)>,
    delivery: Vec<(DeviceId, u64, u64)>,
    blob_outbox: Vec<cairn_vault::OutboxBlob>,
    attachments: Vec<Vec<cairn_vault::AttachmentState>>,
}

fn seen(v: &Vault) -> Seen {
    let list = v.list().unwrap();
    let refs: Vec<String> = list.iter().map(|s| s.reference.clone()).collect();
    Seen {
        history: refs.iter().map(|r| v.history(r).unwrap()).collect(),
        attachments: refs.iter().map(|r| v.attachments(r).unwrap()).collect(),
        list,
        outbox: v.outbox(0, 1000).unwrap(),
        delivery: v.delivery().unwrap(),
        blob_outbox: v.blob_outbox().unwrap(),
    }
}

/// Opens `home` in a child process with the failpoint `point` armed, and expects it killed
/// there.
fn killed_opening(home: &Home, point: &str) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_kill_midway_through_carrying_over_leaves_format_2_and_the_next_open_redoes_it",
            "--nocapture",
        ])
        .env("CAIRN_FAILPOINT", point)
        .env(CHILD, home.dir())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{point}: {status:?}");
}

/// Set in the child process of the kill test: the vault it opens.
const CHILD: &str = "CAIRN_AT_REST_TEST_OPEN";

#[test]
fn a_format_2_vault_is_carried_over_whole_at_open() {
    let w = world();
    let mut before = Vec::new();
    for v in [&w.north, &w.office] {
        before.push(seen(v));
    }
    let homes = [w.north.home().clone(), w.office.home().clone()];
    let ciphers = [
        w.north.keys().local_cipher(),
        w.office.keys().local_cipher(),
    ];
    // Format 2 came before heads too.
    for v in [&w.north, &w.office] {
        cairn_vault::as_made_before_heads(v.home(), v.keys()).unwrap();
    }
    drop((w.north, w.office));
    for (home, cipher) in homes.iter().zip(&ciphers) {
        to_format_2(home, cipher);
        assert_eq!(format(home), 2);
        assert!(
            contains(&raw(home), NORTH.as_bytes()),
            "the fixture is in clear"
        );
    }
    for (home, before) in homes.iter().zip(&before) {
        let v = home.open(&pass()).unwrap();
        assert_eq!(
            format(home),
            4,
            "carried over to at rest, then given a head"
        );
        assert_eq!(&seen(&v), before);
        v.check().unwrap();
        drop(v);
        assert_nothing_shows(home, w.received);
        // Opening again finds nothing to do.
        let v = home.open(&pass()).unwrap();
        assert_eq!(&seen(&v), before);
    }
    let mut office = homes[1].open(&pass()).unwrap();
    let out = w.dir.path().join("out.bin");
    office
        .attachment_get(&w.references[0], &w.sha, &out)
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), w.file);
}

#[test]
fn a_kill_midway_through_carrying_over_leaves_format_2_and_the_next_open_redoes_it() {
    if let Some(dir) = std::env::var_os(CHILD) {
        // The child: open, and be killed at the failpoint on the way.
        let _ = Home::new(PathBuf::from(dir)).open(&pass());
        return;
    }
    let w = world();
    let before = seen(&w.office);
    let home = w.office.home().clone();
    let cipher = w.office.keys().local_cipher();
    cairn_vault::as_made_before_heads(w.office.home(), w.office.keys()).unwrap();
    drop(w.office);
    to_format_2(&home, &cipher);
    let fixture = {
        let conn = rusqlite::Connection::open(home.database()).unwrap();
        let dump = |sql: &str| -> Vec<Vec<u8>> {
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        (
            dump("SELECT sealed FROM changes ORDER BY rowid"),
            dump("SELECT sealed FROM blob_chunks ORDER BY rowid"),
        )
    };
    for point in ["upgrade:changes", "upgrade:blobs"] {
        killed_opening(&home, point);
        assert_eq!(format(&home), 2, "{point}");
        let conn = rusqlite::Connection::open(home.database()).unwrap();
        let dump = |sql: &str| -> Vec<Vec<u8>> {
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(
            (
                dump("SELECT sealed FROM changes ORDER BY rowid"),
                dump("SELECT sealed FROM blob_chunks ORDER BY rowid")
            ),
            fixture,
            "{point}: format 2 is left as it was"
        );
    }
    let v = home.open(&pass()).unwrap();
    assert_eq!(format(&home), 4);
    assert_eq!(seen(&v), before);
    v.check().unwrap();
    drop(v);
    assert_nothing_shows(&home, w.received);
}
