//! Someone with the vault file but not the passphrase puts an older copy of an encrypted
//! record back over the current one: cairn notices instead of acting on stale state.

use cairn_e2e::{Device, Server};

/// The `meta` row `key` of a device's vault, as stored (version and ciphertext).
fn row(d: &Device, key: &str) -> (i64, Vec<u8>) {
    let conn = rusqlite::Connection::open(d.home().join("vault.db")).expect("vault db");
    conn.query_row(
        "SELECT version, value FROM meta WHERE key = ?1",
        [key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("row")
}

fn put_back(d: &Device, key: &str, old: &(i64, Vec<u8>)) {
    let conn = rusqlite::Connection::open(d.home().join("vault.db")).expect("vault db");
    let n = conn
        .execute(
            "UPDATE meta SET version = ?2, value = ?3 WHERE key = ?1",
            rusqlite::params![key, old.0, old.1],
        )
        .expect("update");
    assert_eq!(n, 1);
}

fn assert_tampered(d: &Device, args: &[&str], record: &str) {
    let run = d.run(args);
    assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
    assert!(
        run.stderr.contains("tampered") && run.stderr.contains(record),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

#[test]
fn an_old_settings_record_put_back_is_reported_not_used() {
    let d = Device::init("T03");
    d.new_case(&["--kind", "killed", "--place", "KHR"]);
    let old = row(&d, "settings");
    let second = d.new_case(&["--kind", "killed", "--place", "KHR"]);
    assert!(second.ends_with("-0002"), "{second}");
    // The older record says the next reference is 0002: used, it would mint 0002 twice.
    put_back(&d, "settings", &old);
    assert_tampered(
        &d,
        &["case", "new", "--kind", "killed", "--place", "KHR"],
        "settings",
    );
    assert_tampered(&d, &["case", "list"], "settings");
}

#[test]
fn an_old_outbox_record_put_back_is_reported_not_used() {
    let office = Device::office();
    let server = Server::start(&office);
    let d = Device::init("T03");
    server.join(&office, &d, "T03", &server.url());
    d.new_case(&["--kind", "killed", "--place", "KHR"]);
    d.ok(&["sync"]);
    // How far the server took this device's changes, one change ago.
    let old = row(&d, "outbox");
    d.new_case(&["--kind", "killed", "--place", "KHR"]);
    d.ok(&["sync"]);
    put_back(&d, "outbox", &old);
    assert_tampered(&d, &["status"], "outbox");
    assert_tampered(&d, &["sync"], "outbox");
}

#[test]
fn vault_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = Device::init("T03");
    d.new_case(&["--kind", "killed", "--place", "KHR"]);
    let mode = |p: std::path::PathBuf| {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    };
    assert_eq!(mode(d.home()), 0o700);
    for name in ["keys.age", "vault.db", "vault.db-wal"] {
        let path = d.home().join(name);
        if name == "vault.db-wal" && !path.exists() {
            continue;
        }
        assert_eq!(mode(path), 0o600, "{name}");
    }
    // Loosened by a copy, closed up again at the next unlock.
    std::fs::set_permissions(
        d.home().join("vault.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    d.ok(&["case", "list"]);
    assert_eq!(mode(d.home().join("vault.db")), 0o600);
}
