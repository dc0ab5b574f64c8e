//! `cairn case ...`: record, edit and read cases.

use std::str::FromStr;

use cairn_model::{Edit, Kind};
use serde_json::{json, Value};

use crate::cli::{
    choice_name, CaseCommand, CaseRef, CustodyArgs, EditFlags, ListArgs, NewArgs, SourceArgs,
};
use crate::config::Config;
use crate::error::CliError;
use crate::vault_cmd::open;
use crate::{input, output};

pub fn run(config: &Config, cmd: CaseCommand) -> Result<(), CliError> {
    match cmd {
        CaseCommand::New(args) => match args.resume.as_deref() {
            Some(id) => crate::drafts::resume(config, id),
            None => new(config, args),
        },
        CaseCommand::Drafts(args) => crate::drafts::run(config, args),
        CaseCommand::Edit(args) if args.edits.is_empty() && on_terminal() => {
            crate::form::edit(config, &args.reference)
        }
        CaseCommand::Edit(args) => {
            let edits = edits(&args.edits)?;
            if edits.is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give --set KEY=VALUE, --unset KEY or --note TEXT",
                ));
            }
            apply(config, &args.reference, &edits)
        }
        CaseCommand::Show(args) => show(config, args),
        CaseCommand::List(args) => list(config, args),
        CaseCommand::History(args) => history(config, args),
        CaseCommand::Verify(args) => {
            let edit = Edit::Verify {
                status: choice_name(&args.status),
                basis: args.basis,
            };
            // Refused before the passphrase is asked: a confirmation needs its basis.
            edit.check()?;
            verify(config, &args.reference, edit)
        }
        CaseCommand::Conflicts(args) => conflicts(config, args),
        CaseCommand::Custody(args) => custody(config, args),
        CaseCommand::Source(args) => source(config, args),
        CaseCommand::Import(args) => crate::import::run(config, args),
        CaseCommand::Attach(args) => crate::attach::attach(config, args),
        CaseCommand::Attachments(args) => crate::attach::list(config, args),
        CaseCommand::Attachment(cmd) => crate::attach::run(config, cmd),
        CaseCommand::Link(args) => crate::link::link(config, args),
        CaseCommand::Links(args) => crate::link::links(config, args),
        CaseCommand::WithdrawNote(args) => {
            // Refused before the passphrase is asked: a withdrawal says why.
            if args.reason.trim().is_empty() {
                return Err(CliError::usage("--reason cannot be empty"));
            }
            let mut vault = open(config)?;
            let seq = vault.withdraw_note(
                &args.reference,
                args.note,
                &args.reason,
                time::OffsetDateTime::now_utc(),
            )?;
            output::print(&format!(
                "{}: note {} withdrawn (change {seq})\n",
                args.reference, args.note
            ))
        }
    }
}

/// Checks every `--set`, `--unset` and `--note` before the vault is opened, so bad input costs
/// no passphrase and changes nothing.
fn edits(flags: &EditFlags) -> Result<Vec<Edit>, CliError> {
    let now = input::local_now();
    let mut stdin_used = false;
    let mut out = Vec::new();
    for assignment in &flags.set {
        let (key, raw) = cairn_model::parse_assignment(assignment)?;
        let ty = cairn_model::field(&key)?.ty;
        let typed = input::value(&key, &raw, &mut stdin_used)?;
        let value = input::field_value(&key, &typed, now)?;
        input::warn_if_future(&key, ty, &value, now);
        out.push(Edit::Set { key, value });
    }
    for key in &flags.unset {
        let edit = Edit::Unset { key: key.clone() };
        edit.check()?;
        out.push(edit);
    }
    for text in &flags.note {
        if text.trim().is_empty() {
            return Err(CliError::usage("a note cannot be empty"));
        }
        out.push(Edit::Note { text: text.clone() });
    }
    Ok(out)
}

/// Whether a person is there to fill the guided form: prompts read standard input and draw
/// on standard error (standard output may be captured: `REF=$(cairn case new)`).
pub fn on_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn new(config: &Config, args: NewArgs) -> Result<(), CliError> {
    let kind = args
        .kind
        .map(|kind| Kind::from_str(&choice_name(&kind)))
        .transpose()?;
    if args.edits.is_empty() && on_terminal() {
        return crate::form::new(config, kind, args.place);
    }
    let (Some(kind), Some(place)) = (kind, &args.place) else {
        crate::cli::missing_new_args().exit()
    };
    let edits = edits(&args.edits)?;
    let mut vault = open(config)?;
    let place = crate::places::Places::load(config, &vault)?.resolve(place)?;
    let created = vault.create_case(kind, &place, &edits, time::OffsetDateTime::now_utc())?;
    tracing::info!(seq = created.seq, "case recorded");
    output::print(&format!("{}\n", created.reference))
}

