//! The guided form of `cairn case new` and `cairn case edit REF` on a terminal, when no
//! `--set`, `--unset` or `--note` is given.
//!
//! The fields are the catalogue's (`cairn fields`), asked section by section in the order a
//! searcher meets things; only that order and grouping is the form's own. Choices are menus;
//! every other answer is checked when Enter is pressed by the same rules as `--set`, and the
//! form produces the same edits `--set` would. A new case is asked the sections that fit its
//! kind; "Change a section" at the summary reaches every section. Nothing is written until "Save" at the summary:
//! Ctrl-C or Esc at any prompt asks whether to discard the case, and only a yes (or a second
//! Ctrl-C) drops it. The vault is unlocked once for every case recorded in a row.

use std::collections::BTreeMap;

use cairn_model::{Edit, FieldSpec, FieldType, Kind};
use inquire::validator::Validation;
use inquire::{Confirm, InquireError, Select, Text};
use serde_json::Value;

use crate::config::Config;
use crate::error::CliError;
use crate::{input, output, vault_cmd};

/// The form's sections, in the order a searcher meets things. Each names what it holds: a group
/// of the catalogue (`found`) or one key (`found.scene`); a key named here goes to its own
/// section rather than its group's. A field in no section is not asked.
const SECTIONS: &[(&str, &[&str])] = &[
    (FOUND, &["found"]),
    (SCENE, &["found.scene", "found.description"]),
    (REMAINS, &["remains"]),
    (INJURIES, &["injuries", "torture_signs"]),
    (PERSON, &["person"]),
    (LAST_SEEN, &["last_seen"]),
    (INCIDENT, &["incident"]),
    (FORENSIC, &["forensic"]),
    (IDENTIFICATION, &["identification"]),
];

const FOUND: &str = "Where and when found";
const SCENE: &str = "Scene";
const REMAINS: &str = "Remains";
const INJURIES: &str = "Injuries";
const PERSON: &str = "Person";
const LAST_SEEN: &str = "Last seen (a missing person)";
const INCIDENT: &str = "Incident";
const FORENSIC: &str = "Forensic examination";
const IDENTIFICATION: &str = "Identification";

/// The sections a new case of `kind` is asked: a living person is not asked about remains or
/// a forensic examination, and a person missing is not asked where they were found. The match
/// names every kind, so a kind added to the model must be given its sections here.
fn asked_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Killed | Kind::Remains => &[
            FOUND,
            SCENE,
            REMAINS,
            INJURIES,
            PERSON,
            INCIDENT,
            FORENSIC,
            IDENTIFICATION,
        ],
        Kind::Injured => &[FOUND, SCENE, INJURIES, PERSON, INCIDENT, IDENTIFICATION],
        // A living person held is asked where last seen, never about remains, like a missing
        // one.
        Kind::Missing | Kind::Detained => &[PERSON, LAST_SEEN, INCIDENT, IDENTIFICATION],
    }
}

/// Asked apart, or not by the form: a new case's kind comes first, with its place code; its
/// evidentiary status is `cairn case verify`'s; a source list's id comes with an import.
const NOT_IN_SECTIONS: &[&str] = &["kind", "status", "source_id", "place"];

/// The menu entry that leaves a choice empty (or clears it).
const EMPTY_CHOICE: &str = "(leave empty)";

const MENU_HELP: &str = "up/down or type to filter, Enter to choose; Esc to discard the case";

/// What Esc or Ctrl-C would throw away: a new case, or the changes to one being edited.
#[derive(Clone, Copy)]
enum Filling {
    New,
    Edit,
}

impl Filling {
    /// Asks whether to discard; a second Ctrl-C is a person who means it, Esc a step back.
    fn confirm_discard(self) -> Result<bool, CliError> {
        let question = match self {
            Filling::New => "Discard this case?",
            Filling::Edit => "Discard these changes?",
        };
        let confirmed = Confirm::new(question)
            .with_default(false)
            .with_help_message("y discards it and records nothing; n or Enter goes back")
            .prompt();
        match confirmed {
            Ok(yes) => Ok(yes),
            Err(InquireError::OperationInterrupted) => Ok(true),
            Err(InquireError::OperationCanceled) => Ok(false),
            Err(other) => Err(unusable(other)),
        }
    }

