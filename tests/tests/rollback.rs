//! Someone with the vault's files but not its passphrase rolls part of it back (issue #19
//! item 11): one case put back as it was with its last change deleted, an older copy of the
//! whole `vault.db`, the head file deleted, a forged half-write. cairn notices, names what it
//! can, writes nothing, and `cairn export` still reads the cases out.

use std::path::{Path, PathBuf};

use cairn_e2e::Device;

fn db(d: &Device) -> PathBuf {
    d.home().join("vault.db")
}

/// A refusal that says what was found and what is safe, never to wipe.
fn assert_rolled_back(d: &Device, args: &[&str], said: &[&str]) {
    let run = d.run(args);
    assert_eq!(run.code, 1, "{args:?}: {run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    for said in said
        .iter()
        .chain(&["rolled back", "cases in it are kept", "cairn export"])
    {
        assert!(run.stderr.contains(said), "{args:?}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("wipe"), "{}", run.stderr);
}

/// `cairn export` reads out every case of a vault that commands refuse.
fn exports(d: &Device, references: &[&str]) -> String {
    let out = d.home().with_file_name("rescued");
    let run = d.run(&[
        "export",
        "--format",
        "json",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let exported = std::fs::read_to_string(out.join("cases.jsonl")).expect("cases.jsonl");
    for reference in references {
        assert!(exported.contains(reference), "{exported}");
    }
    run.stderr
}

/// The files of the database as they are now (the WAL too, if any).
fn copy_database(d: &Device) -> Vec<(PathBuf, Vec<u8>)> {
    ["vault.db", "vault.db-wal", "vault.db-shm"]
        .iter()
        .map(|name| d.home().join(name))
        .filter(|path| path.exists())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect()
}

fn put_back(home: &Path, files: &[(PathBuf, Vec<u8>)]) {
    for name in ["vault.db-wal", "vault.db-shm"] {
        let _ = std::fs::remove_file(home.join(name));
    }
    for (path, bytes) in files {
        std::fs::write(path, bytes).expect("put back");
    }
}

/// One case put back as it was before its last edit, that edit's change deleted: its snapshot
/// and log agree, so only the head tells. `cairn check` names the case; showing or editing it
/// is refused; another case still opens; everything can be exported.
#[test]
fn one_case_rolled_back_is_named_by_check_and_refused() {
    let d = Device::init("T03");
    let other = d.new_case(&["--kind", "killed", "--place", "KHR"]);
    let reference = d.new_case(&["--kind", "killed", "--place", "KHR"]);
    let id = d.case_id(&reference);
    let conn = rusqlite::Connection::open(db(&d)).expect("vault db");
    let row = || -> (Vec<u8>, Vec<u8>) {
        conn.query_row(
            "SELECT snapshot, summary FROM cases WHERE case_id = ?1",
            [id.as_bytes().as_slice()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("case row")
    };
    let before = row();
    d.ok(&[
        "case",
        "edit",
        &reference,
        "--note",
        "the grave was found empty",
    ]);
    assert_ne!(row(), before);
    conn.execute(
        "UPDATE cases SET snapshot = ?2, summary = ?3 WHERE case_id = ?1",
        rusqlite::params![id.as_bytes().as_slice(), before.0, before.1],
    )
    .expect("put the case back");
    let gone = conn
        .execute(
            "DELETE FROM changes WHERE case_id = ?1
             AND seq = (SELECT MAX(seq) FROM changes WHERE case_id = ?1)",
            [id.as_bytes().as_slice()],
        )
        .expect("delete its last change");
    assert_eq!(gone, 1);
    drop(conn);

    assert_rolled_back(&d, &["check"], &[&reference]);
    assert_rolled_back(&d, &["case", "show", &reference], &[&reference]);
    assert_rolled_back(
        &d,
        &["case", "edit", &reference, "--note", "more"],
        &[&reference],
    );
    d.ok(&["case", "show", &other]);
    exports(&d, &[&reference, &other]);
}

/// An older copy of the whole `vault.db` put back (the head file left as it is): every
/// command refuses it, `cairn check` included; export still reads it, with a warning.
#[test]
fn an_older_copy_of_the_database_is_refused() {
    let d = Device::init("T03");
    let first = d.new_case(&["--kind", "killed", "--place", "KHR"]);
    let older = copy_database(&d);
    d.new_case(&["--kind", "killed", "--place", "KHR"]);
    put_back(&d.home(), &older);
    for args in [&["check"][..], &["case", "list"], &["case", "show", &first]] {
        assert_rolled_back(&d, args, &["older than its head"]);
    }
    let said = exports(&d, &[&first]);
    assert!(said.contains("warning"), "{said}");
}

/// The head file deleted: refused, saying so, until it is put back. Deleting it together
/// with the head tables (so that the vault looks made before heads) is refused too: the
/// vault's encrypted records say it kept a head.
#[test]
fn a_deleted_head_file_is_refused_and_so_is_a_vault_stripped_of_its_head() {
    let d = Device::init("T03");
    let reference = d.new_case(&["--kind", "killed", "--place", "KHR"]);
    let head = d.home().join("vault.head");
    let kept = std::fs::read(&head).expect("head file");
    std::fs::remove_file(&head).expect("delete");
    assert_rolled_back(&d, &["case", "list"], &["vault.head is missing"]);
    assert_rolled_back(&d, &["check"], &["vault.head is missing"]);
    std::fs::write(&head, &kept).expect("put back");
    d.ok(&["case", "show", &reference]);
    assert!(d.ok(&["check"]).starts_with("ok"));

    std::fs::remove_file(&head).expect("delete");
    let conn = rusqlite::Connection::open(db(&d)).expect("vault db");
    conn.execute_batch("DROP TABLE cairn_head; DROP TABLE cairn_head_buckets;")
        .expect("drop the head");
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'format'",
        [3i64.to_be_bytes().to_vec()],
    )
    .expect("format 3, before heads");
    drop(conn);
    assert_rolled_back(&d, &["case", "list"], &["head tables were removed"]);
    exports(&d, &[&reference]);
}

/// A vault made before vaults kept a head gets one when it is first opened (trust on first
/// use), and from then on a rollback of it is refused.
#[test]
fn a_vault_made_before_heads_gets_one_and_is_then_guarded() {
    let d = Device::init("T03");
    let first = d.new_case(&["--kind", "killed", "--place", "KHR"]);
    d.as_made_before_heads();
    let older = copy_database(&d);
    let run = d.run(&["case", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(d.home().join("vault.head").exists());
    d.new_case(&["--kind", "killed", "--place", "KHR"]);
    assert!(d.ok(&["check"]).starts_with("ok"));
    put_back(&d.home(), &older);
    assert_rolled_back(&d, &["case", "list"], &["older than its head"]);
    exports(&d, &[&first]);
}

/// The half-write earlier cairn could leave (a record one generation ahead of `versions`),
/// made here as durable.rs makes it, in a vault that keeps a head: not completed (an older
/// copy of two rows makes the same pattern and would roll a record back, see the vault's
/// store tests), refused, and nothing written.
#[test]
fn a_forged_half_write_in_a_vault_with_a_head_is_refused() {
    let d = Device::init("T03");
    d.new_case(&["--kind", "killed", "--place", "KHR"]);
    d.write_record_ahead("settings");
    let files = d.files();
    assert_rolled_back(&d, &["case", "list"], &["encrypted records"]);
    assert_rolled_back(&d, &["check"], &["encrypted records"]);
    assert_eq!(d.files(), files, "nothing was written");
}
