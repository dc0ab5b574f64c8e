//! The mapping file of `cairn case import --map`: how another tool's columns and values
//! become Cairn's, so its export comes in without editing.
//!
//! ```toml
//! [columns]                      # source column = cairn key
//! "incident-cause" = "incident.cause"
//! [values."incident.cause"]      # per cairn key: source value = cairn value ("" = not set)
//! "Targeted strike" = "targeted_strike"
//! [ignore]                       # source columns deliberately left out
//! columns = ["KEY", "SubmissionDate"]
//! [defaults]                     # cairn key = value for rows (or files) that give none
//! place = "KHR"
//! ```
//!
//! Every table is optional. What the tables mean is `cairn_vault::import_file::Mapping`'s;
//! this reads the file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use cairn_vault::import_file::Mapping;

use crate::error::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    ignore: Ignore,
    #[serde(default)]
    defaults: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ignore {
    #[serde(default)]
    columns: Vec<String>,
}

/// Reads and checks a mapping file.
pub fn read(path: &Path) -> Result<Mapping, CliError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::failure(format!("cannot read the map file {shown}: {e}")))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        let what = what.trim_end_matches('.');
        let at = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
            .unwrap_or_default();
        CliError::failure(format!(
            "the map file {shown} is not valid{at}: {what}; it takes the tables [columns], [values.KEY], [ignore] and [defaults]"
        ))
    })?;
    Mapping::new(file.columns, file.values, file.ignore.columns, file.defaults).map_err(|e| {
        CliError::failure(format!(
            "the map file {shown} names `{}` in {}, which is no cairn key; `cairn fields` lists them, with place and status_basis",
            e.name, e.table
        ))
    })
}