    fn discarded(self) -> CliError {
        CliError::failure(match self {
            Filling::New => "discarded: nothing of this case was recorded",
            Filling::Edit => "discarded: the case is unchanged",
        })
    }
}

/// A menu whose typed filter ranks an entry equal to what was typed first, then entries that
/// start with it, then those with a word that does, then those that contain it, each in the
/// menu's order: typing `male` picks `male`, never `female` listed before it.
fn menu<'a, T: std::fmt::Display>(message: &'a str, options: Vec<T>) -> Select<'a, T> {
    Select::new(message, options)
        .with_scorer(&|typed, _, entry, _| rank(typed, entry))
        .with_sorter(&|scored| scored.sort_by_key(|(index, score)| (-score, *index)))
}

fn rank(typed: &str, entry: &str) -> Option<i64> {
    let (typed, entry) = (typed.trim().to_lowercase(), entry.to_lowercase());
    if entry == typed {
        Some(3)
    } else if entry.starts_with(&typed) {
        Some(2)
    } else if entry
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| word.starts_with(&typed))
    {
        Some(1)
    } else {
        entry.contains(&typed).then_some(0)
    }
}

const SAVE: &str = "Save";
const CHANGE: &str = "Change a section";
const DISCARD: &str = "Discard";

/// `cairn case new` on a terminal: `kind` and `place` when given on the command line, the rest
/// asked; then "Record another case?" with the vault still unlocked.
pub fn new(config: &Config, kind: Option<Kind>, place: Option<String>) -> Result<(), CliError> {
    let mut vault = vault_cmd::open(config)?;
    let places = crate::places::Places::load(config, &vault)?;
    let place = place.map(|p| places.resolve(&p)).transpose()?;
    let mut last_place = place.clone().unwrap_or_default();
    loop {
        let kind = match kind {
            Some(kind) => kind,
            None => ask_kind()?,
        };
        let place = match &place {
            Some(place) => place.clone(),
            None => ask_place(&places, &last_place)?,
        };
        last_place.clone_from(&place);
        let mut form = Form::new(BTreeMap::new(), Filling::New);
        // Most cases are recorded where and when found: Enter stores the time it is pressed.
        form.defaults.insert("found.at", "now");
        let asked: Vec<usize> = (form.sections.iter().enumerate())
            .filter(|(_, (title, _))| asked_of(kind).contains(title))
            .map(|(i, _)| i)
            .collect();
        for section in asked {
            form.fill(section)?;
        }
        match form.review(&format!("new {kind} case at {place}"))? {
            Some(edits) => {
                let now = time::OffsetDateTime::now_utc();
                let created = vault.create_case(kind, &place, &edits, now)?;
                tracing::info!(seq = created.seq, "case recorded");
                eprintln!("Recorded {}.", created.reference);
                output::print(&format!("{}\n", created.reference))?;
            }
            None => eprintln!("Discarded: nothing of this case was recorded."),
        }
        // Ctrl-C here has nothing to drop: it ends the form like "no".
        let another = Confirm::new("Record another case?")
            .with_default(false)
            .prompt()
            .unwrap_or(false);
        if !another {
            return Ok(());
        }
    }
}

/// `cairn case edit REF` on a terminal: the summary menu first, each section showing the
/// case's current values.
pub fn edit(config: &Config, reference: &str) -> Result<(), CliError> {
    let mut vault = vault_cmd::open(config)?;
    let case = vault.case(reference)?.to_json()?;
    let current = Form::asked()
        .filter_map(|spec| Some((spec.key, shown(lookup(&case, spec)?))))
        .collect();
    let mut form = Form::new(current, Filling::Edit);
    eprintln!("Editing {reference}: choose a section to change, then save.");
    let Some(edits) = form.review(reference)? else {
        eprintln!("Discarded: {reference} is unchanged.");
        return Ok(());
    };
    match vault.edit_case(reference, &edits, time::OffsetDateTime::now_utc())? {
        Some(seq) => output::print(&format!("{reference}: recorded (change {seq})\n")),
        None => output::print(&format!("{reference}: nothing changed\n")),
    }
}

/// A case being filled: each field's value in the case now and the answer it will hold.
struct Form {
    sections: Vec<(&'static str, Vec<&'static FieldSpec>)>,
    current: BTreeMap<&'static str, String>,
    answers: BTreeMap<&'static str, String>,
    filling: Filling,
    /// What an empty field shows the first time it is asked, taken as typed on Enter.
    defaults: BTreeMap<&'static str, &'static str>,
}

