//! Record linkage on the office's pages: the candidate pairs `cairn office match` finds, a
//! pair side by side with its evidence, and the office's decision on it, recorded through
//! [`Vault::link`] as `cairn case link` records it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use cairn_link::{Candidate, Relation};
use cairn_vault::{CaseSummary, LinkDecision, VaultError};
use maud::{html, Markup};
use serde::Deserialize;

use super::guard::CSRF_FIELD;
use super::layout::{see_other, shell, Section};
use super::{AppState, WebError};
use crate::error::CliError;
use crate::matching;

/// Pairs shown on one page of candidates.
const PAGE_SIZE: usize = 100;
/// The probability a pair needs to be listed unless `?min=` says otherwise, as `cairn office
/// match --min` defaults.
const DEFAULT_MIN: f64 = 0.5;

/// The candidates page's query; text, so a bad value gets our sentence, not the extractor's.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    min: String,
    page: String,
    /// `linked` or `unchanged` after a decision, with the pair in `a` and `b`.
    done: String,
    a: String,
    b: String,
}

/// `?min=`: a probability from 0 to 1, 0.5 when not given.
fn min_of(raw: &str) -> Result<f64, WebError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(DEFAULT_MIN);
    }
    raw.parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| {
            WebError::new(
                StatusCode::BAD_REQUEST,
                "min: give a probability from 0 to 1, such as 0.5",
            )
        })
}

/// `?page=`: from 1, 1 when not given.
fn page_of(raw: &str) -> Result<usize, WebError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(1);
    }
    raw.parse::<usize>()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| WebError::new(StatusCode::BAD_REQUEST, "page: give a page number from 1"))
}

/// The address of the candidates page at `min` (left out when it is the default).
fn list_url(min: f64, extra: &[(&str, &str)]) -> String {
    let min = format_min(min);
    let mut query: Vec<(&str, &str)> = Vec::new();
    if min != format_min(DEFAULT_MIN) {
        query.push(("min", &min));
    }
    query.extend_from_slice(extra);
    match serde_urlencoded::to_string(&query) {
        Ok(q) if !q.is_empty() => format!("/matches?{q}"),
        _ => "/matches".to_owned(),
    }
}

fn format_min(min: f64) -> String {
    // Shortest form that reads back the same: 0.5, not 0.500000.
    format!("{min}")
}

/// The address of a pair's page, keeping the candidates page's `min` to go back to.
fn pair_url(a: &CaseSummary, b: &CaseSummary, min: f64) -> String {
    let base = format!("/matches/{}/{}", a.reference, b.reference);
    if format_min(min) == format_min(DEFAULT_MIN) {
        base
    } else {
        format!("{base}?min={}", format_min(min))
    }
}

fn percent(p: f64) -> String {
    format!("{:.0}%", p * 100.0)
}

fn relation_label(relation: Relation) -> &'static str {
    match relation {
        Relation::Identifies => "remains of this missing person",
        Relation::SamePerson => "one person",
        Relation::Distinct => "two people",
    }
}

/// The decision in force between `a` and `b`, as `a`'s summary carries it.
fn decided(a: &CaseSummary, b: &CaseSummary) -> Option<String> {
    let id = b.id.to_string();
    a.links
        .iter()
        .find(|l| l.other_id == id)
        .map(|l| l.relation.clone())
}

/// A case's reference as a link to its page, with its kind and name beside it.
fn case_cell(c: &CaseSummary) -> Markup {
    html! {
        a href={ "/case/" (c.reference) } { (c.reference) }
        " " span.kind { (c.kind) }
        @if let Some(name) = &c.profile.name { br; span.name { (name) } }
    }
}

/// `GET /matches`: the candidate pairs, most likely first, a page at a time.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Result<Markup, WebError> {
    let min = min_of(&query.min)?;
    let page = page_of(&query.page)?;
    state
        .with_vault(move |vault, _| {
            let all = vault.list()?;
            let found = matching::candidates(&all, min, None);
            Ok(candidates_page(&all, &found, min, page, &query))
        })
        .await
}

