//! `cairn-server backup`: taken while the server runs, restored, and served again.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use cairn_protocol::{pull_path, PullPage};
use common::TestServer;

fn backup(dir: &Path, out: &Path) -> Output {
    Command::new(cairn_testkit::bin("cairn-server"))
        .args(["backup", "--json", "--dir"])
        .arg(dir)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

async fn pulled(server: &TestServer) -> Vec<(u64, Vec<u8>)> {
    let answer = server
        .signed(&server.office, "GET", &pull_path(0, None), vec![])
        .await;
    assert_eq!(answer.status, 200);
    PullPage::decode(&answer.body).unwrap().changes
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_the_same_changes() {
    let mut server = TestServer::start();
    let a = server.device("T1").await;
    let b = server.device("T2").await;
    for seq in 1..=3 {
        let changes = [
            server.sealed(&a, seq, b"from a"),
            server.sealed(&b, seq, b"from b"),
        ];
        assert_eq!(server.push(&a, &changes[..1]).await.push().acked, seq);
        assert_eq!(server.push(&b, &changes[1..]).await.push().acked, seq);
    }
    let before = pulled(&server).await;
    assert_eq!(before.len(), 6);

    let copies = tempfile::tempdir().unwrap();
    let out = copies.path().join("server-backup.db");
    let srv = server.process.dir().path();
    let made = backup(&srv, &out);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(
        said["bytes"].as_u64(),
        Some(std::fs::metadata(&out).unwrap().len())
    );
    // Nothing else was left beside it (the temporary copy is gone).
    assert_eq!(std::fs::read_dir(copies.path()).unwrap().count(), 1);

    // It never replaces a file, even its own earlier backup.
    let original = std::fs::read(&out).unwrap();
    let again = backup(&srv, &out);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(std::fs::read(&out).unwrap(), original);

    // A change after the backup is not in it.
    let late = server.sealed(&a, 4, b"after the backup");
    assert_eq!(server.push(&a, &[late]).await.push().acked, 4);
    assert_eq!(pulled(&server).await.len(), 7);

    // Restore: stop, put the copy in the database's place (without the old WAL), start.
    server.process.stop();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(srv.join(format!("server.db{suffix}")));
    }
    std::fs::copy(&out, srv.join("server.db")).unwrap();
    server.restart();
    assert_eq!(pulled(&server).await, before);
    // The restored server accepts where the devices stand in the copy.
    let redo = server.sealed(&a, 4, b"after the backup");
    assert_eq!(server.push(&a, &[redo]).await.push().acked, 4);
}

#[test]
fn a_postgresql_database_is_refused_with_pg_dump_named() {
    let office = cairn_crypto::DeviceKeys::generate();
    let dir = cairn_testkit::ServerDir::init(cairn_protocol::OfficeKeys::from_keys(&office));
    dir.set("database", "\"postgres://cairn@127.0.0.1:1/cairn\"");
    let out = dir.root().join("copy.db");
    let refused = backup(&dir.path(), &out);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));
    assert!(!out.exists());
}

#[test]
fn a_missing_server_directory_is_a_clear_failure() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("copy.db");
    let refused = backup(&temp.path().join("nowhere"), &out);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not exist"));
    assert!(!out.exists());
}

/// Pushes go on while the backup runs: the backup ends while they go on, the copy holds a
/// device's changes 1 to k without a gap, and the restored server counts on from k.
#[tokio::test]
async fn a_backup_taken_during_pushes_holds_a_consistent_prefix() {
    let mut server = TestServer::start_with(&[
        ("device_requests_per_sec", "1000"),
        ("device_request_burst", "1000"),
    ]);
    let a = server.device("T1").await;
    // 8 MB more than a few steps of copying: a copy made in steps restarts at every write
    // between two of them, and never ended while pushes went on.
    server
        .process
        .dir()
        .db()
        .execute_batch(
            "CREATE TABLE filler (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8000)
             INSERT INTO filler SELECT randomblob(1000) FROM n;",
        )
        .unwrap();
    let copies = tempfile::tempdir().unwrap();
    let out = copies.path().join("during.db");
    let srv = server.process.dir().path();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (ten, ten_pushed) = tokio::sync::oneshot::channel();
    // Pushes one change at a time until the backup has finished.
    let pushing = async {
        let mut sent = Vec::new();
        let mut ten = Some(ten);
        for seq in 1..=2000 {
            let change = server.sealed(&a, seq, &[seq as u8; 2000]);
            let answer = server.push(&a, std::slice::from_ref(&change)).await;
            assert_eq!(answer.push().acked, seq);
            sent.push(change);
            if seq == 10 {
                let _ = ten.take().unwrap().send(());
            }
            if done.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
        }
        sent
    };
    let backing = async {
        ten_pushed.await.unwrap();
        let (srv, out) = (srv.clone(), out.clone());
        let made = tokio::task::spawn_blocking(move || backup(&srv, &out)).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        made
    };
    let (sent, made) = tokio::join!(pushing, backing);
    let made = made.unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(
        sent.len() < 2000,
        "the backup ended only once the pushes stopped"
    );

    server.process.stop();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(srv.join(format!("server.db{suffix}")));
    }
    std::fs::copy(&out, srv.join("server.db")).unwrap();
    server.restart();
    let restored = pulled(&server).await;
    let k = restored.len() as u64;
    println!("the copy holds {k} of the {} changes pushed", sent.len());
    assert!(k >= 10, "taken after the tenth push");
    // Changes 1 to k, as sent (the office's pull lists every team's in server order).
    let held: Vec<&Vec<u8>> = restored.iter().map(|(_, bytes)| bytes).collect();
    let first: Vec<&Vec<u8>> = sent.iter().take(held.len()).collect();
    assert!(held == first, "the copy is not changes 1 to {k} as sent");
    let next = server.sealed(&a, k + 1, &[(k + 1) as u8; 2000]);
    assert_eq!(server.push(&a, &[next]).await.push().acked, k + 1);
}
