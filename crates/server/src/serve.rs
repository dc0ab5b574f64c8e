//! Serving: bind, TLS, the `listening` file, and graceful shutdown on SIGINT or SIGTERM.
//!
//! Connections are capped: the listener takes a slot from a semaphore before it accepts a
//! connection (as mini-redis does), and the connection gives it back when it closes, so
//! connections over `max_connections` wait in the operating system's queue instead of in
//! this process. Each connection then has `header_timeout_secs` for its TLS handshake and
//! again for its first request head, and `idle_timeout_secs` for each later head (hyper's
//! header timer runs from the moment the server waits for a head, so it also bounds how long
//! a kept-alive connection may sit idle). An answer the peer stops reading for
//! `body_timeout_secs` closes the connection. Only HTTP/1.1 is spoken, with a small read
//! buffer.

use std::future::Future;
use std::io;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::{AddrListener, Address, Handle};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::app::{router, AppState, Limits, Peer};
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
    handle: Handle<Peer>,
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
        for secret in [&key, &dir.join(crate::config::CONFIG_FILE)] {
            crate::files::restrict(secret)
                .map_err(|e| ServerError::io("make owner-only", secret, e))?;
        }
        let (tls, fingerprint) = crate::tls::load(&cert, &key)?;
        let limits = Limits::from_config(&config);
        let app = router(AppState::with_metrics_token(
            storage,
            config.office.clone(),
            limits,
            config.metrics_token.clone(),
        ));
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .map_err(|source| ServerError::Bind { addr, source })?;
        let listener = CappedListener {
            listener,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            send_timeout: Duration::from_secs(config.body_timeout_secs),
        };
        let header_timeout = Duration::from_secs(config.header_timeout_secs);
        let acceptor =
            RustlsAcceptor::new(RustlsConfig::from_config(tls)).handshake_timeout(header_timeout);
        let mut server = axum_server::Server::<Peer>::from_listener(listener)
            .acceptor(acceptor)
            .http1_only()
            .first_request_timeout(header_timeout);
        server
            .http_builder()
            .http1()
            .header_read_timeout(Duration::from_secs(config.idle_timeout_secs))
            .max_buf_size(READ_BUFFER)
            .keep_alive(true);
        let handle = Handle::new();
        let task = tokio::spawn(
            server
                .handle(handle.clone())
                .serve(app.into_make_service_with_connect_info::<Peer>()),
        );
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
    // A full disk under stdout must not stop a server that is already listening.
    let _ = writeln!(std::io::stdout(), "listening on {}", server.addr());
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

/// Largest read buffer of one connection: request heads are small, and bodies are read
/// through it in pieces.
const READ_BUFFER: usize = 64 * 1024;

impl Address for Peer {
    type Stream = CappedStream;
    type Listener = CappedListener;
}

/// A TCP listener that accepts a connection only once it has a free slot for it.
pub struct CappedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    send_timeout: Duration,
}

impl AddrListener<CappedStream, Peer> for CappedListener {
    async fn bind_to(_: Peer) -> io::Result<Self> {
        Err(io::Error::other(
            "a capped listener is made from a bound listener, not an address",
        ))
    }

    async fn accept_stream(&self) -> io::Result<(CappedStream, Peer)> {
        // Over the cap, wait here: further connections stay in the kernel's queue.
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("the connection slots are closed"))?;
        let (stream, addr) = self.listener.accept().await?;
        Ok((
            CappedStream {
                stream,
                _slot: slot,
                send_timeout: self.send_timeout,
                stalled: None,
            },
            Peer(addr),
        ))
    }

    fn get_local_addr(&self) -> io::Result<Peer> {
        self.listener.local_addr().map(Peer)
    }
}

/// A connection holding its slot until it is dropped. A write that cannot proceed for
/// `send_timeout` (the peer stopped reading an answer) fails, which closes the connection
/// and releases what the answer held.
pub struct CappedStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    send_timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl CappedStream {
    /// Called when a write is pending: fails it once it has waited `send_timeout`.
    fn poll_stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.send_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn written<T>(
        &mut self,
        cx: &mut Context<'_>,
        done: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match done {
            Poll::Pending => self.poll_stalled(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.written(cx, done)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_flush(cx);
        this.written(cx, done)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.written(cx, done)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Writes a file so that a reader sees either nothing or the whole content.
pub(crate) fn write_atomically(path: &Path, content: &str) -> Result<(), ServerError> {
    let mut tmp = PathBuf::from(path);
    tmp.set_extension("tmp");
    std::fs::write(&tmp, content).map_err(|e| ServerError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ServerError::io("write", path, e))
}
