//! `cairn export`: cases written to a folder for people outside Cairn, with a manifest of
//! SHA-256 hashes and the custody log, redacted as asked.
//!
//! Cases are read one at a time, in the order the vault stored them, and their rows written
//! as they come, so memory does not grow with the number of cases. Files are written in a
//! hidden folder and moved into place at the end: a failed export leaves no half files.
//!
//! What is written, each only for the formats asked for:
//! - `cases.csv`: one row per case in a fixed column order (see [`columns`]); `--hxl` adds
//!   the HXL hashtag row under the header.
//! - `cases.geojson`: a FeatureCollection with a Point per case that has coordinates
//!   (longitude, latitude, and altitude when known), its properties the CSV's columns.
//! - `cases.jsonl`: JSON Lines, one case per line: `{"case": ..., "history": [...]}`, the case
//!   as `cairn case show --json` prints it and its history as `cairn case history --json`.
//! - always `custody.csv` (every custody event and every signed change) and `manifest.csv`.
//! - with `--with-attachments`, `attachments/REFERENCE/HASH-NAME`: each attachment of an
//!   exported case that is on this device, decrypted and checked against the SHA-256 taken at
//!   capture (`HASH` is its first 12 hex digits), listed in the manifest like every file.

mod columns;
pub(crate) use cairn_vault::import_file::formula;
mod redact;
mod staging;

use std::io::Write;

use cairn_model::{Case, HistoryEntry};
use geojson::{Feature, Geometry, JsonObject};
use serde_json::{json, Value};

use crate::cli::{ExportArgs, ExportFormat};
use crate::config::Config;
use crate::error::CliError;
use crate::progress::Bar;
use crate::{output, vault_cmd};

use columns::{cell, Column, Row};
use redact::Redaction;
use staging::{Hashed, Staging};

const CASES_CSV: &str = "cases.csv";
const CASES_GEOJSON: &str = "cases.geojson";
const CASES_JSONL: &str = "cases.jsonl";
const CUSTODY_CSV: &str = "custody.csv";
/// The signed edition an export of one is made of (`cairn report verify` checks it).
const EDITION_JSON: &str = "edition.json";

fn write_error(file: &str, e: impl std::fmt::Display) -> CliError {
    CliError::failure(format!("cannot write {file}: {e}; nothing was exported"))
}