/// `--set place=...` takes a code, name or alias of a known place, as `--place` does.
fn corrected_places(
    config: &Config,
    vault: &cairn_vault::Vault,
    edits: &[Edit],
) -> Result<Vec<Edit>, CliError> {
    if !edits
        .iter()
        .any(|e| matches!(e, Edit::Set { key, .. } if key.trim() == "place"))
    {
        return Ok(edits.to_vec());
    }
    let places = crate::places::Places::load(config, vault)?;
    edits
        .iter()
        .map(|e| match e {
            Edit::Set { key, value } if key.trim() == "place" => {
                Ok(Edit::set("place", places.resolve(value)?))
            }
            other => Ok(other.clone()),
        })
        .collect()
}

/// A record's `--at`, read as people type it.
fn at(raw: Option<&str>) -> Result<Option<String>, CliError> {
    raw.map(|raw| input::moment("--at", raw, input::local_now()))
        .transpose()
}

fn apply(config: &Config, reference: &str, edits: &[Edit]) -> Result<(), CliError> {
    let mut vault = open(config)?;
    let edits = corrected_places(config, &vault, edits)?;
    match vault.edit_case(reference, &edits, time::OffsetDateTime::now_utc())? {
        Some(seq) => output::print(&format!("{reference}: recorded (change {seq})\n")),
        None => output::print(&format!("{reference}: nothing changed\n")),
    }
}

/// `cairn case verify`: the office's verification; on a field device, a proposal kept as a
/// note (only the office gives a case its status).
fn verify(config: &Config, reference: &str, edit: Edit) -> Result<(), CliError> {
    let mut vault = open(config)?;
    let field = vault.settings().role == cairn_vault::Role::Field;
    let changed = vault.edit_case(reference, &[edit], time::OffsetDateTime::now_utc())?;
    match (changed, field) {
        (Some(seq), true) => output::print(&format!(
            "{reference}: proposal recorded as a note (change {seq}); only the office gives a case its status\n"
        )),
        (Some(seq), false) => output::print(&format!("{reference}: recorded (change {seq})\n")),
        (None, _) => output::print(&format!("{reference}: nothing changed\n")),
    }
}

fn custody(config: &Config, args: CustodyArgs) -> Result<(), CliError> {
    let edit = Edit::Custody {
        from: args.from,
        to: args.to,
        place: args.place,
        purpose: args.purpose,
        seal: args.seal,
        at: at(args.at.as_deref())?,
    };
    apply(config, &args.reference, &[edit])
}

fn source(config: &Config, args: SourceArgs) -> Result<(), CliError> {
    let edit = Edit::Source {
        kind: args.kind,
        contact: args.contact,
        consent: choice_name(&args.consent),
        at: at(args.at.as_deref())?,
    };
    apply(config, &args.reference, &[edit])
}

fn show(config: &Config, args: CaseRef) -> Result<(), CliError> {
    let vault = open(config)?;
    let doc = vault.case(&args.reference)?;
    let value = doc.to_json_with_signers()?;
    if args.json {
        return output::json(&value);
    }
    let names = output::Names::of(&vault)?;
    let places = crate::places::Places::load(config, &vault)?;
    let recorded = &doc.reference().place;
    // The reference keeps the place the case was recorded at; the office's correction beside it.
    let place = match doc.corrected_place()?.filter(|p| p != recorded) {
        Some(corrected) => format!(
            "{}, corrected by the office (recorded at {})",
            places.label(&corrected),
            places.label(recorded)
        ),
        None => places.label(recorded),
    };
    let conflicted: Vec<String> = doc.conflicts().into_iter().map(|c| c.key).collect();
    let mut text = changed_since_confirmed(&value);
    flatten(&value, "", &mut |key, v| {
        match key {
            "place" => return,
            "reference" => {
                text.push_str(&format!(
                    "reference: {v}\nplace: {}\n",
                    output::escape(&place)
                ));
                return;
            }
            _ => {}
        }
        let mark = if conflicted.iter().any(|c| c == key) {
            "   (conflict: see `cairn case conflicts`)"
        } else {
            ""
        };
        let v = match key {
            // The device that signed the creation, not the text it typed.
            "created_by" => match value.get("created_signed_by").and_then(Value::as_str) {
                Some(signer) => names.signer(signer, Some(&v)),
                None => names.label(&v),
            },
            "created_signed_by" => return,
            _ => output::escape(&v).into_owned(),
        };
        text.push_str(&format!("{key}: {v}{mark}\n"));
    });
    for list in [
        "notes",
        "custody",
        "sources",
        "attachments",
        "verifications",
        "reviews",
    ] {
        if let Some(Value::Array(items)) = value.get(list) {
            if items.is_empty() {
                continue;
            }
            text.push_str(&format!("\n{list}:\n"));
            for item in items {
                text.push_str(&format!("  - {}\n", one_line(item, &names)));
            }
        }
    }
    output::print(&text)
}

