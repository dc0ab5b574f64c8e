//! The case table: every case's summary, filtered and searched, newest change first, in
//! pages of [`PAGE`] rows (the summaries come from [`AppState::cases`], kept between requests).

use std::sync::Arc;

use axum::extract::{Query, State};
use cairn_model::report::{cause_label, CAUSES};
use cairn_vault::CaseSummary;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::layout::{shell, Section};
use super::{AppState, WebError};

/// What the table (and the map) is filtered by; an empty value filters nothing.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct Filter {
    /// Words to find in the reference, place (code or name), team, kind, status or cause.
    #[serde(skip_serializing_if = "String::is_empty")]
    q: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    cause: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    place: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    team: String,
    /// `yes`: only cases with conflicts.
    #[serde(skip_serializing_if = "String::is_empty")]
    conflicts: String,
    /// `yes`: only cases changed since the office last reviewed or confirmed them (`cairn
    /// office inbox`).
    #[serde(skip_serializing_if = "String::is_empty")]
    inbox: String,
}

impl Filter {
    pub(crate) fn matches(&self, c: &CaseSummary, state: &AppState) -> bool {
        let set = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let filter = cairn_vault::CaseFilter {
            kind: set(&self.kind),
            status: set(&self.status),
            cause: set(&self.cause),
            place: set(&self.place),
            team: set(&self.team),
            conflicts: self.conflicts == "yes",
            from: None,
            to: None,
        };
        if !filter.matches(c)
            || (self.inbox == "yes" && !c.needs_review && c.changed_since_confirmed.is_empty())
        {
            return false;
        }
        // Words are looked for only when some are given: at 100,000 cases the rest of the
        // filter is what a page costs.
        if self.q.trim().is_empty() {
            return true;
        }
        let words = [
            c.reference.as_str(),
            c.place.as_str(),
            state.place_name(&c.place),
            c.team.as_str(),
            c.kind.as_str(),
            c.status.as_str(),
            c.cause.as_deref().unwrap_or_default(),
        ]
        .join(" ")
        .to_lowercase();
        self.q.to_lowercase().split_whitespace().all(|w| {
            words.contains(w)
                || c.profile
                    .name
                    .as_deref()
                    .is_some_and(|name| cairn_link::names::name_matches(w, name))
        })
    }

