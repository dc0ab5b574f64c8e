//! Places: the office's list, which reaches every device with the roster, and this device's
//! configuration `[places]` as a local addition. One gazetteer reads what a person types
//! (`--place`, the form) and names codes wherever a table shows one ("KHR Khan Younis").
//!
//! The office's list wins over the configuration on a code both name. While the office has a
//! list, a new case takes only a code of it (or of the configuration): that list is how the
//! office keeps codes right. Before it has one, any well-formed code is taken, as before.

use std::collections::BTreeMap;

use any_ascii::any_ascii;
use cairn_protocol::{check_place_code, Place, PlaceList};
use cairn_vault::Vault;
use serde::Serialize;

use crate::cli::OfficePlacesCommand;
use crate::config::Config;
use crate::error::CliError;

/// Where a place's name comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum From {
    /// The office's list, from the roster.
    Office,
    /// This device's configuration `[places]`.
    Config,
}

/// One known place.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub code: String,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    pub from: From,
}

/// Every place this device knows, by code.
#[derive(Clone, Debug, Default)]
pub struct Places {
    entries: BTreeMap<String, Entry>,
    /// Whether the office has a list this device reads (then codes are checked against it).
    office_list: bool,
    /// The roster statement carrying the office's list, if any.
    pub statement: Option<u64>,
    /// Why the office's list is not read here, if it is not.
    pub unreadable: Option<String>,
    /// Configuration entries the office's list overrides: (code, configured name).
    pub set_aside: Vec<(String, String)>,
}

