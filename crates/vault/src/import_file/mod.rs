//! Reading an import file into new cases: what `cairn case import FILE [--map MAP.toml]`
//! checks before it opens the vault, so a bad file costs no passphrase and stores nothing.
//!
//! A file is CSV with a header row, or JSON Lines ([`read`]); each row's columns become
//! cairn keys through a [`Mapping`], and each row a checked [`NewCase`].
//!
//! Each row says what identifies it: its `source_id` when it has one (kept on the case), else
//! the file's name, the row's content and how many rows before it in the file had the same
//! content. The vault imports only rows it has not imported before (see [`NewCase::row`]),
//! so running an import again (after it was killed, or on a list that grew) adds only what is
//! new.
//!
//! Pure: no file, no database. It takes any bytes (the fuzz target `import` feeds it).

pub mod formula;
mod map;
mod read;

use std::collections::HashMap;
use std::io::Read;
use std::str::FromStr;

use cairn_model::{Edit, Kind, Status};
use sha2::{Digest, Sha256};

use crate::NewCase;

pub use map::{cairn_key, Column, Mapping, NotAKey, EXTRA_KEYS};
pub use read::{detect, read, sniff, Format, LineError, ReadError, Rows};

/// Statuses only the office gives.
const OFFICE_STATUSES: [&str; 2] = ["confirmed", "rejected"];

/// Every row of an import file as a new case.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Each row's line in the file and its case, in order.
    pub cases: Vec<(u64, NewCase)>,
    /// The first line that confirms or rejects (which a field device may not do).
    pub office_line: Option<u64>,
}

/// Reads `input`, an import file named `file` (its name without its folder: with a row's
/// content, what identifies a row without a source id), as `format`.
pub fn parse(
    file: &str,
    input: impl Read,
    format: Format,
    mapping: &Mapping,
) -> Result<Parsed, ReadError> {
    let mut rows = Converter::new(mapping, file);
    read(input, format, &mut rows)?;
    Ok(rows.finish())
}

/// Turns rows into checked cases: the [`Rows`] that [`parse`] reads a file into.
pub struct Converter<'m> {
    mapping: &'m Mapping,
    /// The file's name (without its folder): with a row's content, what identifies a row
    /// without a source id.
    file: String,
    cases: Vec<(u64, NewCase)>,
    office_line: Option<u64>,
    /// Each source id given, with its line.
    source_ids: HashMap<String, u64>,
    /// How many rows so far had each content (by its hash).
    contents: HashMap<[u8; 32], u64>,
}

