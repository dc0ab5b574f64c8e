//! Published editions: a report frozen as the office published it, so that its figures can be
//! reproduced exactly however the cases change afterwards, and an update can say what changed.
//!
//! An [`Edition`] holds the rules it counted by (period, statuses, grouping, when it was
//! made), its figures and sentence, and every case those rules looked at: each with the values
//! it was counted by, the links in force, and the version of the case (its Automerge heads).
//! "Looked at" means every case whose day falls in the period, is missing or lies in the
//! future (whatever its status, so a later edition can say why a case stopped counting), with
//! every case linked to one of them into one person: the figures worked out again from the
//! edition's cases alone are the figures published ([`Edition::figures`] checks it).
//!
//! This module is pure: signing and storing an edition are the vault's.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::report::{
    self, case_day, in_future, long_date, parse_day, By, Counting, Figures, Options, Period,
    ReportCase, Taken,
};

/// The layout of [`Edition`]; another is refused.
pub const EDITION_FORMAT: u32 = 1;

/// A report as published. Its compact JSON (fields in this order) is what the office signs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edition {
    /// [`EDITION_FORMAT`].
    pub format: u32,
    /// A random UUID.
    pub id: String,
    /// The title the office gave it.
    pub title: String,
    /// When it was published (RFC 3339, whole seconds): when its report was made.
    pub published_at: String,
    /// When the vault counted last synced in full, if it ever had.
    pub data_as_of: Option<String>,
    /// The first day counted, `YYYY-MM-DD`.
    pub from: String,
    /// The last day counted, `YYYY-MM-DD`.
    pub to: String,
    /// Whether alleged and under-investigation cases counted too.
    pub include_alleged: bool,
    /// What the figures were grouped by, if anything.
    pub by: Option<By>,
    /// The published sentence.
    pub sentence: String,
    /// The figures, as `cairn report --format json` writes them.
    pub figures: serde_json::Value,
    /// Every case the rules looked at, in the order they were counted in.
    pub cases: Vec<EditionCase>,
}

/// One case as an edition looked at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditionCase {
    /// The values it was counted by (the office's confirmed values where it was edited since
    /// its confirmation) and the links in force.
    pub case: ReportCase,
    /// The case's version: its Automerge heads (hex), which hold the verification in force.
    pub heads: Vec<String>,
    /// Whether it counted in the figures (as a person, or as a record of one).
    pub counted: bool,
}

/// Why an edition cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditionError {
    /// Written by a later Cairn.
    #[error("edition {id} has format {format}; this Cairn reads format {EDITION_FORMAT}: update Cairn to read it.")]
    Format {
        /// The edition.
        id: String,
        /// Its format.
        format: u32,
    },
    /// A field that does not read.
    #[error("edition {id} is damaged: {what}.")]
    Damaged {
        /// The edition.
        id: String,
        /// What does not read.
        what: String,
    },
    /// Its cases no longer give its figures.
    #[error("edition {id}'s figures do not follow from its cases under this Cairn's counting rules: it was counted under other rules, or altered.")]
    Figures {
        /// The edition.
        id: String,
    },
}

impl Edition {
    /// Freezes what `cases` (each with its heads, in the order the vault holds them) count
    /// over `period` with `options`, as taken at `taken`.
    pub fn freeze(
        id: String,
        title: String,
        cases: &[(ReportCase, Vec<String>)],
        period: Period,
        options: Options,
        taken: &Taken,
    ) -> Result<Edition, EditionError> {
        let all: Vec<&ReportCase> = cases.iter().map(|(c, _)| c).collect();
        let persons = crate::persons(all.iter().map(|c| (c.id.as_str(), c.links.as_slice())));
        // Every person with a case whose day the rules look at, whole.
        let mut looked = vec![false; all.len()];
        for (i, c) in all.iter().enumerate() {
            looked[persons.first[i]] |=
                match case_day(&c.kind, c.found_at.as_deref(), c.incident_date.as_deref()) {
                    None => true,
                    Some(day) => in_future(day, taken.made_at) || period.contains(day),
                };
        }
        let kept: Vec<usize> = (0..all.len())
            .filter(|i| looked[persons.first[*i]])
            .collect();
        let subset: Vec<&ReportCase> = kept.iter().map(|i| all[*i]).collect();
        let counting = report::persons_counted(&subset, period, options, taken);
        let figures = report::figures(&counting, period, options, taken);
        let marks = counting.marks(kept.len());
        let edition = Edition {
            format: EDITION_FORMAT,
            id: id.clone(),
            title,
            published_at: figures.made_at.clone(),
            data_as_of: taken.data_as_of.clone(),
            from: figures.from.clone(),
            to: figures.to.clone(),
            include_alleged: options.include_alleged,
            by: options.by,
            sentence: figures.sentence.clone(),
            figures: to_value(&figures, &id)?,
            cases: kept
                .iter()
                .zip(marks)
                .map(|(i, counted)| EditionCase {
                    case: cases[*i].0.clone(),
                    heads: cases[*i].1.clone(),
                    counted,
                })
                .collect(),
        };
        // What the whole vault counts is what the edition's cases count.
        if report::count(all.iter().copied(), period, options, taken) != figures {
            return Err(EditionError::Figures { id });
        }
        Ok(edition)
    }

