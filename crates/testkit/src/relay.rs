//! A TCP relay between a client and a server, to count what goes over the wire and to make
//! the link as bad as a field connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

/// A TCP relay on 127.0.0.1 (an ephemeral port) to an upstream address. It counts the bytes
/// it passes in both directions, and may cut or slow connections. It runs on threads of its
/// own, so it serves sync tests and tokio tests alike; it stops accepting when dropped, and
/// each connection ends when either side ends, on a cut, or after 30 s without data.
pub struct Relay {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
}

impl Relay {
    /// A faithful relay to `upstream`.
    pub fn start(upstream: SocketAddr) -> Relay {
        Relay::faulty(upstream, None, 0)
    }

    /// A relay to `upstream` that cuts each connection (both ways) once a number of bytes
    /// drawn from `cut_after` has gone from the server to the client (None: never), and
    /// delays each chunk, either way, by up to `delay_ms` milliseconds (drawn each time).
    pub fn faulty(upstream: SocketAddr, cut_after: Option<Range<usize>>, delay_ms: u64) -> Relay {
        Relay::spawn(upstream, Cut::Download(cut_after), delay_ms)
    }

    /// A relay to `upstream` that cuts each connection once `bytes` have passed through it,
    /// counted in both directions together (a link that drops every `bytes`, whichever way
    /// they flow: what a resumable upload must survive).
    pub fn cutting(upstream: SocketAddr, bytes: usize) -> Relay {
        Relay::spawn(upstream, Cut::Both(bytes), 0)
    }

    /// A relay to `upstream` that asks `draw` for each new connection how many bytes it may
    /// carry, counted in both directions together, before it is cut (None: never). A test
    /// that draws from a seeded generator can replay where its connections were cut.
    pub fn cutting_with(
        upstream: SocketAddr,
        draw: impl FnMut() -> Option<usize> + Send + 'static,
    ) -> Relay {
        Relay::spawn(
            upstream,
            Cut::Drawn(Arc::new(Mutex::new(Box::new(draw)))),
            0,
        )
    }

    fn spawn(upstream: SocketAddr, cut: Cut, delay_ms: u64) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        // Polled, so that the accepting thread sees `stop`.
        listener.set_nonblocking(true).expect("nonblocking relay");
        let addr = listener.local_addr().expect("relay address");
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let down = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (counted, stopped, is_down) = (bytes.clone(), stop.clone(), down.clone());
        let cut_count = cuts.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    // Dropped at once: the client sees its connection closed.
                    Ok(_) if is_down.load(Ordering::Relaxed) => {}
                    Ok((client, _)) => {
                        let link = Link {
                            budgets: cut.budgets(),
                            delay_ms,
                            counted: counted.clone(),
                            down: is_down.clone(),
                            cuts: cut_count.clone(),
                            cut: Arc::new(AtomicBool::new(false)),
                        };
                        let _ = connect(client, upstream, link);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay {
            addr,
            bytes,
            stop,
            down,
            cuts,
        }
    }

    /// `https://127.0.0.1:PORT`, to point a device at the relay instead of the server.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Bytes relayed since the start or the last [`Relay::reset`], both directions.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Counts from zero again.
    pub fn reset(&self) {
        self.bytes.store(0, Ordering::Relaxed);
    }

    /// Takes the link down (new connections are closed at once, open ones cut at their next
    /// chunk) or brings it back up.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Connections cut so far because their byte budget ran out.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// When a relay cuts its connections.
enum Cut {
    /// After a number of bytes drawn from the range has gone from the server to the client.
    Download(Option<Range<usize>>),
    /// After this many bytes in both directions together.
    Both(usize),
    /// After the number of bytes, both directions together, drawn for each connection.
    Drawn(Arc<Mutex<Draw>>),
}

/// Draws a connection's byte budget (None: never cut).
type Draw = Box<dyn FnMut() -> Option<usize> + Send>;

/// What may still pass on one connection: (client to server, server to client), shared when
/// both directions draw on one budget.
type Budgets = (Option<Arc<AtomicUsize>>, Option<Arc<AtomicUsize>>);

impl Cut {
    fn budgets(&self) -> Budgets {
        match self {
            Cut::Download(range) => (
                None,
                range
                    .clone()
                    .map(|r| Arc::new(AtomicUsize::new(rand::thread_rng().gen_range(r)))),
            ),
            Cut::Both(bytes) => {
                let shared = Arc::new(AtomicUsize::new(*bytes));
                (Some(shared.clone()), Some(shared))
            }
            Cut::Drawn(draw) => {
                let drawn = match draw.lock() {
                    Ok(mut draw) => draw(),
                    Err(poisoned) => (poisoned.into_inner())(),
                };
                match drawn {
                    Some(bytes) => Cut::Both(bytes).budgets(),
                    None => (None, None),
                }
            }
        }
    }
}

/// Takes up to `n` bytes from `budget`; what it grants.
fn take(budget: &Option<Arc<AtomicUsize>>, n: usize) -> usize {
    let Some(budget) = budget else {
        return n;
    };
    let mut granted = 0;
    let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        granted = n.min(left);
        Some(left - granted)
    });
    granted
}

