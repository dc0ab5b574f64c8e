//! The database's disk fills up: a push is refused as `disk_full` (507), never as a database
//! that cannot be reached, nothing of it is stored, and once space is freed the same push is
//! stored. On SQLite (its file on a small tmpfs) and on PostgreSQL (a tablespace on one, when
//! `CAIRN_TEST_POSTGRES_URL` is set). Both need to mount a tmpfs (root): where that is not
//! allowed, they say they were skipped.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use cairn_testkit::SmallDisk;
use common::TestServer;

/// Pushes changes of 200 KB of noise until the disk refuses one batch; then frees the disk
/// and pushes that batch again.
async fn fill_then_free(server: &TestServer, disk: &SmallDisk) {
    let device = server.device("T1").await;
    let filler = disk.fill_leaving(512 << 10);
    let mut seq = 0;
    let refused = loop {
        let batch: Vec<Vec<u8>> = (1..=4)
            .map(|i| {
                let noise: Vec<u8> = (0..200_000).map(|_| rand::random::<u8>()).collect();
                server.sealed(&device, seq + i, &noise)
            })
            .collect();
        let answer = server.push(&device, &batch).await;
        if answer.status != 200 {
            assert_eq!(
                (answer.status, answer.code().as_str()),
                (507, "disk_full"),
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            let message = answer.error().message;
            assert!(message.contains("the server's disk is full"), "{message}");
            break batch;
        }
        seq += 4;
        assert!(seq < 400, "the disk never filled up");
    };
    std::fs::remove_file(filler).unwrap();
    let stored = server.push(&device, &refused).await.push();
    assert_eq!(
        stored.acked,
        seq + 4,
        "nothing of the refused batch was kept"
    );
}

#[tokio::test]
async fn a_full_sqlite_disk_is_disk_full_and_recovers_once_freed() {
    let disk = match SmallDisk::mount(16) {
        Ok(disk) => disk,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let database = disk.path().join("server.db");
    let server =
        TestServer::start_with(&[("database", &format!("{:?}", database.display().to_string()))]);
    fill_then_free(&server, &disk).await;
}

#[tokio::test]
async fn a_full_postgresql_tablespace_is_disk_full_and_recovers_once_freed() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let disk = match SmallDisk::mount(16) {
        Ok(disk) => disk,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    // PostgreSQL keeps a tablespace in a directory of its own user's.
    let dir = disk.path().join("pg");
    std::fs::create_dir(&dir).unwrap();
    let owned = std::process::Command::new("chown")
        .args(["postgres:postgres"])
        .arg(&dir)
        .status();
    if !owned.is_ok_and(|s| s.success()) {
        println!("skipped: cannot give the tablespace's directory to the postgres user");
        return;
    }
    let name = format!("cairn_full_{}", hex::encode(rand::random::<[u8; 6]>()));
    let admin = |sql: String| {
        let url = url.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(connection);
            let done = client.batch_execute(&sql).await;
            drop(client);
            let _ = task.await;
            done
        }
    };
    if let Err(e) = admin(format!(
        "CREATE TABLESPACE {name} LOCATION '{}'",
        dir.display()
    ))
    .await
    {
        println!("skipped: cannot make a tablespace on the small disk ({e})");
        return;
    }
    admin(format!("CREATE SCHEMA {name}")).await.unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped =
        format!("{url}{sep}options=-c%20search_path%3D{name}%20-c%20default_tablespace%3D{name}");
    // Kept mounted until the tablespace is dropped, whatever the test does.
    let disk = std::sync::Arc::new(disk);
    let filled = disk.clone();
    let outcome = tokio::spawn(async move {
        let server = TestServer::start_with(&[("database", &format!("\"{scoped}\""))]);
        fill_then_free(&server, &filled).await;
    })
    .await;
    admin(format!("DROP SCHEMA {name} CASCADE")).await.unwrap();
    admin(format!("DROP TABLESPACE {name}")).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
