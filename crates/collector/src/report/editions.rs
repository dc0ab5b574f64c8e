//! Published editions: `cairn report publish`, `editions`, `show`, `verify`, and what changed
//! since an edition (`cairn report --since`, `report show NEW --since OLD`).
//!
//! The freezing, the counting again and the comparing are the model's
//! ([`cairn_model::edition`]); signing and keeping are the vault's. Here they are printed.

use std::fmt::Write as _;

use cairn_model::edition::{Changes, Edition};
use cairn_model::report::{Options, Period, ReportCase, Taken};
use cairn_vault::SignedEdition;

use super::{
    draw, html_escape, md_escape, output as output_flags, render, report_cases, rules, taken,
    write_atomic, write_or_print, Published,
};
use crate::cli::{EditionFormat, PublishArgs, ReportFormat, ShowEditionArgs, VerifyEditionArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::vault_cmd::open;

fn failure(e: impl std::fmt::Display) -> CliError {
    CliError::failure(e.to_string())
}

/// The name printed above an edition's figures.
pub(crate) fn published(signed: &SignedEdition) -> Result<Published, CliError> {
    Ok(Published {
        id: signed.edition.id.clone(),
        title: signed.edition.title.clone(),
        published_at: signed.edition.published_at.clone(),
        hash: signed.short_hash()?,
    })
}

/// `cairn report publish`: freezes, signs, keeps and prints the edition.
pub(crate) fn publish(config: &Config, args: PublishArgs) -> Result<(), CliError> {
    let (period, options) = rules(&args.rules)?;
    let (format, chart) = output_flags(&args.output)?;
    let title = args.title.trim().to_owned();
    if title.is_empty() {
        return Err(CliError::usage(
            "--title is empty: give the edition the title it is published under.",
        ));
    }
    let mut vault = open(config)?;
    if vault.settings().role != cairn_vault::Role::Office {
        return Err(CliError::failure(
            "only the office publishes editions, with the office key; nothing was published. Run this on the office machine.",
        ));
    }
    let cases = with_heads(&vault, report_cases(&vault)?)?;
    let taken = taken(&vault)?;
    let edition = Edition::freeze(
        uuid::Uuid::new_v4().to_string(),
        title,
        &cases,
        period,
        options,
        &taken,
    )
    .map_err(failure)?;
    let signed = vault.publish(edition)?;
    let travels = vault.holds_record(&signed)?;
    drop(vault);
    if !travels {
        output::eprint(&format!(
            "This edition is too large to travel to the server as one record (over {} bytes \
             compressed): it is kept on this device only. Keep its signed file with your backups: \
             `cairn report show {} --format signed > edition.json`.",
            cairn_vault::RECORD_LIMIT,
            &signed.edition.id[..8]
        ));
    }
    let figures = signed.edition.figures().map_err(failure)?;
    let name = published(&signed)?;
    draw(chart, &figures)?;
    let text = render(&figures, format, Some(&name))?;
    write_or_print(args.output.out.as_deref(), &text)?;
    eprintln!(
        "Published edition {} (hash {}); `cairn report show {}` prints it again exactly.",
        name.id,
        name.hash,
        &name.id[..8]
    );
    Ok(())
}

/// The edition `wanted` names: its id, a prefix of it, its hash or a prefix of that, or
/// `latest`.
pub(crate) fn find(vault: &cairn_vault::Vault, wanted: &str) -> Result<SignedEdition, CliError> {
    let editions = vault.editions()?;
    pick(editions, wanted)
}

pub(crate) fn pick(editions: Vec<SignedEdition>, wanted: &str) -> Result<SignedEdition, CliError> {
    let wanted = wanted.trim().to_ascii_lowercase();
    if editions.is_empty() {
        return Err(CliError::failure(
            "no edition has been published here yet: publish one with `cairn report publish`.",
        ));
    }
    if wanted == "latest" {
        return editions
            .into_iter()
            .last()
            .ok_or_else(|| CliError::failure("no edition has been published here yet."));
    }
    if wanted.len() < 4 {
        return Err(CliError::usage(format!(
            "`{wanted}` is too short to name an edition: give at least 4 characters of its id or hash, or `latest`."
        )));
    }
    let mut found = Vec::new();
    for e in editions {
        let hash = e.hash()?;
        if e.edition.id.starts_with(&wanted) || hash.starts_with(&wanted) {
            found.push(e);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CliError::failure(format!(
            "no edition here has an id or hash starting with `{wanted}`: `cairn report editions` lists them."
        ))),
        n => Err(CliError::usage(format!(
            "`{wanted}` names {n} editions: give more of the id."
        ))),
    }
}

/// `cases` with the heads a summary written before summaries carried them lacks, read from
/// the case.
pub(crate) fn with_heads(
    vault: &cairn_vault::Vault,
    mut cases: Vec<(ReportCase, Vec<String>)>,
) -> Result<Vec<(ReportCase, Vec<String>)>, CliError> {
    for (case, heads) in cases.iter_mut().filter(|(_, h)| h.is_empty()) {
        let id = case.id.parse::<uuid::Uuid>().map_err(failure)?;
        *heads = vault
            .case_by_id(&id)?
            .heads()
            .iter()
            .map(ToString::to_string)
            .collect();
    }
    Ok(cases)
}

/// The vault now, frozen like an edition (not signed, not kept), to compare with one.
pub(crate) fn freeze_now(
    cases: &[(ReportCase, Vec<String>)],
    period: Period,
    options: Options,
    taken: &Taken,
) -> Result<Edition, CliError> {
    Edition::freeze(
        "now".into(),
        "the vault now".into(),
        cases,
        period,
        options,
        taken,
    )
    .map_err(failure)
}

/// `cairn report editions`.
pub(crate) fn list(config: &Config, json: bool) -> Result<(), CliError> {
    let vault = open(config)?;
    let editions = vault.editions()?;
    drop(vault);
    let mut rows = Vec::with_capacity(editions.len());
    for e in &editions {
        let counted = e.edition.cases.iter().filter(|c| c.counted).count();
        rows.push(serde_json::json!({
            "id": e.edition.id,
            "title": e.edition.title,
            "published_at": e.edition.published_at,
            "from": e.edition.from,
            "to": e.edition.to,
            "include_alleged": e.edition.include_alleged,
            "hash": e.hash()?,
            "records_counted": counted,
            "sentence": e.edition.sentence,
        }));
    }
    if json {
        return output::json(&rows);
    }
    if editions.is_empty() {
        return output::print(
            "No edition has been published here yet: `cairn report publish` makes one.\n",
        );
    }
    let mut out = String::new();
    for (e, row) in editions.iter().zip(&rows) {
        let _ = writeln!(
            out,
            "{}  {}  {}..{}  {} records  hash {}  {}",
            &e.edition.id[..8],
            e.edition.published_at,
            e.edition.from,
            e.edition.to,
            row["records_counted"],
            &e.short_hash()?,
            e.edition.title
        );
    }
    output::print(&out)
}

/// `cairn report show`.
pub(crate) fn show(config: &Config, args: ShowEditionArgs) -> Result<(), CliError> {
    let format = if args.json {
        EditionFormat::Json
    } else {
        args.format
    };
    let chart = match &args.chart {
        Some(path) => Some((path.clone(), super::chart_kind(path)?)),
        None => None,
    };
    let vault = open(config)?;
    let edition = find(&vault, &args.edition)?;
    let since = args.since.as_deref().map(|s| find(&vault, s)).transpose()?;
    drop(vault);
    let text = match since {
        Some(old) => {
            let changes = cairn_model::edition::changes(&old.edition, &edition.edition, true)
                .map_err(failure)?;
            let format = report_format(format).ok_or_else(|| {
                CliError::usage(
                    "--since prints changes: use --format text, markdown, json or html.",
                )
            })?;
            changes_text(&changes, format)?
        }
        None => edition_text(&edition, format, chart)?,
    };
    match &args.out {
        Some(path) => write_atomic(path, text.as_bytes()),
        None => output::print(&text),
    }
}

fn report_format(format: EditionFormat) -> Option<ReportFormat> {
    match format {
        EditionFormat::Text => Some(ReportFormat::Text),
        EditionFormat::Markdown => Some(ReportFormat::Markdown),
        EditionFormat::Json => Some(ReportFormat::Json),
        EditionFormat::Html => Some(ReportFormat::Html),
        EditionFormat::Signed => None,
    }
}

/// An edition printed as published: its figures worked out again from its cases (refused
/// if they are not the figures it was published with), or the signed record itself.
pub(crate) fn edition_text(
    signed: &SignedEdition,
    format: EditionFormat,
    chart: Option<(std::path::PathBuf, super::ChartKind)>,
) -> Result<String, CliError> {
    // The signed record is printed as kept, whatever this Cairn's counting rules make of it.
    let Some(format) = report_format(format) else {
        return Ok(signed.to_file()?);
    };
    let figures = signed.edition.figures().map_err(failure)?;
    draw(chart, &figures)?;
    render(&figures, format, Some(&published(signed)?))
}

/// `cairn report verify FILE`.
pub(crate) fn verify(config: &Config, args: VerifyEditionArgs) -> Result<(), CliError> {
    let bytes = std::fs::read(&args.file).map_err(|e| {
        CliError::failure(format!(
            "cannot read {}: {e}; give the file `cairn report show EDITION --format signed` wrote.",
            args.file.display()
        ))
    })?;
    let office = match &args.office_key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
            text.parse::<cairn_protocol::OfficeKeys>()
                .map_err(|e| {
                    CliError::failure(format!(
                        "{} is not the office's public keys ({e}): give the file `cairn office pubkey` wrote.",
                        path.display()
                    ))
                })?
                .signing
        }
        None => {
            let vault = open(config)?;
            let id = vault.office_id()?.ok_or_else(|| {
                CliError::failure(
                    "this vault does not know the office yet: give --office-key FILE (from `cairn office pubkey`).",
                )
            })?;
            cairn_crypto::DeviceId(id)
        }
    };
    let signed = SignedEdition::from_file(&bytes)?;
    signed.verify(&office).map_err(|e| {
        CliError::failure(format!(
            "{} does not verify: {e}. Do not rely on it.",
            args.file.display()
        ))
    })?;
    let counted = signed.edition.cases.iter().filter(|c| c.counted).count();
    let hash = signed.hash()?;
    if args.json {
        return output::json(&serde_json::json!({
            "verified": true,
            "id": signed.edition.id,
            "title": signed.edition.title,
            "published_at": signed.edition.published_at,
            "signer": signed.signer,
            "hash": hash,
            "records_counted": counted,
            "sentence": signed.edition.sentence,
        }));
    }
    output::print(&format!(
        "Verified: edition {} \u{201c}{}\u{201d}, published {}, is signed by the office {} and its {} counted records give its figures.\nHash {}.\n{}\n",
        signed.edition.id,
        signed.edition.title,
        signed.edition.published_at,
        office.short(),
        counted,
        hash,
        signed.edition.sentence
    ))
}

