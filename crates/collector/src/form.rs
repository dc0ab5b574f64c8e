//! The guided form of `cairn case new` and `cairn case edit REF` on a terminal, when no
//! `--set`, `--unset` or `--note` is given.
//!
//! The fields are the catalogue's (`cairn fields`), asked section by section in the order a
//! searcher meets things; only that order and grouping is the form's own. What a person reads
//! (labels, help, choices) comes from the label catalog (`labels.rs`). Choices are menus;
//! every other answer is a line (`line.rs`) checked when Enter is pressed by the same rules as
//! `--set`, and the form produces the same edits `--set` would. A new case is asked the
//! sections that fit its kind; "Change a section" at the summary reaches every section.
//!
//! Every answer is saved at once as an encrypted draft in the vault (never synced), so a
//! killed process loses at most the answer being typed: `cairn case drafts` lists drafts and
//! resumes one. Nothing is recorded before "Save" at the summary, which writes the case and
//! removes its draft in one transaction. Ctrl-C or Esc at any prompt asks whether to stop:
//! go back, keep the draft and quit (what a second Ctrl-C does), or discard it. The vault is
//! unlocked once for every case recorded in a row.

use std::collections::BTreeMap;

use cairn_model::{Edit, FieldSpec, FieldType, Kind};
use cairn_vault::{Draft, Vault};
use inquire::InquireError;
use serde_json::Value;

use crate::config::Config;
use crate::error::CliError;
use crate::labels::{self, Labels};
use crate::{input, output, vault_cmd};

/// The form's sections, in the order a searcher meets things. Each is named by its id (its
/// title is the catalog's) and names what it holds: a group of the catalogue (`found`) or one
/// key (`found.scene`); a key named here goes to its own section rather than its group's. A
/// field in no section is not asked.
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

const FOUND: &str = "found";
const SCENE: &str = "scene";
const REMAINS: &str = "remains";
const INJURIES: &str = "injuries";
const PERSON: &str = "person";
const LAST_SEEN: &str = "last_seen";
const INCIDENT: &str = "incident";
const FORENSIC: &str = "forensic";
const IDENTIFICATION: &str = "identification";

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

/// What Esc or Ctrl-C would stop: a new case, or the changes to one being edited.
#[derive(Clone, Copy)]
enum Filling {
    New,
    Edit,
}

/// What a person stopping the form wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Quit, the draft kept to resume.
    Keep,
    /// Quit, the draft thrown away.
    Discard,
}

/// Why the form ends before a save: a person stopped it, or something failed.
enum FormError {
    Stop(Stop),
    Cli(CliError),
}

impl From<CliError> for FormError {
    fn from(e: CliError) -> Self {
        FormError::Cli(e)
    }
}

impl From<cairn_vault::VaultError> for FormError {
    fn from(e: cairn_vault::VaultError) -> Self {
        FormError::Cli(e.into())
    }
}

/// Before a draft exists (at the kind and place of a new case) there is nothing to keep or
/// discard.
impl From<FormError> for CliError {
    fn from(e: FormError) -> Self {
        match e {
            FormError::Stop(_) => {
                CliError::failure("stopped before the first answer: nothing was recorded or kept")
            }
            FormError::Cli(e) => e,
        }
    }
}

const GO_BACK: &str = "go_back";
const KEEP: &str = "keep";
const DISCARD: &str = "discard";

impl Filling {
    /// Asks what to do: go back (the default, and Esc), keep the draft and quit (a second
    /// Ctrl-C: a person who means to leave loses nothing), or discard it.
    fn stop(self) -> Result<Option<Stop>, FormError> {
        let l = labels::get();
        let (question, discard) = match self {
            Filling::New => (l.text("stop_new"), l.text("discard_new")),
            Filling::Edit => (l.text("stop_edit"), l.text("discard_edit")),
        };
        let entries = vec![
            Entry::new(GO_BACK, l.text("go_back")),
            Entry::new(KEEP, l.text("keep")),
            Entry::new(DISCARD, discard),
        ];
        let chosen = menu(question, entries)
            .with_help_message(l.text("stop_help"))
            .prompt();
        match chosen {
            Ok(entry) if entry.id == KEEP => Ok(Some(Stop::Keep)),
            Ok(entry) if entry.id == DISCARD => Ok(Some(Stop::Discard)),
            Ok(_) | Err(InquireError::OperationCanceled) => Ok(None),
            Err(InquireError::OperationInterrupted) => Ok(Some(Stop::Keep)),
            Err(other) => Err(unusable(other).into()),
        }
    }