pub fn run(config: &Config, args: ExportArgs) -> Result<(), CliError> {
    // Everything the arguments can get wrong is found before the passphrase is asked for.
    let redaction = Redaction::parse(&args.redact)?;
    if args.with_attachments && redaction.hides("attachments") {
        return Err(CliError::usage(
            "--with-attachments and --redact attachments ask for opposite things; give one",
        ));
    }
    let statuses: Vec<String> = args.status.iter().map(crate::cli::choice_name).collect();
    let has = |f: ExportFormat| args.format.contains(&f);
    // Read as found: a vault that does not check still gives up the cases it holds.
    let mut vault = vault_cmd::open_as_found(config)?;
    let mut staging = Staging::new(&args.out, args.force)?;
    let columns = columns::columns(&redaction);

    let mut csv = match has(ExportFormat::Csv) {
        true => Some(csv_file(&staging, &columns, args.hxl)?),
        false => None,
    };
    let mut geo = match has(ExportFormat::Geojson) {
        true => {
            let mut file = staging.create(CASES_GEOJSON)?;
            file.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")
                .map_err(|e| write_error(CASES_GEOJSON, e))?;
            Some(file)
        }
        false => None,
    };
    let mut jsonl = match has(ExportFormat::Json) {
        true => Some(staging.create(CASES_JSONL)?),
        false => None,
    };
    let mut custody = csv::Writer::from_writer(staging.create(CUSTODY_CSV)?);
    custody
        .write_record(["time", "author", "case", "event", "detail", "change"])
        .map_err(|e| write_error(CUSTODY_CSV, e))?;

    // The edition asked for, if any: its counted cases are exported, each at its version.
    let edition = args
        .edition
        .as_deref()
        .map(|e| crate::report::editions::find(&vault, e))
        .transpose()?;
    // Which person each case is a record of: ids and links only, for every case (of the
    // edition, when exporting one).
    let mut linked: Vec<(String, Vec<cairn_model::CaseLink>)> = Vec::new();
    match &edition {
        Some(signed) => linked.extend(
            signed
                .edition
                .cases
                .iter()
                .map(|c| (c.case.id.clone(), c.case.links.clone())),
        ),
        None => vault.each_summary(|s| {
            linked.push((s.id.to_string(), s.links));
            Ok::<(), CliError>(())
        })?,
    }
    let persons = cairn_model::persons(linked.iter().map(|(id, l)| (id.as_str(), l.as_slice())));
    let person_of: std::collections::HashMap<&str, &str> = linked
        .iter()
        .zip(&persons.id)
        .map(|((id, _), person)| (id.as_str(), person.as_str()))
        .collect();

    let (mut walked, mut exported) = (0u64, 0u64);
    let (mut points, mut unplaced, mut events) = (0u64, 0u64, 0u64);
    // The attachments to write once the cases are: (case reference, its attachments).
    let mut attached: Vec<(String, Vec<cairn_model::Attachment>)> = Vec::new();
    let mut one =
        |summary: &cairn_vault::CaseSummary, doc: &cairn_model::CaseDoc| -> Result<(), CliError> {
            exported += 1;
            let case = doc.case()?;
            let mut json = doc.to_json_with_signers()?;
            redaction.case_json(&mut json);
            let history = vault.history_of(doc)?;
            let id = summary.id.to_string();
            let person = person_of.get(id.as_str()).copied().unwrap_or(id.as_str());
            let row = Row::new(summary, doc, &case, &json, person, &redaction);
            let reference = row.reference.to_string();
            if let Some(csv) = &mut csv {
                let cells = columns.iter().map(|c| cell(&c.value(&row)));
                csv.write_record(cells)
                    .map_err(|e| write_error(CASES_CSV, e))?;
            }
            if let Some(file) = &mut geo {
                match feature(&columns, &row) {
                    Some(feature) => {
                        let sep: &[u8] = if points == 0 { b"\n" } else { b",\n" };
                        file.write_all(sep)
                            .and_then(|()| {
                                serde_json::to_writer(&mut *file, &feature).map_err(Into::into)
                            })
                            .map_err(|e| write_error(CASES_GEOJSON, e))?;
                        points += 1;
                    }
                    None => unplaced += 1,
                }
            }
            if let Some(file) = &mut jsonl {
                let history: Vec<Value> = history.iter().map(|h| entry(h, &redaction)).collect();
                serde_json::to_writer(&mut *file, &json!({"case": json, "history": history}))
                    .map_err(std::io::Error::from)
                    .and_then(|()| file.write_all(b"\n"))
                    .map_err(|e| write_error(CASES_JSONL, e))?;
            }
            if args.with_attachments {
                let mut list = doc.attachments()?;
                // The same file attached twice (two devices) is written once.
                list.sort_by(|a, b| a.sha256.cmp(&b.sha256));
                list.dedup_by(|a, b| a.sha256 == b.sha256);
                if !list.is_empty() {
                    attached.push((reference.clone(), list));
                }
            }
            let signers = doc.entry_signers("custody")?;
            for record in custody_rows(&reference, &case, &signers, &history, &redaction) {
                custody
                    .write_record(record.iter().map(|c| formula::escape(c).into_owned()))
                    .map_err(|e| write_error(CUSTODY_CSV, e))?;
                events += 1;
            }
            Ok(())
        };
    // One case in memory at a time: the summaries are walked, not collected.
    let bar;
    match &edition {
        Some(signed) => {
            let counted: Vec<_> = signed.edition.cases.iter().filter(|c| c.counted).collect();
            bar = Bar::new("exporting", counted.len() as u64);
            for c in counted {
                walked += 1;
                bar.set(walked);
                let id = c.case.id.parse::<uuid::Uuid>().map_err(|_| {
                    CliError::failure(format!(
                        "edition {} names a case id that does not read: `{}`",
                        signed.edition.id, c.case.id
                    ))
                })?;
                let doc = vault.case_by_id(&id)?.at(&c.heads).map_err(|e| {
                    CliError::failure(format!(
                        "case {} as edition {} counted it is not in this vault ({e}); sync, then export again.",
                        c.case.reference, signed.edition.id
                    ))
                })?;
                let summary =
                    cairn_vault::CaseSummary::of(&doc, signed.edition.published_at.clone())?;
                one(&summary, &doc)?;
            }
        }
        None => {
            bar = Bar::new("exporting", vault.case_count()?);
            vault.each_summary(|summary| -> Result<(), CliError> {
                walked += 1;
                bar.set(walked);
                if !statuses.is_empty() && !statuses.contains(&summary.status) {
                    return Ok(());
                }
                let doc = vault.case_by_id(&summary.id)?;
                one(&summary, &doc)
            })?;
        }
    }
    bar.finish();
    let attachments = match args.with_attachments {
        true => Some(write_attachments(&mut vault, &mut staging, &attached)?),
        false => None,
    };

    let mut files = Vec::new();
    if let Some(csv) = csv {
        let file = csv
            .into_inner()
            .map_err(|e| write_error(CASES_CSV, e.error()))?;
        staging.close(file)?;
        files.push(CASES_CSV.to_string());
    }
    if let Some(mut file) = geo {
        file.write_all(b"\n]}\n")
            .map_err(|e| write_error(CASES_GEOJSON, e))?;
        staging.close(file)?;
        let left_out = match unplaced {
            0 => String::new(),
            n => format!("; {n} case(s) without coordinates left out"),
        };
        files.push(format!("{CASES_GEOJSON} ({points} point(s){left_out})"));
    }
    if let Some(file) = jsonl {
        staging.close(file)?;
        files.push(CASES_JSONL.to_string());
    }
    let file = custody
        .into_inner()
        .map_err(|e| write_error(CUSTODY_CSV, e.error()))?;
    staging.close(file)?;
    files.push(format!("{CUSTODY_CSV} ({events} event(s))"));
    if let Some(signed) = &edition {
        let mut file = staging.create(EDITION_JSON)?;
        file.write_all(signed.to_file()?.as_bytes())
            .map_err(|e| write_error(EDITION_JSON, e))?;
        staging.close(file)?;
        files.push(format!(
            "{EDITION_JSON} (edition {}, hash {})",
            signed.edition.id,
            signed.hash()?
        ));
    }
    if let Some((written, missing)) = attachments {
        let missing = match missing {
            0 => String::new(),
            n => format!(
                "; {n} left out: not on this device (`cairn sync --with-attachments` fetches them) or damaged"
            ),
        };
        files.push(format!("attachments/ ({written} file(s){missing})"));
    }
    staging.commit()?;
    files.push(staging::MANIFEST.to_string());
    let redacted = match redaction.is_empty() {
        true => String::new(),
        false => format!("; redacted: {}", redaction.names().join(", ")),
    };
    output::print(&format!(
        "exported {exported} case(s) to {}: {}{redacted}\n",
        args.out.display(),
        files.join(", ")
    ))
}