    fn damaged(&self, what: impl Into<String>) -> EditionError {
        EditionError::Damaged {
            id: self.id.clone(),
            what: what.into(),
        }
    }

    /// The period, options and time it counted by.
    pub fn rules(&self) -> Result<(Period, Options, Taken), EditionError> {
        if self.format != EDITION_FORMAT {
            return Err(EditionError::Format {
                id: self.id.clone(),
                format: self.format,
            });
        }
        let from = parse_day(&self.from).ok_or_else(|| self.damaged("its first day"))?;
        let to = parse_day(&self.to).ok_or_else(|| self.damaged("its last day"))?;
        let period = Period::new(from, to).ok_or_else(|| self.damaged("its period"))?;
        let made_at = OffsetDateTime::parse(&self.published_at, &Rfc3339)
            .map_err(|_| self.damaged("when it was published"))?;
        let options = Options {
            include_alleged: self.include_alleged,
            by: self.by,
        };
        let taken = Taken {
            made_at,
            data_as_of: self.data_as_of.clone(),
        };
        Ok((period, options, taken))
    }

    /// Who counted, worked out again from the edition's cases.
    pub fn counting(&self) -> Result<Counting, EditionError> {
        let (period, options, taken) = self.rules()?;
        let cases: Vec<&ReportCase> = self.cases.iter().map(|c| &c.case).collect();
        Ok(report::persons_counted(&cases, period, options, &taken))
    }

    /// The figures worked out again from the edition's cases; refused unless they are the
    /// figures, the sentence and the counted marks it was published with.
    pub fn figures(&self) -> Result<Figures, EditionError> {
        let (period, options, taken) = self.rules()?;
        let counting = self.counting()?;
        let figures = report::figures(&counting, period, options, &taken);
        let marks = counting
            .marks(self.cases.len())
            .into_iter()
            .zip(&self.cases)
            .all(|(counted, case)| counted == case.counted);
        if !marks
            || figures.sentence != self.sentence
            || to_value(&figures, &self.id)? != self.figures
        {
            return Err(EditionError::Figures {
                id: self.id.clone(),
            });
        }
        Ok(figures)
    }

    /// The day it was published, as the update sentence names it.
    fn published_day(&self) -> String {
        OffsetDateTime::parse(&self.published_at, &Rfc3339)
            .map(|at| long_date(at.date()))
            .unwrap_or_else(|_| self.published_at.clone())
    }
}

fn to_value(figures: &Figures, id: &str) -> Result<serde_json::Value, EditionError> {
    serde_json::to_value(figures).map_err(|e| EditionError::Damaged {
        id: id.to_owned(),
        what: e.to_string(),
    })
}

/// An edition by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EditionName {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// When it was published.
    pub published_at: String,
}

impl From<&Edition> for EditionName {
    fn from(e: &Edition) -> Self {
        EditionName {
            id: e.id.clone(),
            title: e.title.clone(),
            published_at: e.published_at.clone(),
        }
    }
}

/// A person counted now and not before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewlyCounted {
    /// The reference of the record it counts as.
    pub reference: String,
    /// killed, injured, missing, remains or detained.
    pub kind: String,
    /// The cause, for a killing.
    pub cause: Option<String>,
    /// `person.civilian`.
    pub civilian: Option<String>,
    /// Found as a result of search operations: a record of it is remains, or was found
    /// after the earlier edition was published.
    pub found_by_search: bool,
}

