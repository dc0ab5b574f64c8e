//! Harness for Cairn's end-to-end tests: they run the real `cairn` binary (and, for sync, the
//! real `cairn-server`) in temporary homes, exactly as a person would.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The passphrase every test vault uses.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The directory cargo puts this profile's binaries in: target/<profile>.
fn bin_dir() -> PathBuf {
    // target/<profile>/deps/<test exe> → target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

/// Path of a workspace binary (`cairn`, `cairn-server`), built on first use in this process
/// (cargo does not build other packages' binaries for a test crate).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let package = match name {
        "cairn" => "cairn-collector",
        other => other,
    };
    let dir = bin_dir();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !built.contains(package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // Every binary of the workspace, as `.ci/run` builds them before the tests: the same
        // command resolves the same features, so this finds them built and links nothing.
        build.args(["build", "--quiet", "--workspace", "--bins"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build of {name} failed");
        built.insert(package.to_string());
    }
    dir.join(name)
}

/// The output of one `cairn` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// One device: a temporary home with a vault in it.
pub struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    /// A home with no vault yet.
    pub fn empty() -> Device {
        Device {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A home with a field vault of `team`, at a low scrypt cost so tests run fast.
    pub fn init(team: &str) -> Device {
        let device = Device::empty();
        device.ok(&["init", "--team", team, "--kdf-cost", "4"]);
        device
    }

    /// The vault's directory.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A `cairn` command for this home, passphrase from the environment, no terminal.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("cairn"));
        cmd.args(args)
            .env("CAIRN_HOME", self.home())
            .env("CAIRN_PASSPHRASE", PASSPHRASE)
            .env_remove("CAIRN_PASSPHRASE_FILE")
            .env_remove("CAIRN_CONFIG")
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `cairn` with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run cairn").into()
    }

    /// Runs `cairn` and asserts it succeeded; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
        run.stdout
    }

    /// Runs `cairn ... --json` and parses the output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {out}"))
    }

    /// Runs `cairn case new ARGS...` and returns the reference it printed.
    pub fn new_case(&self, args: &[&str]) -> String {
        let mut all = vec!["case", "new"];
        all.extend_from_slice(args);
        self.ok(&all).trim().to_string()
    }

    /// How many cases `cairn case list` shows.
    pub fn case_count(&self) -> usize {
        self.json(&["case", "list"]).as_array().map_or(0, Vec::len)
    }

    /// Every file under the home with its bytes, to assert that a command changed nothing.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(&self.home())
    }
}

