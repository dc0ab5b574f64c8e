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
//! Every table is optional. A source column that is neither a cairn key, mapped nor ignored
//! is an error, so nothing is dropped without someone having said so.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::error::CliError;

/// Columns an import reads besides the fields of `cairn fields`.
pub const EXTRA_KEYS: [&str; 2] = ["place", "status_basis"];

/// The cairn key `name` stands for (any letter case), if it is one.
pub fn cairn_key(name: &str) -> Option<&'static str> {
    let wanted = name.trim().to_lowercase();
    cairn_model::fields()
        .iter()
        .map(|f| f.key)
        .chain(EXTRA_KEYS)
        .find(|k| *k == wanted)
}

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

/// A checked mapping; the default maps nothing.
#[derive(Debug, Default)]
pub struct Mapping {
    columns: HashMap<String, &'static str>,
    values: HashMap<&'static str, HashMap<String, String>>,
    ignore: Vec<String>,
    defaults: Vec<(&'static str, String)>,
}

/// What a source column is to the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// It holds this cairn key.
    Key(&'static str),
    /// The mapping says to leave it out.
    Ignored,
    /// Nobody said what it is.
    Unknown,
}

impl Mapping {
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
        let key = |table: &str, name: &str| {
            cairn_key(name).ok_or_else(|| {
                CliError::failure(format!(
                    "the map file {shown} names `{name}` in {table}, which is no cairn key; `cairn fields` lists them, with place and status_basis"
                ))
            })
        };
        let mut mapping = Mapping {
            ignore: file.ignore.columns,
            ..Mapping::default()
        };
        for (source, target) in file.columns {
            mapping.columns.insert(source, key("[columns]", &target)?);
        }
        for (target, values) in file.values {
            let target = key("[values]", &target)?;
            let values = values
                .into_iter()
                .map(|(from, to)| (from.trim().to_string(), to))
                .collect();
            mapping.values.insert(target, values);
        }
        for (target, value) in file.defaults {
            mapping.defaults.push((key("[defaults]", &target)?, value));
        }
        Ok(mapping)
    }

    /// What the source column `name` holds.
    pub fn column(&self, name: &str) -> Column {
        if let Some(key) = self
            .columns
            .get(name)
            .or_else(|| self.columns.get(name.trim()))
        {
            return Column::Key(key);
        }
        if self.ignore.iter().any(|i| i == name || i == name.trim()) {
            return Column::Ignored;
        }
        cairn_key(name).map_or(Column::Unknown, Column::Key)
    }

    /// The cairn value of `raw` in a column holding `key`.
    pub fn value<'a>(&'a self, key: &str, raw: &'a str) -> &'a str {
        self.values
            .get(key)
            .and_then(|values| values.get(raw.trim()))
            .map_or(raw, String::as_str)
    }

    /// Every default: (cairn key, value).
    pub fn defaults(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.defaults.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// The default of `key`, if the mapping gives one.
    pub fn default_of(&self, key: &str) -> Option<&str> {
        self.defaults
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}
