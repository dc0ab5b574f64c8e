//! Published editions on the office's pages: the list (`cairn report editions`), each
//! edition as published (`cairn report show ID`), its signed file (`--format signed`) and
//! what changed between two (`cairn report show NEW --since OLD`).
//!
//! An edition's figures are worked out again from its cases, as `report show` does, and laid
//! out by the report page's own markup: the numbers are the CLI's. A damaged edition (figures
//! that no longer follow) is said, never shown.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_model::edition::EditionName;
use cairn_vault::SignedEdition;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::layout::{see_other, shell, Section};
use super::report_page::figures_body;
use super::{AppState, WebError};
use crate::error::CliError;
use crate::report::editions::{changes_html, pick, published};
use crate::report::{chart, title};

fn failure(e: impl std::fmt::Display) -> CliError {
    CliError::failure(e.to_string())
}

/// The edition `wanted` names, as `cairn report show` takes it (`pick`: a full id, a unique
/// prefix of its id or hash, or `latest`); one that names none is a page that does not exist
/// (404), a name too short or naming several is the request's fault (400).
fn named(editions: Vec<SignedEdition>, wanted: &str) -> Result<SignedEdition, WebError> {
    let w = wanted.trim().to_ascii_lowercase();
    // The id first: an address from our own links names a full id, and needs no hashing.
    let names = |e: &SignedEdition| {
        e.edition.id.starts_with(&w) || e.hash().is_ok_and(|h| h.starts_with(&w))
    };
    let checked = w.len() >= 4 && w != "latest";
    if editions.is_empty() || (checked && !editions.iter().any(names)) {
        return Err(WebError::new(
            StatusCode::NOT_FOUND,
            format!(
                "there is no edition {} here: the editions published are listed at /editions",
                crate::output::escape(wanted.trim())
            ),
        ));
    }
    pick(editions, wanted).map_err(WebError::from)
}

/// An edition's name, for links and choices.
fn names(editions: &[SignedEdition]) -> Vec<EditionName> {
    editions
        .iter()
        .map(|e| EditionName::from(&e.edition))
        .collect()
}

/// `GET /editions`: every edition published here, newest first.
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Result<Markup, WebError> {
    state
        .with_vault(|vault, _| {
            let editions = vault.editions()?;
            let mut rows = Vec::with_capacity(editions.len());
            for e in editions.iter().rev() {
                let counted = e.edition.cases.iter().filter(|c| c.counted).count();
                rows.push((e, counted, e.short_hash()?));
            }
            let body = html! {
                @if rows.is_empty() {
                    p { "No edition has been published here yet: " code { "cairn report publish" } " makes one." }
                } @else {
                    p.help { "Each edition as the office published it, newest first; "
                        code { "cairn report editions" } " lists the same." }
                    table.editions {
                        thead { tr {
                            th { "Title" } th { "Published at" } th { "Period" }
                            th { "Records counted" } th { "Hash" } th { "Sentence" }
                        } }
                        tbody {
                            @for (e, counted, hash) in &rows {
                                tr {
                                    td { a href={ "/editions/" (e.edition.id) } { (e.edition.title) } }
                                    td { (e.edition.published_at) }
                                    td {
                                        (e.edition.from) " to " (e.edition.to)
                                        @if e.edition.include_alleged { br; span.kind { "alleged counted too" } }
                                    }
                                    td.n { (counted) }
                                    td.id { (hash) }
                                    td { (e.edition.sentence) }
                                }
                            }
                        }
                    }
                }
            };
            Ok(shell(Some(Section::Editions), "Published editions", body))
        })
        .await
}

/// `GET /editions/{id}`: the edition as `cairn report show ID` prints it, its signed file,
/// and a form to compare it with another.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    state
        .with_vault(move |vault, _| {
            let editions = vault.editions()?;
            let others = names(&editions);
            let signed = match named(editions, &id) {
                Ok(signed) => signed,
                Err(e) => return Ok(Err(e)),
            };
            Ok(Ok(edition_page(&signed, &others)?))
        })
        .await?
}

