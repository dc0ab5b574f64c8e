//! The counts report: how many cases of each kind fall in a period, killed by cause,
//! civilians and others, identified and unidentified, optionally grouped by month, cause or
//! place; and the published sentence generated from those figures.
//!
//! Counting is pure: the caller hands in one [`ReportCase`] per case (the vault's summaries
//! carry every field it needs) and gets [`Figures`] back, ready to print or serialise.
//!
//! The rules, as the office publishes them:
//! - **Which cases count.** Status `confirmed` only, or also `alleged` and
//!   `under_investigation` with [`Options::include_alleged`]. `rejected` never counts.
//! - **Which values.** A confirmed case counts by the values the office confirmed, even if a
//!   field was edited since (the caller hands those in: see [`crate::CaseDoc::confirmed`]).
//! - **Which period.** A case falls in the period when its day lies within `from ..= to`:
//!   for remains, the day they were found (`found.at`, as dated where they were found), else
//!   the incident's; for every other kind, the incident's (`incident.date`: a date, or the
//!   start of a range `YYYY-MM-DD/YYYY-MM-DD`). A case that would count but has no such day
//!   (or one that does not read as a date) is counted apart as `undated`, and in none of the
//!   other figures.
//! - **Dated in the future.** A case that would count but whose day has not yet begun
//!   anywhere on Earth when the report is made (a mistyped year, most likely) is counted apart
//!   as `future`, and in none of the other figures: it is never silently dropped.
//! - **Alleged cases pending.** Cases in the period whose status is `alleged` or
//!   `under_investigation` are always counted apart in `alleged_pending`, whether or not
//!   `--include-alleged` also counts them in the figures.
//! - **Cause.** A killed case without a cause (or with one outside the list) counts as
//!   `unknown`.
//! - **Civilians.** `person.civilian` `yes` is a civilian, `no` is one of the others, and
//!   `unknown` or unset is "not known".
//! - **Identification.** `identification.status` `confirmed` is identified; `preliminary` is
//!   counted apart as preliminarily identified (in neither identified nor unidentified);
//!   `unidentified` or unset is unidentified.
//! - **Detained.** A `detained` case is a living person held (in captivity, detained, a
//!   hostage): counted apart from the missing, in its own figure, and never as a killing
//!   (captivity as a cause is for a person killed in it).
//! - **The sentence counts civilians only**, as the published style does ("the killings of 72
//!   civilians"): killed cases with `person.civilian = yes`, by cause, then civilian injuries,
//!   then civilians detained.
//!   The figures table shows every counted case, civilian or not.
//!   It is worded the same with `include_alleged`: the statuses counted are in
//!   [`Figures::statuses`], and every printed form says them beside the figures.
//! - **Persons, not records.** Records the office linked (`same_person`, or `identifies` for
//!   remains of a missing or detained person: see [`crate::persons`]) count once, as one person,
//!   under the first of killed, remains, injured, detained, missing among the person's counted
//!   records (a missing person whose remains were identified leaves the missing count; a killing
//!   and its remains count once, as a killing). A person is counted by what is most surely known of
//!   them: a death (killed, then remains) outweighs being held alive, since a person held may be
//!   killed later, and being known held (or injured) outweighs having gone missing, since a missing
//!   person later found held is no longer missing. That record dates the person and gives its
//!   cause, civilian status and place, each taken from the person's other counted records where it
//!   has none. A person whose remains are linked by `identifies` is identified.
//!   [`Figures::records`] is how many records counted before linking, [`Figures::persons`] how many
//!   persons.
//! - **When.** Every form says when the data was taken ([`Figures::data_as_of`]: the last
//!   complete sync of the vault counted) and when the report was made ([`Figures::made_at`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime};

/// The causes of a killing, in the order the report lists them.
pub const CAUSES: [&str; 4] = ["targeted_strike", "captivity", "other_violence", "unknown"];

/// How long a `--by month` table may grow before months without a case are left out.
const MAX_EMPTY_MONTHS: usize = 600;

/// What the report needs of one case (all from its summary, no document load).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportCase {
    /// killed, injured, missing, remains or detained.
    pub kind: String,
    /// The effective evidentiary status.
    pub status: String,
    /// `incident.cause`, if set.
    pub cause: Option<String>,
    /// `incident.date`: a date or a range, if set.
    pub incident_date: Option<String>,
    /// `found.at`: when the person or remains were found (RFC 3339), if set.
    pub found_at: Option<String>,
    /// `person.civilian`: yes, no or unknown, if set.
    pub civilian: Option<String>,
    /// `identification.status`, if set.
    pub identification: Option<String>,
    /// The case's place code.
    pub place: String,
    /// The case's reference.
    pub reference: String,
    /// The case's id.
    pub id: String,
    /// The office's decisions in force linking it with other cases.
    pub links: Vec<crate::CaseLink>,
}

/// The days a report covers, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// The first day.
    pub from: Date,
    /// The last day.
    pub to: Date,
}

