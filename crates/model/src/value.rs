//! What each type of field accepts, and the checked values it turns input into.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use crate::ModelError;

/// The longest text a text field holds, in characters (about 30 pages): every device must be
/// able to merge any case, and each character is an Automerge operation.
pub const MAX_TEXT_CHARS: usize = 100_000;

/// What a field accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldType {
    /// One of a fixed list of lowercase words.
    Choice(&'static [&'static str]),
    /// Automerge text: concurrent typing merges character by character.
    Text,
    /// A short string; a concurrent set is a conflict, not a merge.
    Str,
    /// A calendar date `YYYY-MM-DD`.
    Date,
    /// A date, or a range `YYYY-MM-DD/YYYY-MM-DD` whose start is not after its end.
    DateOrRange,
    /// An RFC 3339 timestamp with its offset.
    Timestamp,
    /// A calendar date `YYYY-MM-DD` or an RFC 3339 timestamp: a family often knows the day
    /// a person was last seen, not the hour.
    DateOrTime,
    /// A finite number, within the bounds given.
    Float {
        /// Lowest accepted value, if any.
        min: Option<f64>,
        /// Highest accepted value, if any.
        max: Option<f64>,
    },
    /// A whole number within `min..=max`.
    Int {
        /// Lowest accepted value.
        min: i64,
        /// Highest accepted value.
        max: i64,
    },
}

/// A validated value, in the form it is stored in the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A choice, string, date, range or timestamp in canonical form; empty clears the field.
    Str(String),
    /// The new full content of a text field; empty clears it.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A finite number.
    Float(f64),
}

impl Value {
    /// The value as JSON, as [`crate::CaseDoc::to_json`] shows it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) | Value::Text(s) => serde_json::Value::from(s.as_str()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Value::from(*f),
        }
    }
}

impl FieldType {
    /// What the field accepts, as a phrase that reads after "expected".
    pub fn describe(&self) -> String {
        match self {
            FieldType::Choice(options) => format!("one of: {}", options.join(", ")),
            FieldType::Text => {
                format!("free text of at most {MAX_TEXT_CHARS} characters (empty clears it)")
            }
            FieldType::Str => "a line of text (empty clears it)".to_string(),
            FieldType::Date => "a date YYYY-MM-DD".to_string(),
            FieldType::DateOrRange => {
                "a date YYYY-MM-DD or a range YYYY-MM-DD/YYYY-MM-DD".to_string()
            }
            FieldType::Timestamp => {
                "an RFC 3339 timestamp such as 2024-05-01T14:30:00Z".to_string()
            }
            FieldType::DateOrTime => {
                "a date YYYY-MM-DD or an RFC 3339 timestamp such as 2024-05-01T14:30:00Z"
                    .to_string()
            }
            FieldType::Float { min, max } => match (min, max) {
                (Some(lo), Some(hi)) => format!("a number from {lo} to {hi}"),
                (Some(lo), None) => format!("a number of {lo} or more"),
                (None, Some(hi)) => format!("a number of {hi} or less"),
                (None, None) => "a number".to_string(),
            },
            FieldType::Int { min, max } => format!("a whole number from {min} to {max}"),
        }
    }

