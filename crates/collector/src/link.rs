//! `cairn case link` and `cairn case links`: the office's decisions on records of one person.

use std::path::Path;

use cairn_vault::LinkDecision;
use serde_json::json;

use crate::cli::{choice_name, CaseRef, LinkArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::vault_cmd::open;

/// Most decisions one `--from` file may hold: a file larger than any office's work is a
/// mistake, refused before it is read in full.
const MAX_DECISIONS: usize = 1_000_000;

pub fn link(config: &Config, args: LinkArgs) -> Result<(), CliError> {
    let decisions = match (&args.from, args.a, args.b, args.relation, args.basis) {
        (Some(file), ..) => from_csv(file)?,
        (None, Some(a), Some(b), Some(relation), Some(basis)) => {
            let decision = LinkDecision {
                a,
                b,
                relation: choice_name(&relation),
                basis,
            };
            check(&decision).map_err(CliError::usage)?;
            vec![decision]
        }
        _ => {
            return Err(CliError::usage(
                "give two cases, --as and --basis, or --from FILE.csv",
            ))
        }
    };
    let mut vault = open(config)?;
    let changed = vault.link(&decisions, time::OffsetDateTime::now_utc())?;
    let message = match (&decisions[..], changed) {
        ([one], 0) => format!("{} and {}: already so; nothing changed\n", one.a, one.b),
        ([one], _) => format!("{} and {}: recorded as {}\n", one.a, one.b, one.relation),
        (all, n) => format!(
            "recorded {n} of {} decisions (the others were already so)\n",
            all.len()
        ),
    };
    output::print(&message)
}

/// A decision's own checks, before any vault is opened.
pub(crate) fn check(d: &LinkDecision) -> Result<(), String> {
    if !cairn_model::RELATIONS.contains(&d.relation.trim().to_lowercase().as_str()) {
        return Err(format!(
            "unknown relation `{}`: use same_person, identifies or distinct",
            d.relation
        ));
    }
    if d.basis.trim().is_empty() {
        return Err("a link needs its basis: say on what grounds".into());
    }
    if d.a.trim().is_empty() || d.b.trim().is_empty() {
        return Err("a link names two cases".into());
    }
    Ok(())
}

/// Every decision of a CSV file with the header `a,b,relation,basis` (any order, any letter
/// case), each row checked; the first bad row is named and nothing is recorded.
fn from_csv(file: &Path) -> Result<Vec<LinkDecision>, CliError> {
    let shown = file.display();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| CliError::usage(format!("cannot read {shown}: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| CliError::usage(format!("cannot read the header of {shown}: {e}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "{shown} has no column `{name}`: the header must be a,b,relation,basis"
                ))
            })
    };
    let [a, b, relation, basis] = [
        column("a")?,
        column("b")?,
        column("relation")?,
        column("basis")?,
    ];
    let mut out = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let line = n + 2;
        let row = row.map_err(|e| CliError::usage(format!("{shown} line {line}: {e}")))?;
        let cell = |i: usize| row.get(i).unwrap_or_default().to_string();
        let decision = LinkDecision {
            a: cell(a),
            b: cell(b),
            relation: cell(relation),
            basis: cell(basis),
        };
        check(&decision).map_err(|why| {
            CliError::usage(format!("{shown} line {line}: {why}; nothing was recorded"))
        })?;
        if out.len() == MAX_DECISIONS {
            return Err(CliError::usage(format!(
                "{shown} holds more than {MAX_DECISIONS} decisions; split it"
            )));
        }
        out.push(decision);
    }
    if out.is_empty() {
        return Err(CliError::usage(format!("{shown} holds no decision")));
    }
    Ok(out)
}

/// `cairn case links REF`.
pub fn links(config: &Config, args: CaseRef) -> Result<(), CliError> {
    let vault = open(config)?;
    let case = vault.case(&args.reference)?.case()?;
    let current = case.current_links();
    let in_force = |l: &cairn_model::Link| current.iter().any(|c| std::ptr::eq(*c, l));
    // The decision in force on each pair first, then what it superseded, newest first.
    let mut all: Vec<&cairn_model::Link> = case.links.iter().rev().collect();
    all.sort_by_key(|l| !in_force(l));
    if args.json {
        let list: Vec<_> = all
            .iter()
            .map(|l| {
                let mut v = json!(l);
                v["in_force"] = json!(in_force(l));
                v
            })
            .collect();
        return output::json(&list);
    }
    if all.is_empty() {
        return output::print(&format!("{}: no link decisions\n", case.reference));
    }
    let mut text = String::new();
    for l in all {
        let state = if in_force(l) { "" } else { " (superseded)" };
        text.push_str(&format!(
            "{} {}{state}\n    basis: {}\n    by {} at {}\n",
            l.relation,
            l.other,
            output::terminal(&l.basis),
            l.author,
            l.at
        ));
    }
    output::print(&text)
}
