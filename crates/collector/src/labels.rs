//! What a person reads for each field, choice value and step of the guided form: one catalog
//! per language (`labels/en.toml`, embedded), English first. The language is the
//! configuration's `language`, else the environment's (LC_ALL, LC_MESSAGES, LANG); a key that
//! the language's catalog leaves out is shown in English, and one English leaves out (never:
//! a test checks every field and value) as the key itself.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// Every catalog, by language code. English is the one every other falls back to.
const CATALOGS: &[(&str, &str)] = &[("en", include_str!("labels/en.toml"))];

/// One language's words; every table may leave keys out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    #[serde(default)]
    fields: BTreeMap<String, Field>,
    #[serde(default)]
    values: BTreeMap<String, String>,
    #[serde(default)]
    choices: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    sections: BTreeMap<String, String>,
    #[serde(default)]
    text: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Field {
    label: Option<String>,
    help: Option<String>,
}

impl Catalog {
    fn parse(code: &str, text: &str) -> Catalog {
        // A catalog that does not parse is a build mistake the tests catch; a person still
        // gets the form, in English or with keys.
        toml::from_str(text).unwrap_or_else(|e| {
            tracing::error!(language = code, error = %e, "a label catalog does not parse");
            Catalog::default()
        })
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.fields.get(key)?.label.as_deref()
    }

    fn help(&self, key: &str) -> Option<&str> {
        self.fields.get(key)?.help.as_deref()
    }

    fn value(&self, key: &str, value: &str) -> Option<&str> {
        let own = self.choices.get(key).and_then(|c| c.get(value));
        own.or_else(|| self.values.get(value)).map(String::as_str)
    }
}

/// The catalog in use and English beneath it.
pub struct Labels {
    chosen: Option<Catalog>,
    english: Catalog,
}

static LABELS: OnceLock<Labels> = OnceLock::new();

/// Picks the language once, at start: `configured` (the configuration's `language`), else the
/// environment's.
pub fn init(configured: Option<&str>) {
    let _ = LABELS.set(Labels::for_language(&language(configured)));
}

/// The labels in use (English if [`init`] was not called).
pub fn get() -> &'static Labels {
    LABELS.get_or_init(|| Labels::for_language("en"))
}

/// The language code asked for: `hy` of `hy_AM.UTF-8`; C and POSIX are English.
fn language(configured: Option<&str>) -> String {
    let from_env = || {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|v| !v.is_empty())
    };
    let raw = configured.map(str::to_owned).or_else(from_env);
    let code = raw
        .as_deref()
        .unwrap_or("en")
        .split(['_', '.', '@', '-'])
        .next()
        .unwrap_or("en")
        .to_ascii_lowercase();
    match code.as_str() {
        "" | "c" | "posix" => "en".to_owned(),
        _ => code,
    }
}

impl Labels {
    fn for_language(code: &str) -> Labels {
        let find = |wanted: &str| CATALOGS.iter().find(|(c, _)| *c == wanted);
        let english = find("en").map_or_else(Catalog::default, |(c, t)| Catalog::parse(c, t));
        let chosen = (code != "en")
            .then(|| find(code))
            .flatten()
            .map(|(c, t)| Catalog::parse(c, t));
        Labels { chosen, english }
    }

    #[cfg(test)]
    fn with(chosen: &str) -> Labels {
        let mut labels = Labels::for_language("en");
        labels.chosen = Some(Catalog::parse("test", chosen));
        labels
    }

    /// The first of the chosen catalog's and English's answers.
    fn pick<'a>(&'a self, look: impl Fn(&'a Catalog) -> Option<&'a str>) -> Option<&'a str> {
        self.chosen
            .as_ref()
            .and_then(&look)
            .or_else(|| look(&self.english))
    }

    /// A field's label (its key if no catalog has one).
    pub fn field<'a>(&'a self, key: &'a str) -> &'a str {
        self.pick(|c| c.label(key)).unwrap_or(key)
    }

    /// A field's help, if a catalog has it.
    pub fn help(&self, key: &str) -> Option<&str> {
        self.pick(|c| c.help(key))
    }

    /// A choice value's label (the value itself if no catalog has one).
    pub fn value<'a>(&'a self, key: &str, value: &'a str) -> &'a str {
        self.pick(|c| c.value(key, value)).unwrap_or(value)
    }

    /// A section's title.
    pub fn section<'a>(&'a self, id: &'a str) -> &'a str {
        self.pick(|c| c.sections.get(id).map(String::as_str))
            .unwrap_or(id)
    }

    /// One of the form's sentences.
    pub fn text<'a>(&'a self, id: &'a str) -> &'a str {
        self.pick(|c| c.text.get(id).map(String::as_str))
            .unwrap_or(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_parses_and_knows_only_fields_of_the_catalogue() {
        for (code, text) in CATALOGS {
            let catalog: Catalog = toml::from_str(text).unwrap_or_else(|e| panic!("{code}: {e}"));
            for key in catalog.fields.keys().chain(catalog.choices.keys()) {
                assert!(cairn_model::field(key).is_ok(), "{code}: {key}");
            }
        }
    }

    #[test]
    fn every_field_and_every_choice_value_has_an_english_label_and_help() {
        let labels = Labels::for_language("en");
        for spec in cairn_model::fields() {
            let english = &labels.english;
            assert!(english.label(spec.key).is_some(), "{}: no label", spec.key);
            assert!(english.help(spec.key).is_some(), "{}: no help", spec.key);
            if let cairn_model::FieldType::Choice(values) = spec.ty {
                for value in values {
                    assert!(
                        english.value(spec.key, value).is_some(),
                        "{}={value}: no label",
                        spec.key
                    );
                }
            }
        }
        assert_eq!(labels.field("person.sex"), "Sex");
        assert_eq!(labels.value("person.sex", "male"), "Male");
        assert_eq!(labels.value("torture_signs", "unknown"), "Unknown");
    }

    #[test]
    fn a_translation_falls_back_to_english_key_by_key() {
        let hy = Labels::with(
            "[fields.\"person.sex\"]\nlabel = \"Սեռ\"\n[values]\nunknown = \"Անհայտ\"\n[sections]\nperson = \"Անձ\"",
        );
        assert_eq!(hy.field("person.sex"), "Սեռ");
        assert_eq!(hy.help("person.sex"), Some("The apparent sex."));
        assert_eq!(hy.field("person.name"), "Name");
        assert_eq!(hy.value("person.sex", "unknown"), "Անհայտ");
        assert_eq!(hy.value("person.sex", "male"), "Male");
        assert_eq!(hy.section("person"), "Անձ");
        assert_eq!(hy.text("save"), "Save");
        assert_eq!(hy.field("no.such"), "no.such");
    }

    #[test]
    fn the_language_is_the_configured_one_then_the_locale_s() {
        assert_eq!(language(Some("hy_AM.UTF-8")), "hy");
        assert_eq!(language(Some("ar")), "ar");
        assert_eq!(language(Some("C")), "en");
        assert_eq!(language(Some("en-GB")), "en");
        // A language without a catalog is English throughout.
        let ar = Labels::for_language("ar");
        assert!(ar.chosen.is_none());
        assert_eq!(ar.field("person.sex"), "Sex");
    }
}
