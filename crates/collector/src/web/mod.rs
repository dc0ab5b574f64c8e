//! `cairn office serve`: the office's review pages, served to a browser on this machine from
//! the office vault (never from the central server).
//!
//! Everything a page shows or does goes through the calls the commands use: the vault's case
//! list, documents, history and `edit_case`, the model's `Edit`s (a verification is the same
//! edit as `cairn case verify`, a review as `cairn office review`, resolving a conflict is
//! setting the field to the picked value, a link decision is `Vault::link` as `cairn case
//! link` calls it), `cairn office match`'s candidates, `cairn report`'s counting and chart, and
//! the editions `cairn report publish` kept, as `cairn report show` prints them; a field set in
//! the browser is the edit `cairn case edit --set` makes, and a photo is decrypted as `cairn
//! case attachment get` decrypts it. Pages are rendered on the server with maud, which
//! escapes every value; no script is served and no asset comes from outside the binary or
//! this machine: the map is drawn and clustered here (see [`map`]), over the world outline
//! bundled in the binary or the tiles of an MBTiles file the office gives (`--basemap`).
//!
//! The keys are unlocked once, at start; every request opens the vault afresh with them, so a
//! page shows what `cairn sync` brought in meanwhile, and the vault is never held open (other
//! `cairn` commands run as usual). The cases' summaries are kept between requests and listed
//! again only when the vault's cases changed ([`Vault::cases_mark`]), so a page of the table
//! costs the same at 100,000 cases as at 100. What guards the requests is in [`guard`].

mod attachments;
mod basemap;
mod case_page;
mod cases;
mod connections;
mod editions;
mod guard;
mod layout;
mod map;
mod matches;
mod report_page;
mod table;
mod world;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use cairn_crypto::{DeviceKeys, Zeroizing};
use cairn_vault::{Home, Vault};
use tokio::sync::Semaphore;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::error::CliError;

pub(crate) use layout::WebError;

/// How long one request may take, from its first byte to the last of its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many requests may work on the vault at once (each on a blocking thread).
const VAULT_WORKERS: usize = 4;

/// What every request shares.
pub(crate) struct AppState {
    home: Home,
    /// The unlocked keys, as the unlock agent keeps them; zeroized when the server ends.
    keys: Zeroizing<Vec<u8>>,
    /// Place codes and their names: the office's list as the vault held it when this started
    /// (`cairn office places` changes show after a restart), with the configuration's places.
    places: BTreeMap<String, String>,
    guard: guard::Guard,
    workers: Arc<Semaphore>,
    /// The cases' summaries as last listed, with the mark of the vault they were listed from.
    cases: Mutex<Option<Arc<cases::Cases>>>,
    /// The office's base map (`--basemap`), if given.
    basemap: Option<basemap::Basemap>,
}

impl AppState {
    /// Runs `work` on the vault, opened afresh with the keys unlocked at start, on a blocking
    /// thread (SQLite and Automerge are synchronous).
    pub(crate) async fn with_vault<T, F>(self: &Arc<Self>, work: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vault, &AppState) -> Result<T, CliError> + Send + 'static,
    {
        // Held by the blocking work itself: a request that timed out leaves its work running,
        // and that still counts.
        let permit = Arc::clone(&self.workers)
            .acquire_owned()
            .await
            .map_err(|_| WebError::failure("the server is shutting down"))?;
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let keys = DeviceKeys::from_unlocked_bytes(&state.keys)
                .map_err(|e| CliError::failure(e.to_string()))?;
            let mut vault = state.home.open_unlocked(keys)?;
            if !vault.speaks_for_office() {
                return Err(CliError::failure(
                    "the vault here is no longer the office's nor a staff device's: restart `cairn office serve`",
                ));
            }
            work(&mut vault, &state)
        })
        .await
        .map_err(|e| WebError::failure(format!("a request failed: {e}")))?
        .map_err(WebError::from)
    }

    /// The name of a place code (the office's list, else the configuration), else the code.
    pub(crate) fn place_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.places.get(code).map_or(code, String::as_str)
    }
}

pub fn serve(config: &Config, args: ServeArgs) -> Result<(), CliError> {
    // Said before the passphrase is asked: a refused address needs no vault.
    let listen = args.listen;
    if !listen.ip().is_loopback() {
        if !args.allow_non_loopback {
            return Err(CliError::usage(format!(
                "{listen} is not a loopback address: the office's pages are for this machine \
                 (127.0.0.1). Add --allow-non-loopback only on a network you trust"
            )));
        }
        eprintln!(
            "cairn: warning: serving on {listen}, beyond this machine, over plain HTTP: anyone who learns the token can read and change every case"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the web server: {e}")))?;
    // Bound before the passphrase is asked, so a port in use costs no unlock.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .map_err(|e| CliError::failure(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::failure(format!("cannot listen on {listen}: {e}")))?;

    // Checked before the passphrase is asked: a vector or unreadable file needs no vault.
    let basemap = args
        .basemap
        .as_deref()
        .map(basemap::Basemap::open)
        .transpose()?;
    let vault = crate::office::open_office(config)?;
    let state = Arc::new(AppState {
        home: vault.home().clone(),
        keys: vault.keys().to_unlocked_bytes(),
        places: crate::places::Places::load(config, &vault)?.names(),
        guard: guard::Guard::new(addr),
        workers: Arc::new(Semaphore::new(VAULT_WORKERS)),
        cases: Mutex::new(None),
        basemap,
    });
    drop(vault);

    // The URL alone on standard output, for a script (or a test) to read; the rest is said
    // on standard error.
    println!("{}", state.guard.start_url());
    eprintln!(
        "Serving the office vault {} at http://{addr}/ to this machine: open the URL above (its token is good until this stops). Ctrl-C stops it.",
        config.home.display()
    );
    // The summaries listed before the first visit, so it does not wait for them.
    let warm = Arc::clone(&state);
    runtime.spawn(async move {
        let _ = warm
            .with_vault(|vault, state| state.cases(vault).map(drop))
            .await;
    });
    runtime.block_on(run(listener, router(state)))?;
    eprintln!("Stopped serving the office vault.");
    Ok(())
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(table::page))
        .route("/case/{reference}", get(case_page::page))
        .route("/case/{reference}/resolve", post(case_page::resolve))
        .route("/case/{reference}/verify", post(case_page::verify))
        .route("/case/{reference}/review", post(case_page::review))
        .route("/case/{reference}/set", post(case_page::set))
        .route(
            "/case/{reference}/attachment/{hash}",
            get(attachments::attachment),
        )
        .route("/report", get(report_page::page))
        .route("/report/chart.svg", get(report_page::chart))
        .route("/editions", get(editions::list))
        .route("/editions/{id}", get(editions::page))
        .route("/editions/{id}/chart.svg", get(editions::chart_svg))
        .route("/editions/{id}/signed", get(editions::signed))
        .route("/editions/{id}/since", get(editions::compare))
        .route("/editions/{id}/since/{old}", get(editions::since))
        .route("/map", get(map::page))
        .route("/basemap/{z}/{x}/{y}", get(basemap::tile))
        .route("/matches", get(matches::page))
        .route("/matches/{a}/{b}", get(matches::pair).post(matches::decide))
        .route("/style.css", get(layout::stylesheet))
        .fallback(layout::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::check,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

async fn run(listener: tokio::net::TcpListener, app: Router) -> Result<(), CliError> {
    connections::serve(listener, app, shutdown_signal())
        .await
        .map_err(|e| CliError::failure(format!("the web server failed: {e}")))
}

/// Ctrl-C or SIGTERM: stop accepting, let the requests in progress finish.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
