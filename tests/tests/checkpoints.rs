//! Office checkpoints with real processes: the office publishes the compacted documents of its
//! cases at its sync; a device joining later loads them whole and pulls only what came after,
//! and ends reading every case byte for byte as a teammate that pulled every change. What the
//! checkpoint holds counts as delivered; a change the server withholds after it is still named.
//! A server that serves a part signed by anyone but the office, or another team's part, has it
//! refused, and the device pulls every change instead, losing nothing. `cairn check --deep`
//! fetches the signed changes behind each loaded document and names any the server lost or
//! changed.

use cairn_e2e::{Device, Server};

fn killing(device: &Device, note: &str) -> String {
    device.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-03-02",
        "--set",
        "person.civilian=yes",
        "--note",
        note,
    ])
}

fn shown(device: &Device, references: &[String]) -> Vec<String> {
    references
        .iter()
        .map(|r| device.ok(&["case", "show", r, "--json"]))
        .collect()
}

fn delivery_warnings(device: &Device) -> String {
    device.json(&["status"])["delivery_warnings"].to_string()
}

struct World {
    office: Device,
    server: Server,
    url: String,
    a: Device,
    b: Device,
    references: Vec<String>,
    /// Team T01's first checkpoint part, as the server stored it.
    first_part: Vec<u8>,
}

/// The sealed parts the server holds for `team`, by generation and part.
fn parts_of(server: &Server, team: &str) -> Vec<(i64, i64, Vec<u8>)> {
    let conn = server.dir().db();
    let mut stmt = conn
        .prepare("SELECT generation, part, bytes FROM checkpoints WHERE team = ?1 ORDER BY 1, 2")
        .expect("query");
    stmt.query_map([team], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

/// What a hostile server does: serve `bytes` as team `team`'s only checkpoint, a whole full
/// generation numbered `generation` in its table.
fn serve_only(server: &Server, team: &str, generation: i64, bytes: &[u8]) {
    let conn = server.dir().db();
    conn.execute("DELETE FROM checkpoints WHERE team = ?1", [team])
        .expect("delete");
    conn.execute(
        "INSERT INTO checkpoints (team, generation, part, parts, full, bytes) VALUES (?1, ?2, 0, 1, 1, ?3)",
        rusqlite::params![team, generation, bytes],
    )
    .expect("insert");
}

/// The office, T01's `a` and `b` and T02's `t` record, edit, verify and sync; then the office
/// syncs once more and so publishes its checkpoint.
fn world() -> World {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let (a, b, t) = (
        Device::init("T01"),
        Device::init("T01"),
        Device::init("T02"),
    );
    server.join(&office, &a, "T01", &url);
    server.join(&office, &b, "T01", &url);
    server.join(&office, &t, "T02", &url);
    let mut references: Vec<String> = (0..3).map(|i| killing(&a, &format!("seen {i}"))).collect();
    references.push(killing(&b, "b's own"));
    let theirs = killing(&t, "another team's");
    a.ok(&["case", "edit", &references[0], "--set", "person.sex=female"]);
    for d in [&a, &b, &t] {
        d.ok(&["sync"]);
    }
    // A change of T02's that the office refuses: a T01 device never receives T02's changes,
    // so it must not hear of this one either (its number would read as a gap).
    let id = t.case_id(&theirs);
    let forged = cairn_e2e::forge(&t.raw_doc(id), |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "schema", 2u64).expect("put");
    });
    t.smuggle(id, &forged, "T02");
    t.ok(&["sync"]);
    office.ok(&["sync"]);
    let first_part = parts_of(&server, "T01").remove(0).2;
    office.ok(&[
        "case",
        "verify",
        &references[1],
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
    office.ok(&["sync"]);
    World {
        office,
        server,
        url,
        a,
        b,
        references,
        first_part,
    }
}

#[test]
fn a_late_joiner_loads_the_checkpoint_and_reads_every_case_as_one_that_pulled_every_change() {
    let w = world();
    // After the checkpoint: an edit that arrives the ordinary way, and one the server withholds.
    w.a.ok(&[
        "case",
        "edit",
        &w.references[2],
        "--note",
        "after the checkpoint",
    ]);
    w.a.ok(&["case", "edit", &w.references[2], "--note", "withheld"]);
    w.a.ok(&["case", "edit", &w.references[2], "--note", "the last"]);
    w.a.ok(&["sync"]);
    let own = w.a.sealed_changes("received = 0");
    let withheld = own[own.len() - 2].1;
    w.server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{}' AND seq = {withheld};",
        w.a.keys().id()
    ));

    let late = Device::init("T01");
    w.server.join(&w.office, &late, "T01", &w.url);
    let run = late.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("4 cases loaded from the office's checkpoints"),
        "{}",
        run.stdout
    );
    // Only the changes after the checkpoint were pulled: a's three edits less the withheld one.
    assert!(run.stdout.contains("received 2"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("change {withheld} of device"))
            && run.stderr.contains("withholding"),
        "{}",
        run.stderr
    );
    // Nothing the checkpoint holds is taken for withheld.
    let warnings = delivery_warnings(&late);
    assert_eq!(warnings.matches("withholding").count(), 1, "{warnings}");

    // Every case the server kept whole reads byte for byte as at b, which pulled every change
    // (the case with the withheld change differs, as it must).
    w.b.ok(&["sync"]);
    let whole = [&w.references[..2], &w.references[3..]].concat();
    assert_eq!(shown(&late, &whole), shown(&w.b, &whole));
    assert_eq!(late.case_count(), 4);
    let confirmed = late.json(&["case", "show", &w.references[1]]);
    assert_eq!(confirmed["status"], "confirmed", "{confirmed}");

    // The late joiner works on: its edit reaches b.
    late.ok(&[
        "case",
        "edit",
        &w.references[3],
        "--note",
        "from the late joiner",
    ]);
    late.ok(&["sync"]);
    w.b.ok(&["sync"]);
    assert_eq!(
        shown(&late, &w.references[3..]),
        shown(&w.b, &w.references[3..])
    );
}