    /// The filter as a query string, for a link to the same cases elsewhere.
    pub(crate) fn query(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// The filter's form, for the table and the map, offering the cases' places and teams.
    pub(crate) fn form(
        &self,
        action: &str,
        places: &[String],
        teams: &[String],
        state: &AppState,
    ) -> Markup {
        let kinds: Vec<(&str, &str)> = cairn_model::Kind::ALL
            .iter()
            .map(|k| (k.as_str(), k.as_str()))
            .collect();
        let statuses: Vec<(&str, &str)> = cairn_model::STATUSES.iter().map(|s| (*s, *s)).collect();
        let causes: Vec<(&str, &str)> = CAUSES.iter().map(|c| (*c, cause_label(c))).collect();
        let places: Vec<(&str, &str)> = places
            .iter()
            .map(|p| (p.as_str(), state.place_name(p)))
            .collect();
        let teams: Vec<(&str, &str)> = teams.iter().map(|t| (t.as_str(), t.as_str())).collect();
        html! {
            form.filters method="get" action=(action) {
                label { "Search " input type="search" name="q" value=(self.q); }
                (select("kind", "Kind", &kinds, &self.kind))
                (select("status", "Status", &statuses, &self.status))
                (select("cause", "Cause", &causes, &self.cause))
                (select("place", "Place", &places, &self.place))
                (select("team", "Team", &teams, &self.team))
                label { input type="checkbox" name="conflicts" value="yes" checked[self.conflicts == "yes"]; " with conflicts" }
                label { input type="checkbox" name="inbox" value="yes" checked[self.inbox == "yes"]; " to review" }
                button type="submit" { "Filter" }
                a href=(action) { "Clear" }
            }
        }
    }
}

/// A drop-down of `(value, label)` choices, with "any" first.
pub(crate) fn select(name: &str, label: &str, choices: &[(&str, &str)], current: &str) -> Markup {
    html! {
        label {
            (label) " "
            select name=(name) {
                option value="" { "any" }
                @for (value, text) in choices {
                    option value=(value) selected[*value == current] { (text) }
                }
            }
        }
    }
}

/// Rows on a page of the table.
pub(crate) const PAGE: usize = 100;

/// Which page of the table: 1 is the first.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Paging {
    page: Option<usize>,
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<Filter>,
    Query(paging): Query<Paging>,
) -> Result<Markup, WebError> {
    state
        .with_vault(move |vault, state| {
            let cases = state.cases(vault)?;
            let as_of = cases.data_as_of(vault)?;
            let shown: Vec<&CaseSummary> = cases
                .all
                .iter()
                .filter(|c| filter.matches(c, state))
                .collect();
            let pages = shown.len().div_ceil(PAGE).max(1);
            let page = paging.page.unwrap_or(1).clamp(1, pages);
            let first = (page - 1) * PAGE;
            let rows = &shown[first.min(shown.len())..(first + PAGE).min(shown.len())];
            let query = filter.query();
            let to_page = |n: usize| {
                if query.is_empty() {
                    format!("/?page={n}")
                } else {
                    format!("/?{query}&page={n}")
                }
            };
            let pager = html! {
                nav.pages {
                    @if page > 1 {
                        a.first href=(to_page(1)) { "« First" } " "
                        a.prev rel="prev" href=(to_page(page - 1)) { "‹ Previous" } " "
                    }
                    span.page { "Page " (page) " of " (pages) }
                    @if page < pages {
                        " " a.next rel="next" href=(to_page(page + 1)) { "Next ›" }
                        " " a.last href=(to_page(pages)) { "Last »" }
                    }
                }
            };
            let body = html! {
                (filter.form("/", &cases.places, &cases.teams, state))
                p.as-of { (as_of) }
                p.count {
                    @if rows.is_empty() { "No case" } @else { "Cases " (first + 1) "–" (first + rows.len()) }
                    " of " (shown.len()) " found, of " (cases.all.len()) " cases. "
                    a href={ "/map?" (query) } { "Show these on the map" }
                }
                (pager)
                table.cases {
                    thead { tr {
                        th { "Reference" } th { "Kind" } th { "Status" } th { "Cause" }
                        th { "Place" } th { "Team" } th { "Incident" } th { "Review" }
                        th { "Conflicts" } th { "Changed" }
                    } }
                    tbody {
                        @for c in rows {
                            tr {
                                td { a href={ "/case/" (c.reference) } { (c.reference) } }
                                td { (c.kind) }
                                td {
                                    (c.status)
                                    @if !c.changed_since_confirmed.is_empty() {
                                        " " span.changed title="counted as confirmed until the office confirms it again" { "changed since confirmed" }
                                    }
                                }
                                td { (c.cause.as_deref().map(cause_label).unwrap_or("")) }
                                td { (state.place_name(&c.place)) }
                                td { (c.team) }
                                td { (c.incident_date.as_deref().unwrap_or("")) }
                                td { (c.review.as_deref().unwrap_or("none")) @if c.needs_review { " · to review" } }
                                td {
                                    @if c.conflicts { span.conflict { "conflicts" } }
                                    @if cases.contradicts.contains_key(&c.reference) {
                                        " " span.conflict title="linked into one person with a case the office decided is someone else" { "contradicts a distinct decision" }
                                    }
                                }
                                td { (c.changed_at) }
                            }
                        }
                    }
                }
                @if pages > 1 { (pager) }
            };
            Ok(shell(Some(Section::Cases), "Cases", body))
        })
        .await
}
