//! The workspace's binaries, for tests that run them as a person would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Path of a workspace binary (`cairn`, `cairn-server`), built on first use in this process:
/// cargo builds only the tested package's own binaries for a test crate, and only for
/// integration tests.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    // target/<profile>/deps/<test exe> → target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // Every binary of the workspace, as `.ci/run` builds them before the tests: the same
        // command resolves the same features, so this finds them built and links nothing.
        build.args(["build", "--quiet", "--workspace", "--bins"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build of the workspace's binaries failed"
        );
    });
    dir.join(name)
}