/// The page of one edition; `all` names every edition here, for the comparison form.
fn edition_page(signed: &SignedEdition, all: &[EditionName]) -> Result<Markup, CliError> {
    let figures = signed.edition.figures().map_err(failure)?;
    let name = published(signed)?;
    let id = &signed.edition.id;
    let others: Vec<&EditionName> = all.iter().filter(|e| e.id != *id).collect();
    // The one published just before this, else the latest other: what a reader compares with.
    let before = others
        .iter()
        .rev()
        .find(|e| (&e.published_at, &e.id) < (&signed.edition.published_at, id))
        .or(others.last())
        .map(|e| e.id.clone());
    let body = html! {
        p.edition { (name.line()) }
        p {
            a href={ "/editions/" (id) "/signed" } download { "Download the signed edition" }
            " (JSON, what " code { "cairn report show ID --format signed" } " writes; "
            code { "cairn report verify FILE" } " checks it on any machine)."
        }
        @if others.is_empty() {
            p.help { "No other edition has been published here to compare this one with." }
        } @else {
            form.filters method="get" action={ "/editions/" (id) "/since" } {
                label { "Compare with "
                    select name="old" {
                        @for e in &others {
                            option value=(e.id) selected[before.as_deref() == Some(e.id.as_str())] {
                                (e.title) " (" (e.published_at) ")"
                            }
                        }
                    }
                }
                button type="submit" { "Show what changed" }
            }
        }
        h2 { (title(&figures)) }
        (figures_body(&figures))
        figure {
            img.chart src={ "/editions/" (id) "/chart.svg" } alt="Killed by cause, by month";
        }
    };
    Ok(shell(Some(Section::Editions), &signed.edition.title, body))
}

/// `GET /editions/{id}/chart.svg`: the chart `cairn report show ID --chart FILE.svg` draws.
pub(crate) async fn chart_svg(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let svg = state
        .with_vault(move |vault, _| {
            let signed = match named(vault.editions()?, &id) {
                Ok(signed) => signed,
                Err(e) => return Ok(Err(e)),
            };
            let figures = signed.edition.figures().map_err(failure)?;
            Ok(Ok(chart::svg(&figures).map_err(CliError::failure)?))
        })
        .await??;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `GET /editions/{id}/signed`: the signed edition as a file to keep, byte for byte what
/// `cairn report show ID --format signed` prints.
pub(crate) async fn signed(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (id, file) = state
        .with_vault(move |vault, _| {
            let signed = match named(vault.editions()?, &id) {
                Ok(signed) => signed,
                Err(e) => return Ok(Err(e)),
            };
            Ok(Ok((signed.edition.id.clone(), signed.to_file()?)))
        })
        .await??;
    // The file name from the id, kept to what a header and a file system take whatever it is.
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"edition-{safe}.json\""))
            .map_err(|_| WebError::failure("cannot name the edition's file"))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file,
    )
        .into_response())
}

/// The comparison form's query.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Compare {
    old: String,
}

/// `GET /editions/{id}/since?old=OTHER`: the comparison form lands here and is sent on to the
/// difference, the earlier edition as the one compared with, both by full id.
pub(crate) async fn compare(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<Compare>,
) -> Result<Response, WebError> {
    if query.old.trim().is_empty() {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "pick the edition to compare with",
        ));
    }
    let target = state
        .with_vault(move |vault, _| {
            let editions = vault.editions()?;
            let pair =
                named(editions.clone(), &id).and_then(|a| Ok((a, named(editions, &query.old)?)));
            let (a, b) = match pair {
                Ok(pair) => pair,
                Err(e) => return Ok(Err(e)),
            };
            let order = |e: &SignedEdition| (e.edition.published_at.clone(), e.edition.id.clone());
            let (old, new) = if order(&a) <= order(&b) {
                (a, b)
            } else {
                (b, a)
            };
            Ok(Ok(format!(
                "/editions/{}/since/{}",
                new.edition.id, old.edition.id
            )))
        })
        .await??;
    Ok(see_other(&target))
}