/// A name as people type it: any script to Latin letters, no diacritics, lowercase, words
/// separated by one space ("Khān-Yūnis" and "khan yunis" meet).
pub fn plain(text: &str) -> String {
    let ascii = any_ascii(text).to_ascii_lowercase();
    ascii
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Places {
    /// The office's list (if any) and the configuration's places.
    pub fn new(office: Option<&PlaceList>, config: &BTreeMap<String, String>) -> Places {
        let mut places = Places {
            office_list: office.is_some(),
            ..Places::default()
        };
        for p in office.map_or(&[][..], |l| &l.places[..]) {
            places.entries.insert(
                p.code.clone(),
                Entry {
                    code: p.code.clone(),
                    name: p.name.clone(),
                    aliases: p.aliases.clone(),
                    lat: p.lat,
                    lon: p.lon,
                    from: From::Office,
                },
            );
        }
        for (code, name) in config {
            if places.entries.contains_key(code) {
                places.set_aside.push((code.clone(), name.clone()));
                continue;
            }
            places.entries.insert(
                code.clone(),
                Entry {
                    code: code.clone(),
                    name: name.clone(),
                    aliases: Vec::new(),
                    lat: None,
                    lon: None,
                    from: From::Config,
                },
            );
        }
        places
    }

    /// What `vault` holds of the office's list, with the configuration's places.
    pub fn load(config: &Config, vault: &Vault) -> Result<Places, CliError> {
        let held = cairn_sync::held_places(vault)?;
        let mut places = Places::new(held.as_ref().and_then(|h| h.list.as_ref()), &config.places);
        places.statement = held.as_ref().map(|h| h.counter);
        if held.as_ref().is_some_and(|h| h.list.is_none()) {
            places.unreadable = Some(
                "the office's newest list of places is not sealed for this device's team yet; the office seals it again when it next changes the list".into(),
            );
        }
        Ok(places)
    }

    /// Every known place, by code.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The code for what a person typed to record a case: a known code, name or alias (any
    /// letter case, with or without diacritics); else, while the office has no list, any
    /// well-formed code.
    pub fn resolve(&self, typed: &str) -> Result<String, CliError> {
        if let Some(code) = self.lookup(typed)? {
            return Ok(code);
        }
        let hint = if self.entries.is_empty() {
            " The office names places with `cairn office places add`; they reach this device at its next `cairn sync`."
        } else {
            " `cairn places` lists the places this device knows."
        };
        let code = cairn_model::validate_place(typed.trim())
            .map_err(|e| CliError::usage(format!("{e}{hint}")))?;
        if self.office_list {
            return Err(CliError::usage(format!(
                "{code} is not a place in the office's list, nor a name or alias of one.{hint}"
            )));
        }
        Ok(code)
    }

    /// The code for what a person typed to find cases (`--place` of a list or report): a
    /// known code, name or alias, else any well-formed code (old cases keep codes the office
    /// has since removed).
    pub fn filter(&self, typed: &str) -> Result<String, CliError> {
        match self.lookup(typed)? {
            Some(code) => Ok(code),
            None => cairn_model::validate_place(typed.trim()).map_err(|e| {
                CliError::usage(format!(
                    "{e} `cairn places` lists the places this device knows."
                ))
            }),
        }
    }

    /// A known code, name or alias; an error when a name or alias is that of two places.
    fn lookup(&self, typed: &str) -> Result<Option<String>, CliError> {
        let code = typed.trim().to_ascii_uppercase();
        if self.entries.contains_key(&code) {
            return Ok(Some(code));
        }
        let wanted = plain(typed);
        if wanted.is_empty() {
            return Ok(None);
        }
        let found: Vec<&str> = self
            .entries
            .values()
            .filter(|e| {
                std::iter::once(&e.name)
                    .chain(&e.aliases)
                    .any(|n| plain(n) == wanted)
            })
            .map(|e| e.code.as_str())
            .collect();
        match found[..] {
            [] => Ok(None),
            [one] => Ok(Some(one.to_owned())),
            _ => Err(CliError::usage(format!(
                "{typed:?} names {}; give the code",
                found.join(" and ")
            ))),
        }
    }

    /// The name of a code, if known.
    pub fn name(&self, code: &str) -> Option<&str> {
        self.entries.get(code).map(|e| e.name.as_str())
    }

    /// A code as tables show it: "KHR Khan Younis", or the code alone.
    pub fn label(&self, code: &str) -> String {
        match self.name(code) {
            Some(name) => format!("{code} {name}"),
            None => code.to_owned(),
        }
    }

    /// Every code with its name.
    pub fn names(&self) -> BTreeMap<String, String> {
        self.entries
            .values()
            .map(|e| (e.code.clone(), e.name.clone()))
            .collect()
    }

    /// `cairn places`.
    pub fn print(&self, json: bool) -> Result<(), CliError> {
        if json {
            let list: Vec<&Entry> = self.entries.values().collect();
            return crate::output::json(&list);
        }
        let mut text = String::new();
        match self.statement {
            Some(n) if self.unreadable.is_none() => text.push_str(&format!(
                "The office's list of places (roster statement {n}), and this device's configuration [places]; the office's wins on a code both name.\n"
            )),
            _ => text.push_str(
                "The office has sent this device no list of places; these come from this device's configuration [places].\n",
            ),
        }
        if let Some(why) = &self.unreadable {
            text.push_str(&format!("Note: {why}.\n"));
        }
        if self.entries.is_empty() {
            text.push_str(
                "No places are named: the office adds them with `cairn office places add CODE --name NAME`, and they reach this device at its next `cairn sync`.\n",
            );
        }
        for e in self.entries.values() {
            let mut line = format!("{:6}  {}", e.code, e.name);
            if !e.aliases.is_empty() {
                line.push_str(&format!(" (also {})", e.aliases.join(", ")));
            }
            if let (Some(lat), Some(lon)) = (e.lat, e.lon) {
                line.push_str(&format!("  {lat:.5}, {lon:.5}"));
            }
            let from = match e.from {
                From::Office => "office",
                From::Config => "configuration",
            };
            text.push_str(&format!("{line}  [{from}]\n"));
        }
        for (code, name) in &self.set_aside {
            text.push_str(&format!(
                "(the configuration's {code} = {name:?} is set aside: the office names {code})\n"
            ));
        }
        crate::output::print(&text)
    }
}

/// `cairn places`: what the vault holds of the office's list with the configuration's places;
/// the configuration's alone where there is no vault yet.
pub fn list(config: &Config, json: bool) -> Result<(), CliError> {
    let places = if cairn_vault::Home::new(&config.home).exists() {
        Places::load(config, &crate::vault_cmd::open(config)?)?
    } else {
        Places::new(None, &config.places)
    };
    places.print(json)
}

/// `cairn office places add|remove`: the office's whole list, as the next roster statement.
pub fn office(config: &Config, cmd: OfficePlacesCommand) -> Result<(), CliError> {
    // Checked before the passphrase is asked for.
    let usage = |e: cairn_protocol::ProtocolError| CliError::usage(e.to_string());
    let change = match cmd {
        OfficePlacesCommand::Add(args) => {
            let place = Place {
                code: check_place_code(&args.code).map_err(usage)?,
                name: args.name.trim().to_owned(),
                aliases: args.aliases.iter().map(|a| a.trim().to_owned()).collect(),
                lat: args.lat,
                lon: args.lon,
            };
            place.check().map_err(usage)?;
            Ok(place)
        }
        OfficePlacesCommand::Remove(args) => Err(check_place_code(&args.code).map_err(usage)?),
    };
    let mut vault = crate::office::open_office_key(config, "keeps the list of places")?;
    let mut list = cairn_sync::held_places(&vault)?
        .and_then(|h| h.list)
        .unwrap_or_default();
    let said = match change {
        Ok(place) => {
            let label = format!("{} {}", place.code, place.name);
            // Two places of one name would make the name ambiguous wherever it is typed.
            let wanted: Vec<String> = std::iter::once(&place.name)
                .chain(&place.aliases)
                .map(|n| plain(n))
                .collect();
            if let Some(other) = list.places.iter().find(|p| {
                p.code != place.code
                    && std::iter::once(&p.name)
                        .chain(&p.aliases)
                        .any(|n| wanted.contains(&plain(n)))
            }) {
                return Err(CliError::usage(format!(
                    "{} {} already goes by that name or alias; give another, or remove {} first",
                    other.code, other.name, other.code
                )));
            }
            match list.put(place) {
                Some(old) => format!("Replaced {} {} with {label}", old.code, old.name),
                None => format!("Added {label}"),
            }
        }
        Err(code) => match list.remove(&code) {
            Some(old) => format!("Removed {} {}", old.code, old.name),
            None => {
                return Err(CliError::usage(format!(
                    "{code} is not in the office's list of places; `cairn places` lists it"
                )))
            }
        },
    };
    let statement = cairn_sync::set_places(&mut vault, &list)?;
    crate::output::print(&format!(
        "{said} (roster statement {}, {} places); it reaches the devices at the next `cairn sync`\n",
        statement.counter,
        list.places.len()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_protocol::Place;

    fn office() -> PlaceList {
        let mut list = PlaceList::default();
        list.put(Place {
            code: "KHR".into(),
            name: "Khan Younis".into(),
            aliases: vec!["Khān Yūnis".into(), "خان يونس".into()],
            lat: None,
            lon: None,
        });
        list.put(Place {
            code: "GZA".into(),
            name: "Gaza City".into(),
            aliases: vec!["Gaza".into()],
            lat: None,
            lon: None,
        });
        list
    }

    #[test]
    fn codes_names_and_aliases_in_any_case_and_without_diacritics() {
        let config = BTreeMap::from([
            ("KHR".to_owned(), "Khan Yunis (config)".to_owned()),
            ("RAF".to_owned(), "Rafah".to_owned()),
        ]);
        let p = Places::new(Some(&office()), &config);
        for typed in [
            "KHR",
            "khr",
            " Khan Younis ",
            "KHAN-YOUNIS",
            "khan yunis",
            "Khān Yūnis",
        ] {
            assert_eq!(p.resolve(typed).unwrap(), "KHR", "{typed}");
        }
        assert_eq!(p.resolve("gaza").unwrap(), "GZA");
        assert_eq!(p.resolve("rafah").unwrap(), "RAF", "the configuration adds");
        assert_eq!(p.label("KHR"), "KHR Khan Younis", "the office wins");
        assert_eq!(p.set_aside.len(), 1);
        assert_eq!(p.label("ZZZ"), "ZZZ");
        // With an office list, an unknown code records nothing; a filter still takes it.
        assert_eq!(p.resolve("ZZZ").unwrap_err().code, 2);
        assert_eq!(p.filter("ZZZ").unwrap(), "ZZZ");
        assert!(p.resolve("Nowhere at all").is_err());
        // Without one, any well-formed code, as before.
        let none = Places::new(None, &BTreeMap::new());
        assert_eq!(none.resolve("zzz").unwrap(), "ZZZ");
        assert!(none.resolve("Khan Younis").is_err());
        // A name two places share: ask for the code.
        let twice = BTreeMap::from([("GAZ".to_owned(), "Gaza".to_owned())]);
        let p = Places::new(Some(&office()), &twice);
        let e = p.resolve("gaza").unwrap_err();
        assert!(e.message.contains("GAZ and GZA"), "{}", e.message);
    }
}
