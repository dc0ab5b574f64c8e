//! `cairn case import FILE [--map MAP.toml]`: cases kept elsewhere, brought in all at once.
//!
//! Every row is checked before the vault is opened, so a bad file costs no passphrase and
//! stores nothing; then every case is created in one transaction, so an import is stored
//! whole or not at all.
//!
//! Each row says what identifies it: its `source_id` when it has one (kept on the case), else
//! the file's name, the row's content and how many rows before it in the file had the same
//! content. The vault imports only rows it has not imported before (see
//! [`cairn_vault::NewCase::row`]), so running an import again (after it was killed, or on a
//! list that grew) adds only what is new and says how many rows were there already.

mod map;
mod read;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cairn_model::{Edit, Kind, Status};
use cairn_vault::{Created, NewCase, Role};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::cli::ImportArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::progress::Bar;
use crate::{output, vault_cmd};

use map::Column;
use map::Mapping;
use read::{LineError, ReadError, Rows};

/// Statuses only the office gives.
const OFFICE_STATUSES: [&str; 2] = ["confirmed", "rejected"];

pub fn run(config: &Config, args: ImportArgs) -> Result<(), CliError> {
    let mapping = match &args.map {
        Some(path) => Mapping::read(path)?,
        None => Mapping::default(),
    };
    let shown = args.file.display().to_string();
    let (cases, office_line) = parse(&args.file, &mapping).map_err(|e| match e {
        ReadError::Io(e) => CliError::failure(format!("cannot read {shown}: {e}")),
        ReadError::Empty => {
            CliError::failure(format!("{shown} holds no rows: there is nothing to import"))
        }
        ReadError::At(e) => CliError::failure(format!("{shown}: {}", nothing_imported(&e))),
    })?;
    let mut vault = vault_cmd::open(config)?;
    if let (Role::Field, Some(line)) = (vault.settings().role, office_line) {
        let e = LineError::new(
            line,
            Some("status"),
            "only the office confirms or rejects a case, and this is a field device; import such rows at the office, or give them status alleged or under_investigation.",
        );
        return Err(CliError::failure(format!(
            "{shown}: {}",
            nothing_imported(&e)
        )));
    }
    let (lines, cases): (Vec<u64>, Vec<NewCase>) = cases.into_iter().unzip();
    let bar = Bar::new("importing", cases.len() as u64);
    let made = vault.create_cases(&cases, time::OffsetDateTime::now_utc(), &mut |done| {
        bar.set(done as u64)
    });
    bar.finish();
    let made = made?;
    let created: Vec<(u64, &Created)> = lines
        .iter()
        .zip(&made)
        .filter_map(|(line, c)| Some((*line, c.as_ref()?)))
        .collect();
    let before: Vec<u64> = lines
        .iter()
        .zip(&made)
        .filter(|(_, c)| c.is_none())
        .map(|(line, _)| *line)
        .collect();
    tracing::info!(
        cases = created.len(),
        already = before.len(),
        "import recorded"
    );
    if args.json {
        let cases: Vec<_> = created
            .iter()
            .map(|(line, c)| json!({"line": line, "reference": c.reference, "id": c.id}))
            .collect();
        return output::json(&json!({
            "imported": created.len(),
            "cases": cases,
            "already_imported": before.len(),
            "already_imported_lines": before,
        }));
    }
    let span = match (created.first(), created.last()) {
        (Some((_, a)), Some((_, b))) if created.len() > 1 => {
            format!(": {} to {}", a.reference, b.reference)
        }
        (Some((_, a)), _) => format!(": {}", a.reference),
        _ => String::new(),
    };
    let text = match (created.len(), before.len()) {
        (n, 0) => format!("imported {n} case(s) from {shown}{span}\n"),
        (0, m) => format!(
            "imported nothing from {shown}: its {m} row(s) were all imported before, and are left as they are\n"
        ),
        (n, m) => format!(
            "imported {n} case(s) from {shown}{span}; {m} row(s) were imported before, and are left as they are\n"
        ),
    };
    output::print(&text)
}

fn nothing_imported(e: &LineError) -> String {
    let stop = if e.reason.ends_with('.') { "" } else { "." };
    format!("{e}{stop} Nothing was imported.")
}

/// Every row of `path` as a new case with its line, and the first line that confirms or
/// rejects (which a field device may not do).
#[allow(clippy::type_complexity)]
fn parse(path: &Path, mapping: &Mapping) -> Result<(Vec<(u64, NewCase)>, Option<u64>), ReadError> {
    let format = read::detect(path)?;
    let mut rows = Converter {
        mapping,
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cases: Vec::new(),
        office_line: None,
        source_ids: HashMap::new(),
        contents: HashMap::new(),
    };
    read::read(path, format, &mut rows)?;
    Ok((rows.cases, rows.office_line))
}

/// Turns rows into checked cases.
struct Converter<'m> {
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

impl Converter<'_> {
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
        "unknown {noun} {list}: map {each} to a cairn key under [columns], or list {each} under [ignore] columns, in a --map file (`cairn fields` lists the keys; place and status_basis are read too)"
    )
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
                            format!("`{first}` and `{name}` both give {key}; keep one, or ignore the other in a --map file"),
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
                    format!("there is no {required} column; add one, or give every row's {required} under [defaults] in a --map file"),
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
            "place" => {
                self.place = Some(cairn_model::validate_place(value).map_err(|e| e.to_string())?);
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
                "no kind is given; every case needs one (killed, injured, missing or remains)"
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
