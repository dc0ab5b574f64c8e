//! `cairn office match`: pairs of cases that may be records of one person, or remains of a
//! missing person, from the vault's summaries (no case is loaded); `--review` decides them on
//! the terminal, one key per decision.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use cairn_link::{Candidate, Decision, Kind, Options, Record, Relation};
use cairn_model::report::{incident_start, parse_day};
use cairn_vault::{CaseSummary, LinkDecision, Vault};

use crate::cli::MatchArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::output;

pub fn run(config: &Config, args: MatchArgs) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&args.min) {
        return Err(CliError::usage(format!(
            "--min {}: give a probability from 0 to 1, such as 0.5",
            args.min
        )));
    }
    if args.review && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(CliError::usage(
            "--review decides pairs on a terminal; without one, list them with --json and record decisions with `cairn case link --from FILE.csv`",
        ));
    }
    let mut vault = crate::office::open_office(config)?;
    let cases = vault.list()?;
    let only = match &args.case {
        Some(wanted) => Some(position(&cases, wanted)?),
        None => None,
    };
    let spinner = crate::progress::Bar::spinner(&format!("matching {} cases", cases.len()));
    let found = candidates(&cases, args.min, only);
    spinner.finish();
    if args.review {
        return review(&mut vault, &cases, &found);
    }
    if args.json {
        /// One pair as `--json` prints it.
        #[derive(serde::Serialize)]
        struct Pair<'a> {
            a: &'a str,
            b: &'a str,
            relation: &'static str,
            probability: f64,
            why: String,
            evidence: &'a [cairn_link::Evidence],
        }
        let list: Vec<Pair<'_>> = found
            .iter()
            .map(|c| Pair {
                a: &cases[c.a].reference,
                b: &cases[c.b].reference,
                relation: c.relation.as_str(),
                probability: (c.probability * 1000.0).round() / 1000.0,
                why: c.explain(),
                evidence: &c.why,
            })
            .collect();
        return output::json(&list);
    }
    if found.is_empty() {
        return output::print(&format!(
            "no pair of the {} cases is at least {} likely to be one person\n",
            cases.len(),
            args.min
        ));
    }
    let mut text = String::new();
    for c in &found {
        text.push_str(&format!(
            "{:.2}  {:11}  {}  {}\n      {}\n",
            c.probability,
            c.relation.as_str(),
            cases[c.a].reference,
            cases[c.b].reference,
            output::terminal(&c.explain())
        ));
    }
    text.push_str(
        "Decide with `cairn case link A B --as same_person|identifies|distinct --basis TEXT`, or all at once with --review.\n",
    );
    output::print(&text)
}

/// The candidate pairs among `cases`, most likely first, leaving out every pair the office
/// decided (and, through clustering, what a `distinct` decision separates).
pub(crate) fn candidates(cases: &[CaseSummary], min: f64, only: Option<usize>) -> Vec<Candidate> {
    let records: Vec<Record> = cases.iter().map(record).collect();
    cairn_link::candidates(
        &records,
        &decisions(cases),
        &Options {
            min_probability: min,
            only,
        },
    )
}

/// The index of the case named by reference (any letter case, or an unambiguous tail) or id.
pub(crate) fn position(cases: &[CaseSummary], wanted: &str) -> Result<usize, CliError> {
    Ok(cairn_vault::resolve_case(cases, wanted)?)
}

/// What the linkage compares of a case: its own values (not the confirmed ones: the office
/// compares what the records say now).
fn record(c: &CaseSummary) -> Record {
    let p = &c.profile;
    let day = |s: &Option<String>| s.as_deref().and_then(|s| parse_day(s.get(..10)?));
    Record {
        id: c.id.to_string(),
        kind: Kind::parse(&c.kind),
        name: p.name.clone(),
        sex: p.sex.as_deref().and_then(cairn_link::Sex::parse),
        age_years: p.age_years.and_then(|a| u32::try_from(a).ok()),
        age_group: p.age_group.as_deref().and_then(cairn_link::AgeGroup::parse),
        incident_day: c.incident_date.as_deref().and_then(incident_start),
        found_day: day(&c.found_at),
        last_seen_day: day(&p.last_seen_at),
        place: p.place.clone(),
        lat: p.lat,
        lon: p.lon,
        height_cm: p.height_cm,
        clothing: p.clothing.clone(),
        effects: p.effects.clone(),
        marks: p.marks.clone(),
    }
}

/// The office's decisions in force, each pair once.
fn decisions(cases: &[CaseSummary]) -> Vec<Decision> {
    let index: HashMap<String, usize> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.to_string(), i))
        .collect();
    let mut out = Vec::new();
    for (a, case) in cases.iter().enumerate() {
        for link in &case.links {
            let Some(&b) = index.get(&link.other_id) else {
                continue;
            };
            let relation = match link.relation.as_str() {
                "same_person" => Relation::SamePerson,
                "identifies" => Relation::Identifies,
                _ => Relation::Distinct,
            };
            if a < b {
                out.push(Decision { a, b, relation });
            }
        }
    }
    out
}

