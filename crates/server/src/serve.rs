//! Serving: bind, TLS, the `listening` file, and graceful shutdown on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use tokio::task::JoinHandle;

use crate::app::{router, AppState, Limits};
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::storage::{AnyStorage, Database};

/// The file, inside the server directory, holding the bound address while the server runs.
pub const LISTENING_FILE: &str = "listening";
/// How long in-flight requests may take to finish after a shutdown signal.
pub const GRACE: Duration = Duration::from_secs(30);

/// A server running in this process.
pub struct RunningServer {
    addr: SocketAddr,
    fingerprint: String,
    handle: Handle<SocketAddr>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Loads `DIR/server.toml`, opens the database (`database` overrides the configured
    /// one), binds and starts serving in the background.
    pub async fn start(dir: &Path, database: Option<&str>) -> Result<RunningServer, ServerError> {
        let config = ServerConfig::load(dir)?;
        let database = match database {
            Some(setting) => Database::parse(setting, dir),
            None => config.database(dir),
        };
        let storage = AnyStorage::open(&database).await?;
        let (cert, key) = config.tls_paths(dir);
        let (tls, fingerprint) = crate::tls::load(&cert, &key)?;
        let limits = Limits {
            max_request_bytes: config.max_request_bytes,
            max_page: config.max_page,
            max_clock_skew_secs: config.max_clock_skew_secs,
        };
        let app = router(AppState::new(storage, config.office.clone(), limits));
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))
            .map_err(|source| ServerError::Bind { addr, source })?;
        let handle = Handle::new();
        let task = tokio::spawn(server.handle(handle.clone()).serve(app.into_make_service()));
        tracing::info!(%addr, database = %database.describe(), %fingerprint, "listening");
        Ok(RunningServer {
            addr,
            fingerprint,
            handle,
            task,
        })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The certificate's SHA-256 fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Stops accepting connections and lets in-flight requests finish within `grace`.
    pub fn shutdown(&self, grace: Duration) {
        self.handle.graceful_shutdown(Some(grace));
    }

    /// Waits until the server has stopped.
    pub async fn stopped(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ServerError::Bind {
                addr: self.addr,
                source,
            }),
            Err(e) => Err(ServerError::Config(format!("the server task failed: {e}"))),
        }
    }
}

/// `cairn-server run`: serves until SIGINT or SIGTERM, then finishes in-flight requests.
/// Writes the bound address to `DIR/listening` while running.
pub async fn run(dir: &Path, database: Option<&str>) -> Result<(), ServerError> {
    let server = RunningServer::start(dir, database).await?;
    let listening = dir.join(LISTENING_FILE);
    write_atomically(&listening, &format!("{}\n", server.addr()))?;
    println!("listening on {}", server.addr());
    wait_for_signal().await?;
    tracing::info!("shutting down: finishing requests in flight");
    server.shutdown(GRACE);
    let result = server.stopped().await;
    let _ = std::fs::remove_file(&listening);
    tracing::info!("stopped");
    result
}

async fn wait_for_signal() -> Result<(), ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ServerError::Config(format!("cannot watch for SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| ServerError::Config(format!("cannot watch for SIGINT: {e}")))?;
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "received"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "received"),
    }
    Ok(())
}

/// Writes a file so that a reader sees either nothing or the whole content.
pub(crate) fn write_atomically(path: &Path, content: &str) -> Result<(), ServerError> {
    let mut tmp = PathBuf::from(path);
    tmp.set_extension("tmp");
    std::fs::write(&tmp, content).map_err(|e| ServerError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ServerError::io("write", path, e))
}
