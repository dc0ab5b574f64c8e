//! The counts report, as `cairn report` counts and draws it: the figures, the published
//! sentence, the table by month, cause or place, and the chart.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cairn_model::report::{self, By, Figures, Options, Period};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::layout::{shell, Section};
use super::table::select;
use super::{AppState, WebError};
use crate::error::CliError;
use crate::report::{
    apart, as_of, by_name, chart, counted, day, group_values, rows, title, GROUP_COLUMNS,
};

/// The report's settings, as `cairn report`'s flags; empty ones take their defaults.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct Settings {
    /// YYYY-MM-DD; default: the earliest day of any case (as the report dates them).
    #[serde(skip_serializing_if = "String::is_empty")]
    from: String,
    /// YYYY-MM-DD; default: today (UTC).
    #[serde(skip_serializing_if = "String::is_empty")]
    to: String,
    /// `yes`: count alleged and under-investigation cases too.
    #[serde(skip_serializing_if = "String::is_empty")]
    include_alleged: String,
    /// `month`, `cause` or `place`.
    #[serde(skip_serializing_if = "String::is_empty")]
    by: String,
}

impl Settings {
    /// The figures, counted over the vault's cases.
    fn figures(&self, vault: &cairn_vault::Vault) -> Result<Figures, CliError> {
        let cases: Vec<report::ReportCase> = crate::report::report_cases(vault)?
            .into_iter()
            .map(|(case, _)| case)
            .collect();
        let taken = crate::report::taken(vault)?;
        let to = match self.to.trim() {
            "" => time::OffsetDateTime::now_utc().date(),
            typed => day(typed, "To")?,
        };
        let from = match self.from.trim() {
            "" => cases
                .iter()
                .filter_map(|c| {
                    report::case_day(&c.kind, c.found_at.as_deref(), c.incident_date.as_deref())
                })
                .min()
                .unwrap_or(to)
                .min(to),
            typed => day(typed, "From")?,
        };
        let period = Period::new(from, to).ok_or_else(|| {
            CliError::usage(format!(
                "From {from} is after To {to}: give the earlier day first."
            ))
        })?;
        if self.by == "month" && (to.year() - from.year()) > 100 {
            return Err(CliError::usage(
                "by month, a period is at most 100 years: narrow From and To",
            ));
        }
        let by = match self.by.as_str() {
            "" => None,
            "month" => Some(By::Month),
            "cause" => Some(By::Cause),
            "place" => Some(By::Place),
            other => return Err(CliError::usage(format!("cannot group by `{other}`"))),
        };
        let options = Options {
            include_alleged: self.include_alleged == "yes",
            by,
        };
        Ok(report::count(&cases, period, options, &taken))
    }
}

/// The figures as `cairn report --format html` lays them out: what counted, when the data
/// was taken, the sentence, the figures and the table by group (also an edition's page).
pub(crate) fn figures_body(f: &Figures) -> Markup {
    html! {
        p { "Counted: " (counted(f)) "." }
        p.as-of { (as_of(f)) }
        p.sentence { (f.sentence) }
        table.figures {
            thead { tr { th { "Figure" } th { "Count" } } }
            tbody {
                @for r in rows(f).iter().chain(&apart(f)) {
                    tr {
                        td.sub[r.depth > 0] { (r.label) }
                        td.n { (r.count) }
                    }
                }
            }
        }
        @if let (Some(by), Some(groups)) = (f.by, &f.groups) {
            table.figures {
                thead { tr { th { (by_name(by)) } @for c in GROUP_COLUMNS { th { (c) } } } }
                tbody {
                    @for g in groups {
                        tr { td { (g.label) } @for v in group_values(&g.counts) { td.n { (v) } } }
                    }
                }
            }
        }
    }
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Query(settings): Query<Settings>,
) -> Result<Markup, WebError> {
    state
        .with_vault(move |vault, state| {
            let mut f = settings.figures(vault)?;
            crate::report::name_places(&mut f, |code| {
                let name = state.place_name(code);
                (name != code).then(|| format!("{code} {name}"))
            });
            // Never synced, the data is as of the newest change here.
            let newest = match f.data_as_of {
                Some(_) => None,
                None => state.cases(vault)?.all.first().map(|c| c.changed_at.clone()),
            };
            let groups = [("month", "month"), ("cause", "cause"), ("place", "place")];
            let body = html! {
                form.filters method="get" action="/report" {
                    label { "From " input type="date" name="from" value=(f.from); }
                    label { "To " input type="date" name="to" value=(f.to); }
                    label { input type="checkbox" name="include_alleged" value="yes" checked[settings.include_alleged == "yes"]; " count alleged cases too" }
                    (select("by", "Table by", &groups, &settings.by))
                    button type="submit" { "Count" }
                }
                (figures_body(&f))
                @if let Some(newest) = newest {
                    p.as-of.newest { "Data as of " (newest) ", the newest change in this vault." }
                }
                figure {
                    img.chart src={ "/report/chart.svg?" (serde_urlencoded::to_string(&settings).unwrap_or_default()) }
                        alt="Killed by cause, by month";
                }
            };
            Ok(shell(Some(Section::Report), &title(&f), body))
        })
        .await
}

/// The chart `cairn report --chart FILE.svg` draws, for the same settings.
pub(crate) async fn chart(
    State(state): State<Arc<AppState>>,
    Query(settings): Query<Settings>,
) -> Result<Response, WebError> {
    let svg = state
        .with_vault(move |vault, _| {
            let figures = settings.figures(vault)?;
            chart::svg(&figures).map_err(CliError::failure)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
