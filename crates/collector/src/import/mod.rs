//! `cairn case import FILE [--map MAP.toml]`: cases kept elsewhere, brought in all at once.
//!
//! Every row is checked before the vault is opened (`cairn_vault::import_file`, which also
//! says what identifies a row), so a bad file costs no passphrase and stores nothing; then
//! every case is created in one transaction, so an import is stored whole or not at all.
//! Running an import again adds only what is new and says how many rows were there already.

mod map;

use std::path::Path;

use cairn_vault::import_file::{self, LineError, Mapping, ReadError};
use cairn_vault::{Created, NewCase, Role};
use serde_json::json;

use crate::cli::ImportArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::progress::Bar;
use crate::{output, vault_cmd};

pub fn run(config: &Config, args: ImportArgs) -> Result<(), CliError> {
    // Checked before the file is read or the passphrase asked.
    let team = args
        .team
        .as_deref()
        .map(cairn_model::validate_team)
        .transpose()?;
    let mapping = match &args.map {
        Some(path) => map::read(path)?,
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
    // Place names and aliases become codes, as `--place` takes them.
    let places = crate::places::Places::load(config, &vault)?;
    let mut cases = cases;
    for (line, case) in &mut cases {
        case.place = places.resolve(&case.place).map_err(|e| {
            let e = LineError::new(*line, Some("place"), &e.message);
            CliError::failure(format!("{shown}: {}", nothing_imported(&e)))
        })?;
    }
    let (lines, cases): (Vec<u64>, Vec<NewCase>) = cases.into_iter().unzip();
    let bar = Bar::new("importing", cases.len() as u64);
    let team = team.unwrap_or_else(|| vault.settings().team.clone());
    let made = vault.create_cases_in_team(
        &team,
        &cases,
        time::OffsetDateTime::now_utc(),
        &mut |done| bar.set(done as u64),
    );
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
    let map = match e.reason.contains("the column map") {
        true => " (the TOML file given with --map)",
        false => "",
    };
    format!("{e}{map}{stop} Nothing was imported.")
}

/// Every row of `path` as a new case with its line, and the first line that confirms or
/// rejects (which a field device may not do).
#[allow(clippy::type_complexity)]
fn parse(path: &Path, mapping: &Mapping) -> Result<(Vec<(u64, NewCase)>, Option<u64>), ReadError> {
    let format = import_file::detect(path)?;
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let input = std::fs::File::open(path).map_err(ReadError::Io)?;
    let parsed = import_file::parse(&file, std::io::BufReader::new(input), format, mapping)?;
    Ok((parsed.cases, parsed.office_line))
}
