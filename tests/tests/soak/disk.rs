//! A full disk, on the device and on the server. Where the soak runs as root and may mount,
//! the disk is a small tmpfs filled to within a random number of bytes of its end; elsewhere
//! (the device only) each `cairn` command runs with its largest file limited to a little over
//! what the vault holds (`prlimit --fsize`, SIGXFSZ ignored, so a write past it fails as a
//! full disk's does); else the scenario says it skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng;

use super::harness::{Fault, Soak};
use super::world::{Backend, Counts, World};

/// What a failure on a full disk must say, in one of these words.
const FULL: &[&str] = &["full", "no space", "space left"];

/// How this machine can make a disk full.
enum Small {
    /// A tmpfs of its own, mounted by the soak.
    Tmpfs,
    /// A limit on file sizes, for the device's commands only.
    FileSize,
}

fn small() -> Option<Small> {
    if std::env::var("CAIRN_SOAK_DISK").as_deref() != Ok("file") {
        let probe = tempfile::tempdir().expect("temp dir");
        if let Ok(mount) = Mount::tmpfs(probe.path(), 1 << 20) {
            drop(mount);
            return Some(Small::Tmpfs);
        }
    }
    let works = Command::new("prlimit")
        .args(["--fsize=1000000", "true"])
        .status()
        .is_ok_and(|s| s.success());
    works.then_some(Small::FileSize)
}

/// A tmpfs mounted by the soak, unmounted when dropped.
pub struct Mount {
    path: PathBuf,
}

impl Mount {
    pub fn tmpfs(path: &Path, bytes: u64) -> Result<Mount, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Mount {
            path: path.to_path_buf(),
        })
    }

    /// Fills the disk until `leave` bytes (about: whole pages) are free.
    pub fn fill(&self, leave: u64) {
        let path = self.path.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let mut chunk = 1 << 20;
        while chunk >= 4096 {
            if file.write_all(&vec![0xa5; chunk]).is_err() {
                chunk /= 2;
            }
        }
        let len = file.metadata().expect("filler size").len();
        file.set_len(len.saturating_sub(leave)).expect("free some");
    }

    /// Frees what [`Mount::fill`] took.
    pub fn empty(&self) {
        let _ = std::fs::remove_file(self.path.join("filler"));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// `cmd` with every file it writes limited to `bytes`, a write past it failing (EFBIG) rather
/// than killing it.
pub fn limited(cmd: &Command, bytes: u64) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped
        .arg("-c")
        .arg(r#"trap '' XFSZ; exec prlimit --fsize="$0" -- "$@""#)
        .arg(bytes.to_string())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped.stdin(std::process::Stdio::null());
    wrapped
}

/// The device's disk fills while it syncs and records.
pub fn device(soak: &mut Soak) {
    soak.plan(2, 5);
    let Some(how) = small() else {
        println!(
            "soak {}: skipped: no tmpfs can be mounted here and prlimit is missing",
            soak.name
        );
        return;
    };
    while soak.more() {
        device_world(soak, &how);
    }
}

fn device_world(soak: &mut Soak, how: &Small) {
    let rows = if soak.long { 60 } else { 30 };
    soak.step("start a server (SQLite), the office, A and D (D on a small disk)");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut world = World::start(&Backend::Sqlite, 1, None);
    world.field("A");
    let device = cairn_e2e::Device::empty();
    let mount = match how {
        Small::Tmpfs => Some(Mount::tmpfs(&device.home(), 32 << 20).expect("mount a tmpfs")),
        Small::FileSize => None,
    };
    device.ok(&["init", "--team", "T03", "--kdf-cost", "4"]);
    world.join("D", device, 0, None);
    world.sync(soak, "D");
    while soak.more() {
        soak.run();
        world.import(soak, "A", dir.path(), rows);
        world.sync(soak, "A");
        let leave = soak.rng.gen_range(0..128 << 10);
        soak.step(format!("D's disk fills to within {leave} bytes"));
        let d = world.member("D");
        match &mount {
            Some(mount) => mount.fill(leave),
            None => d
                .file_limit
                .set(Some(largest_file(&d.device.home()) + leave)),
        }
        soak.step("D syncs on a full disk");
        let before = Counts::take(&world.store, d);
        let ended = super::harness::run(d.sync());
        // A write past a file size limit fails as EFBIG, which SQLite reports as an I/O
        // error: only a real full disk (ENOSPC) can be told apart, so only there is the
        // message held to saying so.
        let expect = mount.as_ref().map(|_| FULL);
        world.judge_sync(soak, "D", &before, &ended, expect);
        soak.step("D records a case on a full disk");
        let marker = soak.marker();
        let ended = super::harness::run(world.member("D").command(&[
            "case", "new", "--kind", "missing", "--place", "KHR", "--note", &marker,
        ]));
        super::harness::check_message(soak, "case new on a full disk", &ended, expect);
        if ended.run.code == 0 {
            world.acknowledged.push((marker, false));
        }
        soak.step("D's disk is freed; D syncs");
        match &mount {
            Some(mount) => mount.empty(),
            None => world.member("D").file_limit.set(None),
        }
        if world.sync(soak, "D").is_none() {
            soak.found(Fault::Other, "D's sync failed once its disk was freed");
        }
        if !world.after_fault(soak, "D") {
            return;
        }
    }
    world.verify(soak);
    drop(world);
    drop(mount);
}

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The server's disk fills while a device pushes.
pub fn server(soak: &mut Soak) {
    soak.plan(2, 5);
    let Some(Small::Tmpfs) = small() else {
        println!(
            "soak {}: skipped: the server's disk can only be made full with a tmpfs, and none can be mounted here",
            soak.name
        );
        return;
    };
    while soak.more() {
        server_world(soak);
    }
}

fn server_world(soak: &mut Soak) {
    soak.step("start a server (SQLite) on a small disk, the office and A");
    let root = tempfile::tempdir().expect("temp dir");
    let mount = Mount::tmpfs(&root.path().join("disk"), 64 << 20).expect("mount a tmpfs");
    let mut world = World::start(&Backend::Sqlite, 1, Some(&root.path().join("disk")));
    world.field("A");
    world.sync(soak, "A");
    while soak.more() {
        soak.run();
        let leave = soak.rng.gen_range(0..256 << 10);
        soak.step(format!("the server's disk fills to within {leave} bytes"));
        mount.fill(leave);
        for _ in 0..soak.rng.gen_range(2..=6) {
            let size = soak.rng.gen_range(10_000..100_000);
            world.new_case(soak, "A", size);
        }
        soak.step("A syncs to the server with a full disk");
        let a = world.member("A");
        let before = Counts::take(&world.store, a);
        let ended = super::harness::run(a.sync());
        let faults = soak.findings().len();
        world.judge_sync(soak, "A", &before, &ended, Some(FULL));
        if soak.findings().len() > faults {
            // The server's side of it, which goes with the world's folder.
            let log = world.servers[0].log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            println!(
                "soak {}: the server's log ends:\n{}",
                soak.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        world.server_holds(soak);
        soak.step("the server's disk is freed; A syncs");
        mount.empty();
        if world.sync(soak, "A").is_none() {
            soak.found(
                Fault::Other,
                "A's sync failed once the server's disk was freed",
            );
        }
        if !world.after_fault(soak, "A") {
            return;
        }
    }
    world.verify(soak);
    drop(world);
    drop(mount);
}