impl Form {
    fn new(current: BTreeMap<&'static str, String>, filling: Filling) -> Form {
        Form {
            sections: sections(),
            answers: current.clone(),
            current,
            filling,
            defaults: BTreeMap::new(),
        }
    }

    /// Every field the form asks, in catalogue order.
    fn asked() -> impl Iterator<Item = &'static FieldSpec> {
        cairn_model::fields()
            .iter()
            .filter(|spec| !NOT_IN_SECTIONS.contains(&spec.key))
    }

    /// Asks every field of a section, showing what it holds so far.
    fn fill(&mut self, section: usize) -> Result<(), CliError> {
        let Some((title, fields)) = self.sections.get(section).cloned() else {
            return Ok(());
        };
        eprintln!("\n{title}");
        for spec in fields {
            // Shown escaped: a value from another device may hold control characters. Enter
            // on it keeps the value as it is.
            let held = self.answers.get(spec.key).cloned().unwrap_or_default();
            let default = (held.is_empty())
                .then(|| self.defaults.remove(spec.key))
                .flatten();
            let shown = match default {
                Some(default) => default.to_owned(),
                None => output::escape(&held).into_owned(),
            };
            let mut answer = ask(spec, &shown, self.filling)?;
            if default.is_none() && answer == shown {
                answer.clone_from(&held);
            }
            if answer != held {
                let now = input::local_now();
                input::warn_if_future(spec.key, spec.ty, &answer, now);
            }
            self.answers.insert(spec.key, answer);
        }
        Ok(())
    }

    /// The summary and its menu until the case is saved (its edits) or discarded (`None`).
    fn review(&mut self, what: &str) -> Result<Option<Vec<Edit>>, CliError> {
        loop {
            eprintln!("\n{}", self.summary(what));
            let choice = answer(self.filling, || {
                menu("What now?", vec![SAVE, CHANGE, DISCARD]).prompt()
            })?;
            match choice {
                SAVE => return Ok(Some(self.edits())),
                DISCARD => return Ok(None),
                _ => {
                    let titles: Vec<&str> = self.sections.iter().map(|(t, _)| *t).collect();
                    let title = answer(self.filling, || {
                        menu("Which section?", titles.clone()).prompt()
                    })?;
                    if let Some(i) = self.sections.iter().position(|(t, _)| *t == title) {
                        self.fill(i)?;
                    }
                }
            }
        }
    }

    /// What saving would change, section by section.
    fn summary(&self, what: &str) -> String {
        let mut text = format!("Summary of the {what}:\n");
        let mut changes = 0;
        for (title, fields) in &self.sections {
            let lines: Vec<String> = fields
                .iter()
                .filter_map(|spec| {
                    let (before, after) = self.change(spec.key)?;
                    let (before, after) = (output::escape(before), output::escape(after));
                    Some(match (before.is_empty(), after.is_empty()) {
                        (true, _) => format!("    {}: {after}", spec.key),
                        (false, true) => format!("    {}: {before} -> (cleared)", spec.key),
                        (false, false) => format!("    {}: {before} -> {after}", spec.key),
                    })
                })
                .collect();
            if !lines.is_empty() {
                changes += lines.len();
                text.push_str(&format!("  {title}\n{}\n", lines.join("\n")));
            }
        }
        if changes == 0 {
            text.push_str("  no field changed\n");
        }
        text
    }

    /// The field's value now and its answer, when they differ.
    fn change(&self, key: &str) -> Option<(&str, &str)> {
        let before = self.current.get(key).map_or("", String::as_str);
        let after = self.answers.get(key).map_or("", String::as_str);
        (before != after).then_some((before, after))
    }

    /// The edits `--set` and `--unset` would make, in the form's order.
    fn edits(&self) -> Vec<Edit> {
        self.sections
            .iter()
            .flat_map(|(_, fields)| fields)
            .filter_map(|spec| {
                let (_, after) = self.change(spec.key)?;
                Some(if after.is_empty() {
                    Edit::Unset {
                        key: spec.key.to_owned(),
                    }
                } else {
                    Edit::set(spec.key, after)
                })
            })
            .collect()
    }
}