/// Every regular file under `dir` with its bytes.
pub fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// True when `needle` occurs in `haystack` as UTF-8, UTF-16 (either order), or in any letter case.
pub fn contains_any_encoding(haystack: &[u8], needle: &str) -> bool {
    let lower = haystack.to_ascii_lowercase();
    let mut forms: Vec<Vec<u8>> = vec![needle.to_ascii_lowercase().into_bytes()];
    let utf16 = |big: bool| -> Vec<u8> {
        needle
            .to_ascii_lowercase()
            .encode_utf16()
            .flat_map(|u| {
                if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    };
    forms.push(utf16(false));
    forms.push(utf16(true));
    forms
        .iter()
        .any(|f| lower.windows(f.len()).any(|w| w == f.as_slice()))
}

/// A real `cairn-server` process on 127.0.0.1 with an ephemeral port, killed on drop.
pub struct Server {
    /// Its directory (config, certificate, SQLite database).
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// SHA-256 of its certificate.
    pub fingerprint: String,
    log: PathBuf,
}

impl Server {
    /// Initialises a server for the office whose public keys are in `office_key`, then starts it.
    pub fn start(office: &Device, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("server dir");
        let key = dir.path().join("office.pub");
        office.ok(&[
            "office",
            "pubkey",
            "--out",
            key.to_str().expect("utf-8 path"),
        ]);
        let srv = dir.path().join("srv");
        let mut args = vec![
            "init",
            "--dir",
            srv.to_str().expect("utf-8 path"),
            "--office-key",
            key.to_str().expect("utf-8 path"),
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let out = Command::new(bin("cairn-server"))
            .args(&args)
            .output()
            .expect("cairn-server init");
        assert!(
            out.status.success(),
            "cairn-server init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fingerprint = std::fs::read_to_string(srv.join("fingerprint"))
            .expect("fingerprint file")
            .trim()
            .to_string();
        let mut server = Server {
            log: dir.path().join("server.log"),
            dir,
            child: None,
            url: String::new(),
            fingerprint,
        };
        server.restart();
        // Keep the port across restarts: devices hold the URL from their admission.
        server.set_config(
            "listen",
            &format!("\"{}\"", server.url.trim_start_matches("https://")),
        );
        server
    }

    /// Replaces one `key = value` line of server.toml (takes effect at the next restart).
    pub fn set_config(&self, key: &str, value: &str) {
        let path = self.srv().join("server.toml");
        let text = std::fs::read_to_string(&path).expect("server.toml");
        let prefix = format!("{key} =");
        let mut found = false;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                if line.trim_start().starts_with(&prefix) {
                    found = true;
                    format!("{key} = {value}")
                } else {
                    line.to_string()
                }
            })
            .collect();
        assert!(found, "no `{key}` in server.toml");
        std::fs::write(&path, lines.join("\n") + "\n").expect("write server.toml");
    }

    /// The server's directory (server.toml, server.db...).
    pub fn srv(&self) -> PathBuf {
        self.dir.path().join("srv")
    }

    /// (Re)starts the process and waits until it listens.
    pub fn restart(&mut self) {
        self.stop();
        let listening = self.srv().join("listening");
        let _ = std::fs::remove_file(&listening);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = Command::new(bin("cairn-server"))
            .args(["run", "--dir", self.srv().to_str().expect("utf-8 path")])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start cairn-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&listening) {
                if !addr.trim().is_empty() {
                    self.url = format!("https://{}", addr.trim());
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cairn-server did not start: {}",
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL: a crash, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the server logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The office admits `device` into `team` (pointing it at `url`: the server or a proxy)
    /// and syncs, so the server learns the admission; returns the admission line.
    pub fn admit(&self, office: &Device, device: &Device, team: &str, url: &str) -> String {
        admit(office, device, team, url, &self.fingerprint, &[])
    }

    /// Admits `device` into `team` and joins it through `url`.
    pub fn join(&self, office: &Device, device: &Device, team: &str, url: &str) {
        let admission = self.admit(office, device, team, url);
        device.ok(&["join", &admission]);
    }
}

/// `cairn id` on the device, `cairn office admit` with any fingerprint and extra flags, then
/// `cairn sync` on the office (its first sync may fail if `url` leads nowhere); returns the
/// admission line.
pub fn admit(
    office: &Device,
    device: &Device,
    team: &str,
    url: &str,
    fingerprint: &str,
    extra: &[&str],
) -> String {
    let id = device.json(&["id"]);
    let line = id["line"]
        .as_str()
        .expect("cairn id --json has a line")
        .to_string();
    let mut args = vec![
        "office",
        "admit",
        &line,
        "--team",
        team,
        "--server",
        url,
        "--fingerprint",
        fingerprint,
    ];
    args.extend_from_slice(extra);
    let admission = office.ok(&args).trim().to_string();
    let _ = office.run(&["sync"]);
    admission
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Device {
    /// The office's vault.
    pub fn office() -> Device {
        let device = Device::empty();
        device.ok(&["init", "--office", "--kdf-cost", "4"]);
        device
    }
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream` and misbehaves as told: every
/// connection is cut after a budget of bytes (server to client), and chunks may be delayed.
/// Its threads end when the proxy is dropped (bounded by the listener's non-blocking poll).
pub struct FaultyLink {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FaultyLink {
    /// Cuts each connection after a random number of bytes in `budget` (None: never),
    /// delaying each chunk by up to `delay_ms`.
    pub fn start(
        upstream: &str,
        budget: Option<std::ops::Range<usize>>,
        delay_ms: u64,
    ) -> FaultyLink {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let upstream = upstream.trim_start_matches("https://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_accept = stop.clone();
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = bytes.clone();
        std::thread::spawn(move || {
            while !stop_accept.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let limit = budget
                    .clone()
                    .map(|b| rand::Rng::gen_range(&mut rand::thread_rng(), b));
                let counted = counted.clone();
                let pump = move |mut from: TcpStream, mut to: TcpStream, limit: Option<usize>| {
                    let mut passed = 0usize;
                    let mut buf = [0u8; 4096];
                    let _ = from.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let allowed = match limit {
                            Some(l) => n.min(l.saturating_sub(passed)),
                            None => n,
                        };
                        if delay_ms > 0 {
                            let d = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=delay_ms);
                            std::thread::sleep(std::time::Duration::from_millis(d));
                        }
                        if to.write_all(&buf[..allowed]).is_err() {
                            break;
                        }
                        passed += allowed;
                        counted.fetch_add(allowed, Ordering::Relaxed);
                        if allowed < n {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let pump2 = pump.clone();
                std::thread::spawn(move || pump(client, server, None));
                std::thread::spawn(move || pump2(s2, c2, limit));
            }
        });
        FaultyLink { url, stop, bytes }
    }

    /// Bytes relayed so far, both directions.
    pub fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Device {
    /// This device's keys, unlocked from its key file as `cairn` would (to forge in tests).
    pub fn keys(&self) -> cairn_crypto::DeviceKeys {
        let file = std::fs::read(self.home().join("keys.age")).expect("key file");
        cairn_crypto::unlock_keys(
            &file,
            &cairn_crypto::SecretString::from(PASSPHRASE.to_owned()),
        )
        .expect("unlock")
    }

    /// The team keys this device's vault holds, read as `cairn` would.
    pub fn keyring(&self) -> cairn_crypto::Keyring {
        cairn_vault::Home::new(self.home())
            .open(&cairn_crypto::SecretString::from(PASSPHRASE.to_owned()))
            .expect("open vault")
            .keyring()
            .clone()
    }

    /// The newest key this device holds of `team`.
    pub fn team_key(&self, team: &str) -> cairn_crypto::TeamKey {
        let ring = self.keyring();
        let key = ring.newest(team).expect("a key of the team");
        cairn_crypto::TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes())
    }
}

/// A hostile device: enrolled and synced like any other, but it seals whatever bytes it likes
/// as its next change and lets the real `cairn sync` push them.
impl Device {
    /// The raw Automerge changes of case `id` as this device holds them (decrypted).
    pub fn raw_changes(&self, id: uuid::Uuid) -> Vec<Vec<u8>> {
        let keys = self.keyring();
        let conn = rusqlite::Connection::open(self.home().join("vault.db")).expect("vault db");
        let mut stmt = conn
            .prepare("SELECT sealed FROM changes WHERE case_id = ?1")
            .expect("query");
        let rows = stmt
            .query_map([id.as_bytes().as_slice()], |r| r.get::<_, Vec<u8>>(0))
            .expect("rows");
        rows.map(|row| {
            let sealed =
                cairn_crypto::SealedChange::from_bytes(&row.expect("row")).expect("sealed");
            sealed.open(&keys).expect("readable")
        })
        .collect()
    }

    /// Seals `plain` (any bytes) as this device's next change to case `id`, under its team's
    /// newest key, and puts it in the outbox for the next `cairn sync` to push.
    pub fn smuggle(&self, id: uuid::Uuid, plain: &[u8], team: &str) {
        let keys = self.keys();
        let key = self.team_key(team);
        let conn = rusqlite::Connection::open(self.home().join("vault.db")).expect("vault db");
        let seq: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE author = ?1",
                [keys.id().0.as_slice()],
                |r| r.get(0),
            )
            .expect("next seq");
        let sealed = cairn_crypto::SealedChange::seal(
            &keys,
            &key,
            cairn_crypto::SealedKind::CaseChange,
            *id.as_bytes(),
            seq as u64,
            plain,
        )
        .expect("seal");
        conn.execute(
            "INSERT INTO changes (author, seq, case_id, sealed, ops) VALUES (?1, ?2, ?3, ?4, 0)",
            rusqlite::params![
                keys.id().0.as_slice(),
                seq,
                id.as_bytes().as_slice(),
                sealed.to_bytes()
            ],
        )
        .expect("smuggle");
    }

    /// Runs `cairn -v ARGS...`, asserts success, and returns standard output with the peak
    /// memory (KiB) the command reported for itself.
    pub fn ok_measured(&self, args: &[&str]) -> (String, u64) {
        let mut all = vec!["-v"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
        let kib = run
            .stderr
            .lines()
            .filter(|l| l.contains("peak memory"))
            .find_map(|l| {
                let (_, rest) = l.split_once("peak_rss_kib=")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no peak memory reported: {}", run.stderr));
        (run.stdout, kib)
    }
}

/// A valid case change sealed by `keys` as change number `seq`, under team key `key`.
pub fn sealed_case(
    keys: &cairn_crypto::DeviceKeys,
    key: &cairn_crypto::TeamKey,
    seq: u64,
    marker: &str,
) -> cairn_crypto::SealedChange {
    sealed_case_as(keys, key, seq, marker, uuid::Uuid::new_v4(), "T03")
}

/// Like [`sealed_case`], creating case `id` with a reference of `team`.
pub fn sealed_case_as(
    keys: &cairn_crypto::DeviceKeys,
    key: &cairn_crypto::TeamKey,
    seq: u64,
    marker: &str,
    id: uuid::Uuid,
    team: &str,
) -> cairn_crypto::SealedChange {
    let reference = cairn_model::Reference {
        place: "KHR".into(),
        team: team.into(),
        device_tag: keys.id().tag(),
        number: seq as u32,
    };
    let (_, change) = cairn_model::CaseDoc::create(
        &keys.id().0,
        id,
        &reference,
        cairn_model::Kind::Killed,
        &keys.id().short(),
        time::OffsetDateTime::now_utc(),
        &[cairn_model::Edit::Note {
            text: marker.to_owned(),
        }],
    )
    .expect("case");
    cairn_crypto::SealedChange::seal(
        keys,
        key,
        cairn_crypto::SealedKind::CaseChange,
        *id.as_bytes(),
        seq,
        &change,
    )
    .expect("seal")
}

impl Server {
    /// Writes a change straight into the server's SQLite database, as a compromised server
    /// could, bypassing every check the server makes.
    pub fn inject(&self, change: &cairn_crypto::SealedChange) {
        let conn = rusqlite::Connection::open(self.srv().join("server.db")).expect("server db");
        conn.execute(
            "INSERT INTO changes (author, seq, case_id, team, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                change.author.0.as_slice(),
                change.seq as i64,
                change.case_id.as_slice(),
                change.team,
                change.to_bytes()
            ],
        )
        .expect("inject");
    }

    /// Runs SQL on the server's database, as a compromised server could.
    pub fn edit_db(&self, sql: &str) {
        let conn = rusqlite::Connection::open(self.srv().join("server.db")).expect("server db");
        conn.execute_batch(sql).expect("edit server db");
    }

    /// Serves an already stored change again under a new server number (a replay).
    pub fn replay(&self, author: &cairn_crypto::DeviceId, seq: u64) {
        let conn = rusqlite::Connection::open(self.srv().join("server.db")).expect("server db");
        let (case_id, team, bytes): (Vec<u8>, String, Vec<u8>) = conn
            .query_row(
                "SELECT case_id, team, bytes FROM changes WHERE author = ?1 AND seq = ?2",
                rusqlite::params![author.0.as_slice(), seq as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("stored change");
        conn.execute(
            "DELETE FROM changes WHERE author = ?1 AND seq = ?2",
            rusqlite::params![author.0.as_slice(), seq as i64],
        )
        .expect("delete");
        conn.execute(
            "INSERT INTO changes (author, seq, case_id, team, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![author.0.as_slice(), seq as i64, case_id, team, bytes],
        )
        .expect("reinsert");
    }
}

#[cfg(test)]
mod tests {
    use super::contains_any_encoding;

    #[test]
    fn the_marker_search_finds_every_encoding_it_claims() {
        let utf16le: Vec<u8> = "xxMARKERyy"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16be: Vec<u8> = "xxMarkeryy"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert!(contains_any_encoding(b"..marker..", "Marker"));
        assert!(contains_any_encoding(&utf16le, "marker"));
        assert!(contains_any_encoding(&utf16be, "marker"));
        assert!(!contains_any_encoding(b"m a r k e r", "marker"));
    }
}