/// Each pair on the terminal: the two cases side by side, one key per decision, then its
/// basis. Every decision is recorded as it is made, so quitting keeps those made.
fn review(vault: &mut Vault, cases: &[CaseSummary], found: &[Candidate]) -> Result<(), CliError> {
    let (mut recorded, mut skipped) = (0, 0);
    for (n, c) in found.iter().enumerate() {
        let (a, b) = (&cases[c.a], &cases[c.b]);
        let mut screen = format!(
            "\npair {} of {}: {} likely {}\n{}\n\n",
            n + 1,
            found.len(),
            format_args!("{:.0}%", c.probability * 100.0),
            match c.relation {
                Relation::Identifies => "remains of this missing person",
                _ => "one person",
            },
            output::terminal(&c.explain())
        );
        screen.push_str(&side_by_side(a, b));
        let suggested = match c.relation {
            Relation::Identifies => "[i] identifies",
            _ => "[s] same person",
        };
        screen.push_str(&format!(
            "\n{suggested}   [d] distinct   [n] next   [q] quit\n"
        ));
        output::eprint(&screen);
        let relation = loop {
            match key()? {
                's' if c.relation == Relation::SamePerson => break Some("same_person"),
                'i' if c.relation == Relation::Identifies => break Some("identifies"),
                'd' => break Some("distinct"),
                'n' => break None,
                'q' => {
                    return finish(recorded, skipped + found.len() - n);
                }
                _ => continue,
            }
        };
        let Some(relation) = relation else {
            skipped += 1;
            continue;
        };
        let suggested = c.explain();
        let basis = inquire::Text::new("basis:")
            .with_default(&suggested)
            .with_help_message(
                "on what grounds; Enter alone takes the evidence shown, Esc skips the pair",
            )
            .prompt();
        let basis = match basis {
            Ok(b) if !b.trim().is_empty() => b,
            _ => {
                skipped += 1;
                continue;
            }
        };
        vault.link(
            &[LinkDecision {
                a: a.id.to_string(),
                b: b.id.to_string(),
                relation: relation.to_string(),
                basis,
            }],
            time::OffsetDateTime::now_utc(),
        )?;
        output::eprint(&format!(
            "recorded: {} {relation} {}",
            a.reference, b.reference
        ));
        recorded += 1;
    }
    finish(recorded, skipped)
}

fn finish(recorded: usize, skipped: usize) -> Result<(), CliError> {
    output::print(&format!(
        "recorded {recorded} decision(s); {skipped} pair(s) left undecided\n"
    ))
}

/// One key press, read raw: Esc and Ctrl-C read as `q`.
fn key() -> Result<char, CliError> {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    let fail = |e: std::io::Error| CliError::failure(format!("cannot read the terminal: {e}"));
    crossterm::terminal::enable_raw_mode().map_err(fail)?;
    let pressed = loop {
        match event::read() {
            Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => match k.code {
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => break Ok('q'),
                KeyCode::Char(c) => break Ok(c.to_ascii_lowercase()),
                KeyCode::Esc => break Ok('q'),
                _ => continue,
            },
            Ok(_) => continue,
            Err(e) => break Err(e),
        }
    };
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = std::io::stderr().flush();
    pressed.map_err(fail)
}

/// The two cases' fields in two columns, only the rows either has.
fn side_by_side(a: &CaseSummary, b: &CaseSummary) -> String {
    let rows = |c: &CaseSummary| -> Vec<(&'static str, String)> {
        let p = &c.profile;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let number = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        vec![
            ("reference", c.reference.clone()),
            ("kind", c.kind.clone()),
            ("status", c.status.clone()),
            ("name", text(&p.name)),
            ("sex", text(&p.sex)),
            (
                "age",
                p.age_years.map(|a| a.to_string()).unwrap_or_default(),
            ),
            ("age group", text(&p.age_group)),
            ("incident", text(&c.incident_date)),
            ("found", text(&c.found_at)),
            ("last seen", text(&p.last_seen_at)),
            ("place", text(&p.place)),
            (
                "position",
                match (p.lat, p.lon) {
                    (Some(lat), Some(lon)) => format!("{lat:.4}, {lon:.4}"),
                    _ => String::new(),
                },
            ),
            ("height cm", number(p.height_cm)),
            ("clothing", text(&p.clothing)),
            ("effects", text(&p.effects)),
            ("marks", text(&p.marks)),
        ]
    };
    let (left, right) = (rows(a), rows(b));
    let width = left
        .iter()
        .map(|(_, v)| v.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(9, 40);
    let mut out = String::new();
    for ((label, l), (_, r)) in left.iter().zip(&right) {
        if l.is_empty() && r.is_empty() {
            continue;
        }
        let l: String = l.chars().take(40).collect();
        out.push_str(&format!(
            "{label:>10}  {:width$}  {}\n",
            output::terminal(&l),
            output::terminal(r)
        ));
    }
    out
}
