//! The `cairn-server` process: its command line, its secrecy, its shutdown.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::process::Command;

use cairn_crypto::{DeviceKeys, SealedChange};
use cairn_protocol::{pull_path, OfficeKeys, PullPage, Roster};
use common::TestServer;

const MARKER: &str = "MARKER-casualty-Rahimi-7f3a9c";

#[tokio::test]
async fn the_server_never_stores_or_logs_plaintext() {
    let mut server = TestServer::start();
    let a = server.device("T1").await;
    let plaintext = format!("{{\"name\": \"{MARKER}\", \"notes\": \"{MARKER}\"}}");
    let change = server.sealed(&a, 1, plaintext.as_bytes());
    assert_eq!(
        server
            .push(&a, std::slice::from_ref(&change))
            .await
            .push()
            .acked,
        1
    );
    let answer = server
        .signed(&server.office, "GET", &pull_path(0, None), vec![])
        .await;
    let page = PullPage::decode(&answer.body).unwrap();
    assert_eq!(page.changes[0].1, change);
    // The office can read what the server relayed...
    let opened = SealedChange::from_bytes(&page.changes[0].1)
        .unwrap()
        .open(
            &Roster::build(&OfficeKeys::from_keys(&server.office), &server.chain())
                .keyring(&server.office),
        )
        .unwrap();
    assert_eq!(opened, plaintext.as_bytes());

    let log = server.process.stop();
    assert!(log.contains("push"), "requests are logged: {log}");
    // ...but nothing the server wrote holds it.
    assert!(!log.contains(MARKER));
    let mut files = 0;
    for entry in std::fs::read_dir(server.process.dir().path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} holds the plaintext",
            path.display()
        );
    }
    assert!(files >= 5, "server.toml, cert, key, fingerprint, database");
    assert!(
        !server.process.dir().path().join("listening").exists(),
        "removed at shutdown"
    );
}

