//! A case's page: its fields, lists and history, its conflicts with a button per value, and
//! the office's verification and review; and the forms' answers, each one `edit_case` with
//! the edit the command would make.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use cairn_model::{CaseDoc, Edit, FieldChange, FieldType};
use cairn_vault::{AttachmentState, Vault};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::attachments::shown_as_image;
use super::guard::CSRF_FIELD;
use super::layout::{see_other, shell, Section};
use super::{AppState, WebError};
use crate::error::{CliError, USAGE};
use crate::output::{time_ms, Names};

/// What the page says about the form just sent (a fixed word, so nothing is echoed).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Done {
    done: String,
}

/// What the page says above the case: the answer to the form just sent.
enum Notice {
    None,
    Said(&'static str),
    /// A field edit refused, with why (the model's words).
    Refused(String),
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Path(reference): Path<String>,
    Query(done): Query<Done>,
) -> Result<Markup, WebError> {
    state
        .with_vault(move |vault, state| {
            let notice = match done.done.as_str() {
                "recorded" => Notice::Said("Recorded."),
                "unchanged" => Notice::Said("Nothing changed: the case already says that."),
                _ => Notice::None,
            };
            render(vault, state, &reference, notice)
        })
        .await
}

/// The case's page.
fn render(
    vault: &mut Vault,
    state: &AppState,
    reference: &str,
    notice: Notice,
) -> Result<Markup, CliError> {
    let key = state.case_key(vault, reference)?;
    let doc = vault.case(&key)?;
    let history = vault.history(&key)?;
    let names = crate::output::Names::of(vault)?;
    let json = doc.to_json_with_signers()?;
    let changed = doc.changed_since_confirmed()?;
    let title = doc.reference().to_string();
    let case = doc.case()?;
    let attachments = vault.attachments(&key)?;
    // The kept summaries name the cases this one is linked with, and say which contradict.
    let cases = state.cases(vault)?;
    let all: &[cairn_vault::CaseSummary] = if case.links.is_empty() {
        &[]
    } else {
        &cases.all
    };
    let contradicts = cases.contradicts.get(&title).cloned().unwrap_or_default();
    let as_of = cases.data_as_of(vault)?;
    let body = html! {
        @match &notice {
            Notice::Said(said) => p.notice { (said) },
            Notice::Refused(why) => p.error { "Not recorded: " (why) },
            Notice::None => {},
        }
        p.headline {
            (json["kind"].as_str().unwrap_or_default()) " · "
            span.status { (json["status"].as_str().unwrap_or_default()) }
            @if !changed.is_empty() { " " span.changed { "changed since confirmed" } }
            " · " (state.place_name(&doc.reference().place))
            // The office's correction beside the place the reference keeps.
            @if let Some(p) = json["place"].as_str().filter(|p| *p != doc.reference().place) {
                ", corrected to " (p)
                @if state.place_name(p) != p { " " (state.place_name(p)) }
            }
            " · team " (doc.reference().team)
        }
        p.as-of { (as_of) }
        (contradiction(&title, &contradicts))
        (changed_since_confirmed(&changed))
        (conflicts(&doc, &title, state, &names))
        div.actions {
            (verify_form(&title, state))
            (review_form(&title, state))
        }
        (photos(&title, &attachments))
        h2 { "Fields" }
        p.help { "Each field is changed as `cairn case edit --set` changes it; an empty value unsets it." }
        (fields(&json, &doc, &changed, &title, state))
        (links(&case, all, &names))
        @for list in ["notes", "custody", "sources", "verifications", "reviews"] {
            (records(list, &json[list], &names))
        }
        h2 { "History" }
        table.history {
            thead { tr { th { "Time" } th { "Author" } th { "Changed" } th { "Received" } } }
            tbody {
                @for step in &history {
                    @let h = &step.entry;
                    tr {
                        td { (time_ms(h.time_ms)) }
                        td.id { (names.label(&h.actor)) }
                        td {
                            @if step.fields.is_empty() { (h.fields.join(", ")) }
                            @for change in &step.fields {
                                div {
                                    code { (change.field) } ": "
                                    (change.old.as_deref().unwrap_or("(none)"))
                                    " → "
                                    (change.new.as_deref().unwrap_or("(none)"))
                                }
                            }
                        }
                        td {
                            @if let Some(at) = h.received_ms { (time_ms(at)) }
                            @if let Some(doubt) = &h.doubt { " " span.conflict { "claimed time doubtful: " (doubt) } }
                        }
                    }
                }
            }
        }
    };
    Ok(shell(Some(Section::Cases), &title, body))
}

/// The case's attachments: a photo shown where its bytes are here, every file downloadable,
/// and one not fetched yet said so.
fn photos(reference: &str, attachments: &[AttachmentState]) -> Markup {
    html! {
        @if !attachments.is_empty() {
            h2 { "Attachments" }
            div.attachments {
                @for a in attachments {
                    @let e = &a.entry;
                    @let href = format!("/case/{reference}/attachment/{}", e.sha256);
                    figure.attachment {
                        @if a.here && shown_as_image(&e.media_type) {
                            a href=(href) { img.photo src=(href) alt=(e.caption.as_deref().unwrap_or(&e.name)); }
                        }
                        figcaption {
                            strong { (e.name) } " · " (e.media_type) " · " (e.size) " bytes · " (e.at)
                            @if let Some(caption) = &e.caption { br; (caption) }
                            br;
                            @if a.here {
                                a.download href={ (href) "?download=yes" } { "Download" }
                            } @else {
                                span.not-here { "Not fetched yet: its bytes are not on this machine. The next `cairn sync` fetches them once the device that took it has sent them." }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The warning for a case in a person that holds two cases the office decided are distinct:
/// the report counts them as one person until the office decides again.
fn contradiction(reference: &str, others: &[String]) -> Markup {
    html! {
        @if !others.is_empty() {
            section.contradiction {
                h2 { "Contradicted decision" }
                p {
                    "The office's links join this case into one person with "
                    @for (i, other) in others.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/case/" (other) } { (other) }
                    }
                    ", which the office decided is a different person (distinct). The report counts them as one person until the office decides again:"
                }
                ul {
                    @for other in others {
                        li { a href={ "/matches/" (reference) "/" (other) } { "Decide again on " (reference) " and " (other) } }
                    }
                }
            }
        }
    }
}

/// The office's link decisions, those in force first, then what they superseded, newest
/// first (as `cairn case links`); the other case is a link when this vault holds it.
fn links(case: &cairn_model::Case, all: &[cairn_vault::CaseSummary], names: &Names) -> Markup {
    let current = case.current_links();
    let in_force = |l: &cairn_model::Link| current.iter().any(|c| std::ptr::eq(*c, l));
    let mut shown: Vec<&cairn_model::Link> = case.links.iter().rev().collect();
    shown.sort_by_key(|l| !in_force(l));
    let held = |l: &cairn_model::Link| all.iter().find(|c| c.id.to_string() == l.other_id);
    html! {
        @if !shown.is_empty() {
            h2 { "Links" }
            table.links {
                thead { tr { th { "Relation" } th { "Other case" } th { "Basis" } th { "By" } th { "At" } th { "State" } } }
                tbody {
                    @for l in &shown {
                        tr class=(if in_force(l) { "in-force" } else { "superseded" }) {
                            td { (l.relation) }
                            td {
                                @if let Some(other) = held(l) {
                                    a href={ "/case/" (other.reference) } { (other.reference) }
                                    @if in_force(l) {
                                        " · " a.pair href={ "/matches/" (case.reference) "/" (other.reference) } { "pair" }
                                    }
                                } @else { (l.other) }
                            }
                            td { (l.basis) }
                            td.id { (names.label(&l.author)) }
                            td { (l.at) }
                            td { @if in_force(l) { "in force" } @else { "superseded" } }
                        }
                    }
                }
            }
        }
    }
}

/// The counted fields edited since the office confirmed the case, each as confirmed → now:
/// what the office confirms again (or not) with the form below.
fn changed_since_confirmed(changed: &[FieldChange]) -> Markup {
    let none = "(none)";
    html! {
        @if !changed.is_empty() {
            section.changed {
                h2 { "Changed since confirmed" }
                p { "These counted fields were edited after the office confirmed the case. The edits are kept; the case is counted as the office confirmed it until the office confirms it again." }
                table.changed {
                    thead { tr { th { "Field" } th { "Confirmed" } th {} th { "Now" } } }
                    tbody {
                        @for c in changed {
                            tr {
                                td { code { (c.field) } }
                                td.old { (c.old.as_deref().unwrap_or(none)) }
                                td { "→" }
                                td.new { (c.new.as_deref().unwrap_or(none)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every field, in the model's order, marked where it holds concurrent values or was
/// changed since the office confirmed the case, each with its form to change it (the
/// status is the verification's).
fn fields(
    json: &Value,
    doc: &CaseDoc,
    changed: &[FieldChange],
    reference: &str,
    state: &AppState,
) -> Markup {
    let conflicted: Vec<String> = doc.conflicts().into_iter().map(|c| c.key).collect();
    let value_of = |key: &str| -> Option<&Value> {
        match key.split_once('.') {
            Some((group, leaf)) => json.get(group)?.get(leaf),
            None => json.get(key),
        }
    };
    html! {
        table.fields {
            tbody {
                @for spec in cairn_model::fields() {
                    @let value = value_of(spec.key).filter(|v| !v.is_null());
                    @let current = value.map(raw).unwrap_or_default();
                    tr {
                        th title=(spec.help) { (spec.key) }
                        td {
                            (current)
                            @if conflicted.iter().any(|k| k == spec.key) { " " span.conflict { "conflict" } }
                            @if let Some(c) = changed.iter().find(|c| c.field == spec.key) {
                                " " span.changed { "confirmed: " (c.old.as_deref().unwrap_or("(none)")) }
                            }
                        }
                        td {
                            @if spec.key != "status" {
                                form.field method="post" action={ "/case/" (reference) "/set" } {
                                    (csrf(state))
                                    input type="hidden" name="field" value=(spec.key);
                                    @match spec.ty {
                                        FieldType::Choice(choices) => {
                                            select name="value" aria-label=(spec.key) {
                                                option value="" { "(none)" }
                                                @for choice in choices {
                                                    option value=(choice) selected[*choice == current] { (choice) }
                                                }
                                            }
                                        }
                                        _ => input type="text" name="value" value=(current) aria-label=(spec.key);,
                                    }
                                    button type="submit" { "Save" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An append-only list as a table, one column per key its entries use; the author is the
/// device that signed the entry (and the name typed, when it differs).
fn records(name: &str, list: &Value, names: &Names) -> Markup {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut columns: Vec<&str> = Vec::new();
    for item in items {
        for key in item.as_object().into_iter().flat_map(|m| m.keys()) {
            if key != "signed_by" && !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let cell = |item: &Value, column: &str| match (column, item.as_object()) {
        ("author", Some(entry)) => crate::case::author(entry, names),
        _ => item.get(column).map(raw).unwrap_or_default(),
    };
    html! {
        @if !items.is_empty() {
            h2 { (name) }
            table.records {
                thead { tr { @for c in &columns { th { (c) } } } }
                tbody {
                    @for item in items {
                        tr { @for c in &columns { td { (cell(item, c)) } } }
                    }
                }
            }
        }
    }
}

/// A value as it is typed on the command line: a string without its quotes.
fn raw(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csrf(state: &AppState) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(state.guard.csrf()); }
}

fn conflicts(doc: &CaseDoc, reference: &str, state: &AppState, names: &Names) -> Markup {
    let conflicts = doc.conflicts();
    html! {
        @if !conflicts.is_empty() {
            section.conflicts {
                h2 { "Conflicts" }
                p { "Devices set these fields without seeing each other's change. Pick the value to keep." }
                @for c in &conflicts {
                    h3 { (c.key) }
                    ul {
                        @for v in &c.values {
                            li {
                                form.inline method="post" action={ "/case/" (reference) "/resolve" } {
                                    (csrf(state))
                                    input type="hidden" name="field" value=(c.key);
                                    input type="hidden" name="value" value=(raw(&v.value));
                                    button type="submit" { "Keep " (raw(&v.value)) }
                                }
                                " set by " span.id { (names.label(&v.actor)) } " at " (time_ms(v.time_ms))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn verify_form(reference: &str, state: &AppState) -> Markup {
    html! {
        form.action method="post" action={ "/case/" (reference) "/verify" } {
            h2 { "Verify" }
            (csrf(state))
            label { "Status " select name="status" {
                @for s in cairn_model::STATUSES { option value=(s) { (s) } }
            } }
            label { "Basis (required to confirm or reject) " textarea name="basis" rows="2" {} }
            button type="submit" { "Record verification" }
        }
    }
}

fn review_form(reference: &str, state: &AppState) -> Markup {
    html! {
        form.action method="post" action={ "/case/" (reference) "/review" } {
            h2 { "Review" }
            (csrf(state))
            label { "Outcome " select name="state" {
                @for s in cairn_model::REVIEW_STATES { option value=(s) { (s) } }
            } }
            label { "Comment " textarea name="comment" rows="2" {} }
            button type="submit" { "Record review" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SetForm {
    field: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResolveForm {
    field: String,
    value: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerifyForm {
    status: String,
    #[serde(default)]
    basis: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReviewForm {
    state: String,
    #[serde(default)]
    comment: String,
}

fn text(value: String) -> Option<String> {
    Some(value).filter(|v| !v.trim().is_empty())
}

/// Settles a conflict the way `cairn case edit REF --set FIELD=VALUE` does, with one of the
/// values in conflict (any other is refused: the page was stale or the form forged).
pub(crate) async fn resolve(
    State(state): State<Arc<AppState>>,
    Path(reference): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, WebError> {
    apply(&state, reference, move |vault, reference| {
        let now = time::OffsetDateTime::now_utc();
        Ok(vault.settle_conflict(reference, &form.field, &form.value, now)?)
    })
    .await
}

/// Sets a field as `cairn case edit REF --set FIELD=VALUE` does (the value read and checked
/// the same way), or unsets it when the value is empty; a refused value is said on the case's
/// page, with nothing recorded.
pub(crate) async fn set(
    State(state): State<Arc<AppState>>,
    Path(reference): Path<String>,
    Form(form): Form<SetForm>,
) -> Result<Response, WebError> {
    state
        .with_vault(move |vault, state| {
            let key = state.case_key(vault, &reference)?;
            let reference = vault.case(&key)?.reference().to_string();
            let mut edit = || -> Result<Option<u64>, CliError> {
                let field = form.field.trim().to_owned();
                let edit = if form.value.trim().is_empty() {
                    Edit::Unset { key: field }
                } else {
                    let value =
                        crate::input::field_value(&field, &form.value, crate::input::local_now())?;
                    Edit::Set { key: field, value }
                };
                edit.check()?;
                Ok(vault.edit_case(&key, &[edit], time::OffsetDateTime::now_utc())?)
            };
            match edit() {
                Ok(changed) => {
                    let done = if changed.is_some() {
                        "recorded"
                    } else {
                        "unchanged"
                    };
                    Ok(see_other(&format!("/case/{reference}?done={done}")))
                }
                Err(refused) => {
                    let status = if refused.code == USAGE {
                        StatusCode::BAD_REQUEST
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    };
                    let page = render(vault, state, &key, Notice::Refused(refused.message))?;
                    Ok((status, page).into_response())
                }
            }
        })
        .await
}

/// The same edit as `cairn case verify`.
pub(crate) async fn verify(
    State(state): State<Arc<AppState>>,
    Path(reference): Path<String>,
    Form(form): Form<VerifyForm>,
) -> Result<Response, WebError> {
    apply(&state, reference, move |vault, reference| {
        edit(
            vault,
            reference,
            Edit::Verify {
                status: form.status,
                basis: text(form.basis),
            },
        )
    })
    .await
}

/// The same edit as `cairn office review`.
pub(crate) async fn review(
    State(state): State<Arc<AppState>>,
    Path(reference): Path<String>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, WebError> {
    apply(&state, reference, move |vault, reference| {
        edit(
            vault,
            reference,
            Edit::Review {
                state: form.state,
                comment: text(form.comment),
            },
        )
    })
    .await
}

/// One edit, checked as the commands check it.
fn edit(vault: &mut Vault, reference: &str, edit: Edit) -> Result<Option<u64>, CliError> {
    edit.check()?;
    Ok(vault.edit_case(reference, &[edit], time::OffsetDateTime::now_utc())?)
}

/// Runs `change` on the case the address names, and sends the browser back to its page.
async fn apply(
    state: &Arc<AppState>,
    reference: String,
    change: impl FnOnce(&mut Vault, &str) -> Result<Option<u64>, CliError> + Send + 'static,
) -> Result<Response, WebError> {
    let (reference, changed) = state
        .with_vault(move |vault, state| {
            // The case's own reference, not what the address said; the vault reads it by id.
            let key = state.case_key(vault, &reference)?;
            let reference = vault.case(&key)?.reference().to_string();
            let changed = change(vault, &key)?;
            Ok((reference, changed.is_some()))
        })
        .await?;
    let done = if changed { "recorded" } else { "unchanged" };
    Ok(see_other(&format!("/case/{reference}?done={done}")))
}