/// The catalogue's fields placed in [`SECTIONS`], each section's in catalogue order.
fn sections() -> Vec<(&'static str, Vec<&'static FieldSpec>)> {
    let place = |spec: &FieldSpec| {
        let named = |wanted: &str| SECTIONS.iter().position(|(_, keys)| keys.contains(&wanted));
        named(spec.key).or_else(|| spec.group().and_then(named))
    };
    SECTIONS
        .iter()
        .enumerate()
        .map(|(i, (title, _))| {
            let fields = Form::asked()
                .filter(|spec| place(spec) == Some(i))
                .collect();
            (*title, fields)
        })
        .collect()
}

/// One field's answer: a menu for a choice, else a line checked as `--set` checks it (a time
/// comes back as RFC 3339). Enter on what is shown keeps it; an empty answer leaves the field
/// empty.
fn ask(spec: &'static FieldSpec, shown: &str, filling: Filling) -> Result<String, CliError> {
    let message = format!("{} - {}", spec.key, spec.help);
    if let FieldType::Choice(options) = spec.ty {
        let mut options_with_empty = vec![EMPTY_CHOICE];
        options_with_empty.extend_from_slice(options);
        let cursor = options_with_empty
            .iter()
            .position(|o| *o == shown)
            .unwrap_or(0);
        let chosen = answer(filling, || {
            self::menu(&message, options_with_empty.clone())
                .with_starting_cursor(cursor)
                .with_help_message(MENU_HELP)
                .prompt()
        })?;
        return Ok(if chosen == EMPTY_CHOICE { "" } else { chosen }.to_owned());
    }
    let expected = match spec.ty {
        FieldType::Timestamp => {
            "now, a date YYYY-MM-DD, a local time YYYY-MM-DD HH:MM or RFC 3339".to_owned()
        }
        FieldType::Text => "one line here (long text: --set KEY=@FILE)".to_owned(),
        other => other.describe(),
    };
    let help = format!(
        "{expected}; Enter keeps what is shown, empty leaves it empty; Esc to discard the case"
    );
    let key = spec.key;
    let typed = answer(filling, || {
        Text::new(&message)
            .with_initial_value(shown)
            .with_help_message(&help)
            .with_validator(move |typed: &str| {
                Ok(match checked(key, typed) {
                    Ok(_) => Validation::Valid,
                    Err(e) => Validation::Invalid(e.message.into()),
                })
            })
            .prompt()
    })?;
    checked(key, &typed)
}

/// An answer as the field will hold it: empty, or checked as `--set` checks it.
fn checked(key: &str, typed: &str) -> Result<String, CliError> {
    if typed.trim().is_empty() {
        return Ok(String::new());
    }
    input::field_value(key, typed, input::local_now())
}

fn ask_kind() -> Result<Kind, CliError> {
    let help = cairn_model::field("kind").map_or("", |spec| spec.help);
    let message = format!("kind - {help}");
    answer(Filling::New, || {
        menu(&message, Kind::ALL.to_vec())
            .with_help_message(MENU_HELP)
            .prompt()
    })
}

/// The place code for the case's reference, asked until it is one: a code, name or alias of
/// the office's list or the configuration's (see [`crate::places::Places::resolve`]).
fn ask_place(places: &crate::places::Places, last: &str) -> Result<String, CliError> {
    let known: Vec<String> = places
        .entries()
        .take(8)
        .map(|e| places.label(&e.code))
        .collect();
    let help = if known.is_empty() {
        "a place code such as KHR".to_owned()
    } else {
        format!("a code, name or alias: {}", known.join(", "))
    };
    loop {
        let typed = answer(Filling::New, || {
            Text::new("place - the place code for the reference")
                .with_initial_value(last)
                .with_help_message(&help)
                .prompt()
        })?;
        match places.resolve(&typed) {
            Ok(code) => return Ok(code),
            Err(e) => crate::output::eprint(&e.message),
        }
    }
}

/// A prompt's answer. Esc or Ctrl-C asks whether to discard what is being filled: yes drops
/// it (and says so), no asks the same question again.
fn answer<T>(
    filling: Filling,
    mut prompt: impl FnMut() -> Result<T, InquireError>,
) -> Result<T, CliError> {
    loop {
        match prompt() {
            Ok(value) => return Ok(value),
            Err(InquireError::OperationInterrupted | InquireError::OperationCanceled) => {
                if filling.confirm_discard()? {
                    return Err(filling.discarded());
                }
            }
            Err(other) => return Err(unusable(other)),
        }
    }
}