    fn discarded(self) -> CliError {
        CliError::failure(match self {
            Filling::New => "discarded: nothing of this case was recorded",
            Filling::Edit => "discarded: the case is unchanged",
        })
    }
}

/// A menu entry: what it shows, and the id (a choice's value) it stands for.
#[derive(Clone, Copy)]
struct Entry<'a> {
    id: &'a str,
    shown: &'a str,
}

impl<'a> Entry<'a> {
    fn new(id: &'a str, shown: &'a str) -> Entry<'a> {
        Entry { id, shown }
    }
}

impl std::fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown)
    }
}

/// A menu whose typed filter ranks an entry equal to what was typed first, then entries that
/// start with it, then those with a word that does, then those that contain it, each in the
/// menu's order: typing `male` picks `Male`, never `Female` listed before it. What is typed is
/// matched against an entry's label and its value (`targeted_strike`), so the keys of
/// `--set` work whatever the language.
fn menu<'a>(message: &'a str, entries: Vec<Entry<'a>>) -> Menu<'a> {
    Menu {
        message,
        entries,
        help: labels::get().text("menu_help"),
        start: 0,
    }
}

/// A menu of the form, drawn and filtered by [`crate::line::choose`] (whose filter line takes
/// Ctrl-U and the other line keys), built as inquire's `Select` is.
struct Menu<'a> {
    message: &'a str,
    entries: Vec<Entry<'a>>,
    help: &'a str,
    start: usize,
}

impl<'a> Menu<'a> {
    fn with_help_message(mut self, help: &'a str) -> Menu<'a> {
        self.help = help;
        self
    }

    fn with_starting_cursor(mut self, start: usize) -> Menu<'a> {
        self.start = start;
        self
    }

    fn prompt(self) -> Result<Entry<'a>, InquireError> {
        let shown: Vec<String> = self.entries.iter().map(|e| e.shown.to_owned()).collect();
        let entries = &self.entries;
        let score = |typed: &str, i: usize| {
            let entry = &entries[i];
            rank(typed, entry.shown).max(rank(typed, entry.id))
        };
        let chosen = crate::line::choose(self.message, &shown, &score, self.start, self.help)?;
        Ok(self.entries[chosen])
    }
}

