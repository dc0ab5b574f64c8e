//! `cairn office key split` and `recover`: the office's key in K-of-N shares, as files. The
//! shares themselves (format, splitting, combining, checks) are `cairn_crypto::shares`.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use cairn_crypto::{KeyFileCost, KeyShare, ShareError};
use cairn_vault::{Home, NewVault, Role};

use crate::cli::{KeyRecoverArgs, KeySplitArgs, OfficeKeyCommand};
use crate::config::Config;
use crate::error::CliError;
use crate::output;

/// A share's text is about a kilobyte; a file much larger is not one.
const MAX_SHARE_FILE: u64 = 64 * 1024;

pub fn run(config: &Config, cmd: OfficeKeyCommand) -> Result<(), CliError> {
    match cmd {
        OfficeKeyCommand::Split(args) => split(config, args),
        OfficeKeyCommand::Recover(args) => recover(config, args),
    }
}

fn split(config: &Config, args: KeySplitArgs) -> Result<(), CliError> {
    let (k, n) = (args.threshold, args.shares);
    if k > n {
        return Err(CliError::usage(format!(
            "--threshold {k} is more than --shares {n}: a split cannot need more shares than it makes"
        )));
    }
    // A staff device's vault holds its own keys, not the office's: never split as the office.
    let vault = crate::office::open_office_key(config, "is split into shares")?;
    let shares =
        cairn_crypto::split(vault.keys(), k, n).map_err(|e| CliError::usage(e.to_string()))?;
    let office = vault.keys().id().short();
    let name = |i: u8, ext: &str| format!("office-{office}-share-{i}-of-{n}.{ext}");
    let dir = &args.out;
    // Every name checked before anything is written: never a half-written split.
    for i in 1..=n {
        for ext in ["txt", "png"] {
            let path = dir.join(name(i, ext));
            if path.symlink_metadata().is_ok() {
                return Err(CliError::failure(format!(
                    "{} already exists; shares are never overwritten: split into a new folder",
                    path.display()
                )));
            }
        }
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = shares.iter().try_for_each(|share| {
        let text = share.to_text();
        let png = cairn_crypto::Zeroizing::new(crate::qr::png(&text, qrcode::EcLevel::M)?);
        for (ext, bytes) in [("txt", text.as_bytes()), ("png", png.as_slice())] {
            let path = dir.join(name(share.index(), ext));
            write_new(&path, bytes)?;
            written.push(path);
        }
        Ok(())
    });
    if let Err(e) = result {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    let mut out = format!(
        "Wrote {n} shares of the key of office {office} (split {}) into {}; any {k} of them rebuild it, fewer reveal nothing about it:\n",
        shares[0].split_id(),
        dir.display()
    );
    for i in 1..=n {
        out.push_str(&format!(
            "  {}  (and its QR code, {})\n",
            name(i, "txt"),
            name(i, "png")
        ));
    }
    out.push_str(&format!(
        "Give each share to another holder (on paper, or offline media), kept in another place, \
         then delete {}. To rebuild the key on a new machine: `cairn --home DIR office key recover SHARE_FILE...` with {k} of them.\n",
        dir.display()
    ));
    output::print(&out)
}

/// Writes a new file (never replacing one) for this user only, and flushes it to the disk.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail =
        |e: std::io::Error| CliError::failure(format!("cannot write {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

fn recover(config: &Config, args: KeyRecoverArgs) -> Result<(), CliError> {
    let home = Home::new(&config.home);
    if home.exists() {
        return Err(CliError::failure(format!(
            "{} already holds a vault; recover into a new directory (--home DIR), never over a vault",
            config.home.display()
        )));
    }
    // The shares are checked before a passphrase is asked for.
    let mut shares = Vec::with_capacity(args.shares.len());
    for path in &args.shares {
        let shown = if path == Path::new("-") {
            "standard input".to_owned()
        } else {
            path.display().to_string()
        };
        let share = read_share(path).map_err(|e| match e {
            Read::Io(message) => CliError::failure(format!("cannot read {shown}: {message}")),
            Read::Share(e) => CliError::failure(format!("{shown}: {e}")),
        })?;
        shares.push((shown, share));
    }
    let keys = cairn_crypto::combine(&shares).map_err(|e| CliError::failure(e.to_string()))?;
    let (office, split) = (keys.id().short(), shares[0].1.split_id());
    let pass = config.passphrase.read(true)?;
    crate::input::warn_if_weak(cairn_crypto::ExposeSecret::expose_secret(&pass));
    let cost = args
        .kdf_cost
        .map_or(KeyFileCost::Calibrated, KeyFileCost::LogN);
    let vault = home.create_with_keys(
        &pass,
        cost,
        NewVault {
            team: cairn_protocol::OFFICE_TEAM.to_owned(),
            name: args.name,
            role: Role::Office,
        },
        time::OffsetDateTime::now_utc(),
        keys,
    )?;
    let id = vault.keys().id();
    output::print(&format!(
        "Rebuilt the key of office {office} from split {split} into a new office vault at {}\n\
         device {id} (reference tag {})\n\
         The office's public keys (the same as before):\n{}\
         Next: restore the cases with `cairn office restore --server URL --fingerprint FP`.\n",
        config.home.display(),
        id.tag(),
        cairn_protocol::OfficeKeys::from_keys(vault.keys()),
    ))
}

/// Why a share could not be read.
enum Read {
    Io(String),
    Share(ShareError),
}

/// A share from a file, or from standard input for `-`; a file too large is no share.
fn read_share(path: &Path) -> Result<KeyShare, Read> {
    let mut bytes = Vec::new();
    let limit = MAX_SHARE_FILE + 1;
    let read = if path == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| Read::Io(e.to_string()))?;
    let bytes = cairn_crypto::Zeroizing::new(bytes);
    if bytes.len() as u64 > MAX_SHARE_FILE {
        return Err(Read::Share(ShareError::Invalid(format!(
            "it is larger than {} KiB, and a share is about one",
            MAX_SHARE_FILE / 1024
        ))));
    }
    KeyShare::from_bytes(&bytes).map_err(Read::Share)
}
