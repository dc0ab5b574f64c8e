//! Reading an import file row by row: CSV with a header row, or JSON Lines.
//!
//! Each row comes out as its line number in the file and its cells as (column, text) pairs;
//! what the columns mean is the caller's business. Nothing here keeps more than one row.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;

/// A problem at one place in the file.
#[derive(Debug)]
pub struct LineError {
    /// Line number in the file (the header of a CSV file is line 1).
    pub line: u64,
    /// The source column, where one is to blame.
    pub column: Option<String>,
    /// What is wrong, as a sentence.
    pub reason: String,
}

impl LineError {
    pub fn new(line: u64, column: Option<&str>, reason: impl Into<String>) -> LineError {
        LineError {
            line,
            column: column.map(str::to_string),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column {}: {}", self.line, c, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// What went wrong reading the file.
#[derive(Debug)]
pub enum ReadError {
    /// The file cannot be opened or read.
    Io(std::io::Error),
    /// It holds nothing to import.
    Empty,
    /// A line is malformed, or the caller refused it.
    At(LineError),
}

impl From<LineError> for ReadError {
    fn from(e: LineError) -> Self {
        ReadError::At(e)
    }
}

/// The two formats an import takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

/// The format of `path`: by its extension, else by its first non-space byte (`{` is JSON
/// Lines).
pub fn detect(path: &Path) -> Result<Format, ReadError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => return Ok(Format::Csv),
        Some("jsonl" | "ndjson") => return Ok(Format::JsonLines),
        _ => {}
    }
    let mut head = Vec::with_capacity(4096);
    File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(ReadError::Io)?;
    Ok(sniff(&head))
}

/// The format of a file that starts with `head`: JSON Lines if its first non-space byte is
/// `{`, else CSV.
pub fn sniff(head: &[u8]) -> Format {
    let first = head
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(head)
        .iter()
        .find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'{') => Format::JsonLines,
        _ => Format::Csv,
    }
}

/// The callbacks of [`read`]: the header (CSV only), then every row.
pub trait Rows {
    /// The header row's column names (CSV). Also called with the header as each delimiter
    /// splits it, to find the one that fits: it must change nothing.
    fn header(&mut self, names: &[&str]) -> Result<(), LineError>;
    /// One row: its line and its (column, text) cells; empty text means not set.
    fn row(&mut self, line: u64, cells: &[(&str, &str)]) -> Result<(), LineError>;
}

/// Reads `input` as `format`, handing each row to `rows`; returns how many rows there were.
pub fn read(input: impl Read, format: Format, rows: &mut dyn Rows) -> Result<u64, ReadError> {
    let count = match format {
        Format::Csv => csv_rows(input, rows)?,
        Format::JsonLines => json_rows(BufReader::new(input), rows)?,
    };
    if count == 0 {
        return Err(ReadError::Empty);
    }
    Ok(count)
}

fn csv_error(e: &csv::Error, fallback: u64) -> ReadError {
    if let csv::ErrorKind::Io(io) = e.kind() {
        return ReadError::Io(std::io::Error::new(io.kind(), io.to_string()));
    }
    let line = e.position().map_or(fallback, csv::Position::line);
    let reason = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "it is not UTF-8 text; save the file as UTF-8".to_string(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("it has {len} cells where the header has {expected_len}"),
        other => format!("it is not valid CSV ({other:?})"),
    };
    LineError::new(line, None, reason).into()
}

/// The delimiters a CSV file may use: `,`, then `;` (what Excel writes in locales whose
/// decimal mark is a comma), then tab.
const DELIMITERS: [(u8, &str); 3] = [(b',', "`,`"), (b';', "`;`"), (b'\t', "tab")];

/// The header row's names as `delimiter` splits `line`, a byte-order mark left out.
fn header_names(line: &[u8], delimiter: u8) -> Option<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(line);
    let record = reader.records().next()?.ok()?;
    Some(
        record
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                }
            })
            .map(str::to_string)
            .collect(),
    )
}