fn candidates_page(
    all: &[CaseSummary],
    found: &[Candidate],
    min: f64,
    page: usize,
    query: &ListQuery,
) -> Markup {
    let pages = found.len().div_ceil(PAGE_SIZE).max(1);
    let page = page.min(pages);
    let start = (page - 1) * PAGE_SIZE;
    let shown = &found[start.min(found.len())..(start + PAGE_SIZE).min(found.len())];
    let notice = notice(all, query);
    let min_text = format_min(min);
    let body = html! {
        @if let Some(notice) = notice { p.notice { (notice) } }
        form.filters method="get" action="/matches" {
            label { "At least " input type="number" name="min" min="0" max="1" step="0.05" value=(min_text); " likely" }
            button type="submit" { "Show" }
        }
        @if found.is_empty() {
            p.count { "No pair of the " (all.len()) " cases is at least " (min_text) " likely to be one person, apart from those the office decided." }
        } @else {
            p.count {
                (found.len()) " pairs of the " (all.len()) " cases are at least " (min_text) " likely to be one person"
                @if pages > 1 { "; pairs " (start + 1) " to " (start + shown.len()) " shown, most likely first (" (PAGE_SIZE) " a page)" }
                ". Pairs the office decided are not listed."
            }
            table.matches {
                thead { tr {
                    th { "Probability" } th { "Relation" } th { "Case" } th { "Case" } th { "Why" } th {}
                } }
                tbody {
                    @for c in shown {
                        @let (a, b) = (&all[c.a], &all[c.b]);
                        tr class=(c.relation.as_str()) {
                            td.n { (percent(c.probability)) }
                            td { (c.relation.as_str()) }
                            td { (case_cell(a)) }
                            td { (case_cell(b)) }
                            td.why { (c.explain()) }
                            td { a.pair href=(pair_url(a, b, min)) { "Review the pair" } }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pages {
                    @if page > 1 { a rel="prev" href=(list_url(min, &[("page", &(page - 1).to_string())])) { "← Previous" } " " }
                    "Page " (page) " of " (pages)
                    @if page < pages { " " a rel="next" href=(list_url(min, &[("page", &(page + 1).to_string())])) { "Next →" } }
                }
            }
        }
    };
    shell(Some(Section::Matches), "Matches", body)
}

/// What the page says after a decision, checked against the vault (so a forged address
/// shows nothing): both cases exist, and for `linked` a decision holds between them.
fn notice(all: &[CaseSummary], query: &ListQuery) -> Option<String> {
    let find = |r: &str| all.iter().find(|c| c.reference.eq_ignore_ascii_case(r));
    let (a, b) = (find(&query.a)?, find(&query.b)?);
    match query.done.as_str() {
        "linked" => {
            let relation = decided(a, b)?;
            Some(format!(
                "Recorded: {} and {} as {relation}.",
                a.reference, b.reference
            ))
        }
        "unchanged" => Some(format!(
            "Nothing changed: the office had already decided so on {} and {}.",
            a.reference, b.reference
        )),
        _ => None,
    }
}

/// The pair page's query: the candidates page's `min`, to go back to.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PairQuery {
    min: String,
}

/// The two cases an address names, by reference (any letter case) or id: 404 for an unknown
/// one, 400 for the same case twice.
fn pair_of(all: &[CaseSummary], a: &str, b: &str) -> Result<(usize, usize), WebError> {
    let at = |r: &str| {
        matching::position(all, r).map_err(|_| {
            WebError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "there is no case {} in the office vault",
                    crate::output::escape(r.trim())
                ),
            )
        })
    };
    let (ia, ib) = (at(a)?, at(b)?);
    if ia == ib {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "a pair is two cases: this address names one case twice",
        ));
    }
    Ok((ia, ib))
}

