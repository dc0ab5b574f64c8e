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
fn invite() {
    replay("invite");
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
