//! Friendlier input, read before the vault is opened: values from a file or standard input,
//! moments as people type them, warnings for dates in the future, place names for codes, and
//! a word about a weak passphrase. The model still checks every value strictly.

use std::io::Read;
use std::path::Path;

use cairn_model::FieldType;
use time::OffsetDateTime;

use crate::error::CliError;

/// More than any field holds (100,000 characters of up to 4 bytes): a larger file is refused
/// before it is read whole.
const MAX_VALUE_BYTES: u64 = 400_000 + 1;

/// Now, with this device's offset when the system tells it (UTC otherwise).
pub fn local_now() -> OffsetDateTime {
    OffsetDateTime::now_local().unwrap_or_else(|_| OffsetDateTime::now_utc())
}

/// The value of `--set KEY=VALUE` as meant: `@FILE` reads a file, `@-` standard input (once
/// per command), `@@text` is the literal `@text`; anything else is itself.
pub fn value(key: &str, raw: &str, stdin_used: &mut bool) -> Result<String, CliError> {
    let Some(rest) = raw.strip_prefix('@') else {
        return Ok(raw.to_owned());
    };
    if rest.starts_with('@') {
        return Ok(rest.to_owned());
    }
    let (bytes, from) = if rest == "-" {
        if std::mem::replace(stdin_used, true) {
            return Err(CliError::usage(format!(
                "`{key}=@-`: standard input can be read only once per command"
            )));
        }
        (
            read_bounded(std::io::stdin().lock()),
            "standard input".to_owned(),
        )
    } else {
        let path = Path::new(rest);
        let file = std::fs::File::open(path).map_err(|e| {
            CliError::usage(format!(
                "`{key}=@{rest}`: cannot read {}: {e}",
                path.display()
            ))
        })?;
        (read_bounded(file), path.display().to_string())
    };
    let bytes = bytes.map_err(|e| CliError::usage(format!("`{key}`: cannot read {from}: {e}")))?;
    if bytes.len() as u64 >= MAX_VALUE_BYTES {
        return Err(CliError::usage(format!(
            "`{key}`: {from} is larger than any field holds ({} characters at most)",
            cairn_model::MAX_TEXT_CHARS
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::usage(format!("`{key}`: {from} is not UTF-8 text")))?;
    // A file's last line ends with a newline that is not part of the value.
    Ok(match text.strip_suffix('\n') {
        Some(t) => t.strip_suffix('\r').unwrap_or(t).to_owned(),
        None => text,
    })
}

fn read_bounded(source: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    source.take(MAX_VALUE_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A moment for a timestamp field or a record's `--at`, in the forms
/// [`cairn_model::parse_moment`] reads (a warning when it is after today); a clear error
/// otherwise.
pub fn moment(key: &str, raw: &str, now: OffsetDateTime) -> Result<String, CliError> {
    let moment = quiet_moment(key, raw, now)?;
    warn_if_future(key, FieldType::Timestamp, &moment, now);
    Ok(moment)
}

fn quiet_moment(key: &str, raw: &str, now: OffsetDateTime) -> Result<String, CliError> {
    cairn_model::parse_moment(raw, now).ok_or_else(|| {
        CliError::usage(format!(
            "invalid time `{raw}` for `{key}`: expected now, a date YYYY-MM-DD, a local time \
             YYYY-MM-DD HH:MM (this device's offset, {}) or RFC 3339 such as 2026-11-02T09:40:00+02:00",
            now.offset()
        ))
    })
}

/// A field's value as typed, by `--set` or in the form, checked as the vault will check it;
/// a time is read as people type it and comes back as RFC 3339. Warns of nothing, so the
/// form can check an answer before taking it: [`warn_if_future`] is the caller's.
pub fn field_value(key: &str, typed: &str, now: OffsetDateTime) -> Result<String, CliError> {
    let spec = cairn_model::field(key)?;
    // A day alone stays a day where the field takes one (`last_seen.at`).
    let day_alone = spec.ty == FieldType::DateOrTime && typed.trim().len() == 10;
    let value = if matches!(spec.ty, FieldType::Timestamp | FieldType::DateOrTime)
        && !typed.trim().is_empty()
        && !day_alone
    {
        quiet_moment(key, typed, now)?
    } else {
        typed.to_owned()
    };
    cairn_model::validate(key, &value)?;
    Ok(value)
}

/// A warning, not a refusal, for a date field after today: the clock or the typing may be
/// wrong, but a person may also record a planned examination.
pub fn warn_if_future(key: &str, ty: FieldType, value: &str, now: OffsetDateTime) {
    let first = value.split('/').next().unwrap_or(value);
    let date = match ty {
        FieldType::Date | FieldType::DateOrRange | FieldType::DateOrTime => {
            cairn_model::parse_moment(first, now)
        }
        FieldType::Timestamp => Some(value.to_owned()),
        _ => None,
    };
    let later = date
        .and_then(|d| {
            OffsetDateTime::parse(&d, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_some_and(|d| d.date() > now.date());
    if later {
        eprintln!(
            "cairn: warning: {} {value} is after today ({}); recorded as given. Check the date and the device's clock.",
            key,
            now.date()
        );
    }
}

/// Says so, without refusing, when a new passphrase is easy to guess: anyone holding the
/// device can try guesses against the key file for as long as they like.
pub fn warn_if_weak(passphrase: &str) {
    let entropy = zxcvbn::zxcvbn(passphrase, &["cairn"]);
    if u8::from(entropy.score()) >= 3 {
        return;
    }
    let advice = entropy
        .feedback()
        .map(|f| {
            let mut text: Vec<String> = f.warning().map(|w| w.to_string()).into_iter().collect();
            text.extend(f.suggestions().iter().map(ToString::to_string));
            text.join(" ")
        })
        .unwrap_or_default();
    eprintln!(
        "cairn: warning: this passphrase is weak (strength {} of 4); whoever takes the device \
         can guess it. Prefer four or more unrelated words. {advice}",
        u8::from(entropy.score())
    );
}