/// `GET /matches/{a}/{b}`: the two cases side by side, the evidence, the decision form.
pub(crate) async fn pair(
    State(state): State<Arc<AppState>>,
    Path((a, b)): Path<(String, String)>,
    Query(query): Query<PairQuery>,
) -> Result<Markup, WebError> {
    let min = min_of(&query.min)?;
    state
        .with_vault(move |vault, state| {
            let all = vault.list()?;
            let (ia, ib) = match pair_of(&all, &a, &b) {
                Ok(pair) => pair,
                Err(e) => return Ok(Err(e)),
            };
            // Evidence for this pair whatever its probability: the pairs of one case only.
            let candidate = matching::candidates(&all, 0.0, Some(ia))
                .into_iter()
                .find(|c| (c.a, c.b) == (ia, ib) || (c.a, c.b) == (ib, ia));
            Ok(Ok(pair_page(&all, ia, ib, candidate.as_ref(), min, state)))
        })
        .await?
}

/// One row of the side-by-side table: a label and each case's value (empty when unset).
type Row = (&'static str, String, String);

fn side_by_side(a: &CaseSummary, b: &CaseSummary) -> Vec<Row> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let position = |c: &CaseSummary| match (c.profile.lat, c.profile.lon) {
        (Some(lat), Some(lon)) => format!("{lat:.4}, {lon:.4}"),
        _ => String::new(),
    };
    let age = |c: &CaseSummary| {
        c.profile
            .age_years
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let rows: Vec<Row> = vec![
        ("kind", a.kind.clone(), b.kind.clone()),
        ("status", a.status.clone(), b.status.clone()),
        (
            "incident date",
            text(&a.incident_date),
            text(&b.incident_date),
        ),
        ("found", text(&a.found_at), text(&b.found_at)),
        ("name", text(&a.profile.name), text(&b.profile.name)),
        ("sex", text(&a.profile.sex), text(&b.profile.sex)),
        ("age", age(a), age(b)),
        (
            "age group",
            text(&a.profile.age_group),
            text(&b.profile.age_group),
        ),
        (
            "last seen",
            text(&a.profile.last_seen_at),
            text(&b.profile.last_seen_at),
        ),
        ("place", text(&a.profile.place), text(&b.profile.place)),
        ("position", position(a), position(b)),
        (
            "height cm",
            number(a.profile.height_cm),
            number(b.profile.height_cm),
        ),
        (
            "clothing",
            text(&a.profile.clothing),
            text(&b.profile.clothing),
        ),
        (
            "effects",
            text(&a.profile.effects),
            text(&b.profile.effects),
        ),
        ("marks", text(&a.profile.marks), text(&b.profile.marks)),
    ];
    rows.into_iter()
        .filter(|(label, x, y)| {
            matches!(*label, "kind" | "status") || !(x.is_empty() && y.is_empty())
        })
        .collect()
}

/// What the office may decide on the pair: the relation the matcher proposes (or, for a pair
/// it does not propose, `identifies` for remains and a missing or detained person, else
/// `same_person`);
/// and `distinct`.
fn choices(a: &CaseSummary, b: &CaseSummary, candidate: Option<&Candidate>) -> [&'static str; 2] {
    if let Some(c) = candidate {
        return [c.relation.as_str(), Relation::Distinct.as_str()];
    }
    match (a.kind.as_str(), b.kind.as_str()) {
        ("remains", "missing" | "detained") | ("missing" | "detained", "remains") => {
            ["identifies", "distinct"]
        }
        _ => ["same_person", "distinct"],
    }
}

fn pair_page(
    all: &[CaseSummary],
    ia: usize,
    ib: usize,
    candidate: Option<&Candidate>,
    min: f64,
    state: &AppState,
) -> Markup {
    // The matcher's order when it has one (remains first for `identifies`).
    let (ia, ib) = match candidate {
        Some(c) => (c.a, c.b),
        None => (ia, ib),
    };
    let (a, b) = (&all[ia], &all[ib]);
    let title = format!("{} and {}", a.reference, b.reference);
    let in_force = decided(a, b);
    let contradicted = crate::office::contradictions(all);
    let body = html! {
        p { a href=(list_url(min, &[])) { "← All candidate pairs" } }
        @if let Some(relation) = &in_force {
            p.decided { "The office decided these are " strong { (relation) } ". A decision here supersedes it (both are kept)." }
        }
        @for c in [a, b] {
            @if let Some(others) = contradicted.get(&c.reference) {
                p.error { (c.reference) " is in a person that holds cases the office decided are distinct: " (c.reference) " and " (others.join(", ")) "." }
            }
        }
        h2 { "Side by side" }
        table.pair {
            thead { tr { th {} th { a href={ "/case/" (a.reference) } { (a.reference) } } th { a href={ "/case/" (b.reference) } { (b.reference) } } } }
            tbody {
                @for (label, x, y) in side_by_side(a, b) {
                    tr class=[(x != y && !x.is_empty() && !y.is_empty()).then_some("differs")] {
                        th { (label) } td { (x) } td { (y) }
                    }
                }
            }
        }
        h2 { "Evidence" }
        @match candidate {
            Some(c) => {
                p.likely { (percent(c.probability)) " likely " (relation_label(c.relation)) ": " (c.explain()) }
                table.evidence {
                    thead { tr { th { "Field" } th { "Level" } th { "Weight" } th { "Evidence" } } }
                    tbody {
                        @for e in &c.why {
                            tr {
                                td { (e.field) } td { (e.level) }
                                td.n { (format!("{:+.2}", e.weight)) }
                                td { (e.phrase) }
                            }
                        }
                    }
                }
                p.help { "A weight is log₂ of how much likelier the agreement is for one person than for two: above 0 it speaks for the pair, below 0 against it." }
            }
            None => {
                p { "The matcher proposes nothing for this pair: the office has decided it, or the two cases share no blocking key (name, date, place or area)." }
            }
        }
        form.action.decide method="post" action={ "/matches/" (a.reference) "/" (b.reference) } {
            h2 { "Decide" }
            input type="hidden" name=(CSRF_FIELD) value=(state.guard.csrf());
            input type="hidden" name="min" value=(format_min(min));
            @for relation in choices(a, b, candidate) {
                label.choice {
                    input type="radio" name="relation" value=(relation) required;
                    " " (relation) " — " (match relation {
                        "identifies" => "these remains are this missing person",
                        "same_person" => "two records of one person",
                        _ => "two people: never propose this pair again",
                    })
                }
            }
            label { "Basis (required) " textarea name="basis" rows="3" required {} }
            button type="submit" { "Record decision" }
        }
    };
    shell(Some(Section::Matches), &title, body)
}

/// The decision form's fields; all may be missing, so a bad form gets our sentence.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DecideForm {
    relation: String,
    basis: String,
    min: String,
}