    /// Parses `raw` for the field `key` (the key is only used in errors).
    pub(crate) fn parse(&self, key: &str, raw: &str) -> Result<Value, ModelError> {
        let invalid = || ModelError::invalid(key, raw, self.describe());
        let s = raw.trim();
        match *self {
            FieldType::Text if raw.chars().count() > MAX_TEXT_CHARS => Err(ModelError::invalid(
                key,
                &format!("{}...", raw.chars().take(20).collect::<String>()),
                format!("at most {MAX_TEXT_CHARS} characters"),
            )),
            FieldType::Text => Ok(Value::Text(raw.to_string())),
            FieldType::Str => Ok(Value::Str(s.to_string())),
            FieldType::Choice(options) => {
                let lower = s.to_lowercase();
                options
                    .iter()
                    .find(|o| **o == lower)
                    .map(|o| Value::Str(o.to_string()))
                    .ok_or_else(|| ModelError::invalid_choice(key, raw, options))
            }
            FieldType::Date => parse_date(s)
                .map(|_| Value::Str(s.to_string()))
                .ok_or_else(invalid),
            FieldType::DateOrRange => {
                let Some((start, end)) = s.split_once('/') else {
                    return parse_date(s)
                        .map(|_| Value::Str(s.to_string()))
                        .ok_or_else(invalid);
                };
                let (Some(a), Some(b)) = (parse_date(start), parse_date(end)) else {
                    return Err(invalid());
                };
                if a > b {
                    return Err(ModelError::invalid(
                        key,
                        raw,
                        "a range whose start is on or before its end",
                    ));
                }
                Ok(Value::Str(s.to_string()))
            }
            FieldType::DateOrTime if parse_date(s).is_some() => Ok(Value::Str(s.to_string())),
            FieldType::Timestamp | FieldType::DateOrTime => OffsetDateTime::parse(s, &Rfc3339)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .map(Value::Str)
                .ok_or_else(invalid),
            FieldType::Float { min, max } => {
                let x: f64 = s.parse().map_err(|_| match decimal_comma(s) {
                    Some(dotted) => ModelError::invalid(
                        key,
                        raw,
                        format!("{} (use a dot: {dotted})", self.describe()),
                    ),
                    None => invalid(),
                })?;
                let in_range =
                    x.is_finite() && min.is_none_or(|lo| x >= lo) && max.is_none_or(|hi| x <= hi);
                if in_range {
                    Ok(Value::Float(x))
                } else {
                    Err(invalid())
                }
            }
            FieldType::Int { min, max } => match s.parse::<i64>() {
                Ok(x) if (min..=max).contains(&x) => Ok(Value::Int(x)),
                _ => Err(invalid()),
            },
        }
    }
}

/// `31,5` written with a dot, when that makes a number: the decimal comma of many locales.
fn decimal_comma(s: &str) -> Option<String> {
    let dotted = s.replacen(',', ".", 1);
    (s.matches(',').count() == 1 && dotted.parse::<f64>().is_ok()).then_some(dotted)
}

/// Reads a moment as a person types it, for a timestamp field or a record's time: an RFC 3339
/// timestamp; a date and a local time `YYYY-MM-DD HH:MM[:SS]` (or with `T`); a date alone (its
/// midnight); or `now`. What carries no offset takes the offset of `now`, the device's.
/// Returns the moment as RFC 3339, what [`FieldType::Timestamp`] stores, or `None`.
pub fn parse_moment(raw: &str, now: OffsetDateTime) -> Option<String> {
    let s = raw.trim();
    let moment = if s.eq_ignore_ascii_case("now") {
        now.replace_nanosecond(0).ok()?
    } else if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        t
    } else {
        let (date, clock) = match s.get(10..) {
            Some("") => (parse_date(s)?, time::Time::MIDNIGHT),
            Some(rest) if rest.starts_with([' ', 'T', 't']) => {
                (parse_date(s.get(..10)?)?, parse_clock(rest.get(1..)?)?)
            }
            _ => return None,
        };
        date.with_time(clock).assume_offset(now.offset())
    };
    moment.format(&Rfc3339).ok()
}

/// `HH:MM` or `HH:MM:SS`.
fn parse_clock(s: &str) -> Option<time::Time> {
    let parts: Vec<&str> = s.split(':').collect();
    let number = |p: &str| (p.len() == 2).then(|| p.parse::<u8>().ok()).flatten();
    match parts.as_slice() {
        [h, m] => time::Time::from_hms(number(h)?, number(m)?, 0).ok(),
        [h, m, sec] => time::Time::from_hms(number(h)?, number(m)?, number(sec)?).ok(),
        _ => None,
    }
}

/// Parses exactly `YYYY-MM-DD` into a real calendar date.
fn parse_date(s: &str) -> Option<Date> {
    let bytes = s.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}