impl Period {
    /// The period `from ..= to`, or `None` when `from` is after `to`.
    pub fn new(from: Date, to: Date) -> Option<Period> {
        (from <= to).then_some(Period { from, to })
    }

    /// Whether `day` lies within the period.
    pub fn contains(&self, day: Date) -> bool {
        self.from <= day && day <= self.to
    }
}

/// What the figures are grouped by, beside the totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// The month of the incident.
    Month,
    /// The cause (`unknown` when unset).
    Cause,
    /// The case's place code.
    Place,
}

/// How to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Count `alleged` and `under_investigation` cases too, not only `confirmed` ones.
    pub include_alleged: bool,
    /// Group the figures, beside the totals.
    pub by: Option<By>,
}

/// When the figures were taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// When the report is made.
    pub made_at: OffsetDateTime,
    /// When the vault counted last synced in full (RFC 3339); `None` if it never has.
    pub data_as_of: Option<String>,
}

/// Killed cases, in all and by cause.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Killed {
    /// Every killed case counted.
    pub total: u64,
    /// By cause; every cause is present, zero or not.
    pub by_cause: ByCause,
}

/// A count for each cause.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ByCause {
    /// From targeted strikes.
    pub targeted_strike: u64,
    /// In captivity.
    pub captivity: u64,
    /// From other violence.
    pub other_violence: u64,
    /// Of unknown cause, or no cause recorded.
    pub unknown: u64,
}

impl ByCause {
    /// The counts in the order of [`CAUSES`].
    pub fn values(&self) -> [u64; 4] {
        [
            self.targeted_strike,
            self.captivity,
            self.other_violence,
            self.unknown,
        ]
    }

    fn add(&mut self, cause: &str) {
        match cause {
            "targeted_strike" => self.targeted_strike += 1,
            "captivity" => self.captivity += 1,
            "other_violence" => self.other_violence += 1,
            _ => self.unknown += 1,
        }
    }
}

/// Civilians and others among the counted cases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Civilians {
    /// `person.civilian = yes`.
    pub civilians: u64,
    /// `person.civilian = no`.
    pub others: u64,
    /// `unknown` or not recorded.
    pub not_known: u64,
}

/// How far the counted cases are identified.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Identification {
    /// `identification.status = confirmed`.
    pub identified: u64,
    /// `preliminary`: counted apart, in neither of the other two.
    pub preliminary: u64,
    /// `unidentified` or not recorded.
    pub unidentified: u64,
}

/// The counts over one set of cases (the whole period, or one group of it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Every case counted.
    pub total: u64,
    /// Killed, by cause.
    pub killed: Killed,
    /// Injured.
    pub injured: u64,
    /// Missing.
    pub missing: u64,
    /// Detained: living persons held, apart from the missing.
    pub detained: u64,
    /// Remains found.
    pub remains: u64,
    /// Civilians and others.
    pub civilians: Civilians,
    /// Identified and unidentified.
    pub identification: Identification,
}

impl Counts {
    fn add(&mut self, case: &ReportCase) {
        self.total += 1;
        match case.kind.as_str() {
            "killed" => {
                self.killed.total += 1;
                self.killed
                    .by_cause
                    .add(case.cause.as_deref().unwrap_or(""));
            }
            "injured" => self.injured += 1,
            "missing" => self.missing += 1,
            "detained" => self.detained += 1,
            "remains" => self.remains += 1,
            _ => {}
        }
        match case.civilian.as_deref() {
            Some("yes") => self.civilians.civilians += 1,
            Some("no") => self.civilians.others += 1,
            _ => self.civilians.not_known += 1,
        }
        match case.identification.as_deref() {
            Some("confirmed") => self.identification.identified += 1,
            Some("preliminary") => self.identification.preliminary += 1,
            _ => self.identification.unidentified += 1,
        }
    }
}

/// One row of a grouped table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// What identifies the group: `2020-09`, `captivity`, `KHR`.
    pub key: String,
    /// How a person reads it: `September 2020`, `in captivity`, `KHR`.
    pub label: String,
    /// The group's counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// The figures for civilians that the published sentence is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CivilianFigures {
    /// Civilians killed, by cause.
    pub killed: Killed,
    /// Civilians injured.
    pub injured: u64,
    /// Civilians detained (held alive).
    pub detained: u64,
    /// Killings of people whose civilian status is not known: not in the civilian count, and
    /// said so in the sentence, so that "no killings of civilians" is never read as "no
    /// killings".
    pub killed_not_known: u64,
}

