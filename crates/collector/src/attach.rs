//! `cairn case attach`, `attachments` and `attachment get|drop`: the CLI reads what a file
//! is (its media type from its content, a photo's EXIF time and position); the vault hashes,
//! seals and stores it.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use cairn_vault::NewAttachment;
use serde_json::json;

use crate::cli::{AttachArgs, AttachmentCommand, CaseRef};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::progress::Bar;
use crate::vault_cmd::open;

/// Media types whose EXIF data is read: formats where the reader stops at the EXIF block
/// (for TIFF it would read the whole file into memory).
const EXIF_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/heif"];

pub fn attach(config: &Config, args: AttachArgs) -> Result<(), CliError> {
    // Every file is checked before the passphrase is asked: a missing or oversized file
    // costs nothing.
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let meta = std::fs::metadata(path)
            .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(CliError::failure(format!(
                "{} is not a file",
                path.display()
            )));
        }
        let size = meta.len();
        let file = describe(path, args.caption.clone(), config.attachment_limit)?;
        if size > config.attachment_limit {
            return Err(cairn_vault::VaultError::AttachmentTooLarge {
                name: file.name,
                size,
                limit: config.attachment_limit,
            }
            .into());
        }
        files.push((file, size));
    }
    let mut vault = open(config)?;
    let mut text = String::new();
    for (file, size) in files {
        let bar = Bar::bytes("attaching", size);
        let attached = vault.attach(
            &args.reference,
            file,
            time::OffsetDateTime::now_utc(),
            &mut |done| bar.set(done),
        )?;
        bar.finish();
        let e = &attached.entry;
        text.push_str(&match attached.seq {
            Some(seq) => format!(
                "{}: attached {} ({}, {} bytes) sha256 {} (change {seq})\n",
                args.reference, e.name, e.media_type, e.size, e.sha256
            ),
            None => format!(
                "{}: {} is already attached (sha256 {}); stored once\n",
                args.reference, e.name, e.sha256
            ),
        });
    }
    output::print(&text)
}

pub fn list(config: &Config, args: CaseRef) -> Result<(), CliError> {
    let vault = open(config)?;
    let states = vault.attachments(&args.reference)?;
    if args.json {
        let items: Vec<_> = states
            .iter()
            .map(|s| {
                json!({
                    "attachment": s.entry,
                    "here": s.here,
                    "delivered": s.delivered,
                    "uploaded_chunks": s.uploaded,
                    "dropped": s.dropped,
                    "wanted": s.wanted,
                })
            })
            .collect();
        return output::json(&items);
    }
    if states.is_empty() {
        return output::print("no attachments\n");
    }
    let mut text = String::new();
    for s in &states {
        let e = &s.entry;
        let state = match (s.here, s.delivered, s.dropped) {
            (_, _, true) => "dropped from the outbox".to_string(),
            (true, true, _) => "here, delivered".to_string(),
            (true, false, _) if s.uploaded > 0 => {
                format!("here, {}/{} chunks sent", s.uploaded, e.chunks)
            }
            (true, false, _) => "here".to_string(),
            (false, _, _) if s.wanted => "not here, asked for".to_string(),
            (false, _, _) => "not here".to_string(),
        };
        text.push_str(&format!(
            "{}  {}  {}  {} bytes  {}  {}\n",
            output::escape(e.sha256.get(..16).unwrap_or(&e.sha256)),
            output::escape(&e.name),
            output::escape(&e.media_type),
            e.size,
            output::escape(&e.at),
            state
        ));
    }
    output::print(&text)
}

pub fn run(config: &Config, cmd: AttachmentCommand) -> Result<(), CliError> {
    match cmd {
        AttachmentCommand::Get {
            reference,
            hash,
            out,
        } => {
            let mut vault = open(config)?;
            let entry = vault.attachment_get(&reference, &hash, &out)?;
            output::print(&format!(
                "{}: wrote {} to {} (sha256 {} checked)\n",
                reference,
                output::escape(&entry.name),
                out.display(),
                entry.sha256
            ))
        }
        AttachmentCommand::Drop {
            reference,
            hash,
            reason,
        } => {
            if reason.trim().is_empty() {
                return Err(CliError::usage("--reason cannot be empty"));
            }
            let mut vault = open(config)?;
            let entry = vault.drop_attachment(
                &reference,
                &hash,
                &reason,
                time::OffsetDateTime::now_utc(),
            )?;
            output::print(&format!(
                "{reference}: {} dropped from the outbox; the case records why\n",
                output::escape(&entry.name)
            ))
        }
    }
}

/// What the file is: its name, media type from its content, and for a photo its EXIF time
/// and position.
fn describe(path: &Path, caption: Option<String>, limit: u64) -> Result<NewAttachment, CliError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::usage(format!("{} is not a file name", path.display())))?;
    let media_type = infer::get_from_path(path)
        .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?
        .map_or("application/octet-stream", |t| t.mime_type())
        .to_string();
    let (exif_time, gps) = if EXIF_TYPES.contains(&media_type.as_str()) {
        exif(path)
    } else {
        (None, None)
    };
    Ok(NewAttachment {
        path: path.to_path_buf(),
        name,
        media_type,
        caption,
        exif_time,
        gps,
        limit,
    })
}

/// The photo's original time (`YYYY-MM-DDTHH:MM:SS`, camera local time) and GPS position,
/// when its EXIF data holds them. Unreadable EXIF data is no reason to refuse the photo.
fn exif(path: &Path) -> (Option<String>, Option<(f64, f64)>) {
    let Ok(file) = File::open(path) else {
        return (None, None);
    };
    let Ok(data) = exif::Reader::new().read_from_container(&mut BufReader::new(file)) else {
        return (None, None);
    };
    let time = data
        .get_field(exif::Tag::DateTimeOriginal, exif::In::PRIMARY)
        .and_then(|f| match &f.value {
            exif::Value::Ascii(parts) => parts.first(),
            _ => None,
        })
        .and_then(|ascii| exif::DateTime::from_ascii(ascii).ok())
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )
        });
    let degrees = |tag, reference, negative: u8| {
        let field = data.get_field(tag, exif::In::PRIMARY)?;
        let exif::Value::Rational(parts) = &field.value else {
            return None;
        };
        let [d, m, s] = parts.as_slice() else {
            return None;
        };
        let value = d.to_f64() + m.to_f64() / 60.0 + s.to_f64() / 3600.0;
        let sign = match data
            .get_field(reference, exif::In::PRIMARY)
            .map(|f| &f.value)
        {
            Some(exif::Value::Ascii(r)) if r.first().and_then(|r| r.first()) == Some(&negative) => {
                -1.0
            }
            _ => 1.0,
        };
        Some(sign * value).filter(|v| v.is_finite())
    };
    let lat = degrees(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, b'S');
    let lon = degrees(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, b'W');
    let gps = match (lat, lon) {
        (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => Some((lat, lon)),
        _ => None,
    };
    (time, gps)
}