/// One counted value that moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// status, kind, cause, civilian or identification.
    pub field: &'static str,
    /// Its value then.
    pub was: Option<String>,
    /// Its value now.
    pub now: Option<String>,
}

/// A person counted in both, counted differently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reclassified {
    /// The reference of the record it counts as now.
    pub reference: String,
    /// The reference it counted as then, where that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub was_reference: Option<String>,
    /// What moved.
    pub moved: Vec<Moved>,
}

/// A person counted then and not now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NoLongerCounted {
    /// The reference of the record it counted as.
    pub reference: String,
    /// rejected, status, period, undated, future or absent.
    pub reason: &'static str,
    /// The reason in words.
    pub why: String,
}

/// Persons counted apart then, one person now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Merged {
    /// The reference of the record the one person counts as now.
    pub into: String,
    /// The references the persons counted as then.
    pub were: Vec<String>,
}

/// A person counted then whose records count as several persons now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Split {
    /// The reference it counted as then.
    pub was: String,
    /// The references the persons count as now.
    pub now: Vec<String>,
}

/// A record counted now as a record of a person counted before: it adds no person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Joined {
    /// The record.
    pub reference: String,
    /// The reference its person counted as then.
    pub person: String,
}

/// What changed between two editions (or an edition and the vault now), by reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// The earlier edition.
    pub since: EditionName,
    /// The later one; `None` for the vault as it is now.
    pub until: Option<EditionName>,
    /// Persons counted now and not then.
    pub newly_counted: Vec<NewlyCounted>,
    /// Persons counted in both, with a counted value moved.
    pub reclassified: Vec<Reclassified>,
    /// Persons counted then and not now.
    pub no_longer_counted: Vec<NoLongerCounted>,
    /// Persons counted apart then, linked into one since.
    pub merged: Vec<Merged>,
    /// Persons counted as one then, as several now (a link superseded).
    pub split: Vec<Split>,
    /// Records counted now as further records of a person counted then.
    pub joined: Vec<Joined>,
    /// Further killings of civilians: newly counted, or reclassified into one.
    pub further_civilian_killings: u64,
    /// Of them, found as a result of search operations.
    pub found_by_search: u64,
    /// Further civilian injuries, likewise.
    pub further_civilian_injuries: u64,
    /// Further civilians recorded as detained (held alive), likewise.
    pub further_civilians_detained: u64,
    /// The update sentence.
    pub sentence: String,
}

fn civilian_is(case: &ReportCase, kind: &str) -> bool {
    case.kind == kind && case.civilian.as_deref() == Some("yes")
}