/// Everything the report shows. Serialises to the JSON of `cairn report --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// The first day, `YYYY-MM-DD`.
    pub from: String,
    /// The last day, `YYYY-MM-DD`.
    pub to: String,
    /// The statuses counted in the figures.
    pub statuses: Vec<&'static str>,
    /// Every person counted in the period (as [`Figures::persons`]).
    pub total: u64,
    /// Records counted before linking: each case that counts, one person or not.
    pub records: u64,
    /// Persons counted: records linked by the office count once.
    pub persons: u64,
    /// Killed, by cause.
    pub killed: Killed,
    /// Injured.
    pub injured: u64,
    /// Missing.
    pub missing: u64,
    /// Detained: living persons held, apart from the missing.
    pub detained: u64,
    /// Remains found.
    pub remains: u64,
    /// Civilians and others.
    pub civilians: Civilians,
    /// Identified and unidentified.
    pub identification: Identification,
    /// Cases in the period still alleged or under investigation (counted in the figures too
    /// when alleged cases are included).
    pub alleged_pending: u64,
    /// Cases that would count but have no day (in none of the other figures).
    pub undated: u64,
    /// Cases that would count but are dated after the report was made (in none of the other
    /// figures).
    pub future: u64,
    /// When the data was taken: the last complete sync of the vault counted (RFC 3339), or
    /// `None` when it never synced (only its own records are counted).
    pub data_as_of: Option<String>,
    /// When the report was made (RFC 3339).
    pub made_at: String,
    /// Civilians only: what the sentence says.
    pub civilian: CivilianFigures,
    /// What `groups` is grouped by, if anything.
    pub by: Option<By>,
    /// The grouped table, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
    /// Killed by cause for each month of the period (what the chart draws).
    pub months: Vec<Group>,
    /// The published sentence.
    pub sentence: String,
    #[serde(skip)]
    period: Period,
}

/// Reads a strict `YYYY-MM-DD` date.
pub fn parse_day(s: &str) -> Option<Date> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// The day an `incident.date` starts: the date itself, or the start of a range.
pub fn incident_start(value: &str) -> Option<Date> {
    let start = value.split_once('/').map_or(value, |(start, _)| start);
    parse_day(start)
}

/// The day a case falls on for the report: for remains, the day they were found (`found.at`
/// as dated where they were found), else the incident's; for every other kind the
/// incident's (see [`incident_start`]).
pub fn case_day(kind: &str, found_at: Option<&str>, incident_date: Option<&str>) -> Option<Date> {
    let found = found_at
        .filter(|_| kind == "remains")
        .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
        .map(OffsetDateTime::date);
    found.or_else(|| incident_date.and_then(incident_start))
}

/// Whether `day` has not yet begun anywhere on Earth at `now` (the last time zone is UTC-12,
/// the first UTC+14: a day later than tomorrow in UTC cannot have begun).
pub fn in_future(day: Date, now: OffsetDateTime) -> bool {
    let tomorrow = now.to_offset(time::UtcOffset::UTC).date() + Duration::days(1);
    day > tomorrow
}

/// `September 27, 2020`.
pub fn long_date(day: Date) -> String {
    format!("{} {}, {}", month_name(day.month()), day.day(), day.year())
}

fn month_name(m: Month) -> &'static str {
    match m {
        Month::January => "January",
        Month::February => "February",
        Month::March => "March",
        Month::April => "April",
        Month::May => "May",
        Month::June => "June",
        Month::July => "July",
        Month::August => "August",
        Month::September => "September",
        Month::October => "October",
        Month::November => "November",
        Month::December => "December",
    }
}

/// How the sentence names a cause: `from targeted strikes`, `in captivity`...
pub fn cause_phrase(cause: &str) -> &'static str {
    match cause {
        "targeted_strike" => "from targeted strikes",
        "captivity" => "in captivity",
        "other_violence" => "from other violence",
        _ => "of unknown cause",
    }
}

/// How a table names a cause: `Targeted strike`, `Captivity`...
pub fn cause_label(cause: &str) -> &'static str {
    match cause {
        "targeted_strike" => "Targeted strike",
        "captivity" => "Captivity",
        "other_violence" => "Other violence",
        _ => "Unknown",
    }
}

fn month_key(year: i32, month: Month) -> String {
    format!("{year:04}-{:02}", u8::from(month))
}

/// Every month from `from`'s to `to`'s, as (year, month).
fn months_between(from: Date, to: Date) -> Vec<(i32, Month)> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), from.month());
    while (y, u8::from(m)) <= (to.year(), u8::from(to.month())) {
        out.push((y, m));
        if m == Month::December {
            y += 1;
        }
        m = m.next();
    }
    out
}

/// The order in which a person's records give it its kind.
fn kind_rank(kind: &str) -> usize {
    ["killed", "remains", "injured", "detained", "missing"]
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(5)
}

/// The one record a person counts as: its first record (`records` sorted by [`kind_rank`],
/// day, order), with what it lacks taken from the others; identified when it holds remains
/// and the office linked them by `identifies`.
fn person_case(cases: &[&ReportCase], records: &[(usize, Date)], identifies: bool) -> ReportCase {
    let mut case = cases[records[0].0].clone();
    let others = || records[1..].iter().map(|(i, _)| cases[*i]);
    if case.cause.is_none() {
        case.cause = others().find_map(|c| c.cause.clone());
    }
    if case.civilian.as_deref().is_none_or(|c| c == "unknown") {
        case.civilian = others()
            .find_map(|c| c.civilian.clone().filter(|c| c != "unknown"))
            .or(case.civilian);
    }
    if identifies && records.iter().any(|(r, _)| cases[*r].kind == "remains") {
        case.identification = Some("confirmed".into());
    }
    case
}