fn unusable(e: InquireError) -> CliError {
    CliError::failure(format!("the form cannot use this terminal: {e}"))
}

/// The value a case's JSON holds for a field, if any.
fn lookup<'a>(case: &'a Value, spec: &FieldSpec) -> Option<&'a Value> {
    match spec.group() {
        Some(group) => case.get(group)?.get(spec.leaf()),
        None => case.get(spec.key),
    }
}

/// A stored value as the form shows it, and as `--set` would take it back.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field added to the catalogue lands in a section (its group's) or fails here, so the
    /// form never silently stops asking something.
    #[test]
    fn a_typed_choice_ranks_the_exact_entry_first() {
        let options = ["(leave empty)", "female", "male", "unknown"];
        let best = |typed: &str| {
            let mut scored: Vec<(usize, i64)> = options
                .iter()
                .enumerate()
                .filter_map(|(i, o)| rank(typed, o).map(|s| (i, s)))
                .collect();
            scored.sort_by_key(|(index, score)| (-score, *index));
            scored.first().map(|(i, _)| options[*i])
        };
        assert_eq!(best("male"), Some("male"));
        assert_eq!(best("MALE "), Some("male"));
        assert_eq!(best("fem"), Some("female"));
        assert_eq!(best("ale"), Some("female"));
        assert_eq!(best("empty"), Some("(leave empty)"));
        assert_eq!(best("x"), None);
    }

    #[test]
    fn every_field_but_kind_and_status_is_in_exactly_one_section() {
        let placed: Vec<&str> = sections()
            .iter()
            .flat_map(|(_, fields)| fields.iter().map(|spec| spec.key))
            .collect();
        for spec in cairn_model::fields() {
            let times = placed.iter().filter(|k| **k == spec.key).count();
            let expected = usize::from(!NOT_IN_SECTIONS.contains(&spec.key));
            assert_eq!(times, expected, "{}", spec.key);
        }
        for (title, fields) in sections() {
            assert!(!fields.is_empty(), "{title} is empty");
        }
    }

    #[test]
    fn every_kind_is_asked_known_sections_and_the_living_no_remains() {
        let titles: Vec<&str> = sections().iter().map(|(t, _)| *t).collect();
        for kind in Kind::ALL {
            for title in asked_of(kind) {
                assert!(titles.contains(title), "{kind}: {title}");
            }
        }
        for kind in [Kind::Injured, Kind::Missing, Kind::Detained] {
            assert!(!asked_of(kind).contains(&REMAINS), "{kind}");
            assert!(!asked_of(kind).contains(&FORENSIC), "{kind}");
        }
        assert!(
            asked_of(Kind::Missing).contains(&LAST_SEEN)
                && asked_of(Kind::Detained).contains(&LAST_SEEN)
        );
    }

    #[test]
    fn the_summary_and_the_edits_show_only_what_changed() {
        let current = BTreeMap::from([
            ("person.sex", "male".to_owned()),
            ("found.lat", "31.5".to_owned()),
        ]);
        let mut form = Form::new(current, Filling::Edit);
        form.answers.insert("person.sex", String::new());
        form.answers.insert("found.lon", "34.4".to_owned());
        assert_eq!(
            form.edits(),
            [
                Edit::set("found.lon", "34.4"),
                Edit::Unset {
                    key: "person.sex".into()
                }
            ]
        );
        let summary = form.summary("case");
        assert!(summary.contains("found.lon: 34.4"), "{summary}");
        assert!(
            summary.contains("person.sex: male -> (cleared)"),
            "{summary}"
        );
        assert!(!summary.contains("found.lat"), "{summary}");
    }

    #[test]
    fn an_answer_is_checked_as_set_checks_it() {
        let refused = |key: &str, typed: &str| checked(key, typed).err().map(|e| e.message);
        assert_eq!(checked("found.lat", " ").ok().as_deref(), Some(""));
        assert_eq!(checked("found.lat", "31.5").ok().as_deref(), Some("31.5"));
        let comma = refused("found.lat", "31,5").unwrap_or_default();
        assert!(comma.contains("use a dot: 31.5"), "{comma}");
        assert!(refused("found.lat", "91").is_some());
        assert!(refused("found.scene", "beach").is_some());
        let at = checked("found.at", "2026-11-02 09:40").unwrap_or_default();
        assert!(at.starts_with("2026-11-02T09:40:00"), "{at}");
    }
}