/// What one relayed connection obeys.
struct Link {
    budgets: Budgets,
    delay_ms: u64,
    counted: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    /// The relay's count of cut connections.
    cuts: Arc<AtomicU64>,
    /// Whether this connection was cut (counted once, whichever direction ran out).
    cut: Arc<AtomicBool>,
}

/// Relays one accepted connection, each direction on its own thread.
fn connect(client: TcpStream, upstream: SocketAddr, link: Link) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(upstream)?;
    let (client2, server2) = (client.try_clone()?, server.try_clone()?);
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (up_budget, down_budget) = link.budgets;
    let delay = link.delay_ms;
    let ends = Ends {
        counted: link.counted,
        down: link.down,
        cuts: link.cuts,
        cut: link.cut,
    };
    let ends2 = ends.clone();
    std::thread::spawn(move || pump(client, server, up_budget, delay, &ends));
    std::thread::spawn(move || pump(server2, client2, down_budget, delay, &ends2));
    Ok(())
}

/// What both directions of one connection share.
#[derive(Clone)]
struct Ends {
    counted: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
}

/// Copies `from` to `to` until either ends, `budget` is spent, the link goes down, or
/// `from` is silent for 30 s; then shuts both down, which ends the other direction too.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    budget: Option<Arc<AtomicUsize>>,
    delay_ms: u64,
    ends: &Ends,
) {
    // A delay applies to each chunk: small chunks make a slow link slow evenly.
    let mut buf = vec![0u8; if delay_ms > 0 { 4096 } else { 64 * 1024 }];
    let _ = from.set_read_timeout(Some(Duration::from_secs(30)));
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if ends.down.load(Ordering::Relaxed) {
            break;
        }
        let allowed = take(&budget, n);
        if delay_ms > 0 {
            let ms = rand::thread_rng().gen_range(0..=delay_ms);
            std::thread::sleep(Duration::from_millis(ms));
        }
        // Counted before the write, so whoever reads what arrived also finds it counted.
        ends.counted.fetch_add(allowed as u64, Ordering::Relaxed);
        if to.write_all(&buf[..allowed]).is_err() {
            ends.counted.fetch_sub(allowed as u64, Ordering::Relaxed);
            break;
        }
        if allowed < n {
            if !ends.cut.swap(true, Ordering::Relaxed) {
                ends.cuts.fetch_add(1, Ordering::Relaxed);
            }
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on 127.0.0.1: what it reads, it writes back.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
        let addr = listener.local_addr().expect("echo address");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn cutting_counts_both_directions_per_connection() {
        let relay = Relay::cutting(echo(), 500);
        for _ in 0..2 {
            let mut stream = TcpStream::connect(relay.addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            stream.write_all(&[7u8; 300]).expect("write");
            // 300 bytes went up: at most 200 come back before the cut.
            let mut back = Vec::new();
            let _ = stream.read_to_end(&mut back);
            assert_eq!(back.len(), 200);
        }
        assert_eq!(
            relay.bytes(),
            1000,
            "each connection gets its own 500 bytes"
        );
    }

    #[test]
    fn cutting_with_draws_each_connections_budget_and_counts_cuts() {
        let mut budgets = [Some(500), None, Some(400)].into_iter();
        let relay = Relay::cutting_with(echo(), move || budgets.next().flatten());
        let mut back = Vec::new();
        for _ in 0..3 {
            let mut stream = TcpStream::connect(relay.addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            stream.write_all(&[7u8; 300]).expect("write");
            let mut got = vec![0u8; 300];
            let mut n = 0;
            while n < got.len() {
                match stream.read(&mut got[n..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
            }
            back.push(n);
        }
        // 300 bytes up, then what is left of the budget comes back; the second is never cut.
        assert_eq!(back, [200, 300, 100]);
        assert_eq!(relay.cuts(), 2);
    }
}
