//! The fuzz targets' regression inputs, on stable: every file in `fuzz/regressions/<target>/`
//! (each crash the fuzzer found, plus a small minimized corpus) goes through exactly the code
//! its cargo-fuzz target runs, which must return without panicking. See docs/FUZZING.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// The one copy of each target's logic, shared with fuzz/fuzz_targets/.
#[allow(dead_code)]
#[path = "../../fuzz/src/targets.rs"]
mod targets;

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// Runs every input of `target`; fails if the folder is empty or any input panics.
fn replay(target: &str) {
    let run = targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no fuzz target named {target}"));
    let dir = regressions().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "{} holds no regression inputs",
        dir.display()
    );
    let mut panicked = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
            panicked.push(path.display().to_string());
        }
    }
    assert!(
        panicked.is_empty(),
        "{} of {} inputs of {target} panicked (messages above): {panicked:#?}",
        panicked.len(),
        files.len()
    );
}

#[test]
fn every_target_has_a_folder_and_every_folder_a_target() {
    let folders: Vec<String> = std::fs::read_dir(regressions())
        .expect("fuzz/regressions")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for (name, _) in targets::TARGETS {
        assert!(
            folders.iter().any(|f| f == name),
            "fuzz/regressions/{name} is missing"
        );
    }
    for folder in &folders {
        assert!(
            targets::TARGETS.iter().any(|(name, _)| name == folder),
            "fuzz/regressions/{folder} belongs to no target"
        );
    }
}

#[test]
fn sealed_change() {
    replay("sealed_change");
}

#[test]
fn pull_page() {
    replay("pull_page");
}

#[test]
fn push_body() {
    replay("push_body");
}

#[test]
fn admission() {
    replay("admission");
}

#[test]
fn roster() {
    replay("roster");
}

#[test]
fn server_json() {
    replay("server_json");
}

#[test]
fn request_auth() {
    replay("request_auth");
}

#[test]
fn case_changes() {
    replay("case_changes");
}

#[test]
fn blob_chunk() {
    replay("blob_chunk");
}

#[test]
fn import() {
    replay("import");
}

#[test]
fn office_key_share() {
    replay("office_key_share");
}

/// The v2 seeds kept as regression inputs (written by `seeds --regressions`) are genuine: they
/// get past the signature checks to the decryption behind them, so the targets replay more
/// than refusals. Fails if the fixture keys or a wire format change under them.
#[test]
fn the_v2_seeds_get_past_the_signatures() {
    use cairn_crypto::SealedChange;
    use cairn_protocol::{Admission, OfficeKeys, Roster, Statement};

    let read = |target: &str, seed: &str| {
        let path = regressions().join(target).join(seed);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let sealed = SealedChange::from_bytes(&read("sealed_change", "v2-seed-00")).expect("parse");
    assert!(
        sealed.open(targets::keyring()).is_ok(),
        "sealed_change/v2-seed-00 does not open"
    );

    let text = String::from_utf8(read("admission", "v2-seed-00")).expect("text");
    let admission = Admission::parse(&text).expect("admission/v2-seed-00 parses");
    let key = admission
        .open(targets::device(), targets::REQUEST_TIME)
        .expect("admission/v2-seed-00 opens for the fixed device");
    assert_eq!((key.team(), key.epoch()), (targets::TEAM, 1));

    let statements: Vec<Statement> =
        serde_json::from_slice(&read("roster", "v2-seed-02")).expect("roster/v2-seed-02 parses");
    let roster = Roster::build(&OfficeKeys::from_keys(targets::office()), &statements);
    assert_eq!(roster.head(), 5, "{:?}", roster.problems);
    let ring = roster.keyring(targets::device());
    assert!(
        ring.get(targets::TEAM, 1).is_some() && ring.get(targets::TEAM, 2).is_some(),
        "roster/v2-seed-02 grants the fixed device T03's keys: {ring:?}"
    );

    // The genuine edits of the fixed case (v2-seed-00: the teammate's edits in order) get past
    // the judge: merged into the stored case, they are accepted.
    let seed = read("case_changes", "v2-seed-00");
    let mut rest = seed
        .get(4..)
        .expect("case_changes/v2-seed-00 has its header");
    let mut changes = Vec::new();
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        changes.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    let fixture = targets::case_fixture();
    assert_eq!(
        changes, fixture.edits,
        "case_changes/v2-seed-00 is the fixture's edits"
    );
    let mut stored =
        cairn_model::CaseDoc::load(&fixture.saved, &targets::device().id().0).expect("load");
    stored
        .apply_changes(&changes)
        .expect("case_changes/v2-seed-00 gets past the judge");

    // blob_chunk/v2-seed-00: the small attachment's one chunk, which opens to its bytes.
    let seed = read("blob_chunk", "v2-seed-00");
    let chunk = cairn_crypto::SealedChunk::from_bytes(seed.get(5..).expect("a framed chunk"))
        .expect("blob_chunk/v2-seed-00 parses");
    assert_eq!(
        chunk
            .open(targets::keyring())
            .expect("blob_chunk/v2-seed-00 opens"),
        targets::blob_fixtures()[0].plaintext
    );

    // import/v2-seed-00: two cases, each with its source id.
    let seed = read("import", "v2-seed-00");
    let parsed = cairn_vault::import_file::parse(
        targets::IMPORT_FILE,
        &seed[1..],
        cairn_vault::import_file::Format::Csv,
        &cairn_vault::import_file::Mapping::default(),
    )
    .expect("import/v2-seed-00 reads");
    assert_eq!(parsed.cases.len(), 2);
    assert!(parsed.cases.iter().all(|(_, c)| c
        .row
        .as_ref()
        .is_some_and(|r| r.starts_with(b"source_id\0"))));
}