fn rank(typed: &str, entry: &str) -> Option<i64> {
    let (typed, entry) = (typed.trim().to_lowercase(), entry.to_lowercase());
    if typed.is_empty() {
        // Nothing typed: every entry, in the menu's order (the empty choice's id is empty).
        Some(0)
    } else if entry == typed {
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

const SAVE: &str = "save";
const CHANGE: &str = "change";

/// `cairn case new` on a terminal: `kind` and `place` when given on the command line, the rest
/// asked; then "Record another case?" with the vault still unlocked.
pub fn new(config: &Config, kind: Option<Kind>, place: Option<String>) -> Result<(), CliError> {
    let mut vault = vault_cmd::open(config)?;
    // A form killed earlier left its answers: say so before asking them again.
    let kept = vault.drafts()?.len();
    if kept > 0 {
        eprintln!("{kept} draft(s) kept from earlier forms: `cairn case drafts` lists them.");
    }
    let places = crate::places::Places::load(config, &vault)?;
    let place = place.map(|p| places.resolve(&p)).transpose()?;
    new_cases(&mut vault, &places, kind, place, None)
}

/// `cairn case drafts resume ID` (and `case new --resume ID`): the form of the draft `id`,
/// with its answers filled.
pub fn resume(config: &Config, id: &str) -> Result<(), CliError> {
    let mut vault = vault_cmd::open(config)?;
    let draft = vault.draft(id)?;
    eprintln!(
        "Resuming draft {} ({} answer(s) given).",
        draft.short_id(),
        draft.answers.len()
    );
    if let Some(reference) = draft.case.clone() {
        return edit_with(&mut vault, &reference, Some(draft));
    }
    // The draft's kind and place are its own: a case recorded after it asks them again.
    let places = crate::places::Places::load(config, &vault)?;
    new_cases(&mut vault, &places, None, None, Some(draft))
}

/// New cases one after another: `kind` and `place` (the command line's) for every one, the
/// `resumed` draft's for the first.
fn new_cases(
    vault: &mut Vault,
    places: &crate::places::Places,
    kind: Option<Kind>,
    place: Option<String>,
    mut resumed: Option<Draft>,
) -> Result<(), CliError> {
    let mut last_place = place.clone().unwrap_or_default();
    loop {
        let draft = resumed.take();
        let drafted_kind = draft.as_ref().and_then(|d| d.kind.as_deref()?.parse().ok());
        let this_kind = match drafted_kind.or(kind) {
            Some(kind) => kind,
            None => ask_kind()?,
        };
        let drafted_place = draft.as_ref().and_then(|d| d.place.clone());
        let this_place = match drafted_place.or_else(|| place.clone()) {
            Some(place) => place,
            None => ask_place(places, &last_place)?,
        };
        last_place.clone_from(&this_place);
        let resuming = draft.is_some();
        let mut draft = draft.unwrap_or_else(|| Draft::new(None, time::OffsetDateTime::now_utc()));
        draft.kind = Some(this_kind.to_string());
        draft.place = Some(this_place.clone());
        let mut form = Form::new(BTreeMap::new(), Filling::New, draft);
        form.saved = resuming;
        // Most cases are recorded where and when found: Enter stores the time it is pressed.
        form.defaults.insert("found.at", "now");
        let what = format!("new {this_kind} case at {this_place}");
        match form.run_new(vault, this_kind, &what) {
            Ok(Some(edits)) => {
                let now = time::OffsetDateTime::now_utc();
                let id = form.draft.id;
                let created =
                    vault.create_case_from_draft(this_kind, &this_place, &edits, now, &id)?;
                tracing::info!(seq = created.seq, "case recorded");
                eprintln!("Recorded {}.", created.reference);
                output::print(&format!("{}\n", created.reference))?;
            }
            Ok(None) => {
                vault.discard_draft(&form.draft.id)?;
                eprintln!("Discarded: nothing of this case was recorded.");
            }
            Err(e) => return form.stopped(vault, e),
        }
        // Ctrl-C here has nothing to drop: it ends the form like "no".
        let another = inquire::Confirm::new(labels::get().text("another"))
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
    edit_with(&mut vault, reference, None)
}

fn edit_with(vault: &mut Vault, reference: &str, resumed: Option<Draft>) -> Result<(), CliError> {
    let case = vault.case(reference)?.to_json()?;
    // The draft names the case by its whole reference, whatever part of it was typed.
    let reference = case["reference"].as_str().unwrap_or(reference).to_owned();
    let reference = reference.as_str();
    let current = Form::asked()
        .filter_map(|spec| Some((spec.key, shown(lookup(&case, spec)?))))
        .collect();
    let resuming = resumed.is_some();
    let draft = resumed
        .unwrap_or_else(|| Draft::new(Some(reference.to_owned()), time::OffsetDateTime::now_utc()));
    let mut form = Form::new(current, Filling::Edit, draft);
    form.saved = resuming;
    eprintln!("Editing {reference}: choose a section to change, then save.");
    let edits = match form.review(vault, reference) {
        Ok(Some(edits)) => edits,
        Ok(None) => {
            vault.discard_draft(&form.draft.id)?;
            eprintln!("Discarded: {reference} is unchanged.");
            return Ok(());
        }
        Err(e) => return form.stopped(vault, e),
    };
    let id = form.draft.id;
    match vault.edit_case_from_draft(reference, &edits, time::OffsetDateTime::now_utc(), &id)? {
        Some(seq) => output::print(&format!("{reference}: recorded (change {seq})\n")),
        None => output::print(&format!("{reference}: nothing changed\n")),
    }
}

/// A case being filled: each field's value in the case now and the answer it will hold, and
/// the draft they are saved in.
struct Form {
    sections: Vec<(&'static str, Vec<&'static FieldSpec>)>,
    current: BTreeMap<&'static str, String>,
    answers: BTreeMap<&'static str, String>,
    filling: Filling,
    /// What an empty field shows the first time it is asked, taken as typed on Enter.
    defaults: BTreeMap<&'static str, &'static str>,
    draft: Draft,
    /// Whether the vault holds the draft (it is saved at the first answer, or was resumed).
    saved: bool,
}

impl Form {
    /// A form over `current`, with the answers `draft` holds (those of a field no longer in
    /// the catalogue, or no longer valid, are dropped with a word).
    fn new(current: BTreeMap<&'static str, String>, filling: Filling, draft: Draft) -> Form {
        let mut answers = current.clone();
        for (key, value) in &draft.answers {
            match Form::asked().find(|spec| spec.key == key) {
                Some(spec) if checked(spec.key, value).is_ok() => {
                    answers.insert(spec.key, value.clone());
                }
                _ => output::eprint(&format!(
                    "the draft's answer to {key} is not one this cairn takes; it is left out"
                )),
            }
        }
        Form {
            sections: sections(),
            answers,
            current,
            filling,
            defaults: BTreeMap::new(),
            draft,
            saved: false,
        }
    }

    /// Every field the form asks, in catalogue order.
    fn asked() -> impl Iterator<Item = &'static FieldSpec> {
        cairn_model::fields()
            .iter()
            .filter(|spec| !NOT_IN_SECTIONS.contains(&spec.key))
    }

    /// A new case: the sections of its kind (skipping what a resumed draft already asked),
    /// then the summary.
    fn run_new(
        &mut self,
        vault: &mut Vault,
        kind: Kind,
        what: &str,
    ) -> Result<Option<Vec<Edit>>, FormError> {
        // The kind and place kept before the first answer (a resumed draft has them).
        if self.draft.asked.is_empty() {
            self.save(vault)?;
        }
        let asked: Vec<usize> = (self.sections.iter().enumerate())
            .filter(|(_, (id, _))| asked_of(kind).contains(id))
            .map(|(i, _)| i)
            .collect();
        for section in asked {
            self.fill(vault, section, true)?;
        }
        self.review(vault, what)
    }

    /// Saves the answers that differ from the case in the draft.
    fn save(&mut self, vault: &mut Vault) -> Result<(), FormError> {
        self.draft.answers = Form::asked()
            .filter_map(|spec| {
                let (_, after) = self.change(spec.key)?;
                Some((spec.key.to_owned(), after.to_owned()))
            })
            .collect();
        let now = time::OffsetDateTime::now_utc();
        let rfc3339 = time::format_description::well_known::Rfc3339;
        self.draft.saved_at = now.format(&rfc3339).unwrap_or_default();
        vault.save_draft(&self.draft)?;
        self.saved = true;
        Ok(())
    }

    /// What stopping the form leaves: the draft kept (said how to resume it) or discarded.
    fn stopped(&self, vault: &mut Vault, e: FormError) -> Result<(), CliError> {
        match e {
            FormError::Stop(Stop::Keep) if !self.saved => {
                eprintln!("Nothing was answered: no draft to keep.");
                Ok(())
            }
            FormError::Stop(Stop::Keep) => {
                let id = self.draft.short_id();
                eprintln!("Kept as draft {id}: `cairn case drafts resume {id}` goes on from here.");
                Ok(())
            }
            FormError::Stop(Stop::Discard) => {
                vault.discard_draft(&self.draft.id)?;
                Err(self.filling.discarded())
            }
            FormError::Cli(e) => Err(e),
        }
    }

    /// Asks the fields of a section (with `unasked_only`, those the draft has not asked yet),
    /// showing what each holds so far; the draft is saved after each answer.
    fn fill(
        &mut self,
        vault: &mut Vault,
        section: usize,
        unasked_only: bool,
    ) -> Result<(), FormError> {
        let Some((id, fields)) = self.sections.get(section).cloned() else {
            return Ok(());
        };
        let fields: Vec<_> = fields
            .into_iter()
            .filter(|spec| !unasked_only || !self.draft.asked.iter().any(|k| k == spec.key))
            .collect();
        if fields.is_empty() {
            return Ok(());
        }
        eprintln!("\n{}", labels::get().section(id));
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
            if !self.draft.asked.iter().any(|k| k == spec.key) {
                self.draft.asked.push(spec.key.to_owned());
            }
            self.save(vault)?;
        }
        Ok(())
    }

    /// The summary and its menu until the case is saved (its edits) or discarded (`None`).
    fn review(&mut self, vault: &mut Vault, what: &str) -> Result<Option<Vec<Edit>>, FormError> {
        let l = labels::get();
        loop {
            eprintln!("\n{}", self.summary(what));
            let choice = answer(self.filling, || {
                let entries = vec![
                    Entry::new(SAVE, l.text("save")),
                    Entry::new(CHANGE, l.text("change")),
                    Entry::new(KEEP, l.text("keep")),
                    Entry::new(DISCARD, l.text("discard")),
                ];
                menu(l.text("what_now"), entries).prompt()
            })?;
            match choice.id {
                SAVE => return Ok(Some(self.edits())),
                DISCARD => return Ok(None),
                KEEP => return Err(FormError::Stop(Stop::Keep)),
                _ => {
                    let titles: Vec<Entry<'_>> = (self.sections.iter())
                        .map(|(id, _)| Entry::new(id, l.section(id)))
                        .collect();
                    let chosen = answer(self.filling, || {
                        menu(l.text("which_section"), titles.clone()).prompt()
                    })?;
                    if let Some(i) = self.sections.iter().position(|(id, _)| *id == chosen.id) {
                        self.fill(vault, i, false)?;
                    }
                }
            }
        }
    }

    /// What saving would change, section by section, in the catalog's words.
    fn summary(&self, what: &str) -> String {
        let l = labels::get();
        let mut text = l.text("summary").replace("{what}", what);
        text.push('\n');
        let mut changes = 0;
        for (id, fields) in &self.sections {
            let lines: Vec<String> = fields
                .iter()
                .filter_map(|spec| {
                    let (before, after) = self.change(spec.key)?;
                    let (before, after) =
                        (value_shown(l, spec, before), value_shown(l, spec, after));
                    let label = l.field(spec.key);
                    Some(match (before.is_empty(), after.is_empty()) {
                        (true, _) => format!("    {label}: {after}"),
                        (false, true) => format!("    {label}: {before} -> {}", l.text("cleared")),
                        (false, false) => format!("    {label}: {before} -> {after}"),
                    })
                })
                .collect();
            if !lines.is_empty() {
                changes += lines.len();
                text.push_str(&format!("  {}\n{}\n", l.section(id), lines.join("\n")));
            }
        }
        if changes == 0 {
            text.push_str(&format!("  {}\n", l.text("nothing_changed")));
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

/// A value as the summary shows it: a choice by its label, anything else escaped.
fn value_shown(l: &Labels, spec: &FieldSpec, value: &str) -> String {
    match spec.ty {
        FieldType::Choice(_) if !value.is_empty() => l.value(spec.key, value).to_owned(),
        _ => output::escape(value).into_owned(),
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
        .map(|(i, (id, _))| {
            let fields = Form::asked()
                .filter(|spec| place(spec) == Some(i))
                .collect();
            (*id, fields)
        })
        .collect()
}

/// One field's answer: a menu for a choice, else a line checked as `--set` checks it (a time
/// comes back as RFC 3339). Enter on what is shown keeps it; an empty answer leaves the field
/// empty. The prompt is the field's label; its help ends with the key `--set` takes.
fn ask(spec: &'static FieldSpec, shown: &str, filling: Filling) -> Result<String, FormError> {
    let l = labels::get();
    let message = l.field(spec.key);
    let about = l.help(spec.key).unwrap_or(spec.help);
    if let FieldType::Choice(options) = spec.ty {
        let mut entries = vec![Entry::new("", l.text("empty_choice"))];
        entries.extend(options.iter().map(|o| Entry::new(o, l.value(spec.key, o))));
        let cursor = entries.iter().position(|e| e.id == shown).unwrap_or(0);
        let help = format!("{about} {} (--set {})", l.text("menu_help"), spec.key);
        let chosen = answer(filling, || {
            self::menu(message, entries.clone())
                .with_starting_cursor(cursor)
                .with_help_message(&help)
                .prompt()
        })?;
        return Ok(chosen.id.to_owned());
    }
    let expected = match spec.ty {
        FieldType::Timestamp => l.text("expect_time").to_owned(),
        FieldType::Text => l.text("expect_text").to_owned(),
        other => other.describe(),
    };
    let expected = l.text("expected").replace("{what}", &expected);
    let help = format!(
        "{about} {expected} {} (--set {})",
        l.text("line_help"),
        spec.key
    );
    let key = spec.key;
    let typed = answer(filling, || {
        crate::line::prompt(message, shown, &help, |typed| {
            checked(key, typed).map(|_| ()).map_err(|e| e.message)
        })
    })?;
    Ok(checked(key, &typed)?)
}

/// An answer as the field will hold it: empty, or checked as `--set` checks it.
fn checked(key: &str, typed: &str) -> Result<String, CliError> {
    if typed.trim().is_empty() {
        return Ok(String::new());
    }
    input::field_value(key, typed, input::local_now())
}

fn ask_kind() -> Result<Kind, CliError> {
    let l = labels::get();
    let message = l.field("kind");
    let entries: Vec<Entry<'_>> = (Kind::ALL.iter())
        .map(|k| Entry::new(k.as_str(), l.value("kind", k.as_str())))
        .collect();
    let chosen = answer(Filling::New, || {
        menu(message, entries.clone())
            .with_help_message(l.text("menu_help"))
            .prompt()
    })?;
    Ok(chosen.id.parse()?)
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
    let message = labels::get().text("place_question");
    loop {
        let typed = answer(Filling::New, || {
            crate::line::prompt(message, last, &help, |_| Ok(()))
        })?;
        match places.resolve(&typed) {
            Ok(code) => return Ok(code),
            Err(e) => crate::output::eprint(&e.message),
        }
    }
}

/// A prompt's answer. Esc or Ctrl-C asks whether to stop: going back asks the same again;
/// keeping the draft or discarding it ends the form.
fn answer<T>(
    filling: Filling,
    mut prompt: impl FnMut() -> Result<T, InquireError>,
) -> Result<T, FormError> {
    loop {
        match prompt() {
            Ok(value) => return Ok(value),
            Err(InquireError::OperationInterrupted | InquireError::OperationCanceled) => {
                if let Some(stop) = filling.stop()? {
                    return Err(FormError::Stop(stop));
                }
            }
            Err(other) => return Err(unusable(other).into()),
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
    fn a_draft_s_answers_fill_the_form_and_a_bad_one_is_left_out() {
        let mut draft = Draft::new(None, time::OffsetDateTime::now_utc());
        draft.answers.insert("person.sex".into(), "male".into());
        draft.answers.insert("found.lat".into(), "91".into());
        draft.answers.insert("no.such".into(), "x".into());
        let form = Form::new(BTreeMap::new(), Filling::New, draft);
        assert_eq!(form.edits(), [Edit::set("person.sex", "male")]);
    }

    #[test]
    fn every_section_has_a_title_in_english() {
        let l = labels::get();
        for (id, _) in SECTIONS {
            assert_ne!(l.section(id), *id, "{id}");
        }
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
        let draft = Draft::new(
            Some("KHR-T03-AAAA-0001".into()),
            time::OffsetDateTime::now_utc(),
        );
        let mut form = Form::new(current, Filling::Edit, draft);
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
        assert!(summary.contains("Longitude where found: 34.4"), "{summary}");
        assert!(summary.contains("Sex: Male -> (cleared)"), "{summary}");
        assert!(!summary.contains("Latitude"), "{summary}");
        assert!(summary.contains("  Where and when found\n"), "{summary}");
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
