//! Record linkage for Cairn: which records are of one person, and which unnamed remains may be
//! a missing person.
//!
//! The same killing is often recorded by two teams, a hospital list and an ombudsman's list, in
//! different scripts and spellings; a missing person reported by the family (ante-mortem) may be
//! the unnamed remains a search team found months later (post-mortem). This crate takes plain
//! [`Record`]s, blocks them on several cheap keys, scores each kept pair with a Fellegi–Sunter
//! model whose weights it estimates from the records themselves (u from random pairs, m by
//! expectation–maximisation, term-frequency adjustment on name tokens), each estimate shrunk
//! toward a documented prior by pseudo-counts so that a vault of a few dozen cases is scored on
//! what the comparison levels mean and a list of thousands on its own data, and returns
//! [`Candidate`] pairs with a probability and the evidence behind it; [`clusters`] groups them
//! into persons while honouring the office's `distinct` decisions. It only proposes: the office
//! decides. It must never do I/O or keep state: no files, no network, no vault, no keys, no
//! Automerge — callers hand it records and decisions and store whatever they decide. The
//! [`generate`] module makes synthetic casualty lists with their truth (written as CSV only to
//! a writer the caller hands it), and [`eval`] measures the linkage against them.

#![warn(missing_docs)]

mod block;
mod cluster;
mod compare;
pub mod eval;
mod fs;
pub mod generate;
pub mod names;
mod prepare;

use serde::{Deserialize, Serialize};

pub use cluster::clusters;
pub use fs::candidates;

/// What a case records, from the case's `kind` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A person killed.
    Killed,
    /// A person injured.
    Injured,
    /// A person reported missing (the ante-mortem side).
    Missing,
    /// Remains found (the post-mortem side), usually unnamed.
    Remains,
    /// Any other kind: compared as a record of a person, never as remains.
    Other,
}

impl Kind {
    /// The kind named by a case's `kind` string (case-insensitive); anything unknown is `Other`.
    pub fn parse(s: &str) -> Kind {
        match s.trim().to_ascii_lowercase().as_str() {
            "killed" => Kind::Killed,
            "injured" => Kind::Injured,
            "missing" => Kind::Missing,
            "remains" => Kind::Remains,
            _ => Kind::Other,
        }
    }

    /// The kind's name as a case writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Killed => "killed",
            Kind::Injured => "injured",
            Kind::Missing => "missing",
            Kind::Remains => "remains",
            Kind::Other => "other",
        }
    }
}

/// A person's recorded (or, for remains, apparent) sex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

impl Sex {
    /// `female`/`f` or `male`/`m` (case-insensitive); `unknown` and anything else is `None`.
    pub fn parse(s: &str) -> Option<Sex> {
        match s.trim().to_ascii_lowercase().as_str() {
            "female" | "f" => Some(Sex::Female),
            "male" | "m" => Some(Sex::Male),
            _ => None,
        }
    }

    /// The value as a case writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }
}

/// An age band, for records that give no age in years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeGroup {
    /// Under 13.
    Child,
    /// 13 to 17.
    Adolescent,
    /// 18 to 64.
    Adult,
    /// 65 and over.
    Elderly,
}

impl AgeGroup {
    /// `child`, `adolescent`, `adult` or `elderly` (case-insensitive); anything else is `None`.
    pub fn parse(s: &str) -> Option<AgeGroup> {
        match s.trim().to_ascii_lowercase().as_str() {
            "child" => Some(AgeGroup::Child),
            "adolescent" => Some(AgeGroup::Adolescent),
            "adult" => Some(AgeGroup::Adult),
            "elderly" => Some(AgeGroup::Elderly),
            _ => None,
        }
    }

    /// The group an age in years falls in.
    pub fn of_age(years: u32) -> AgeGroup {
        match years {
            0..=12 => AgeGroup::Child,
            13..=17 => AgeGroup::Adolescent,
            18..=64 => AgeGroup::Adult,
            _ => AgeGroup::Elderly,
        }
    }

    /// The value as a case writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AgeGroup::Child => "child",
            AgeGroup::Adolescent => "adolescent",
            AgeGroup::Adult => "adult",
            AgeGroup::Elderly => "elderly",
        }
    }
}