fn moved(m: &cairn_model::edition::Moved) -> String {
    let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    format!("{}: {} \u{2192} {}", m.field, v(&m.was), v(&m.now))
}

fn newly(n: &cairn_model::edition::NewlyCounted) -> String {
    let mut parts = vec![n.kind.clone()];
    if let Some(cause) = &n.cause {
        parts.push(cause.replace('_', " "));
    }
    parts.push(match n.civilian.as_deref() {
        Some("yes") => "civilian".into(),
        Some("no") => "not a civilian".into(),
        _ => "civilian status not known".into(),
    });
    if n.found_by_search {
        parts.push("found by search operations".into());
    }
    parts.join(", ")
}

/// The sections of a change list that have lines: a heading and its lines (reference,
/// what).
fn sections(c: &Changes) -> Vec<(String, Vec<(String, String)>)> {
    let all: Vec<(String, Vec<(String, String)>)> = vec![
        (
            format!("Newly counted ({})", c.newly_counted.len()),
            c.newly_counted
                .iter()
                .map(|n| (n.reference.clone(), newly(n)))
                .collect(),
        ),
        (
            format!("Reclassified ({})", c.reclassified.len()),
            c.reclassified
                .iter()
                .map(|r| {
                    let mut what = r.moved.iter().map(moved).collect::<Vec<_>>().join("; ");
                    if let Some(was) = &r.was_reference {
                        let _ = write!(what, " (counted as {was} then)");
                    }
                    (r.reference.clone(), what)
                })
                .collect(),
        ),
        (
            format!("No longer counted ({})", c.no_longer_counted.len()),
            c.no_longer_counted
                .iter()
                .map(|d| (d.reference.clone(), d.why.clone()))
                .collect(),
        ),
        (
            format!("Persons merged ({})", c.merged.len()),
            c.merged
                .iter()
                .map(|m| {
                    (
                        m.into.clone(),
                        format!(
                            "one person now: counted apart then as {}",
                            m.were.join(", ")
                        ),
                    )
                })
                .collect(),
        ),
        (
            format!("Persons split ({})", c.split.len()),
            c.split
                .iter()
                .map(|sp| {
                    (
                        sp.was.clone(),
                        format!(
                            "counted as {} persons now: {}",
                            sp.now.len(),
                            sp.now.join(", ")
                        ),
                    )
                })
                .collect(),
        ),
        (
            format!(
                "Records linked to a person counted before ({})",
                c.joined.len()
            ),
            c.joined
                .iter()
                .map(|j| {
                    (
                        j.reference.clone(),
                        format!("a record of the person counted as {} then", j.person),
                    )
                })
                .collect(),
        ),
    ];
    all.into_iter()
        .filter(|(_, lines)| !lines.is_empty())
        .collect()
}

