//! `cairn case drafts`: the guided form's drafts on this device, listed, resumed or
//! discarded. The form writes them (form.rs); the vault keeps them encrypted and never syncs
//! them.

use serde_json::json;

use crate::cli::{DraftsArgs, DraftsCommand};
use crate::config::Config;
use crate::error::CliError;
use crate::{output, vault_cmd};

pub fn run(config: &Config, args: DraftsArgs) -> Result<(), CliError> {
    match args.action {
        None => list(config, args.json),
        Some(DraftsCommand::Resume(draft)) => resume(config, &draft.id),
        Some(DraftsCommand::Discard(draft)) => discard(config, &draft.id),
    }
}

/// The form, with the draft's answers; a draft is filled in on a terminal only.
pub fn resume(config: &Config, id: &str) -> Result<(), CliError> {
    if !crate::case::on_terminal() {
        return Err(CliError::usage(
            "a draft is resumed in the guided form: run this on a terminal",
        ));
    }
    crate::form::resume(config, id)
}

fn discard(config: &Config, id: &str) -> Result<(), CliError> {
    let mut vault = vault_cmd::open(config)?;
    let draft = vault.draft(id)?;
    vault.discard_draft(&draft.id)?;
    output::print(&format!("draft {} discarded\n", draft.short_id()))
}

/// What a draft is for, in a few words: a new case (its kind and place), or an edit.
fn what(draft: &cairn_vault::Draft) -> String {
    match &draft.case {
        Some(reference) => format!("edit of {reference}"),
        None => format!(
            "new {} case at {}",
            draft.kind.as_deref().unwrap_or("?"),
            draft.place.as_deref().unwrap_or("?")
        ),
    }
}

/// When it was saved, in this device's time, to the minute.
fn when(saved_at: &str) -> String {
    let rfc3339 = time::format_description::well_known::Rfc3339;
    let Ok(at) = time::OffsetDateTime::parse(saved_at, &rfc3339) else {
        return saved_at.to_owned();
    };
    let offset = crate::input::local_now().offset();
    let at = at.to_offset(offset);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    at.format(&format).unwrap_or_else(|_| saved_at.to_owned())
}

fn list(config: &Config, json: bool) -> Result<(), CliError> {
    let vault = vault_cmd::open(config)?;
    let drafts = vault.drafts()?;
    if json {
        let list: Vec<_> = drafts
            .iter()
            .map(|d| {
                json!({
                    "id": d.short_id(),
                    "uuid": d.id,
                    "saved_at": d.saved_at,
                    "case": d.case,
                    "kind": d.kind,
                    "place": d.place,
                    "answers": d.answers.len(),
                    "asked": d.asked.len(),
                })
            })
            .collect();
        return output::json(&list);
    }
    if drafts.is_empty() {
        return output::print("no drafts\n");
    }
    let mut text = format!("{:8}  {:16}  {:7}  FOR\n", "ID", "SAVED", "ANSWERS");
    for d in &drafts {
        text.push_str(&format!(
            "{:8}  {:16}  {:7}  {}\n",
            d.short_id(),
            when(&d.saved_at),
            d.answers.len(),
            output::escape(&what(d))
        ));
    }
    text.push_str(
        "\n`cairn case drafts resume ID` goes on with one; `discard ID` throws one away.\n",
    );
    output::print(&text)
}
