//! How another tool's columns and values become Cairn's (what `cairn case import --map` reads
//! from its TOML file), so its export comes in without editing.
//!
//! A source column that is neither a cairn key, mapped nor ignored is an error, so nothing is
//! dropped without someone having said so.

use std::collections::{BTreeMap, HashMap};

/// Columns an import reads besides the fields of `cairn fields`.
pub const EXTRA_KEYS: [&str; 2] = ["place", "status_basis"];

/// The cairn key `name` stands for (any letter case), if it is one. `status` only as
/// written: exports such as ODK's have a `Status` column holding a submission's state, which
/// must not become the case's status unasked.
pub fn cairn_key(name: &str) -> Option<&'static str> {
    let wanted = name.trim().to_lowercase();
    if wanted == "status" && name.trim() != "status" {
        return None;
    }
    cairn_model::fields()
        .iter()
        .map(|f| f.key)
        .chain(EXTRA_KEYS)
        .find(|k| *k == wanted)
}

/// A checked mapping; the default maps nothing.
#[derive(Debug, Default)]
pub struct Mapping {
    columns: HashMap<String, &'static str>,
    values: HashMap<&'static str, HashMap<String, String>>,
    ignore: Vec<String>,
    defaults: Vec<(&'static str, String)>,
}

/// A name in a mapping that is no cairn key: the table it is in and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAKey {
    /// `[columns]`, `[values]` or `[defaults]`.
    pub table: &'static str,
    /// The name given.
    pub name: String,
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
    /// Checks a mapping's tables: `columns` (source column to cairn key), `values` (per cairn
    /// key, source value to cairn value), `ignore` (source columns left out) and `defaults`
    /// (cairn key to the value of rows that give none).
    pub fn new(
        columns: BTreeMap<String, String>,
        values: BTreeMap<String, BTreeMap<String, String>>,
        ignore: Vec<String>,
        defaults: BTreeMap<String, String>,
    ) -> Result<Mapping, NotAKey> {
        let key = |table: &'static str, name: &str| {
            cairn_key(name).ok_or_else(|| NotAKey {
                table,
                name: name.to_string(),
            })
        };
        let mut mapping = Mapping {
            ignore,
            ..Mapping::default()
        };
        for (source, target) in columns {
            mapping.columns.insert(source, key("[columns]", &target)?);
        }
        for (target, values) in values {
            let target = key("[values]", &target)?;
            let values = values
                .into_iter()
                .map(|(from, to)| (from.trim().to_string(), to))
                .collect();
            mapping.values.insert(target, values);
        }
        for (target, value) in defaults {
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
