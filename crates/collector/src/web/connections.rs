//! The connections to the office's pages, bounded so that nobody can stall them by holding
//! connections open.
//!
//! - **Timeouts.** A connection has [`HEAD_TIMEOUT`] to send each request head, from the
//!   moment it is accepted or its last answer was sent: a connection that sends nothing,
//!   sends its head a byte at a time, or sits idle between requests is closed then. The
//!   request itself then has the router's request timeout.
//! - **Per peer and in all.** A peer (an address: on loopback, everyone on this machine)
//!   holds at most [`PER_PEER`] connections, and all peers together at most [`TOTAL`].
//! - **Idle ones give way.** A new connection over either cap closes the oldest idle
//!   connection (one with no request in progress) of that peer, or of the peer holding the
//!   most; only when every one of them is busy answering a request is the new one refused.
//!   So a page asked for is answered at once however many idle or half-sent connections
//!   anyone holds: a request from someone without the page's token is answered (refused) at
//!   once, so only the office's own requests keep a connection busy for long.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How long a connection may take to send a request head, counted from its opening or from
/// its last answer (so also how long it may sit idle between requests).
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The most connections one peer holds at once (a browser opens about six).
pub(crate) const PER_PEER: usize = 16;
/// The most connections held at once.
pub(crate) const TOTAL: usize = 64;
/// The largest request head read (and the read buffer of a connection).
const READ_BUFFER: usize = 64 * 1024;
/// How long requests in progress may take to finish once the server is told to stop.
const GRACE: Duration = Duration::from_secs(30);

/// Who holds a connection: the address it comes from.
type Peer = IpAddr;

/// One open connection, as the cap sees it.
struct Open {
    peer: Peer,
    opened: Instant,
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    /// Notified to close it.
    close: Arc<Notify>,
}

/// Every open connection.
#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, Open>,
}

impl Registry {
    /// Makes room for a connection of `peer` (closing an idle one if a cap is reached), or
    /// `None` when every connection that would have to give way is busy.
    fn admit(&mut self, peer: Peer) -> Option<(u64, Arc<AtomicUsize>, Arc<Notify>)> {
        let of_peer = self.open.values().filter(|c| c.peer == peer).count();
        if of_peer >= PER_PEER {
            self.close_idle(peer)?;
        } else if self.open.len() >= TOTAL {
            let mut counts: HashMap<Peer, usize> = HashMap::new();
            for c in self.open.values() {
                *counts.entry(c.peer).or_default() += 1;
            }
            let mut peers: Vec<(Peer, usize)> = counts.into_iter().collect();
            peers.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            peers.into_iter().find_map(|(p, _)| self.close_idle(p))?;
        }
        let id = self.next;
        self.next += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        self.open.insert(
            id,
            Open {
                peer,
                opened: Instant::now(),
                busy: Arc::clone(&busy),
                close: Arc::clone(&close),
            },
        );
        Some((id, busy, close))
    }

    /// Closes the oldest connection of `peer` with no request in progress, if there is one.
    fn close_idle(&mut self, peer: Peer) -> Option<()> {
        let (&id, _) = self
            .open
            .iter()
            .filter(|(_, c)| c.peer == peer && c.busy.load(Ordering::SeqCst) == 0)
            .min_by_key(|(_, c)| c.opened)?;
        let gone = self.open.remove(&id)?;
        gone.close.notify_one();
        Some(())
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered {
    registry: Arc<Mutex<Registry>>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.open.remove(&self.id);
        }
    }
}

/// Counts a request in progress until it has its answer.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn start(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(count))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the requests in progress
/// finish (for at most [`GRACE`]).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let (stop, _) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it was taken: wait
                // a moment rather than spin.
                Err(e) => {
                    tracing::info!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Reap finished connections as new ones come.
        while tasks.try_join_next().is_some() {}
        let admitted = registry.lock().ok().and_then(|mut r| r.admit(addr.ip()));
        let Some((id, busy, close)) = admitted else {
            tracing::info!(%addr, "connection refused: every connection is answering a request");
            continue;
        };
        let registered = Registered {
            registry: Arc::clone(&registry),
            id,
        };
        tasks.spawn(connection(
            stream,
            app.clone(),
            busy,
            close,
            stop.subscribe(),
            registered,
        ));
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} }).await;
    Ok(())
}

/// Serves one connection until it closes, times out, is told to give way, or the server
/// stops (then after the request in progress).
async fn connection(
    stream: TcpStream,
    app: Router,
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    _registered: Registered,
) {
    let router = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |request| {
        let busy = Busy::start(&busy);
        let answer = router.call(request);
        async move {
            let answer = answer.await;
            drop(busy);
            answer
        }
    });
    let mut conn = pin!(hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(READ_BUFFER)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        _ = conn.as_mut() => return,
        () = close.notified() => return,
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_give_way_and_busy_ones_do_not() {
        let mut registry = Registry::default();
        let me = Peer::from([127, 0, 0, 1]);
        let first = registry.admit(me).unwrap().0;
        for _ in 1..PER_PEER {
            registry.admit(me).unwrap();
        }
        // At the cap: the oldest idle one of the same peer gives way.
        assert!(registry.admit(me).is_some());
        assert!(!registry.open.contains_key(&first));
        // Other peers have places of their own, up to the total; over it, the peer holding
        // the most gives way.
        for user in 1..(TOTAL / PER_PEER) as u8 {
            for _ in 0..PER_PEER {
                registry.admit(Peer::from([10, 0, 0, user])).unwrap();
            }
        }
        assert_eq!(registry.open.len(), TOTAL);
        // Busy connections never give way: the peer holding the most that has an idle one
        // does, and a peer whose every connection is busy gets no more.
        for c in registry.open.values().filter(|c| c.peer == me) {
            c.busy.fetch_add(1, Ordering::SeqCst);
        }
        registry.admit(Peer::from([10, 0, 1, 1])).unwrap();
        assert_eq!(registry.open.len(), TOTAL);
        let held = |r: &Registry| r.open.values().filter(|c| c.peer == me).count();
        assert_eq!(held(&registry), PER_PEER);
        assert!(registry.admit(me).is_none());
        assert_eq!(held(&registry), PER_PEER);
    }
}