/// The lines that open `case show` for a confirmed case whose counted fields changed since
/// (each as confirmed → now), or nothing.
fn changed_since_confirmed(case: &Value) -> String {
    let Some(Value::Array(changed)) = case.get("changed_since_confirmed") else {
        return String::new();
    };
    let mut text = String::from(
        "CHANGED SINCE CONFIRMED: counted as the office confirmed it until the office confirms it again\n",
    );
    let value = |v: &Value| {
        v.as_str()
            .map_or_else(|| "(none)".to_owned(), str::to_owned)
    };
    for c in changed {
        text.push_str(&format!(
            "  {}: {} → {}\n",
            c["field"].as_str().unwrap_or_default(),
            value(&c["old"]),
            value(&c["new"])
        ));
    }
    text.push('\n');
    text
}

/// Calls `visit` with every scalar under `value` as a dotted key; lists are printed apart.
fn flatten(value: &Value, prefix: &str, visit: &mut dyn FnMut(&str, String)) {
    let Value::Object(map) = value else { return };
    for (key, v) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match v {
            Value::Object(_) => flatten(v, &path, visit),
            Value::Array(_) => {}
            Value::String(s) => visit(&path, s.clone()),
            other => visit(&path, other.to_string()),
        }
    }
}

/// A list entry on one line; its author is the device that signed it.
fn one_line(item: &Value, names: &output::Names) -> String {
    match item {
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| *k != "signed_by" && *k != "withdraws")
            .map(|(k, v)| match v {
                Value::String(_) if k == "author" => format!("{k}: {}", author(map, names)),
                // A withdrawn note: by whom, when and why, in place of its text.
                Value::Object(w) if k == "withdrawn" => format!(
                    "WITHDRAWN by {} at {}: {}",
                    w.get("by")
                        .and_then(Value::as_str)
                        .map_or_else(String::new, |by| names.signer(by, None)),
                    w.get("at").and_then(Value::as_str).unwrap_or_default(),
                    output::escape(w.get("reason").and_then(Value::as_str).unwrap_or_default())
                ),
                Value::String(s) => format!("{k}: {}", output::escape(s)),
                // What a confirmation binds: the fields set, as key=value.
                Value::Object(fields) => {
                    let set: Vec<String> = fields
                        .iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(f, v)| {
                            let v = v.as_str().map_or(v.to_string(), str::to_owned);
                            format!("{f}={}", output::escape(&v))
                        })
                        .collect();
                    format!("{k}: {}", set.join(" "))
                }
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Who wrote a list entry of [`cairn_model::CaseDoc::to_json_with_signers`]: its signer,
/// with the name its writer typed when that differs.
pub(crate) fn author(entry: &serde_json::Map<String, Value>, names: &output::Names) -> String {
    let typed = entry.get("author").and_then(Value::as_str);
    match entry.get("signed_by").and_then(Value::as_str) {
        Some(signer) => names.signer(signer, typed),
        None => names.label(typed.unwrap_or_default()),
    }
}

fn list(config: &Config, args: ListArgs) -> Result<(), CliError> {
    // Validate filters before asking for the passphrase.
    let cause = match args.cause.as_deref() {
        Some(typed) => match cairn_model::validate("incident.cause", typed)? {
            cairn_model::Value::Str(cause) if !cause.is_empty() => Some(cause),
            _ => {
                return Err(CliError::usage(
                    "--cause needs a cause: `cairn fields` lists them",
                ))
            }
        },
        None => None,
    };
    let from = args
        .from
        .as_deref()
        .map(|d| crate::report::day(d, "--from"))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|d| crate::report::day(d, "--to"))
        .transpose()?;
    let vault = open(config)?;
    let places = crate::places::Places::load(config, &vault)?;
    let place = args
        .place
        .as_deref()
        .map(|p| places.filter(p))
        .transpose()?;
    let filter = cairn_vault::CaseFilter {
        kind: args.kind.map(|k| choice_name(&k)),
        status: args.status.map(|s| choice_name(&s)),
        cause,
        place,
        team: args.team.clone(),
        conflicts: args.conflicts,
        from,
        to,
    };
    let cases: Vec<_> = vault
        .list()?
        .into_iter()
        .filter(|c| filter.matches(c))
        .filter(|c| match args.name.as_deref() {
            Some(query) => c
                .profile
                .name
                .as_deref()
                .is_some_and(|name| cairn_link::names::name_matches(query, name)),
            None => true,
        })
        .collect();
    if args.json {
        return output::json(&cases);
    }
    if cases.is_empty() {
        return output::print("no cases\n");
    }
    let width = cases.iter().map(|c| c.reference.len()).max().unwrap_or(9);
    // Where the case counts: its place named, and the reference's when the office corrected it.
    let place = |c: &cairn_vault::CaseSummary| match &c.recorded_place {
        Some(recorded) => format!("{} (recorded at {recorded})", places.label(&c.place)),
        None => places.label(&c.place),
    };
    let place_width = cases
        .iter()
        .map(|c| place(c).chars().count())
        .max()
        .unwrap_or(5);
    let mut text = format!(
        "{:width$}  {:8}  {:19}  {:place_width$}  UPDATED\n",
        "REFERENCE", "KIND", "STATUS", "PLACE"
    );
    for c in &cases {
        // The case's own last change, not when it reached this vault.
        text.push_str(&format!(
            "{:width$}  {:8}  {:19}  {:place_width$}  {}{}{}\n",
            c.reference,
            c.kind,
            c.status,
            place(c),
            c.changed_at,
            if c.conflicts { "  (conflict)" } else { "" },
            if c.changed_since_confirmed.is_empty() {
                ""
            } else {
                "  (changed since confirmed)"
            }
        ));
    }
    output::print(&text)
}

fn history(config: &Config, args: CaseRef) -> Result<(), CliError> {
    let vault = open(config)?;
    let names = output::Names::of(&vault)?;
    let steps = vault.history(&args.reference)?;
    if args.json {
        let entries: Vec<Value> = steps
            .iter()
            .map(|step| {
                let h = &step.entry;
                let mut entry = json!({
                    "time": output::time_ms(h.time_ms),
                    "author": short(&h.actor),
                    "author_name": names.name(&h.actor),
                    "fields": h.fields,
                    "changes": step.fields,
                });
                if let Some(received) = h.received_ms {
                    entry["received"] = output::time_ms(received).into();
                }
                if let Some(doubt) = &h.doubt {
                    entry["doubt"] = doubt.clone().into();
                }
                entry
            })
            .collect();
        return output::json(&entries);
    }
    let mut text = String::new();
    for step in &steps {
        let h = &step.entry;
        text.push_str(&format!(
            "{}  {}  {}",
            output::time_ms(h.time_ms),
            names.label(&h.actor),
            h.fields.join(", ")
        ));
        if let Some(doubt) = &h.doubt {
            let received = h.received_ms.map(output::time_ms);
            text.push_str(&format!(
                "  [claimed time {doubt}; received {}]",
                received.as_deref().unwrap_or("here")
            ));
        }
        text.push('\n');
        for change in &step.fields {
            text.push_str(&format!(
                "    {}: {} -> {}\n",
                change.field,
                brief(change.old.as_deref()),
                brief(change.new.as_deref())
            ));
        }
    }
    output::print(&text)
}

/// A value on one line of a history: long text cut, `(none)` for unset.
fn brief(value: Option<&str>) -> String {
    const MAX: usize = 60;
    let Some(value) = value else {
        return "(none)".to_owned();
    };
    let line = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX {
        return format!("{line:?}");
    }
    let cut: String = line.chars().take(MAX).collect();
    format!("{cut:?}... ({} characters)", value.chars().count())
}

fn conflicts(config: &Config, args: CaseRef) -> Result<(), CliError> {
    let vault = open(config)?;
    let names = output::Names::of(&vault)?;
    let doc = vault.case(&args.reference)?;
    let conflicts: Vec<Value> = doc
        .conflicts()
        .into_iter()
        .map(|c| {
            let values: Vec<Value> = c
                .values
                .into_iter()
                .map(|v| {
                    json!({
                        "value": v.value,
                        "author": short(&v.actor),
                        "author_name": names.name(&v.actor),
                        "time": output::time_ms(v.time_ms),
                    })
                })
                .collect();
            json!({ "field": c.key, "values": values })
        })
        .collect();
    if args.json {
        return output::json(&conflicts);
    }
    if conflicts.is_empty() {
        return output::print("no conflicts\n");
    }
    let mut text = String::new();
    for c in &conflicts {
        text.push_str(&format!("{}:\n", c["field"].as_str().unwrap_or_default()));
        for v in c["values"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "  {}   by {} at {}\n",
                v["value"],
                names.label(v["author"].as_str().unwrap_or_default()),
                v["time"].as_str().unwrap_or_default()
            ));
        }
    }
    text.push_str(&format!(
        "Resolve with: cairn case edit {} --set FIELD=VALUE\n",
        args.reference
    ));
    output::print(&text)
}

/// Device ids are 64 hex digits; 12 are enough for people.
fn short(actor: &str) -> String {
    actor.chars().take(12).collect()
}