/// `POST /matches/{a}/{b}`: records the decision in both cases, as `cairn case link A B --as
/// R --basis T`, and goes back to the candidates with a notice.
pub(crate) async fn decide(
    State(state): State<Arc<AppState>>,
    Path((a, b)): Path<(String, String)>,
    Form(form): Form<DecideForm>,
) -> Result<Response, WebError> {
    let min = min_of(&form.min).unwrap_or(DEFAULT_MIN);
    let decision = LinkDecision {
        a,
        b,
        relation: form.relation.trim().to_lowercase(),
        basis: form.basis,
    };
    crate::link::check(&decision).map_err(|why| WebError::new(StatusCode::BAD_REQUEST, why))?;
    let outcome = state
        .with_vault(move |vault, _| {
            let all = vault.list()?;
            let (ia, ib) = match pair_of(&all, &decision.a, &decision.b) {
                Ok(pair) => pair,
                Err(e) => return Ok(Err(e)),
            };
            let (a, b) = (all[ia].reference.clone(), all[ib].reference.clone());
            let changed = vault
                .link(&[decision], time::OffsetDateTime::now_utc())
                .map_err(|e| match e {
                    // The decision's fault (identifies on two killings...), not the server's.
                    VaultError::BadLink(_) => CliError::usage(e.to_string()),
                    other => CliError::from(other),
                })?;
            Ok(Ok((a, b, changed)))
        })
        .await?;
    let (a, b, changed) = outcome?;
    let done = if changed > 0 { "linked" } else { "unchanged" };
    Ok(see_other(&list_url(
        min,
        &[("done", done), ("a", &a), ("b", &b)],
    )))
}