fn is_pending(status: &str) -> bool {
    matches!(status, "alleged" | "under_investigation")
}

/// One person the figures count: its records (indices into the cases given, the record it
/// counts as first) and the case it counts as (see [`count`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountedPerson {
    /// Its counted records, the one it counts as first.
    pub records: Vec<usize>,
    /// The day it falls on.
    pub day: Date,
    /// What it counts as: its first record, with what that lacks taken from the others.
    pub case: ReportCase,
}

/// Who counts, and what is counted apart: what [`count`] adds up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counting {
    /// The persons counted, in the order of their first record.
    pub persons: Vec<CountedPerson>,
    /// Cases in the period still alleged or under investigation.
    pub pending: u64,
    /// Cases that would count but have no day.
    pub undated: u64,
    /// Cases that would count but are dated after the report was made.
    pub future: u64,
}

impl Counting {
    /// For each of `records` records, whether it counts (in a person).
    pub fn marks(&self, records: usize) -> Vec<bool> {
        let mut marks = vec![false; records];
        for index in self.persons.iter().flat_map(|p| &p.records) {
            if let Some(mark) = marks.get_mut(*index) {
                *mark = true;
            }
        }
        marks
    }
}

fn statuses(options: Options) -> Vec<&'static str> {
    if options.include_alleged {
        vec!["confirmed", "alleged", "under_investigation"]
    } else {
        vec!["confirmed"]
    }
}

/// The persons `cases` count over `period`, as taken at `taken`, and what is counted apart.
pub fn persons_counted(
    cases: &[&ReportCase],
    period: Period,
    options: Options,
    taken: &Taken,
) -> Counting {
    let statuses = statuses(options);
    let (mut pending, mut undated, mut future) = (0, 0, 0);
    let persons = crate::persons(cases.iter().map(|c| (c.id.as_str(), c.links.as_slice())));
    // Each person's counted records: (record, day).
    let mut counted: BTreeMap<usize, Vec<(usize, Date)>> = BTreeMap::new();
    for (index, case) in cases.iter().enumerate() {
        let status = case.status.as_str();
        let eligible = statuses.contains(&status);
        let start = case_day(
            &case.kind,
            case.found_at.as_deref(),
            case.incident_date.as_deref(),
        );
        let Some(day) = start else {
            undated += u64::from(eligible);
            continue;
        };
        if in_future(day, taken.made_at) {
            future += u64::from(eligible);
            continue;
        }
        if !period.contains(day) {
            continue;
        }
        pending += u64::from(is_pending(status));
        if !eligible {
            continue;
        }
        counted
            .entry(persons.first[index])
            .or_default()
            .push((index, day));
    }
    // Persons with remains identified as a missing person's.
    let identifies: std::collections::HashSet<usize> = (0..cases.len())
        .filter(|i| cases[*i].links.iter().any(|l| l.relation == "identifies"))
        .map(|i| persons.first[i])
        .collect();
    let persons = counted
        .into_iter()
        .map(|(first, mut records)| {
            records.sort_by_key(|(index, day)| (kind_rank(&cases[*index].kind), *day, *index));
            CountedPerson {
                case: person_case(cases, &records, identifies.contains(&first)),
                day: records[0].1,
                records: records.into_iter().map(|(index, _)| index).collect(),
            }
        })
        .collect();
    Counting {
        persons,
        pending,
        undated,
        future,
    }
}

/// Counts `cases` over `period`, as taken at `taken`.
pub fn count<'a>(
    cases: impl IntoIterator<Item = &'a ReportCase>,
    period: Period,
    options: Options,
    taken: &Taken,
) -> Figures {
    let cases: Vec<&ReportCase> = cases.into_iter().collect();
    let counting = persons_counted(&cases, period, options, taken);
    figures(&counting, period, options, taken)
}