/// Writes the attachments of `attached` that are here into `attachments/`, each checked
/// against its recorded SHA-256 by the vault as it is decrypted; returns how many were
/// written and how many are left out (not on this device, or not what the case recorded).
fn write_attachments(
    vault: &mut cairn_vault::Vault,
    staging: &mut Staging,
    attached: &[(String, Vec<cairn_model::Attachment>)],
) -> Result<(u64, u64), CliError> {
    let total = attached.iter().map(|(_, list)| list.len() as u64).sum();
    let bar = Bar::new("attachments", total);
    let (mut written, mut missing) = (0u64, 0u64);
    for (reference, list) in attached {
        let here: std::collections::HashSet<String> = vault
            .attachments(reference)?
            .into_iter()
            .filter(|s| s.here)
            .map(|s| s.entry.sha256)
            .collect();
        for a in list {
            bar.set(written + missing);
            if !here.contains(&a.sha256) {
                missing += 1;
                continue;
            }
            let name = format!(
                "attachments/{reference}/{}-{}",
                a.sha256.get(..12).unwrap_or(&a.sha256),
                output::safe_file_name(&a.name, false)
            );
            let path = staging.path_for(&name)?;
            match vault.attachment_get(reference, &a.sha256, &path) {
                Ok(entry) => {
                    staging.adopt(name, entry.size, entry.sha256);
                    written += 1;
                }
                // Bytes that are not what the case recorded are evidence of tampering, never
                // exported: the rest of the export goes on, and the person is told.
                Err(e @ cairn_vault::VaultError::AttachmentMismatch { .. }) => {
                    eprintln!("cairn: warning: left out of the export: {e}");
                    missing += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    bar.finish();
    Ok((written, missing))
}

fn csv_file(
    staging: &Staging,
    columns: &[Column],
    hxl: bool,
) -> Result<csv::Writer<Hashed>, CliError> {
    let mut csv = csv::Writer::from_writer(staging.create(CASES_CSV)?);
    csv.write_record(columns.iter().map(|c| c.name.as_str()))
        .map_err(|e| write_error(CASES_CSV, e))?;
    if hxl {
        csv.write_record(columns.iter().map(|c| c.hxl.as_str()))
            .map_err(|e| write_error(CASES_CSV, e))?;
    }
    Ok(csv)
}

/// A case as a GeoJSON point, if its (unredacted) coordinates are known.
fn feature(columns: &[Column], row: &Row<'_>) -> Option<Feature> {
    let found = row.json.get("found")?;
    let lat = found.get("lat")?.as_f64()?;
    let lon = found.get("lon")?.as_f64()?;
    let mut position = vec![lon, lat];
    if let Some(alt) = found.get("alt").and_then(Value::as_f64) {
        position.push(alt);
    }
    let mut properties = JsonObject::new();
    for c in columns {
        properties.insert(c.name.clone(), c.value(row));
    }
    Some(Feature {
        bbox: None,
        geometry: Some(Geometry::new(geojson::Value::Point(position))),
        id: Some(geojson::feature::Id::String(row.reference.to_string())),
        properties: Some(properties),
        foreign_members: None,
    })
}

/// A history entry as `cairn case history --json` shows it, with its change hash.
fn entry(h: &HistoryEntry, redaction: &Redaction) -> Value {
    let mut entry = json!({
        "time": output::time_ms(h.time_ms),
        "author": short(&h.actor),
        "fields": redaction.history_fields(&h.fields),
        "change": h.hash,
    });
    if let Some(received) = h.received_ms {
        entry["received"] = output::time_ms(received).into();
    }
    if let Some(doubt) = &h.doubt {
        entry["doubt"] = doubt.clone().into();
    }
    entry
}

fn short(actor: &str) -> String {
    actor.chars().take(12).collect()
}

/// The custody log of one case: every signed change and every custody event (unless custody
/// is redacted), oldest first. A custody event's author is the device that signed it
/// (`signers`, in the order of the case's custody list); a different name its writer typed is
/// kept in the detail, as `on behalf of` that name.
fn custody_rows(
    reference: &str,
    case: &Case,
    signers: &[String],
    history: &[HistoryEntry],
    redaction: &Redaction,
) -> Vec<[String; 6]> {
    let mut rows: Vec<(i128, [String; 6])> = Vec::new();
    for h in history {
        let fields = redaction.history_fields(&h.fields);
        let (event, fields): (&str, Vec<&str>) = match fields.split_first() {
            Some((first, rest)) if first == "created" => {
                ("created", rest.iter().map(String::as_str).collect())
            }
            _ => ("change", fields.iter().map(String::as_str).collect()),
        };
        rows.push((
            i128::from(h.time_ms) * 1_000_000,
            [
                output::time_ms(h.time_ms),
                short(&h.actor),
                reference.to_string(),
                event.to_string(),
                fields.join(", "),
                h.hash.clone(),
            ],
        ));
    }
    if !redaction.hides("custody") {
        for (c, signer) in case.custody.iter().zip(signers) {
            let signer = short(signer);
            let mut detail = String::new();
            if let Some(from) = &c.from {
                detail.push_str(&format!("from {from} "));
            }
            detail.push_str(&format!("to {}", c.to));
            if let Some(place) = &c.place {
                detail.push_str(&format!(" at {place}"));
            }
            if let Some(purpose) = &c.purpose {
                detail.push_str(&format!("; purpose: {purpose}"));
            }
            if let Some(seal) = &c.seal {
                detail.push_str(&format!("; seal {seal}"));
            }
            if c.author.trim() != signer {
                detail.push_str(&format!("; on behalf of {}", c.author.trim()));
            }
            let at =
                time::OffsetDateTime::parse(&c.at, &time::format_description::well_known::Rfc3339)
                    .map_or(i128::MAX, time::OffsetDateTime::unix_timestamp_nanos);
            rows.push((
                at,
                [
                    c.at.clone(),
                    signer,
                    reference.to_string(),
                    "custody".to_string(),
                    detail,
                    String::new(),
                ],
            ));
        }
    }
    // Stable: a custody event sorts after the change that recorded it at the same instant.
    rows.sort_by_key(|(at, _)| *at);
    rows.into_iter().map(|(_, r)| r).collect()
}