impl<'m> Converter<'m> {
    /// A converter of the rows of the file named `file`.
    pub fn new(mapping: &'m Mapping, file: &str) -> Converter<'m> {
        Converter {
            mapping,
            file: file.to_string(),
            cases: Vec::new(),
            office_line: None,
            source_ids: HashMap::new(),
            contents: HashMap::new(),
        }
    }

    /// The cases of the rows read so far.
    pub fn finish(self) -> Parsed {
        Parsed {
            cases: self.cases,
            office_line: self.office_line,
        }
    }

    /// What identifies the row at `line`: its source id, else the file, its content and how
    /// many rows before it had the same content (two rows alike are two cases).
    fn row_key(
        &mut self,
        line: u64,
        cells: &[(&str, &str)],
        source_id: Option<(&str, &str)>,
    ) -> Result<Vec<u8>, LineError> {
        if let Some((column, id)) = source_id {
            if let Some(first) = self.source_ids.insert(id.to_owned(), line) {
                return Err(LineError::new(
                    line,
                    Some(column),
                    format!("the source id `{id}` is also on line {first}; each row's source id must be its own"),
                ));
            }
            return Ok([b"source_id\0".as_slice(), id.as_bytes()].concat());
        }
        let mut filled: Vec<&(&str, &str)> = cells.iter().filter(|(_, v)| !v.is_empty()).collect();
        filled.sort();
        let mut hash = Sha256::new();
        for (name, value) in filled {
            for part in [name, value] {
                hash.update((part.len() as u64).to_be_bytes());
                hash.update(part.as_bytes());
            }
        }
        let content: [u8; 32] = hash.finalize().into();
        let nth = self.contents.entry(content).or_insert(0);
        *nth += 1;
        Ok([
            b"row\0".as_slice(),
            self.file.as_bytes(),
            b"\0",
            &content,
            &nth.to_be_bytes(),
        ]
        .concat())
    }
}

impl Rows for Converter<'_> {
    fn header(&mut self, names: &[&str]) -> Result<(), LineError> {
        let mut unknown = Vec::new();
        let mut seen: HashMap<&'static str, &str> = HashMap::new();
        for name in names {
            match self.mapping.column(name) {
                Column::Key(key) => {
                    if let Some(first) = seen.insert(key, name) {
                        return Err(LineError::new(
                            1,
                            Some(name),
                            format!("`{first}` and `{name}` both give {key}; keep one, or ignore the other in the column map"),
                        ));
                    }
                }
                Column::Ignored => {}
                Column::Unknown => unknown.push(*name),
            }
        }
        if !unknown.is_empty() {
            return Err(LineError::new(1, None, unknown_column(&unknown)));
        }
        for required in ["kind", "place"] {
            if !seen.contains_key(required) && self.mapping.default_of(required).is_none() {
                return Err(LineError::new(
                    1,
                    None,
                    format!("there is no {required} column; add one, or give every row's {required} under [defaults] in the column map"),
                ));
            }
        }
        Ok(())
    }

    fn row(&mut self, line: u64, cells: &[(&str, &str)]) -> Result<(), LineError> {
        // (cairn key, source column, value) of every cell that sets something.
        let mut given: Vec<(&'static str, &str, &str)> = Vec::with_capacity(cells.len());
        for (name, raw) in cells {
            let key = match self.mapping.column(name) {
                Column::Key(key) => key,
                Column::Ignored => continue,
                Column::Unknown => return Err(LineError::new(line, None, unknown_column(&[name]))),
            };
            if let Some((_, first, _)) = given.iter().find(|(k, _, _)| *k == key) {
                return Err(LineError::new(
                    line,
                    Some(name),
                    format!("`{first}` and `{name}` both give {key}"),
                ));
            }
            given.push((key, name, self.mapping.value(key, raw)));
        }
        // A default fills what a row leaves empty.
        for (key, value) in self.mapping.defaults() {
            let set = given
                .iter()
                .any(|(k, _, v)| *k == key && !v.trim().is_empty());
            if !set {
                given.retain(|(k, _, _)| *k != key);
                given.push((key, "[defaults]", value));
            }
        }
        let mut case = Case::default();
        let mut source_id = None;
        for (key, source, value) in given {
            if value.trim().is_empty() {
                continue;
            }
            if key == "source_id" {
                source_id = Some((shown(source, key), value.trim()));
            }
            case.put(key, source, value)
                .map_err(|reason| LineError::new(line, Some(&shown(source, key)), reason))?;
        }
        let mut new = case
            .finish()
            .map_err(|(column, reason)| LineError::new(line, Some(&column), reason))?;
        let source_id = source_id.as_ref().map(|(c, id)| (c.as_str(), *id));
        new.0.row = Some(self.row_key(line, cells, source_id)?);
        if self.office_line.is_none() && new.1 {
            self.office_line = Some(line);
        }
        self.cases.push((line, new.0));
        Ok(())
    }
}

/// One row's values as they are read.
#[derive(Default)]
struct Case {
    kind: Option<Kind>,
    place: Option<String>,
    /// Status and basis, each with the column it came from (for messages).
    status: Option<(String, String)>,
    basis: Option<(String, String)>,
    edits: Vec<Edit>,
}

impl Case {
    /// Takes one non-empty cell; the error is the reason.
    fn put(&mut self, key: &'static str, source: &str, value: &str) -> Result<(), String> {
        match key {
            "kind" => self.kind = Some(Kind::from_str(value).map_err(|e| e.to_string())?),
            // A code, or a place's name or alias, which the caller turns into its code with
            // the places it knows (this crate does not read them).
            "place" => {
                let code = cairn_model::validate_place(value);
                let named = value.trim();
                self.place = Some(match code {
                    Ok(code) => code,
                    Err(_) if !named.is_empty() && named.chars().count() <= 100 => named.to_owned(),
                    Err(e) => return Err(e.to_string()),
                });
            }
            "status" => {
                let status = Status::from_str(value).map_err(|e| e.to_string())?;
                self.status = Some((status.to_string(), shown(source, key)));
            }
            "status_basis" => {
                self.basis = Some((value.trim().to_string(), shown(source, key)));
            }
            _ => {
                let edit = Edit::set(key, value);
                edit.check().map_err(|e| e.to_string())?;
                self.edits.push(edit);
            }
        }
        Ok(())
    }