/// Runs `cairn sync` with the failpoint armed; whether it was killed there.
fn killed_at(device: &Device, failpoint: &str) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let out = device
        .command(&["sync"])
        .env("CAIRN_FAILPOINT", failpoint)
        .output()
        .expect("run cairn");
    match out.status.signal() {
        Some(9) => true,
        None => {
            assert!(
                out.status.success(),
                "sync with {failpoint} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Some(other) => panic!("sync with {failpoint} died of signal {other}"),
    }
}

/// Power cut at every step: the office killed after sealing its generation and after posting
/// it (the next sync posts the same bytes again), a late joiner killed before and after each
/// part it loads. Each then syncs on and reads every case as a teammate that pulled them all.
#[test]
fn a_kill_at_any_step_of_publishing_or_loading_loses_nothing() {
    let w = world();
    w.a.ok(&[
        "case",
        "edit",
        &w.references[0],
        "--note",
        "for the next generation",
    ]);
    w.a.ok(&["sync"]);
    for point in ["checkpoint:made", "checkpoint:posted"] {
        assert!(killed_at(&w.office, point), "{point} never reached");
        w.a.ok(&["case", "edit", &w.references[3], "--note", point]);
        w.a.ok(&["sync"]);
    }
    w.office.ok(&["sync"]);
    w.b.ok(&["sync"]);
    let at_b = shown(&w.b, &w.references);
    // Before and after each part stored (how many parts the chain has depends on when the
    // office found a full generation lighter than the ones after it).
    for point in ["checkpoint:stored", "checkpoint:loaded"] {
        for pass in 1..=4 {
            let point = format!("{point}#{pass}");
            let late = Device::init("T01");
            w.server.join(&w.office, &late, "T01", &w.url);
            if !killed_at(&late, &point) {
                assert!(pass > 1, "{point} never reached");
                break;
            }
            let line = late.ok(&["sync"]);
            assert!(line.contains("received"), "{line}");
            assert_eq!(shown(&late, &w.references), at_b, "after a kill at {point}");
            assert_eq!(delivery_warnings(&late), "[]", "after a kill at {point}");
            late.ok(&["check"]);
        }
    }
}

/// A server serving, as team T01's checkpoint, a part sealed and signed by a member of T01
/// (it holds T01's key), then team T02's part, then (to a device holding a newer generation)
/// an older one: each is refused and said, and the device pulls every change one by one,
/// ending as a teammate that pulled them all.
#[test]
fn a_forged_replayed_or_older_checkpoint_is_refused_and_nothing_is_lost() {
    use cairn_crypto::{SealedChange, SealedKind};
    use cairn_protocol::checkpoint::{PartBody, Place};
    let w = world();
    w.b.ok(&["sync"]);
    let at_b = shown(&w.b, &w.references);
    let forged = SealedChange::seal(
        &w.a.keys(),
        &w.a.team_key("T01"),
        SealedKind::Checkpoint,
        Place {
            part: 0,
            parts: 1,
            full: true,
        }
        .to_id(),
        99,
        &PartBody::default().encode(),
    )
    .expect("seal")
    .to_bytes();
    let t02 = parts_of(&w.server, "T02").remove(0).2;
    w.server
        .edit_db("CREATE TABLE kept AS SELECT * FROM checkpoints WHERE team = 'T01';");
    for (bytes, said) in [
        (forged, "not by the office"),
        (t02, "holds team T02's cases, not team T01's"),
    ] {
        serve_only(&w.server, "T01", 1000, &bytes);
        let late = Device::init("T01");
        w.server.join(&w.office, &late, "T01", &w.url);
        let run = late.run(&["sync"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains("was refused") && run.stderr.contains(said),
            "{}",
            run.stderr
        );
        assert!(!run.stdout.contains("checkpoints"), "{}", run.stdout);
        assert_eq!(shown(&late, &w.references), at_b);
        assert_eq!(delivery_warnings(&late), "[]");
    }

    // The office's own parts back (the server would refuse its next generation as older
    // than generation 1000).
    w.server.edit_db(
        "DELETE FROM checkpoints WHERE team = 'T01'; INSERT INTO checkpoints SELECT * FROM kept;",
    );

    // A device that loaded the office's newest generation and was cut off before it pulled:
    // the server then serves T01's first generation again, after it.
    w.office.ok(&[
        "case",
        "edit",
        &w.references[0],
        "--note",
        "a new generation",
    ]);
    w.office.ok(&["sync"]);
    w.b.ok(&["sync"]);
    let at_b = shown(&w.b, &w.references);
    let parts = parts_of(&w.server, "T01");
    let newest = parts.last().expect("a part").0;
    assert!(newest > 1, "{parts:?}");
    let late = Device::init("T01");
    w.server.join(&w.office, &late, "T01", &w.url);
    let last = format!("checkpoint:loaded#{}", parts.len());
    assert!(killed_at(&late, &last), "{last} never reached");
    w.server.edit_db(&format!(
        "INSERT INTO checkpoints (team, generation, part, parts, full, bytes) VALUES ('T01', {}, 0, 1, 1, x'{}');",
        newest + 1,
        hex::encode(&w.first_part)
    ));
    let run = late.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("is older than checkpoint"),
        "{}",
        run.stderr
    );
    assert_eq!(shown(&late, &w.references), at_b);
    assert_eq!(delivery_warnings(&late), "[]");
}

/// `cairn check --deep`: a device that loaded its team's cases from the office's checkpoint
/// fetches every signed change of them from the server and verifies that they make the
/// documents the office sent. A change the checkpoint holds that the server no longer has, or
/// one whose bytes the server changed, is named with its case.
#[test]
fn check_deep_verifies_checkpointed_cases_and_names_a_change_the_server_lost_or_changed() {
    let w = world();
    let late = Device::init("T01");
    w.server.join(&w.office, &late, "T01", &w.url);
    let synced = late.ok(&["sync"]);
    assert!(
        synced.contains("4 cases loaded from the office's checkpoints"),
        "{synced}"
    );
    let t01_changes: i64 = w
        .server
        .dir()
        .db()
        .query_row("SELECT COUNT(*) FROM changes WHERE team = 'T01'", [], |r| {
            r.get(0)
        })
        .expect("count");
    let passed = late.ok(&["check", "--deep"]);
    assert!(
        passed.contains(&format!(
            "{t01_changes} signed changes of 4 cases loaded from office checkpoints"
        )),
        "{passed}"
    );
    let report = late.json(&["check", "--deep"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["deep"]["cases"].as_array().map(Vec::len), Some(4));

    // The server loses a's first change (the creation of its first case).
    w.server.edit_db(&format!(
        "DELETE FROM changes WHERE author = x'{}' AND seq = 1;",
        w.a.keys().id()
    ));
    let lost = late.run(&["check", "--deep"]);
    assert_eq!(lost.code, 1, "{}", lost.stdout);
    let named = format!("change 1 of device {}", w.a.keys().id().short());
    assert!(
        lost.stderr.contains(&named) && lost.stderr.contains("not on the server"),
        "{}",
        lost.stderr
    );
    assert!(lost.stderr.contains(&w.references[0]), "{}", lost.stderr);
    assert!(
        lost.stderr.contains("failed for 1 case(s)"),
        "{}",
        lost.stderr
    );

    // The server changes the bytes of b's first change (the creation of b's case).
    let db = w.server.dir().db();
    let author = w.b.keys().id().0.to_vec();
    let mut bytes: Vec<u8> = db
        .query_row(
            "SELECT bytes FROM changes WHERE author = ?1 AND seq = 1",
            [&author],
            |r| r.get(0),
        )
        .expect("b's first change");
    if let Some(last) = bytes.last_mut() {
        *last ^= 1;
    }
    db.execute(
        "UPDATE changes SET bytes = ?1 WHERE author = ?2 AND seq = 1",
        rusqlite::params![bytes, author],
    )
    .expect("change b's bytes");
    let changed = late.run(&["check", "--deep"]);
    assert_eq!(changed.code, 1, "{}", changed.stdout);
    let named = format!(
        "change 1 of device {} does not verify",
        w.b.keys().id().short()
    );
    assert!(changed.stderr.contains(&named), "{}", changed.stderr);
    assert!(
        changed.stderr.contains(&w.references[3])
            && changed.stderr.contains("failed for 2 case(s)"),
        "{}",
        changed.stderr
    );
    let report = late.run(&["check", "--deep", "--json"]);
    assert_eq!(report.code, 1, "{}", report.stderr);
    let value: serde_json::Value = serde_json::from_str(&report.stdout).expect("JSON");
    assert_eq!(value["ok"], false, "{value}");
}

#[test]
fn deep_without_a_server_says_so() {
    let lone = Device::init("T01");
    let run = lone.run(&["check", "--deep"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("has not joined") && run.stderr.contains("--deep"),
        "{}",
        run.stderr
    );
}