/// The figures of `counting`.
pub fn figures(counting: &Counting, period: Period, options: Options, taken: &Taken) -> Figures {
    let mut all = Counts::default();
    let mut civilian = CivilianFigures::default();
    let mut by_month: BTreeMap<String, Counts> = BTreeMap::new();
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    let record_count = counting
        .persons
        .iter()
        .map(|p| p.records.len() as u64)
        .sum();
    for person in &counting.persons {
        let case = &person.case;
        let day = person.day;
        all.add(case);
        if case.civilian.as_deref() == Some("yes") {
            match case.kind.as_str() {
                "killed" => {
                    civilian.killed.total += 1;
                    civilian
                        .killed
                        .by_cause
                        .add(case.cause.as_deref().unwrap_or(""));
                }
                "injured" => civilian.injured += 1,
                "detained" => civilian.detained += 1,
                _ => {}
            }
        } else if case.kind == "killed" && case.civilian.as_deref() != Some("no") {
            civilian.killed_not_known += 1;
        }
        let month = month_key(day.year(), day.month());
        if let Some(by) = options.by {
            let key = match by {
                By::Month => month.clone(),
                By::Cause => CAUSES
                    .iter()
                    .find(|c| Some(**c) == case.cause.as_deref())
                    .unwrap_or(&"unknown")
                    .to_string(),
                By::Place => case.place.clone(),
            };
            groups.entry(key).or_default().add(case);
        }
        by_month.entry(month).or_default().add(case);
    }
    let months = month_rows(&by_month, period);
    let groups = options.by.map(|by| match by {
        By::Month => months.clone(),
        By::Cause => CAUSES
            .iter()
            .map(|c| Group {
                key: (*c).to_string(),
                label: cause_label(c).to_string(),
                counts: groups.remove(*c).unwrap_or_default(),
            })
            .collect(),
        By::Place => groups
            .into_iter()
            .map(|(key, counts)| Group {
                label: key.clone(),
                key,
                counts,
            })
            .collect(),
    });
    let mut figures = Figures {
        from: period.from.to_string(),
        to: period.to.to_string(),
        statuses: statuses(options),
        total: all.total,
        records: record_count,
        persons: all.total,
        killed: all.killed,
        injured: all.injured,
        missing: all.missing,
        detained: all.detained,
        remains: all.remains,
        civilians: all.civilians,
        identification: all.identification,
        alleged_pending: counting.pending,
        undated: counting.undated,
        future: counting.future,
        data_as_of: taken.data_as_of.clone(),
        made_at: taken
            .made_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| taken.made_at.to_string()),
        civilian,
        by: options.by,
        groups,
        months,
        sentence: String::new(),
        period,
    };
    figures.sentence = figures.sentence();
    figures
}

