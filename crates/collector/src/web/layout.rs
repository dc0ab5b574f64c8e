//! What every page shares: the frame around it, the stylesheet, and error pages.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::error::{CliError, USAGE};

/// The stylesheet, from the binary (the policy allows no inline style).
const STYLE: &str = include_str!("style.css");

/// The sections in the bar at the top of every page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Cases,
    Report,
    Editions,
    Map,
    Matches,
}

/// A whole page: the bar, the title, the body.
pub(crate) fn shell(section: Option<Section>, title: &str, body: Markup) -> Markup {
    let link = |to: Section, href: &str, label: &str| {
        html! {
            @if section == Some(to) { a.current href=(href) aria-current="page" { (label) } }
            @else { a href=(href) { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Cairn office" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                nav.bar {
                    span.brand { "Cairn office" }
                    (link(Section::Cases, "/", "Cases"))
                    (link(Section::Report, "/report", "Report"))
                    (link(Section::Editions, "/editions", "Editions"))
                    (link(Section::Map, "/map", "Map"))
                    (link(Section::Matches, "/matches", "Matches"))
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub(crate) async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

pub(crate) async fn not_found() -> WebError {
    WebError::new(StatusCode::NOT_FOUND, "there is no such page")
}

/// A failure, shown as a page with one sentence.
#[derive(Debug)]
pub(crate) struct WebError {
    status: StatusCode,
    message: String,
}

impl WebError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn failure(message: impl Into<String>) -> Self {
        WebError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// A command's error: bad input is the request's fault (400), anything else the server's.
impl From<CliError> for WebError {
    fn from(e: CliError) -> Self {
        let status = if e.code == USAGE {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        WebError::new(status, e.message)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = html! {
            p.error { (self.message) }
            p { a href="/" { "Back to the cases" } }
        };
        (self.status, shell(None, &title, body)).into_response()
    }
}

/// A 303 to `target` (a path of ours), without the panic `Redirect` has for a bad one.
pub(crate) fn see_other(target: &str) -> Response {
    match header::HeaderValue::from_str(target) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => WebError::failure("cannot send the browser back to the page").into_response(),
    }
}
