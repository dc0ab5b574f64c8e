//! One way to make a server directory, and two ways to run it: in this process, or as a real
//! `cairn-server` process that a test can kill, restart and measure.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_server::RunningServer;

/// A server directory made by `cairn_server::init::init` for one office, listening on
/// 127.0.0.1 with an ephemeral port. Its root holds `office.pub`, the server directory `srv/`
/// (server.toml, certificate, fingerprint, server.db) and, once run as a process, `server.log`.
pub struct ServerDir {
    root: PathBuf,
    /// Deletes the root when dropped, if this made it.
    _temp: Option<tempfile::TempDir>,
    fingerprint: String,
}

impl ServerDir {
    /// A server directory in a new temporary directory, trusting the office whose public keys
    /// are `office` (as `cairn office pubkey` prints them).
    pub fn init(office: impl Display) -> ServerDir {
        let temp = tempfile::tempdir().expect("server temp dir");
        let mut dir = ServerDir::init_in(temp.path(), office);
        dir._temp = Some(temp);
        dir
    }

    /// Like [`ServerDir::init`], under `root` (which must not hold a server yet).
    pub fn init_in(root: &Path, office: impl Display) -> ServerDir {
        let key = root.join("office.pub");
        std::fs::write(&key, office.to_string()).expect("write office.pub");
        let srv = root.join("srv");
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        // On a thread of its own with its own runtime: callers may be sync or inside tokio.
        let made = std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(cairn_server::init::init(&srv, &key, listen, None))
            })
            .join()
            .expect("init thread")
        })
        .expect("cairn-server init");
        ServerDir {
            root: root.to_path_buf(),
            _temp: None,
            fingerprint: made.fingerprint,
        }
    }

    /// The directory holding `office.pub`, `srv/` and `server.log`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server directory itself (`cairn-server run --dir`).
    pub fn path(&self) -> PathBuf {
        self.root.join("srv")
    }

    /// Sets `name = value` in server.toml (`value` as TOML: quote strings), replacing the line
    /// if there is one and adding it to the top-level table if not. Takes effect at the next
    /// start.
    pub fn set(&self, name: &str, value: impl Display) {
        let path = self.path().join("server.toml");
        let text = std::fs::read_to_string(&path).expect("read server.toml");
        let line = format!("{name} = {value}");
        let ours = |l: &str| l.trim_start().starts_with(&format!("{name} ="));
        let mut lines: Vec<&str> = text
            .lines()
            .map(|l| if ours(l) { &line } else { l })
            .collect();
        if !text.lines().any(ours) {
            lines.insert(0, &line);
        }
        std::fs::write(&path, lines.join("\n") + "\n").expect("write server.toml");
    }

    /// [`ServerDir::set`] for each `(name, value)` in order.
    pub fn configure(&self, settings: &[(&str, &str)]) {
        for (name, value) in settings {
            self.set(name, value);
        }
    }

    /// The server's SQLite database, opened behind its back (as a compromised server could).
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("server.db")).expect("open server.db")
    }

    /// Starts the server in this process (inside a tokio runtime).
    pub async fn serve(self) -> LocalServer {
        let server = RunningServer::start(&self.path(), None)
            .await
            .expect("start the server");
        LocalServer { server, _dir: self }
    }

    /// Starts the server as a `cairn-server run` process, its output going to `server.log`,
    /// and waits until it listens. Its port is then written to server.toml so that it stays
    /// across restarts: devices hold the URL from their admission.
    pub fn spawn(self) -> ServerProcess {
        let mut process = ServerProcess {
            dir: self,
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        process.restart();
        process.dir.set("listen", format!("\"{}\"", process.addr));
        process
    }
}

/// A server running in this process, until [`LocalServer::shutdown`] or the end of the
/// tokio runtime.
pub struct LocalServer {
    server: RunningServer,
    /// Kept for as long as the server uses it (a temporary one is deleted on drop).
    _dir: ServerDir,
}

impl LocalServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `https://ADDR`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr())
    }

    /// SHA-256 of its certificate.
    pub fn fingerprint(&self) -> &str {
        self.server.fingerprint()
    }

    /// Stops accepting connections; requests in flight have `grace` to finish.
    pub fn shutdown(&self, grace: Duration) {
        self.server.shutdown(grace);
    }

    /// Waits until the server has stopped.
    pub async fn stopped(self) -> Result<(), cairn_server::ServerError> {
        self.server.stopped().await
    }
}

/// A real `cairn-server` process (see [`ServerDir::spawn`]), killed when dropped.
pub struct ServerProcess {
    dir: ServerDir,
    child: Option<Child>,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// SHA-256 of its certificate, as admissions pin it.
    pub fn fingerprint(&self) -> &str {
        &self.dir.fingerprint
    }

    /// Its directory (to edit server.toml or the database between restarts).
    pub fn dir(&self) -> &ServerDir {
        &self.dir
    }

    /// Everything it logged (set `CAIRN_LOG` for more than `info`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.root.join("server.log")).unwrap_or_default()
    }

    /// (Re)starts the process and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let listening = self.dir.path().join("listening");
        let _ = std::fs::remove_file(&listening);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.root.join("server.log"))
            .expect("server log");
        let child = Command::new(crate::bin("cairn-server"))
            .args(["run", "--dir"])
            .arg(self.dir.path())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start cairn-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        self.addr = loop {
            let text = std::fs::read_to_string(&listening).unwrap_or_default();
            if let Ok(addr) = text.trim().parse() {
                break addr;
            }
            assert!(
                Instant::now() < deadline,
                "cairn-server did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
    }

    /// Kills the process (SIGKILL: a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM, asserts a clean exit within 40 s, and returns the log.
    pub fn stop(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM failed");
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                if let Some(status) = child.try_wait().expect("wait for the server") {
                    assert!(status.success(), "exit status {status}: {}", self.log());
                    break;
                }
                assert!(Instant::now() < deadline, "the server did not stop");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        self.log()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// The process's peak resident memory so far (`VmHWM`), in MB.
    pub fn peak_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()));
        let status = status.expect("process status");
        let kb: u64 = (status.lines().find_map(|l| l.strip_prefix("VmHWM:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in {status}"));
        kb as f64 / 1024.0
    }

    /// How many sockets the process has open (its listener included).
    pub fn open_sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|target| target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