/// `GET /editions/{id}/since/{old}`: what changed from `old` to `id`, as `cairn report show
/// ID --since OLD` computes it.
pub(crate) async fn since(
    State(state): State<Arc<AppState>>,
    Path((id, old)): Path<(String, String)>,
) -> Result<Markup, WebError> {
    state
        .with_vault(move |vault, _| {
            let editions = vault.editions()?;
            let pair =
                named(editions.clone(), &id).and_then(|new| Ok((new, named(editions, &old)?)));
            let (new, old) = match pair {
                Ok(pair) => pair,
                Err(e) => return Ok(Err(e)),
            };
            let changes =
                cairn_model::edition::changes(&old.edition, &new.edition, true).map_err(failure)?;
            let body = html! {
                p {
                    "From edition " a href={ "/editions/" (old.edition.id) } { (old.edition.title) }
                    " (" (old.edition.published_at) ", " span.id { (old.edition.id) } ") to edition "
                    a href={ "/editions/" (new.edition.id) } { (new.edition.title) }
                    " (" (new.edition.published_at) ", " span.id { (new.edition.id) } "), by reference; "
                    code { "cairn report show NEW --since OLD" } " prints the same."
                }
                p.sentence { (changes.sentence) }
                // Built by `report show --since --format html`'s own function, which escapes
                // every value.
                (PreEscaped(changes_html(&changes)))
            };
            let title = format!("What changed since \u{201c}{}\u{201d}", old.edition.title);
            Ok(Ok(shell(Some(Section::Editions), &title, body)))
        })
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::edition::Edition;
    use cairn_model::report::{parse_day, Options, Period, ReportCase, Taken};

    fn edition(id: &str) -> SignedEdition {
        let case = ReportCase {
            kind: "killed".into(),
            status: "confirmed".into(),
            cause: Some("captivity".into()),
            incident_date: Some("2020-10-02".into()),
            civilian: Some("yes".into()),
            place: "KHR".into(),
            reference: "KHR-T03-7KQ2-0001".into(),
            id: "c1".into(),
            ..ReportCase::default()
        };
        let period = Period::new(
            parse_day("2020-09-27").unwrap(),
            parse_day("2020-12-22").unwrap(),
        )
        .unwrap();
        let taken = Taken {
            made_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            data_as_of: None,
        };
        let options = Options {
            include_alleged: false,
            by: None,
        };
        let edition = Edition::freeze(
            id.into(),
            "Interim <b>report</b>".into(),
            &[(case, vec!["ab".repeat(32)])],
            period,
            options,
            &taken,
        )
        .unwrap();
        SignedEdition {
            edition,
            signer: String::new(),
            signature: String::new(),
        }
    }

    fn status(e: WebError) -> StatusCode {
        e.into_response().status()
    }

    #[test]
    fn an_edition_is_named_as_report_show_names_it() {
        let id = "0f1e2d3c-0000-4000-8000-000000000001";
        let one = || vec![edition(id)];
        assert_eq!(named(one(), id).unwrap().edition.id, id);
        assert_eq!(named(one(), "0F1E2D3C").unwrap().edition.id, id);
        assert_eq!(named(one(), "latest").unwrap().edition.id, id);
        let hash = edition(id).hash().unwrap();
        assert_eq!(named(one(), &hash[..10]).unwrap().edition.id, id);
        for unknown in ["ffffffff", "<script>alert(1)</script>", "0f1e2d3c-x"] {
            let e = named(one(), unknown).unwrap_err();
            assert!(format!("{e:?}").contains("there is no edition"), "{e:?}");
            assert_eq!(status(e), StatusCode::NOT_FOUND, "{unknown}");
        }
        assert_eq!(
            status(named(Vec::new(), id).unwrap_err()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(named(one(), "0f").unwrap_err()),
            StatusCode::BAD_REQUEST
        );
        let two = vec![edition(id), edition("0f1e2d3c-0000-4000-8000-000000000002")];
        assert_eq!(
            status(named(two, "0f1e2d3c").unwrap_err()),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn a_damaged_edition_is_said_not_shown() {
        let sound = edition("0f1e2d3c-0000-4000-8000-000000000001");
        let page = edition_page(&sound, &[]).unwrap().into_string();
        assert!(page.contains(&sound.edition.sentence), "{page}");
        assert!(page.contains("Interim &lt;b&gt;report&lt;/b&gt;"), "{page}");
        assert!(!page.contains("<b>report"), "{page}");

        let mut sentence = sound.clone();
        sentence.edition.sentence = "Nothing happened.".into();
        let mut mark = sound.clone();
        mark.edition.cases[0].counted = false;
        let mut figure = sound;
        figure.edition.figures["killed"]["total"] = 9.into();
        for damaged in [sentence, mark, figure] {
            let e = edition_page(&damaged, &[]).unwrap_err();
            assert!(
                e.message.contains("do not follow from its cases"),
                "{}",
                e.message
            );
        }
    }
}