    /// The new case, with whether it confirms or rejects; the error names the column.
    fn finish(mut self) -> Result<(NewCase, bool), (String, String)> {
        let Some(kind) = self.kind else {
            return Err((
                "kind".into(),
                "no kind is given; every case needs one (killed, injured, missing, remains or detained)"
                    .into(),
            ));
        };
        let Some(place) = self.place else {
            return Err((
                "place".into(),
                "no place code is given; every case needs one, for example KHR".into(),
            ));
        };
        let mut office = false;
        match (self.status, self.basis) {
            (None, Some((_, column))) => {
                return Err((
                    column,
                    "a status basis is given without a status; give the status it is the basis of"
                        .into(),
                ))
            }
            (Some((status, column)), basis) => {
                let basis = basis.map(|(b, _)| b);
                if OFFICE_STATUSES.contains(&status.as_str()) {
                    if basis.is_none() {
                        return Err((
                            column,
                            format!(
                                "status {status} needs a status_basis: the grounds it rests on"
                            ),
                        ));
                    }
                    office = true;
                }
                // Every case starts alleged: only a basis makes that worth recording.
                if status != "alleged" || basis.is_some() {
                    let edit = Edit::Verify { status, basis };
                    edit.check().map_err(|e| (column, e.to_string()))?;
                    self.edits.push(edit);
                }
            }
            (None, None) => {}
        }
        Ok((
            NewCase {
                kind,
                place,
                edits: self.edits,
                row: None,
            },
            office,
        ))
    }
}

/// How a message names a source column: by its own name, and the cairn key it holds when
/// that differs.
fn shown(source: &str, key: &str) -> String {
    if source.trim().eq_ignore_ascii_case(key) {
        key.to_string()
    } else {
        format!("{source} ({key})")
    }
}

fn unknown_column(names: &[&str]) -> String {
    // A `Status` column (ODK's submission state) gets its own reason: it looks like a key.
    let (status, others): (Vec<&str>, Vec<&str>) = names
        .iter()
        .partition(|n| n.trim().eq_ignore_ascii_case("status"));
    let Some(status) = status.first() else {
        return unknown_columns(names);
    };
    let mut reason = format!(
        "column `{status}` is not taken as the case's status (only a column named exactly `status` is; exports such as ODK's use `{status}` for the state of a submission): rename it `status` if it holds {}, or map it under [columns] or list it under [ignore] columns in the column map",
        Status::ALL.map(Status::as_str).join(", ")
    );
    if !others.is_empty() {
        reason.push_str(&format!("; also, {}", unknown_columns(&others)));
    }
    reason
}

fn unknown_columns(names: &[&str]) -> String {
    let list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let (noun, each) = if names.len() == 1 {
        ("column", "it")
    } else {
        ("columns", "each")
    };
    format!(
        "unknown {noun} {list}: map {each} to a cairn key under [columns], or list {each} under [ignore] columns, in the column map (the keys are the case's field keys; place and status_basis are read too)"
    )
}
