//! Harness for Cairn's end-to-end tests: they run the real `cairn` binary (and, for sync, the
//! real `cairn-server`) in temporary homes, exactly as a person would.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The passphrase every test vault uses.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The directory cargo puts this profile's binaries in: target/<profile>.
fn bin_dir() -> PathBuf {
    // target/<profile>/deps/<test exe> → target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

/// Path of a workspace binary (`cairn`, `cairn-server`), built on first use in this process
/// (cargo does not build other packages' binaries for a test crate).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let package = match name {
        "cairn" => "cairn-collector",
        other => other,
    };
    let dir = bin_dir();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !built.contains(package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--bin", name, "-p", package]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build of {name} failed");
        built.insert(package.to_string());
    }
    dir.join(name)
}

/// The output of one `cairn` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// One device: a temporary home with a vault in it.
pub struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    /// A home with no vault yet.
    pub fn empty() -> Device {
        Device {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A home with a field vault of `team`, at a low scrypt cost so tests run fast.
    pub fn init(team: &str) -> Device {
        let device = Device::empty();
        device.ok(&["init", "--team", team, "--kdf-cost", "4"]);
        device
    }

    /// The vault's directory.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A `cairn` command for this home, passphrase from the environment, no terminal.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("cairn"));
        cmd.args(args)
            .env("CAIRN_HOME", self.home())
            .env("CAIRN_PASSPHRASE", PASSPHRASE)
            .env_remove("CAIRN_PASSPHRASE_FILE")
            .env_remove("CAIRN_CONFIG")
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `cairn` with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run cairn").into()
    }

    /// Runs `cairn` and asserts it succeeded; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
        run.stdout
    }

    /// Runs `cairn ... --json` and parses the output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {out}"))
    }

    /// Every file under the home with its bytes, to assert that a command changed nothing.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(&self.home())
    }
}

/// Every regular file under `dir` with its bytes.
pub fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// True when `needle` occurs in `haystack` as UTF-8, UTF-16 (either order), or in any letter case.
pub fn contains_any_encoding(haystack: &[u8], needle: &str) -> bool {
    let lower = haystack.to_ascii_lowercase();
    let mut forms: Vec<Vec<u8>> = vec![needle.to_ascii_lowercase().into_bytes()];
    let utf16 = |big: bool| -> Vec<u8> {
        needle
            .to_ascii_lowercase()
            .encode_utf16()
            .flat_map(|u| {
                if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    };
    forms.push(utf16(false));
    forms.push(utf16(true));
    forms
        .iter()
        .any(|f| lower.windows(f.len()).any(|w| w == f.as_slice()))
}
