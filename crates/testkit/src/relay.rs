//! A TCP relay between a client and a server, to count what goes over the wire and to make
//! the link as bad as a field connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        // Polled, so that the accepting thread sees `stop`.
        listener.set_nonblocking(true).expect("nonblocking relay");
        let addr = listener.local_addr().expect("relay address");
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopped) = (bytes.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let limit = cut_after.clone().map(|r| rand::thread_rng().gen_range(r));
                        let _ = connect(client, upstream, limit, delay_ms, &counted);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay { addr, bytes, stop }
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
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Relays one accepted connection, each direction on its own thread.
fn connect(
    client: TcpStream,
    upstream: SocketAddr,
    limit: Option<usize>,
    delay: u64,
    counted: &Arc<AtomicU64>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(upstream)?;
    let (client2, server2) = (client.try_clone()?, server.try_clone()?);
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (up, down) = (counted.clone(), counted.clone());
    std::thread::spawn(move || pump(client, server, None, delay, &up));
    std::thread::spawn(move || pump(server2, client2, limit, delay, &down));
    Ok(())
}

/// Copies `from` to `to` until either ends, `limit` bytes have passed, or `from` is silent for
/// 30 s; then shuts both down, which ends the other direction too.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<usize>,
    delay_ms: u64,
    counted: &AtomicU64,
) {
    // A delay applies to each chunk: small chunks make a slow link slow evenly.
    let mut buf = vec![0u8; if delay_ms > 0 { 4096 } else { 64 * 1024 }];
    let _ = from.set_read_timeout(Some(Duration::from_secs(30)));
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = limit.map_or(n, |l| n.min(l.saturating_sub(passed)));
        if delay_ms > 0 {
            let ms = rand::thread_rng().gen_range(0..=delay_ms);
            std::thread::sleep(Duration::from_millis(ms));
        }
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        passed += allowed;
        counted.fetch_add(allowed as u64, Ordering::Relaxed);
        if allowed < n {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
