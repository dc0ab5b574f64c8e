//! Where an export is written: files are made in a hidden folder inside the target, hashed as
//! they are written, and renamed into place only when every one of them is complete, with
//! `manifest.csv` last. A failed export removes its hidden folder and leaves nothing behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::CliError;

/// The manifest's name; it lists every other file.
pub const MANIFEST: &str = "manifest.csv";

/// A file being written: counts and hashes what passes through.
pub struct Hashed {
    name: String,
    inner: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A written file: name, size and SHA-256.
#[derive(Debug, Clone)]
pub struct Written {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The export folder being filled.
pub struct Staging {
    out: PathBuf,
    tmp: tempfile::TempDir,
    done: Vec<Written>,
}

fn io_error(action: &str, path: &Path, e: &std::io::Error) -> CliError {
    CliError::failure(format!("cannot {action} {}: {e}", path.display()))
}

impl Staging {
    /// Makes `out` if it is missing; refuses one that holds anything unless `force`.
    pub fn new(out: &Path, force: bool) -> Result<Staging, CliError> {
        if out.exists() && !out.is_dir() {
            return Err(CliError::failure(format!(
                "{} is a file, not a folder; give --out a folder to write the export into",
                out.display()
            )));
        }
        // Owner-only, like the vault: an export holds case content in the clear. A folder
        // that is there already keeps its mode; the files written into it are owner-only.
        if !out.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(out)
                .map_err(|e| io_error("create the folder", out, &e))?;
        }
        let busy = std::fs::read_dir(out)
            .map_err(|e| io_error("read the folder", out, &e))?
            .next()
            .is_some();
        if busy && !force {
            return Err(CliError::failure(format!(
                "{} is not empty; give an empty or new folder, or add --force to write into it (files of the same names are replaced)",
                out.display()
            )));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".cairn-export-")
            .tempdir_in(out)
            .map_err(|e| io_error("write into", out, &e))?;
        Ok(Staging {
            out: out.to_path_buf(),
            tmp,
            done: Vec::new(),
        })
    }

    /// Starts the file `name`.
    pub fn create(&self, name: &str) -> Result<Hashed, CliError> {
        let path = self.tmp.path().join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error("create", &path, &e))?;
        Ok(Hashed {
            name: name.to_owned(),
            inner: BufWriter::new(file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Finishes a file: flushed to disk, its size and hash recorded.
    pub fn close(&mut self, file: Hashed) -> Result<(), CliError> {
        let path = self.tmp.path().join(&file.name);
        let Hashed {
            name,
            inner,
            hasher,
            bytes,
        } = file;
        let file = inner
            .into_inner()
            .map_err(|e| io_error("write", &path, e.error()))?;
        file.sync_all().map_err(|e| io_error("write", &path, &e))?;
        self.done.push(Written {
            name,
            bytes,
            sha256: hex::encode(hasher.finalize()),
        });
        Ok(())
    }

    /// Where a file written by someone else (a decrypted attachment) goes, at `name` under
    /// the folder (its folders made, owner-only); [`Staging::adopt`] then lists it.
    pub fn path_for(&self, name: &str) -> Result<PathBuf, CliError> {
        let path = self.tmp.path().join(name);
        if let Some(folder) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder)
                .map_err(|e| io_error("create the folder", folder, &e))?;
        }
        Ok(path)
    }

    /// Lists a file written at [`Staging::path_for`], whose size and hash its writer checked.
    pub fn adopt(&mut self, name: String, bytes: u64, sha256: String) {
        self.done.push(Written {
            name,
            bytes,
            sha256,
        });
    }

    /// Writes the manifest and moves every file into the folder; returns what was written
    /// (the manifest not among them).
    pub fn commit(mut self) -> Result<Vec<Written>, CliError> {
        let mut manifest = self.create(MANIFEST)?;
        {
            let mut csv = csv::Writer::from_writer(&mut manifest);
            let result = csv
                .write_record(["file", "bytes", "sha256"])
                .and_then(|()| {
                    for w in &self.done {
                        csv.write_record([&w.name, &w.bytes.to_string(), &w.sha256])?;
                    }
                    csv.flush().map_err(csv::Error::from)
                });
            result.map_err(|e| CliError::failure(format!("cannot write {MANIFEST}: {e}")))?;
        }
        self.close(manifest)?;
        // The manifest goes last: a folder with a manifest holds every file it lists.
        for w in &self.done {
            let from = self.tmp.path().join(&w.name);
            let to = self.out.join(&w.name);
            if let Some(folder) = to.parent().filter(|p| !p.exists()) {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(folder)
                    .map_err(|e| io_error("create the folder", folder, &e))?;
            }
            std::fs::rename(&from, &to).map_err(|e| io_error("move the export into", &to, &e))?;
        }
        if let Ok(dir) = File::open(&self.out) {
            let _ = dir.sync_all();
        }
        let mut written = self.done;
        written.retain(|w| w.name != MANIFEST);
        Ok(written)
    }
}