/// The delimiter whose split of the header line `rows` accepts. When none fits, the error
/// of the split into the most columns (the likeliest delimiter), with the delimiters tried.
fn delimiter(line: &[u8], rows: &mut dyn Rows) -> Result<u8, ReadError> {
    let mut best: Option<(usize, LineError)> = None;
    for (delimiter, _) in DELIMITERS {
        let Some(names) = header_names(line, delimiter) else {
            continue;
        };
        if names.iter().all(|n| n.trim().is_empty()) {
            continue;
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match rows.header(&names) {
            Ok(()) => return Ok(delimiter),
            Err(e) if best.as_ref().is_none_or(|(n, _)| names.len() > *n) => {
                best = Some((names.len(), e));
            }
            Err(_) => {}
        }
    }
    // An empty or unreadable header: the reader says what is wrong with it.
    let Some((_, mut e)) = best else {
        return Ok(b',');
    };
    let [(_, a), (_, b), (_, c)] = DELIMITERS;
    e.reason = format!(
        "{}; the header was split at {a}, at {b} and at {c} in turn, and fits with none of them",
        e.reason.trim_end_matches('.')
    );
    Err(e.into())
}

fn csv_rows(input: impl Read, rows: &mut dyn Rows) -> Result<u64, ReadError> {
    // The header line is read first to choose the delimiter, then read again with the rest.
    let mut input = BufReader::new(input);
    let mut first = Vec::new();
    // Up to the end of the header record: a quoted name may hold a line break (an odd
    // count of quotes so far means one is open). Bounded, should a quote never close.
    loop {
        let read = input.read_until(b'\n', &mut first).map_err(ReadError::Io)?;
        let open = first.iter().filter(|&&b| b == b'"').count() % 2 == 1;
        if read == 0 || !open || first.len() > 1 << 20 {
            break;
        }
    }
    let delimiter = delimiter(&first, rows)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(std::io::Cursor::new(first).chain(input));
    let header = reader.headers().map_err(|e| csv_error(&e, 1))?.clone();
    let names: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            }
        })
        .collect();
    if names.iter().all(|n| n.trim().is_empty()) {
        return Err(ReadError::Empty);
    }
    rows.header(&names)?;
    let mut record = csv::StringRecord::new();
    let mut count = 0;
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| csv_error(&e, count + 2))?;
        if !more {
            break;
        }
        let line = record.position().map_or(count + 2, csv::Position::line);
        // A blank line between rows is no case.
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        // A cell a spreadsheet-safe export quoted (`'=...`) is read as it was exported.
        let cells: Vec<(&str, &str)> = names
            .iter()
            .copied()
            .zip(record.iter().map(super::formula::unescape))
            .collect();
        rows.row(line, &cells)?;
        count += 1;
    }
    Ok(count)
}

fn json_rows(input: impl BufRead, rows: &mut dyn Rows) -> Result<u64, ReadError> {
    let mut count = 0;
    let mut flat: Vec<(String, String)> = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let number = i as u64 + 1;
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => ReadError::At(LineError::new(
                number,
                None,
                "it is not UTF-8 text; save the file as UTF-8",
            )),
            _ => ReadError::Io(e),
        })?;
        let text = line.trim().trim_start_matches('\u{feff}');
        if text.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            LineError::new(
                number,
                None,
                format!("it is not a JSON object ({e}); JSON Lines holds one object per line"),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(LineError::new(
                number,
                None,
                "it is not a JSON object; JSON Lines holds one object per line",
            )
            .into());
        };
        flat.clear();
        for (key, value) in map {
            flatten(number, key, value, &mut flat)?;
        }
        let cells: Vec<(&str, &str)> = flat.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        rows.row(number, &cells)?;
        count += 1;
    }
    Ok(count)
}

/// One JSON member as cells: text as it is, numbers as written, true and false as yes and
/// no, null as not set, and an object's members as `key.member` (as `case show --json`
/// nests the groups).
fn flatten(
    line: u64,
    key: String,
    value: Value,
    out: &mut Vec<(String, String)>,
) -> Result<(), LineError> {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if b { "yes" } else { "no" }.to_string(),
        Value::Object(map) => {
            for (member, value) in map {
                flatten(line, format!("{key}.{member}"), value, out)?;
            }
            return Ok(());
        }
        Value::Array(_) => {
            return Err(LineError::new(
                line,
                Some(&key),
                "a list cannot be imported; give one value per column",
            ))
        }
    };
    out.push((key, text));
    Ok(())
}