fn heading(c: &Changes) -> String {
    let until = match &c.until {
        Some(e) => format!(
            "edition {} \u{201c}{}\u{201d} ({})",
            e.id, e.title, e.published_at
        ),
        None => "the vault now".into(),
    };
    format!(
        "Changes from edition {} \u{201c}{}\u{201d} ({}) to {until}",
        c.since.id, c.since.title, c.since.published_at
    )
}

/// What changed, in `format`.
pub(crate) fn changes_text(c: &Changes, format: ReportFormat) -> Result<String, CliError> {
    let mut out = String::new();
    match format {
        ReportFormat::Json => {
            out = serde_json::to_string_pretty(c).map_err(failure)?;
            out.push('\n');
        }
        ReportFormat::Text => {
            let _ = writeln!(out, "{}\n\n{}", heading(c), c.sentence);
            for (title, lines) in sections(c) {
                let _ = writeln!(out, "\n{title}");
                for (reference, what) in lines {
                    let _ = writeln!(out, "  {reference}  {what}");
                }
            }
        }
        ReportFormat::Markdown => {
            let _ = writeln!(out, "# {}\n\n{}\n", md_escape(&heading(c)), c.sentence);
            for (title, lines) in sections(c) {
                let _ = writeln!(out, "## {title}\n");
                for (reference, what) in lines {
                    let _ = writeln!(out, "- `{reference}` {}", md_escape(&what));
                }
                out.push('\n');
            }
        }
        ReportFormat::Html => {
            let _ = writeln!(
                out,
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n</head>\n<body>\n<h1>{0}</h1>\n<p class=\"sentence\">{1}</p>",
                html_escape(&heading(c)),
                html_escape(&c.sentence)
            );
            out.push_str(&changes_html(c));
            out.push_str("</body>\n</html>\n");
        }
    }
    Ok(out)
}

/// The change lists as HTML sections (also the office page's).
pub(crate) fn changes_html(c: &Changes) -> String {
    let mut out = String::new();
    for (title, lines) in sections(c) {
        let _ = writeln!(out, "<h2>{}</h2>\n<ul>", html_escape(&title));
        for (reference, what) in lines {
            let _ = writeln!(
                out,
                "<li><code>{}</code> {}</li>",
                html_escape(&reference),
                html_escape(&what)
            );
        }
        out.push_str("</ul>\n");
    }
    out
}