/// One row per month of the period, empty months included (unless the period is so long that
/// the table would be mostly empty rows: then only months with a case).
fn month_rows(counted: &BTreeMap<String, Counts>, period: Period) -> Vec<Group> {
    let months = months_between(period.from, period.to);
    let keep_empty = months.len() <= MAX_EMPTY_MONTHS;
    months
        .into_iter()
        .filter_map(|(y, m)| {
            let key = month_key(y, m);
            let counts = counted.get(&key).cloned();
            if counts.is_none() && !keep_empty {
                return None;
            }
            Some(Group {
                label: format!("{} {y}", month_name(m)),
                key,
                counts: counts.unwrap_or_default(),
            })
        })
        .collect()
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

impl Figures {
    /// The published sentence, from the civilian figures: "From September 27, 2020, to
    /// January 28, 2021, the killings of 72 civilians have been recorded: 41 from targeted
    /// strikes, 31 in captivity. 163 civilian injuries were also recorded. 12 civilians are
    /// recorded as detained." A cause with no case has no clause; no injuries, no injuries
    /// sentence; no one detained, no detained sentence.
    pub fn sentence(&self) -> String {
        let (from, to) = (long_date(self.period.from), long_date(self.period.to));
        let killed = &self.civilian.killed;
        let injured = self.civilian.injured;
        let mut out = format!("From {from}, to {to}, ");
        if killed.total == 0 {
            out.push_str("no killings of civilians have been recorded.");
        } else {
            let n = killed.total;
            out.push_str(&format!(
                "the {} of {n} {} {} been recorded",
                plural(n, "killing", "killings"),
                plural(n, "civilian", "civilians"),
                plural(n, "has", "have"),
            ));
            let clauses: Vec<String> = CAUSES
                .iter()
                .zip(killed.by_cause.values())
                .filter(|(_, v)| *v > 0)
                .map(|(c, v)| format!("{v} {}", cause_phrase(c)))
                .collect();
            if !clauses.is_empty() {
                out.push_str(": ");
                out.push_str(&clauses.join(", "));
            }
            out.push('.');
        }
        if injured > 0 {
            out.push_str(&format!(
                " {injured} civilian {} {}{} recorded.",
                plural(injured, "injury", "injuries"),
                plural(injured, "was", "were"),
                if killed.total > 0 { " also" } else { "" },
            ));
        }
        let unknown = self.civilian.killed_not_known;
        if unknown > 0 {
            out.push_str(&format!(
                " {unknown} further {}, of {} whose civilian status is not known, {} not counted.",
                plural(unknown, "killing", "killings"),
                plural(unknown, "a person", "people"),
                plural(unknown, "is", "are"),
            ));
        }
        let detained = self.civilian.detained;
        if detained > 0 {
            out.push_str(&format!(
                " {detained} {} {} recorded as detained.",
                plural(detained, "civilian", "civilians"),
                plural(detained, "is", "are"),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        parse_day(s).expect("test date")
    }

    /// When the tests' reports are made: June 2021, after every day they count.
    fn taken() -> Taken {
        Taken {
            made_at: OffsetDateTime::from_unix_timestamp(1_622_505_600).expect("2021-06-01"),
            data_as_of: None,
        }
    }

    fn period(from: &str, to: &str) -> Period {
        Period::new(day(from), day(to)).expect("test period")
    }

    fn case(kind: &str, status: &str, cause: Option<&str>, date: Option<&str>) -> ReportCase {
        ReportCase {
            kind: kind.into(),
            status: status.into(),
            cause: cause.map(Into::into),
            incident_date: date.map(Into::into),
            found_at: None,
            civilian: Some("yes".into()),
            identification: None,
            place: "KHR".into(),
            reference: "KHR-T03-7KQ2-0001".into(),
            id: String::new(),
            links: Vec::new(),
        }
    }

    /// Links `cases[a]` and `cases[b]` (giving them ids `0`, `1`... first) by `relation`.
    fn link(cases: &mut [ReportCase], a: usize, b: usize, relation: &str) {
        for (i, case) in cases.iter_mut().enumerate() {
            case.id = i.to_string();
        }
        for (from, to) in [(a, b), (b, a)] {
            cases[from].links.push(crate::CaseLink {
                other_id: to.to_string(),
                relation: relation.into(),
            });
        }
    }

    #[test]
    fn linked_records_count_once_as_the_first_of_killed_remains_injured_missing() {
        let mut cases = vec![
            case("missing", "confirmed", None, Some("2020-10-01")),
            case("remains", "confirmed", None, Some("2020-12-01")),
            case("killed", "confirmed", Some("captivity"), Some("2020-10-05")),
            case("killed", "confirmed", None, Some("2020-10-06")),
            case("injured", "confirmed", None, Some("2020-10-07")),
            case("injured", "confirmed", None, Some("2020-10-07")),
        ];
        cases[1].found_at = Some("2020-12-01T10:00:00Z".into());
        cases[3].civilian = None;
        link(&mut cases, 1, 0, "identifies");
        link(&mut cases, 2, 3, "same_person");
        link(&mut cases, 4, 5, "distinct");
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        assert_eq!((f.records, f.persons, f.total), (6, 4, 4));
        assert_eq!((f.missing, f.remains, f.injured), (0, 1, 2));
        assert_eq!(f.killed.by_cause.captivity, 1);
        assert_eq!(f.identification.identified, 1);
        assert_eq!(f.civilian.killed.total, 1);
        // Rejected records join nothing in the count, and an unlinked one counts alone.
        cases[2].status = "rejected".into();
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        assert_eq!((f.records, f.persons), (5, 4));
        assert_eq!(f.civilian.killed_not_known, 1);
    }

    #[test]
    fn detained_persons_count_apart_from_the_missing_and_in_the_sentence() {
        let mut cases = vec![
            case("detained", "confirmed", None, Some("2020-10-01")),
            case("detained", "confirmed", None, Some("2020-10-02")),
            case("detained", "confirmed", None, Some("2020-11-03")),
            case("missing", "confirmed", None, Some("2020-10-04")),
        ];
        cases[2].civilian = Some("no".into());
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options {
                include_alleged: false,
                by: Some(By::Month),
            },
            &taken(),
        );
        assert_eq!((f.detained, f.missing, f.total), (3, 1, 4));
        assert_eq!(f.killed.total, 0);
        assert_eq!(f.civilian.detained, 2);
        let groups = f.groups.as_ref().expect("grouped by month");
        let october = groups.iter().find(|g| g.key == "2020-10").expect("October");
        assert_eq!((october.counts.detained, october.counts.missing), (2, 1));
        assert_eq!(
            f.sentence,
            "From September 27, 2020, to January 28, 2021, no killings of civilians have been \
             recorded. 2 civilians are recorded as detained."
        );
        cases.truncate(1);
        cases.extend(killed(2, "captivity"));
        assert_eq!(
            sentence_of(&cases),
            "From September 27, 2020, to January 28, 2021, the killings of 2 civilians have \
             been recorded: 2 in captivity. 1 civilian is recorded as detained."
        );
    }

    #[test]
    fn a_person_held_then_killed_counts_as_killed_and_a_missing_one_found_held_as_detained() {
        let mut cases = vec![
            case("detained", "confirmed", None, Some("2020-10-01")),
            case("killed", "confirmed", Some("captivity"), Some("2020-12-01")),
            case("missing", "confirmed", None, Some("2020-10-03")),
            case("detained", "confirmed", None, Some("2020-10-20")),
        ];
        link(&mut cases, 0, 1, "same_person");
        link(&mut cases, 2, 3, "same_person");
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        assert_eq!((f.records, f.persons), (4, 2));
        assert_eq!((f.killed.total, f.detained, f.missing), (1, 1, 0));
        assert_eq!(f.civilian.detained, 1);
    }

    fn killed(n: usize, cause: &str) -> Vec<ReportCase> {
        (0..n)
            .map(|_| case("killed", "confirmed", Some(cause), Some("2020-10-01")))
            .collect()
    }

    fn sentence_of(cases: &[ReportCase]) -> String {
        count(
            cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        )
        .sentence
    }

    #[test]
    fn the_published_sentence() {
        let mut cases = killed(41, "targeted_strike");
        cases.extend(killed(31, "captivity"));
        cases.extend((0..163).map(|_| case("injured", "confirmed", None, Some("2021-01-28"))));
        assert_eq!(
            sentence_of(&cases),
            "From September 27, 2020, to January 28, 2021, the killings of 72 civilians have \
             been recorded: 41 from targeted strikes, 31 in captivity. 163 civilian injuries \
             were also recorded."
        );
    }

    #[test]
    fn singulars_and_zero_clauses() {
        let mut cases = killed(1, "other_violence");
        cases.push(case("injured", "confirmed", None, Some("2020-12-01")));
        assert_eq!(
            sentence_of(&cases),
            "From September 27, 2020, to January 28, 2021, the killing of 1 civilian has been \
             recorded: 1 from other violence. 1 civilian injury was also recorded."
        );
        let cases = killed(2, "nonsense");
        assert!(sentence_of(&cases).ends_with("have been recorded: 2 of unknown cause."));
    }

    #[test]
    fn killings_of_people_not_known_to_be_civilians_are_said_apart() {
        let mut cases = killed(1, "captivity");
        cases[0].civilian = None;
        assert_eq!(
            sentence_of(&cases),
            "From September 27, 2020, to January 28, 2021, no killings of civilians have been \
             recorded. 1 further killing, of a person whose civilian status is not known, is not \
             counted."
        );
        cases.extend(killed(3, "captivity"));
        cases[1].civilian = Some("unknown".into());
        cases[2].civilian = Some("no".into());
        assert!(
            sentence_of(&cases).ends_with(
                "the killing of 1 civilian has been recorded: 1 in captivity. 2 further killings, \
                 of people whose civilian status is not known, are not counted."
            ),
            "{}",
            sentence_of(&cases)
        );
    }

    #[test]
    fn no_killings_is_one_clean_sentence() {
        assert_eq!(
            sentence_of(&[]),
            "From September 27, 2020, to January 28, 2021, no killings of civilians have been \
             recorded."
        );
        let cases = vec![case("injured", "confirmed", None, Some("2020-12-01")); 3];
        assert_eq!(
            sentence_of(&cases),
            "From September 27, 2020, to January 28, 2021, no killings of civilians have been \
             recorded. 3 civilian injuries were recorded."
        );
    }

    #[test]
    fn the_sentence_counts_civilians_only_the_figures_everyone() {
        let mut cases = killed(2, "captivity");
        cases[0].civilian = Some("no".into());
        cases.push(ReportCase {
            civilian: None,
            ..case("killed", "confirmed", None, Some("2020-10-02"))
        });
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        assert_eq!(f.killed.total, 3);
        assert_eq!(f.killed.by_cause.unknown, 1);
        assert_eq!(f.civilian.killed.total, 1);
        assert_eq!(
            f.civilians,
            Civilians {
                civilians: 1,
                others: 1,
                not_known: 1
            }
        );
        assert!(f
            .sentence
            .contains("the killing of 1 civilian has been recorded: 1 in captivity."));
    }

    #[test]
    fn bounds_are_inclusive_and_a_range_counts_by_its_start() {
        let cases = vec![
            case("missing", "confirmed", None, Some("2020-09-27")),
            case("missing", "confirmed", None, Some("2021-01-28")),
            case("missing", "confirmed", None, Some("2020-09-26")),
            case("missing", "confirmed", None, Some("2021-01-29")),
            case("remains", "confirmed", None, Some("2021-01-28/2021-03-01")),
            case("remains", "confirmed", None, Some("2020-09-20/2020-10-01")),
        ];
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        assert_eq!((f.missing, f.remains, f.total), (2, 1, 3));
    }

    #[test]
    fn status_decides_what_counts() {
        let d = Some("2020-10-01");
        let cases = vec![
            case("killed", "confirmed", None, d),
            case("killed", "alleged", None, d),
            case("killed", "under_investigation", None, d),
            case("killed", "rejected", None, d),
            case("killed", "alleged", None, Some("2019-01-01")),
            case("killed", "alleged", None, None),
            case("killed", "confirmed", None, None),
            case("killed", "rejected", None, None),
        ];
        let p = period("2020-09-27", "2021-01-28");
        let f = count(&cases, p, Options::default(), &taken());
        assert_eq!((f.killed.total, f.alleged_pending, f.undated), (1, 2, 1));
        let options = Options {
            include_alleged: true,
            by: None,
        };
        let f = count(&cases, p, options, &taken());
        assert_eq!((f.killed.total, f.alleged_pending, f.undated), (3, 2, 2));
    }

    #[test]
    fn remains_count_by_the_day_they_were_found() {
        let mut grave = case("remains", "confirmed", None, None);
        grave.found_at = Some("2020-10-31T23:30:00-05:00".into());
        let mut dated = case("remains", "confirmed", None, Some("2019-01-01"));
        dated.found_at = Some("2020-11-01T08:00:00Z".into());
        let mut killed = case("killed", "confirmed", None, Some("2020-10-01"));
        killed.found_at = Some("2019-01-01T08:00:00Z".into());
        let cases = [
            grave,
            dated,
            killed,
            case("remains", "confirmed", None, None),
        ];
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        assert_eq!((f.remains, f.killed.total, f.undated), (2, 1, 1));
        // The day where they were found, not in UTC.
        assert_eq!(f.months[1].key, "2020-10");
        assert_eq!(f.months[1].counts.remains, 1);
        assert_eq!(
            case_day("remains", Some("2020-10-31T23:30:00-05:00"), None),
            Some(day("2020-10-31"))
        );
    }

    #[test]
    fn a_day_in_the_future_is_counted_apart_never_dropped() {
        let now = taken().made_at;
        let cases = [
            // A year mistyped: 2120 for 2020.
            case("killed", "confirmed", Some("captivity"), Some("2120-10-01")),
            // Tomorrow in UTC has begun somewhere (UTC+14): counted.
            case("killed", "confirmed", None, Some("2021-06-02")),
            case("killed", "alleged", None, Some("2120-10-01")),
        ];
        let wide = period("2020-01-01", "2199-12-31");
        for p in [period("2020-09-27", "2021-06-30"), wide] {
            let f = count(&cases, p, Options::default(), &taken());
            assert_eq!((f.future, f.killed.total, f.alleged_pending), (1, 1, 0));
            assert_eq!(f.killed.by_cause.captivity, 0);
        }
        assert!(in_future(day("2021-06-03"), now));
        assert!(!in_future(day("2021-06-02"), now));
        let options = Options {
            include_alleged: true,
            by: None,
        };
        assert_eq!(count(&cases, wide, options, &taken()).future, 2);
    }

    #[test]
    fn identification_keeps_preliminary_apart() {
        let d = Some("2020-10-01");
        let mut cases = vec![case("remains", "confirmed", None, d); 4];
        cases[0].identification = Some("confirmed".into());
        cases[1].identification = Some("preliminary".into());
        cases[2].identification = Some("unidentified".into());
        let f = count(
            &cases,
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        assert_eq!(
            f.identification,
            Identification {
                identified: 1,
                preliminary: 1,
                unidentified: 2
            }
        );
    }

    #[test]
    fn grouped_by_month_cause_and_place() {
        let mut cases = vec![
            case("killed", "confirmed", Some("captivity"), Some("2020-10-01")),
            case("killed", "confirmed", None, Some("2020-12-31")),
            case("injured", "confirmed", None, Some("2020-12-01")),
        ];
        cases[2].place = "ABC".into();
        let p = period("2020-09-27", "2021-01-28");
        let by = |by| Options {
            include_alleged: false,
            by: Some(by),
        };
        let f = count(&cases, p, by(By::Month), &taken());
        let groups = f.groups.expect("groups");
        let keys: Vec<_> = groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(
            keys,
            ["2020-09", "2020-10", "2020-11", "2020-12", "2021-01"]
        );
        assert_eq!(groups[3].label, "December 2020");
        assert_eq!(
            (groups[3].counts.killed.total, groups[3].counts.injured),
            (1, 1)
        );
        assert_eq!(f.months.len(), 5);

        let groups = count(&cases, p, by(By::Cause), &taken())
            .groups
            .expect("groups");
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[1].counts.killed.total, 1);
        assert_eq!(groups[3].counts.total, 2);

        let groups = count(&cases, p, by(By::Place), &taken())
            .groups
            .expect("groups");
        let keys: Vec<_> = groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["ABC", "KHR"]);
    }

    #[test]
    fn dates_and_periods() {
        assert!(parse_day("2020-02-30").is_none());
        assert!(parse_day("2020-2-03").is_none());
        assert!(parse_day("+020-02-03").is_none());
        assert_eq!(
            incident_start("2020-02-03/2020-03-01"),
            parse_day("2020-02-03")
        );
        assert!(Period::new(day("2021-01-02"), day("2021-01-01")).is_none());
        assert_eq!(long_date(day("2020-09-27")), "September 27, 2020");
        assert_eq!(
            months_between(day("2020-11-30"), day("2021-02-01")).len(),
            4
        );
    }

    #[test]
    fn json_has_the_published_shape() {
        let f = count(
            &killed(2, "captivity"),
            period("2020-09-27", "2021-01-28"),
            Options::default(),
            &taken(),
        );
        let v = serde_json::to_value(&f).expect("json");
        assert_eq!(v["from"], "2020-09-27");
        assert_eq!(v["killed"]["total"], 2);
        assert_eq!(v["killed"]["by_cause"]["captivity"], 2);
        assert_eq!(v["killed"]["by_cause"]["targeted_strike"], 0);
        for key in [
            "injured",
            "missing",
            "detained",
            "remains",
            "alleged_pending",
            "undated",
            "future",
        ] {
            assert_eq!(v[key], 0, "{key}");
        }
        assert_eq!(v["civilian"]["detained"], 0);
        assert_eq!(v["made_at"], "2021-06-01T00:00:00Z");
        assert_eq!(v["data_as_of"], serde_json::Value::Null);
        assert!(v.get("groups").is_none());
    }
}
