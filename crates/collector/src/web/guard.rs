//! What every request passes before a page sees it, and what every answer carries.
//!
//! - **Host.** The `Host` header must name the address listened on (or `localhost` with its
//!   port, for a loopback address): a page of another site whose name an attacker points at
//!   127.0.0.1 (DNS rebinding) is refused.
//! - **Token.** A random 256-bit token is made for each run and printed in the start URL. A
//!   visit with `?token=` sets it as an HttpOnly, SameSite=Strict cookie and is redirected to
//!   the same page without it, so the token leaves the address bar and the history; every
//!   other request needs the cookie: none is 401, a wrong one 403. Compared in constant time.
//! - **POST.** A form also carries a second per-run token (CSRF), and a request whose
//!   `Origin` names another site is refused; bodies over [`MAX_BODY`] are refused from their
//!   length.
//! - **Answers** carry a Content-Security-Policy that allows nothing from elsewhere and no
//!   inline script or style, deny framing, send no referrer and are never cached.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::layout::see_other;
use super::{AppState, WebError};

/// The largest request body read (a form's text: a basis, a comment).
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// The cookie that carries the token after the first visit.
const COOKIE: &str = "cairn_office";
/// The form field that carries the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// The per-run secrets and the names this server answers to.
pub(crate) struct Guard {
    token: String,
    csrf: String,
    /// `Host` values accepted.
    hosts: Vec<String>,
    /// The `Origin` values a form of ours is posted from, the first the one printed.
    origins: Vec<String>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `given` is `secret`, taking the same time wherever they differ.
fn same(given: &str, secret: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(secret.as_bytes()))
}

impl Guard {
    pub(crate) fn new(addr: SocketAddr) -> Guard {
        // As a browser writes them: without the port when it is HTTP's own (80).
        let ip = match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let port = match addr.port() {
            80 => String::new(),
            port => format!(":{port}"),
        };
        let mut names = vec![ip];
        if addr.ip().is_loopback() {
            names.push("localhost".to_owned());
        }
        let origins: Vec<String> = names.iter().map(|n| format!("http://{n}{port}")).collect();
        let mut hosts: Vec<String> = names.iter().map(|n| format!("{n}{port}")).collect();
        if port.is_empty() {
            hosts.extend(names.iter().map(|n| format!("{n}:80")));
        }
        Guard {
            token: random_token(),
            csrf: random_token(),
            origins,
            hosts,
        }
    }

    /// The URL to open: the server with this run's token.
    pub(crate) fn start_url(&self) -> String {
        format!("{}/?token={}", self.origins[0], self.token)
    }

    /// The CSRF token every form of ours carries.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The middleware: refuses what fails a check, lets the rest through, and adds the security
/// headers to every answer, refusals included.
pub(crate) async fn check(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match admit(&state.guard, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal,
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The request, if it may reach a page (a POST's body read and checked), else the answer.
async fn admit(guard: &Guard, request: Request) -> Result<Request, Response> {
    let refuse = |status: StatusCode, message: &str| WebError::new(status, message).into_response();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !guard.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "this server answers only to the address it printed at start",
        ));
    }
    if let Some(token) = query_value(request.uri(), "token") {
        if !same(&token, &guard.token) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "this token is not the one `cairn office serve` printed at its start",
            ));
        }
        return Err(enter(guard, request.uri()));
    }
    match cookie(request.headers()) {
        None => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "open the URL with the token that `cairn office serve` printed at its start",
            ))
        }
        Some(value) if !same(value, &guard.token) => {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "this session is from another run of `cairn office serve`: open the URL it printed at its start",
            ))
        }
        Some(_) => {}
    }
    if request.method() != Method::POST {
        return Ok(request);
    }
    let origin = request.headers().get(header::ORIGIN);
    // Under `Referrer-Policy: no-referrer` a browser sends our own forms as `Origin: null`;
    // the CSRF token is what proves them ours, this only refuses another site by name.
    let ours = |o: &HeaderValue| o == "null" || guard.origins.iter().any(|ours| o == ours.as_str());
    if origin.is_some_and(|o| !ours(o)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "this form was not sent from the office's pages",
        ));
    }
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "this form is too large",
        ));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "this form is too large"))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "this form cannot be read"))?;
    let csrf = fields
        .iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.as_str());
    if !csrf.is_some_and(|c| same(c, &guard.csrf)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "this form is not from this run's pages: reload the page and send it again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The first visit: the token becomes the cookie, and the same page is loaded without it.
fn enter(guard: &Guard, uri: &Uri) -> Response {
    let rest: Vec<(String, String)> = uri
        .query()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "token")
        .collect();
    // Only a path of ours: `//host/...` would send the browser elsewhere.
    let path = uri.path();
    let mut target = if path.starts_with("//") || path.starts_with("/\\") {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    if let Ok(query) = serde_urlencoded::to_string(&rest) {
        if !query.is_empty() {
            target = format!("{target}?{query}");
        }
    }
    let mut response = see_other(&target);
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        guard.token
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn query_value(uri: &Uri, key: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query()?).ok()?;
    pairs.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The value of our cookie, if the request sends it.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()) && !same(&a, &b) && !same("", &a));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cairn_office=xyz; b=2"),
        );
        assert_eq!(cookie(&headers), Some("xyz"));
        headers.insert(header::COOKIE, HeaderValue::from_static("xcairn_office=1"));
        assert_eq!(cookie(&headers), None);
    }

    #[test]
    fn the_server_answers_to_the_names_a_browser_sends() {
        let guard = Guard::new("127.0.0.1:8080".parse().unwrap());
        assert_eq!(guard.hosts, ["127.0.0.1:8080", "localhost:8080"]);
        assert_eq!(
            guard.origins,
            ["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        assert!(guard
            .start_url()
            .starts_with("http://127.0.0.1:8080/?token="));
        // On port 80 a browser leaves the port out of Host and Origin.
        let guard = Guard::new("127.0.0.1:80".parse().unwrap());
        assert_eq!(
            guard.hosts,
            ["127.0.0.1", "localhost", "127.0.0.1:80", "localhost:80"]
        );
        assert_eq!(guard.origins, ["http://127.0.0.1", "http://localhost"]);
        assert!(guard.start_url().starts_with("http://127.0.0.1/?token="));
        let guard = Guard::new("[::1]:8080".parse().unwrap());
        assert_eq!(guard.hosts, ["[::1]:8080", "localhost:8080"]);
        assert!(guard.start_url().starts_with("http://[::1]:8080/?token="));
        // Beyond this machine (--allow-non-loopback): only its own address.
        let guard = Guard::new("192.0.2.1:80".parse().unwrap());
        assert_eq!(guard.hosts, ["192.0.2.1", "192.0.2.1:80"]);
        assert_eq!(guard.origins, ["http://192.0.2.1"]);
    }
}
