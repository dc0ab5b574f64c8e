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
const EXIF_TYPES: [&str; 5] = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heif",
    "image/avif",
];

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
    match File::open(path) {
        Ok(file) => exif_of(&mut BufReader::new(file)),
        Err(_) => (None, None),
    }
}

/// [`exif`] of a file's bytes. Phones and editors write EXIF loosely, so what can be read is
/// read: past a broken entry (the reader's partial result), the time from the first of
/// DateTimeOriginal, DateTimeDigitized and DateTime that holds one, and GPS degrees given as
/// one, two or three numbers.
fn exif_of<R: std::io::BufRead + std::io::Seek>(
    reader: &mut R,
) -> (Option<String>, Option<(f64, f64)>) {
    let data = match exif::Reader::new()
        .continue_on_error(true)
        .read_from_container(reader)
        .or_else(|e| e.distill_partial_result(|_| {}))
    {
        Ok(data) => data,
        Err(_) => return (None, None),
    };
    let time = [
        exif::Tag::DateTimeOriginal,
        exif::Tag::DateTimeDigitized,
        exif::Tag::DateTime,
    ]
    .into_iter()
    .find_map(|tag| match &data.get_field(tag, exif::In::PRIMARY)?.value {
        exif::Value::Ascii(parts) => parts.first().and_then(|t| camera_time(t)),
        _ => None,
    });
    let degrees = |tag, reference, negative: u8| {
        let parts: Vec<f64> = match &data.get_field(tag, exif::In::PRIMARY)?.value {
            exif::Value::Rational(parts) => parts.iter().map(exif::Rational::to_f64).collect(),
            exif::Value::SRational(parts) => parts.iter().map(exif::SRational::to_f64).collect(),
            _ => return None,
        };
        if parts.is_empty() || parts.len() > 3 {
            return None;
        }
        let value: f64 = parts
            .iter()
            .zip([1.0, 60.0, 3600.0])
            .map(|(part, per)| part / per)
            .sum();
        let sign = match data
            .get_field(reference, exif::In::PRIMARY)
            .map(|f| &f.value)
        {
            Some(exif::Value::Ascii(r))
                if r.first()
                    .and_then(|r| r.first())
                    .is_some_and(|c| c.to_ascii_uppercase() == negative) =>
            {
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

/// An EXIF time (`YYYY:MM:DD HH:MM:SS`, or with other separators, or without seconds) as
/// `YYYY-MM-DDTHH:MM:SS`; a blank or zeroed one, or one out of range, is none.
fn camera_time(ascii: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(ascii).ok()?;
    let numbers: Vec<u32> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let (date, clock) = match numbers.as_slice() {
        [y, mo, d, h, mi, s, ..] => ([*y, *mo, *d], [*h, *mi, *s]),
        [y, mo, d, h, mi] => ([*y, *mo, *d], [*h, *mi, 0]),
        _ => return None,
    };
    let [y, mo, d] = date;
    let [h, mi, s] = clock;
    let valid = (1900..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && h < 24
        && mi < 60
        && s < 61;
    valid.then(|| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Cursor;

    const ASCII: u16 = 2;
    const LONG: u16 = 4;
    const RATIONAL: u16 = 5;

    /// One IFD entry: tag, type, count and its value's bytes (little-endian).
    type Entry = (u16, u16, u32, Vec<u8>);

    fn ascii(tag: u16, text: &str) -> Entry {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        (tag, ASCII, bytes.len() as u32, bytes)
    }

    fn rationals(tag: u16, parts: &[(u32, u32)]) -> Entry {
        let bytes = parts
            .iter()
            .flat_map(|(n, d)| [n.to_le_bytes(), d.to_le_bytes()].concat())
            .collect();
        (tag, RATIONAL, parts.len() as u32, bytes)
    }

    /// A JPEG holding only an EXIF block: IFD0 (with `primary`), an Exif IFD and a GPS IFD.
    fn jpeg(primary: Vec<Entry>, exif_ifd: Vec<Entry>, gps: Vec<Entry>) -> Vec<u8> {
        let size = |n: usize| 2 + 12 * n + 4;
        let (n0, n1, n2) = (primary.len() + 2, exif_ifd.len(), gps.len());
        let (at0, at1) = (8, 8 + size(n0));
        let at2 = at1 + size(n1);
        let mut data_at = at2 + size(n2);
        let mut ifd0 = primary;
        ifd0.push((0x8769, LONG, 1, (at1 as u32).to_le_bytes().to_vec()));
        ifd0.push((0x8825, LONG, 1, (at2 as u32).to_le_bytes().to_vec()));
        ifd0.sort_by_key(|e| e.0);
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&(at0 as u32).to_le_bytes());
        let mut extra = Vec::new();
        for ifd in [ifd0, exif_ifd, gps] {
            tiff.extend_from_slice(&(ifd.len() as u16).to_le_bytes());
            for (tag, kind, count, value) in ifd {
                tiff.extend_from_slice(&tag.to_le_bytes());
                tiff.extend_from_slice(&kind.to_le_bytes());
                tiff.extend_from_slice(&count.to_le_bytes());
                if value.len() <= 4 {
                    let mut inline = value.clone();
                    inline.resize(4, 0);
                    tiff.extend_from_slice(&inline);
                } else {
                    tiff.extend_from_slice(&(data_at as u32).to_le_bytes());
                    data_at += value.len();
                    extra.extend_from_slice(&value);
                }
            }
            tiff.extend_from_slice(&0u32.to_le_bytes());
        }
        tiff.extend_from_slice(&extra);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    fn read(bytes: Vec<u8>) -> (Option<String>, Option<(f64, f64)>) {
        exif_of(&mut Cursor::new(bytes))
    }

    #[test]
    fn a_camera_s_time_and_position_are_read() {
        let (time, gps) = read(jpeg(
            vec![ascii(0x0132, "2024:01:02 03:04:05")],
            vec![ascii(0x9003, "2023:10:07 06:30:15")],
            vec![
                ascii(0x0001, "S"),
                rationals(0x0002, &[(31, 1), (30, 1), (36, 1)]),
                ascii(0x0003, "W"),
                rationals(0x0004, &[(34, 1), (27, 1), (0, 1)]),
            ],
        ));
        assert_eq!(time.as_deref(), Some("2023-10-07T06:30:15"));
        let (lat, lon) = gps.unwrap();
        assert!(
            (lat + 31.51).abs() < 1e-9 && (lon + 34.45).abs() < 1e-9,
            "{lat} {lon}"
        );
    }

    #[test]
    fn what_phones_and_editors_write_loosely_is_read_too() {
        // No Exif IFD time: the image's DateTime; degrees and decimal minutes; a lowercase
        // reference; a time without seconds.
        let (time, gps) = read(jpeg(
            vec![ascii(0x0132, "2023-10-07 06:30")],
            vec![ascii(0x9003, "    :  :     :  :  ")],
            vec![
                ascii(0x0001, "n"),
                rationals(0x0002, &[(31, 1), (3075, 100)]),
                rationals(0x0004, &[(3445, 100)]),
            ],
        ));
        assert_eq!(time.as_deref(), Some("2023-10-07T06:30:00"));
        let (lat, lon) = gps.unwrap();
        assert!(
            (lat - 31.5125).abs() < 1e-9 && (lon - 34.45).abs() < 1e-9,
            "{lat} {lon}"
        );
        // A broken entry (its value points past the end) does not hide the rest.
        let mut broken = jpeg(
            vec![(0x010F, ASCII, 4000, vec![0; 8])],
            vec![ascii(0x9003, "2023:10:07 06:30:15")],
            vec![],
        );
        let (time, gps) = read(broken.clone());
        assert_eq!(time.as_deref(), Some("2023-10-07T06:30:15"));
        assert_eq!(gps, None);
        // Zeroed times, out-of-range positions and a division by zero are none.
        let (time, gps) = read(jpeg(
            vec![ascii(0x0132, "0000:00:00 00:00:00")],
            vec![],
            vec![rationals(0x0002, &[(91, 1)]), rationals(0x0004, &[(1, 0)])],
        ));
        assert_eq!((time, gps), (None, None));
        // Cut short anywhere, or garbage: nothing, and no panic.
        let whole = broken.len();
        for cut in (0..whole).step_by(7) {
            broken.truncate(cut);
            let _ = read(broken.clone());
        }
        assert_eq!(
            read(b"\xFF\xD8\xFF\xE1\x00\x10Exif\0\0garbage!".to_vec()),
            (None, None)
        );
    }
}