/// A log line the server cannot write (the disk under its log is full) costs that line, never
/// the request: tracing's fallback report panicked in the handler, so a client saw the
/// connection close instead of the answer (found by the soak's full server disk).
#[tokio::test]
async fn a_log_it_cannot_write_never_takes_a_request_down() {
    let server = TestServer::start_logging_to(std::path::Path::new("/dev/full"));
    let a = server.device("T1").await;
    for seq in 1..=3 {
        let change = server.sealed(&a, seq, b"a change");
        let answer = server.push(&a, std::slice::from_ref(&change)).await;
        assert_eq!(answer.push().acked, seq);
    }
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let mut server = TestServer::start();
    let a = server.device("T1").await;
    let batch: Vec<Vec<u8>> = (1..=200).map(|s| server.sealed(&a, s, b"x")).collect();
    let body = cairn_protocol::encode_push(&batch);
    let auth =
        cairn_protocol::sign_request(&a, "POST", "/v2/push", &body, cairn_protocol::unix_now());
    let request = server
        .client
        .post(format!("{}/v2/push", server.base()))
        .header("authorization", auth)
        .body(body)
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let log = server.process.stop();
    // Either the request was answered in full, or it never reached the server.
    if let Ok(Ok(response)) = in_flight.await {
        assert_eq!(response.status(), 200, "{log}");
    }
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn command_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("office.pub");
    std::fs::write(
        &key,
        OfficeKeys::from_keys(&DeviceKeys::generate()).to_string(),
    )
    .unwrap();
    let server_dir = dir.path().join("s");
    let bin = cairn_testkit::bin("cairn-server");
    let init = |extra: &[&str]| {
        Command::new(&bin)
            .args(["init", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&server_dir)
            .arg("--office-key")
            .arg(&key)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = init(&[]);
    assert_eq!(first.status.code(), Some(0));
    let fingerprint = String::from_utf8(first.stdout).unwrap();
    assert_eq!(fingerprint.trim().len(), 64);
    let file = std::fs::read_to_string(server_dir.join("fingerprint")).unwrap();
    assert_eq!(file.trim(), fingerprint.trim());
    let config = std::fs::read_to_string(server_dir.join("server.toml")).unwrap();
    assert!(!config.contains("listen = \"127.0.0.1:0\""), "{config}");
    for setting in [
        "listen = \"127.0.0.1:",
        "database = \"server.db\"",
        "max_request_bytes = 4194304",
        "max_page = 1000",
        "max_clock_skew_secs = 300",
        "max_change_bytes = 2097152",
        "device_quota_bytes = 8589934592",
        "max_connections = 512",
        "max_inflight_bytes = 33554432",
        "header_timeout_secs = 10",
        "idle_timeout_secs = 30",
        "body_timeout_secs = 60",
        "[office]",
    ] {
        assert!(config.contains(setting), "{setting}");
    }

    let second = init(&[]);
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8(second.stderr).unwrap();
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(
        std::fs::read_to_string(server_dir.join("server.toml")).unwrap(),
        config
    );

    std::fs::write(&key, "not an office key\n").unwrap();
    let out = Command::new(&bin)
        .args(["init", "--dir"])
        .arg(dir.path().join("t"))
        .arg("--office-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cairn office pubkey"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear sentence: {err}");

    let out = Command::new(&bin)
        .args(["run", "--dir"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("cairn-server init"));

    let out = Command::new(&bin)
        .args(["init", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    for args in [&["--help"][..], &["init", "--help"], &["run", "--help"]] {
        let out = Command::new(&bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage"));
    }
}

/// `init --listen 127.0.0.1:0` saves a real port, not 0: the admissions name the server's
/// address, so a port chosen again at every start would break all of them at a restart.
#[test]
fn init_with_port_zero_saves_a_free_port_the_server_starts_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("office.pub");
    let office = OfficeKeys::from_keys(&DeviceKeys::generate());
    std::fs::write(&key, office.to_string()).unwrap();
    let srv = dir.path().join("s");
    let bin = cairn_testkit::bin("cairn-server");
    let init = Command::new(&bin)
        .args(["init", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&srv)
        .arg("--office-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(init.status.code(), Some(0));
    let config = std::fs::read_to_string(srv.join("server.toml")).unwrap();
    let saved: std::net::SocketAddr = config
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    assert_eq!(saved.ip().to_string(), "127.0.0.1");
    assert_ne!(saved.port(), 0, "{config}");
    let said = String::from_utf8(init.stderr).unwrap();
    assert!(
        said.contains(&format!("chose the free port {}", saved.port())),
        "{said}"
    );

    // Started twice (a restart), it listens on the saved port both times.
    for _ in 0..2 {
        let _ = std::fs::remove_file(srv.join("listening"));
        let mut child = Command::new(&bin)
            .args(["run", "--dir"])
            .arg(&srv)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let listening = loop {
            let text = std::fs::read_to_string(srv.join("listening")).unwrap_or_default();
            if let Ok(addr) = text.trim().parse::<std::net::SocketAddr>() {
                break addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(listening, saved);
    }
}

/// The database, its WAL and shared-memory files, the TLS key and the configuration are
/// owner-only from `init`, and made so again at `run` when someone (or an older
/// cairn-server) left them readable by others.
#[test]
fn the_servers_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = cairn_testkit::ServerDir::init(OfficeKeys::from_keys(&DeviceKeys::generate()));
    let srv = dir.path();
    let mode = |name: &str| {
        std::fs::metadata(srv.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    let secret = ["server.db", "key.pem", "server.toml"];
    for name in secret {
        assert_eq!(mode(name), 0o600, "{name} after init");
    }
    // Loosened by hand, with a WAL and shared-memory file left readable by all.
    for name in secret.iter().chain(&["server.db-wal", "server.db-shm"]) {
        let path = srv.join(name);
        if !path.exists() {
            std::fs::write(&path, b"").unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut server = dir.spawn();
    let srv = server.dir().path();
    let mode = |name: &str| {
        std::fs::metadata(srv.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for name in secret.iter().chain(&["server.db-wal", "server.db-shm"]) {
        assert_eq!(mode(name), 0o600, "{name} after run");
    }
    let log = server.stop();
    assert!(log.contains("owner-only now"), "{log}");
}

#[tokio::test]
async fn readyz_answers_ready_while_the_database_answers() {
    let server = TestServer::start();
    let answer = server.send("GET", "/readyz", vec![], None).await;
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"ready"[..])
    );
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_and_hold_no_body() {
    let mut server = TestServer::start_with(&[("log_format", "\"json\"")]);
    let a = server.device("T1").await;
    let change = server.sealed(&a, 1, MARKER.as_bytes());
    assert_eq!(server.push(&a, &[change]).await.push().acked, 1);
    let log = server.process.stop();
    assert!(!log.contains(MARKER));
    let mut requests = Vec::new();
    // stdout shares the file here: its one line says where the server listens.
    for line in log.lines().filter(|l| !l.starts_with("listening on ")) {
        let line: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if line["message"] == "request" {
            requests.push(line);
        }
    }
    let push = requests
        .iter()
        .find(|l| l["path"] == "/v2/push")
        .unwrap_or_else(|| panic!("no push request logged: {log}"));
    assert_eq!(push["status"], 200);
    assert_eq!(push["device"], a.id().short());
}