/// What changed from `old` to `new`. `new` is a later edition, or one frozen from the vault
/// now (then `published` says no).
pub fn changes(old: &Edition, new: &Edition, published: bool) -> Result<Changes, EditionError> {
    // Neither is compared unless its cases give its figures.
    old.figures()?;
    new.figures()?;
    let (then, now) = (old.counting()?, new.counting()?);
    let (_, _, old_taken) = old.rules()?;
    let (new_period, new_options, new_taken) = new.rules()?;
    let index = |e: &Edition, counting: &Counting| -> HashMap<String, usize> {
        counting
            .persons
            .iter()
            .enumerate()
            .flat_map(|(p, person)| {
                person
                    .records
                    .iter()
                    .map(move |r| (e.cases[*r].case.id.clone(), p))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (old_person, new_person) = (index(old, &then), index(new, &now));
    let mut out = Changes {
        since: old.into(),
        until: published.then(|| new.into()),
        newly_counted: Vec::new(),
        reclassified: Vec::new(),
        no_longer_counted: Vec::new(),
        merged: Vec::new(),
        split: Vec::new(),
        joined: Vec::new(),
        further_civilian_killings: 0,
        found_by_search: 0,
        further_civilian_injuries: 0,
        further_civilians_detained: 0,
        sentence: String::new(),
    };
    let reference = |e: &Edition, record: usize| e.cases[record].case.reference.clone();
    // The new persons each old person's records count in now: more than one is a split.
    let mut counted_in: HashMap<usize, Vec<usize>> = HashMap::new();
    for (p, person) in now.persons.iter().enumerate() {
        for r in &person.records {
            if let Some(was) = old_person.get(&new.cases[*r].case.id) {
                let into = counted_in.entry(*was).or_default();
                if !into.contains(&p) {
                    into.push(p);
                }
            }
        }
    }
    for (was, into) in &counted_in {
        if into.len() > 1 {
            out.split.push(Split {
                was: reference(old, then.persons[*was].records[0]),
                now: into
                    .iter()
                    .map(|p| reference(new, now.persons[*p].records[0]))
                    .collect(),
            });
        }
    }
    out.split.sort_by(|a, b| a.was.cmp(&b.was));
    for person in &now.persons {
        let mut touched: Vec<usize> = person
            .records
            .iter()
            .filter_map(|r| old_person.get(&new.cases[*r].case.id).copied())
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let counts_as = reference(new, person.records[0]);
        let case = &person.case;
        match touched.as_slice() {
            [] => {
                let found_by_search = person.records.iter().any(|r| {
                    let c = &new.cases[*r].case;
                    c.kind == "remains"
                        || c.found_at
                            .as_deref()
                            .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
                            .is_some_and(|at| at > old_taken.made_at)
                });
                if civilian_is(case, "killed") {
                    out.further_civilian_killings += 1;
                    out.found_by_search += u64::from(found_by_search);
                }
                out.further_civilian_injuries += u64::from(civilian_is(case, "injured"));
                out.further_civilians_detained += u64::from(civilian_is(case, "detained"));
                out.newly_counted.push(NewlyCounted {
                    reference: counts_as,
                    kind: case.kind.clone(),
                    cause: case.cause.clone(),
                    civilian: case.civilian.clone(),
                    found_by_search,
                });
            }
            [was] if counted_in.get(was).is_some_and(|into| into.len() > 1) => {}
            [was] => {
                let was = &then.persons[*was];
                let before = &was.case;
                let fields: [(&'static str, &Option<String>, &Option<String>); 5] = [
                    (
                        "status",
                        &Some(before.status.clone()),
                        &Some(case.status.clone()),
                    ),
                    ("kind", &Some(before.kind.clone()), &Some(case.kind.clone())),
                    ("cause", &before.cause, &case.cause),
                    ("civilian", &before.civilian, &case.civilian),
                    (
                        "identification",
                        &before.identification,
                        &case.identification,
                    ),
                ];
                let was_reference = reference(old, was.records[0]);
                let moved: Vec<Moved> = fields
                    .into_iter()
                    .filter(|(_, a, b)| a != b)
                    .map(|(field, a, b)| Moved {
                        field,
                        was: a.clone(),
                        now: b.clone(),
                    })
                    .collect();
                if !moved.is_empty() {
                    if civilian_is(case, "killed") && !civilian_is(before, "killed") {
                        out.further_civilian_killings += 1;
                    }
                    if civilian_is(case, "injured") && !civilian_is(before, "injured") {
                        out.further_civilian_injuries += 1;
                    }
                    if civilian_is(case, "detained") && !civilian_is(before, "detained") {
                        out.further_civilians_detained += 1;
                    }
                    out.reclassified.push(Reclassified {
                        was_reference: (was_reference != counts_as).then(|| was_reference.clone()),
                        reference: counts_as.clone(),
                        moved,
                    });
                }
                for r in &person.records {
                    if !old_person.contains_key(&new.cases[*r].case.id) {
                        out.joined.push(Joined {
                            reference: reference(new, *r),
                            person: was_reference.clone(),
                        });
                    }
                }
            }
            several => out.merged.push(Merged {
                into: counts_as,
                were: several
                    .iter()
                    .map(|p| reference(old, then.persons[*p].records[0]))
                    .collect(),
            }),
        }
    }
    let by_id: HashMap<&str, &EditionCase> =
        new.cases.iter().map(|c| (c.case.id.as_str(), c)).collect();
    for person in &then.persons {
        if person
            .records
            .iter()
            .any(|r| new_person.contains_key(&old.cases[*r].case.id))
        {
            continue;
        }
        let first = &old.cases[person.records[0]].case;
        let (reason, why) = match by_id.get(first.id.as_str()).map(|c| &c.case) {
            None => (
                "absent",
                "no longer among the cases of the period".to_owned(),
            ),
            Some(c) if c.status == "rejected" => ("rejected", "rejected by the office".into()),
            Some(c) if !report_statuses(new_options).contains(&c.status.as_str()) => {
                ("status", format!("now {}", c.status.replace('_', " ")))
            }
            Some(c) => match case_day(&c.kind, c.found_at.as_deref(), c.incident_date.as_deref()) {
                None => ("undated", "its date was removed".into()),
                Some(day) if in_future(day, new_taken.made_at) => {
                    ("future", format!("now dated {day}, in the future"))
                }
                Some(day) if !new_period.contains(day) => {
                    ("period", format!("now dated {day}, outside the period"))
                }
                Some(_) => ("absent", "no longer counted".into()),
            },
        };
        out.no_longer_counted.push(NoLongerCounted {
            reference: first.reference.clone(),
            reason,
            why,
        });
    }
    out.sentence = update_sentence(old, &out);
    Ok(out)
}

fn report_statuses(options: Options) -> &'static [&'static str] {
    if options.include_alleged {
        &["confirmed", "alleged", "under_investigation"]
    } else {
        &["confirmed"]
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// "Since the report of December 22, 2020, the killings of 12 further civilians have been
/// recorded, 9 of them found as a result of search operations." Then injuries, cases no longer
/// counted and persons merged, each only when there are any.
fn update_sentence(old: &Edition, c: &Changes) -> String {
    let n = c.further_civilian_killings;
    let m = c.found_by_search;
    let mut out = format!("Since the report of {}, ", old.published_day());
    if n == 0 {
        out.push_str("no further killings of civilians have been recorded");
    } else {
        out.push_str(&format!(
            "the {} of {n} further {} {} been recorded",
            plural(n, "killing", "killings"),
            plural(n, "civilian", "civilians"),
            plural(n, "has", "have"),
        ));
        match (n, m) {
            (_, 0) => {}
            (1, 1) => out.push_str(", found as a result of search operations"),
            _ => out.push_str(&format!(
                ", {m} of them found as a result of search operations"
            )),
        }
    }
    out.push('.');
    let injured = c.further_civilian_injuries;
    if injured > 0 {
        out.push_str(&format!(
            " {injured} further civilian {} {} recorded.",
            plural(injured, "injury", "injuries"),
            plural(injured, "was", "were"),
        ));
    }
    let detained = c.further_civilians_detained;
    if detained > 0 {
        out.push_str(&format!(
            " {detained} further {} {} recorded as detained.",
            plural(detained, "civilian", "civilians"),
            plural(detained, "was", "were"),
        ));
    }
    let dropped = c.no_longer_counted.len() as u64;
    if dropped > 0 {
        let rejected = c
            .no_longer_counted
            .iter()
            .filter(|d| d.reason == "rejected")
            .count() as u64;
        out.push_str(&format!(
            " {dropped} {} counted then {} no longer counted",
            plural(dropped, "person", "persons"),
            plural(dropped, "is", "are"),
        ));
        if rejected > 0 {
            out.push_str(&format!(
                ", {rejected} of them because the office rejected the case"
            ));
        }
        out.push('.');
    }
    let merged: u64 = c.merged.iter().map(|m| m.were.len() as u64 - 1).sum();
    if merged > 0 {
        out.push_str(&format!(
            " {merged} {} counted then as {} of {} own {} since been linked to {} already counted.",
            plural(merged, "record", "records"),
            plural(merged, "a person", "persons"),
            plural(merged, "its", "their"),
            plural(merged, "has", "have"),
            plural(merged, "a person", "persons"),
        ));
    }
    let split = c.split.len() as u64;
    if split > 0 {
        let now: u64 = c.split.iter().map(|s| s.now.len() as u64).sum();
        out.push_str(&format!(
            " {split} {} counted then {} now counted as {now} persons, {} records found to be of different people.",
            plural(split, "person", "persons"),
            plural(split, "is", "are"),
            plural(split, "its", "their"),
        ));
    }
    let moved = c.reclassified.len() as u64;
    if moved > 0 {
        out.push_str(&format!(
            " {moved} {} counted then {} been reclassified.",
            plural(moved, "person", "persons"),
            plural(moved, "has", "have"),
        ));
    }
    out
}
