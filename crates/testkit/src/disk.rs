//! A small file system for full-disk tests: a tmpfs of a chosen size, mounted on a temporary
//! directory and unmounted when dropped. Mounting needs root (or a namespace that allows it):
//! where it cannot be had, [`SmallDisk::mount`] says why, and the test skips saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a temporary directory.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// A tmpfs of `mib` MiB, or why there is none here.
    pub fn mount(mib: u64) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free on it.
    pub fn free(&self) -> u64 {
        let fs = rustix::fs::statvfs(self.path()).expect("statvfs of the small disk");
        fs.f_bavail * fs.f_frsize
    }

    /// Fills it with one file until about `leave` bytes are free; returns the file, whose
    /// removal frees the space again.
    pub fn fill_leaving(&self, leave: u64) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0x5au8; 64 << 10];
        // Whole pages, as tmpfs counts them.
        while self.free() >= leave + 4096 {
            let n = (self.free() - leave).min(block.len() as u64) as usize;
            if file.write_all(&block[..n / 4096 * 4096]).is_err() {
                break;
            }
        }
        file.sync_all().expect("sync the filler");
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process killed a moment ago may still hold a file open on it.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