/// One case as the linkage sees it: only the fields it compares, all optional but the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The case's stable id (a UUID string); opaque here, never compared.
    pub id: String,
    /// What the case records.
    pub kind: Kind,
    /// The person's name in any script and order ("Hovhannisyan Aram Gevorgi", "Арам Ованесян").
    pub name: Option<String>,
    /// Recorded or apparent sex; `None` when unknown.
    pub sex: Option<Sex>,
    /// Age in years (an estimate for remains).
    pub age_years: Option<u32>,
    /// Age band, when no age in years is given (or beside it).
    pub age_group: Option<AgeGroup>,
    /// The first day of `incident.date`.
    pub incident_day: Option<time::Date>,
    /// The day of `found.at` (remains).
    pub found_day: Option<time::Date>,
    /// The day of `last_seen.at` (missing persons).
    pub last_seen_day: Option<time::Date>,
    /// `incident.place` or `last_seen.place`, free text.
    pub place: Option<String>,
    /// Latitude: `found.lat`, else `last_seen.lat`.
    pub lat: Option<f64>,
    /// Longitude: `found.lon`, else `last_seen.lon`.
    pub lon: Option<f64>,
    /// `person.height_cm`, or `remains.height_cm` (an estimate).
    pub height_cm: Option<f64>,
    /// `person.clothing` for the missing, `remains.clothing` for remains.
    pub clothing: Option<String>,
    /// `person.effects` or `remains.effects`.
    pub effects: Option<String>,
    /// `person.marks` or `remains.marks`.
    pub marks: Option<String>,
}

impl Record {
    /// A record with an id and a kind and nothing else known.
    pub fn new(id: impl Into<String>, kind: Kind) -> Record {
        Record {
            id: id.into(),
            kind,
            name: None,
            sex: None,
            age_years: None,
            age_group: None,
            incident_day: None,
            found_day: None,
            last_seen_day: None,
            place: None,
            lat: None,
            lon: None,
            height_cm: None,
            clothing: None,
            effects: None,
            marks: None,
        }
    }
}

/// How two records relate, as the office decides or the linkage proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Two records of one person.
    SamePerson,
    /// Remains (`a`) identified as a missing person (`b`).
    Identifies,
    /// Two different people: never propose the pair again, never cluster them together.
    Distinct,
}

impl Relation {
    /// The relation's name as serialized (`same_person`, `identifies`, `distinct`).
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::SamePerson => "same_person",
            Relation::Identifies => "identifies",
            Relation::Distinct => "distinct",
        }
    }
}

/// A decision the office recorded about two records (indices into the records slice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// One record.
    pub a: usize,
    /// The other record.
    pub b: usize,
    /// What the office decided.
    pub relation: Relation,
}

/// What [`candidates`] returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Pairs below this probability are left out (default 0.5).
    pub min_probability: f64,
    /// Only pairs involving this record (`--case`).
    pub only: Option<usize>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            min_probability: 0.5,
            only: None,
        }
    }
}

/// How well one field agrees in a pair, and what that weighs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The field compared (`name`, `sex`, `age`, `date`, `place`, `distance`, `height`,
    /// `clothing`, `effects`, `marks`, `kind`, `order`).
    pub field: &'static str,
    /// The comparison level's name (`exact`, `close`, `far`, ...).
    pub level: &'static str,
    /// The level's weight, log2(m/u), with the term-frequency adjustment for names.
    pub weight: f64,
    /// A phrase for people ("ages 34/35").
    pub phrase: String,
}

/// A proposed pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// A record index; for `Identifies`, the remains.
    pub a: usize,
    /// The other record index; for `Identifies`, the missing person.
    pub b: usize,
    /// `SamePerson` or `Identifies` (exactly when one is remains and the other missing).
    pub relation: Relation,
    /// Probability that the two are one person, from the match weight.
    pub probability: f64,
    /// Per compared field, the evidence; fields missing on either side are left out.
    pub why: Vec<Evidence>,
}

impl Candidate {
    /// One line for people: the phrases of the fields that were compared, strongest first.
    pub fn explain(&self) -> String {
        let mut why: Vec<&Evidence> = self.why.iter().collect();
        why.sort_by(|x, y| y.weight.abs().total_cmp(&x.weight.abs()));
        why.iter()
            .map(|e| e.phrase.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The match weight: the sum of the evidence weights and the prior's log-odds.
    pub fn weight(&self) -> f64 {
        let p = self.probability.clamp(1e-12, 1.0 - 1e-12);
        (p / (1.0 - p)).log2()
    }
}
