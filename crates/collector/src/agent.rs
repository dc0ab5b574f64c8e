//! The unlock agent (the model is ssh-agent): `cairn unlock` derives the vault's keys from the
//! passphrase once and hands them to a small background process, the same `cairn` binary
//! re-executed as the hidden `agent-serve`; every command after that asks it for the keys
//! instead of running scrypt again.
//!
//! - The keys reach the agent through a pipe and leave it only through its Unix socket; they
//!   are never written to disk, and are zeroized when the agent ends.
//! - The socket lives in `$XDG_RUNTIME_DIR/cairn/` (a 0700 directory), or in the vault's own
//!   0700 directory when that is unset; the socket is 0600, and the agent serves a connection
//!   only when its peer credentials show this same user. The client checks the same of the
//!   agent (owner of the socket, peer credentials) before it believes an answer.
//! - The agent ends after `--for` without a request, on `cairn lock` or `cairn wipe`, or when
//!   its socket file is removed or replaced; it then removes the socket.
//!
//! The protocol is one request line and one answer per connection:
//! `cairn-agent/1 keys HEX` (HEX: SHA-256 of the key file, so keys kept for a vault that was
//! wiped and made again at the same place are never offered to the new one) is answered
//! `ok\n` and the key bytes, or `refused REASON\n`; `cairn-agent/1 lock` is answered `locked\n`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_crypto::{DeviceKeys, Zeroizing};
use cairn_vault::Home;
use sha2::{Digest, Sha256};

use crate::cli::AgentServeArgs;
use crate::error::CliError;

const VERSION: &str = "cairn-agent/1";
/// The longest request the agent reads.
const MAX_REQUEST: u64 = 256;
/// The longest answer a client reads (key bytes are about 250).
const MAX_ANSWER: usize = 4096;
/// How long a client waits for the agent: a stuck agent costs a command this much at most
/// before it falls back to the passphrase.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the agent, which serves one connection at a time, waits for a request: a client
/// sends its line at once, so one that says nothing holds the others up this long only.
const AGENT_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest `--for`: a year (a longer one would overflow the clock).
const MAX_IDLE: Duration = Duration::from_secs(366 * 86_400);
/// How often the idle agent wakes to check that its socket is still its own.
const WAKE: Duration = Duration::from_secs(30);

/// Where the agent for `home` listens.
pub fn socket_path(home: &Home) -> Result<PathBuf, CliError> {
    let dir = fs::canonicalize(home.dir())
        .map_err(|e| CliError::failure(format!("cannot find {}: {e}", home.dir().display())))?;
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(runtime) if runtime.is_absolute() => {
            let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
            Ok(runtime
                .join("cairn")
                .join(format!("agent-{}.sock", hex::encode(&digest[..8]))))
        }
        _ => Ok(dir.join("agent.sock")),
    }
}

/// The keys for `home` from its agent, if one runs, is this user's, and answers. Any trouble
/// is logged and yields `None`: the caller falls back to the passphrase.
pub fn fetch(home: &Home) -> Option<DeviceKeys> {
    match try_fetch(home) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::info!(error = %e, "the unlock agent did not help");
            None
        }
    }
}

fn try_fetch(home: &Home) -> Result<Option<DeviceKeys>, String> {
    let socket = socket_path(home).map_err(|e| e.message)?;
    let digest = home.key_file_digest().map_err(|e| e.to_string())?;
    let Some(answer) = ask(&socket, &format!("keys {}", hex::encode(digest)))? else {
        return Ok(None);
    };
    let keys = answer
        .strip_prefix(b"ok\n")
        .ok_or_else(|| format!("it answered {}", first_line(&answer)))?;
    let keys = DeviceKeys::from_unlocked_bytes(keys).map_err(|e| e.to_string())?;
    tracing::info!("unlocked by the agent");
    Ok(Some(keys))
}

/// Ends the agent for `home`. Returns whether one was running.
pub fn lock(home: &Home) -> Result<bool, CliError> {
    let socket = socket_path(home)?;
    match ask(&socket, "lock").map_err(CliError::failure)? {
        None => Ok(false),
        Some(answer) if answer.as_slice() == b"locked\n" => Ok(true),
        Some(answer) => Err(CliError::failure(format!(
            "the unlock agent at {} answered {}",
            socket.display(),
            first_line(&answer)
        ))),
    }
}

/// Starts an agent holding `keys` for `home`, ending after `idle` without a request. Any
/// agent already running for it is ended first. Returns the socket's path.
pub fn start(home: &Home, keys: &DeviceKeys, idle: Duration) -> Result<PathBuf, CliError> {
    lock(home)?;
    let socket = socket_path(home)?;
    let digest = home.key_file_digest()?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find the cairn program: {e}")))?;
    let mut child = Command::new(exe)
        .arg("agent-serve")
        .arg("--socket")
        .arg(&socket)
        .arg("--idle")
        .arg(idle.as_secs().to_string())
        .arg("--digest")
        .arg(hex::encode(digest))
        .env_remove("CAIRN_PASSPHRASE")
        // Holds no directory busy (a removable card the person wants to eject).
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: Ctrl-C in this terminal does not end it.
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::failure(format!("cannot start the unlock agent: {e}")))?;
    let failed = |e: std::io::Error| CliError::failure(format!("the unlock agent failed: {e}"));
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(&keys.to_unlocked_bytes()).map_err(failed)?;
    }
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line).map_err(failed)?;
    }
    if line == "ready\n" {
        return Ok(socket);
    }
    Err(CliError::failure(
        match line.trim_end().strip_prefix("error ") {
            Some(message) => format!("the unlock agent could not start: {message}"),
            None => "the unlock agent ended before it was ready; nothing is unlocked".into(),
        },
    ))
}

/// Sends one request to the agent at `socket`. `None` when no agent runs there (a stale
/// socket is removed); an error when something there is not this user's agent.
fn ask(socket: &Path, request: &str) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let meta = match fs::symlink_metadata(socket) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", socket.display())),
    };
    let me = rustix::process::geteuid().as_raw();
    if !meta.file_type().is_socket() || meta.uid() != me {
        return Err(format!(
            "{} is not this user's agent socket; remove it",
            socket.display()
        ));
    }
    check_private_dir(socket)?;
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            // An agent that was killed leaves its socket behind.
            let _ = fs::remove_file(socket);
            return Ok(None);
        }
        Err(e) => return Err(format!("cannot reach {}: {e}", socket.display())),
    };
    let io = |e: std::io::Error| format!("talking to the agent: {e}");
    let peer = rustix::net::sockopt::socket_peercred(&stream).map_err(|e| io(e.into()))?;
    if peer.uid.as_raw() != me {
        return Err(format!(
            "the process behind {} belongs to another user",
            socket.display()
        ));
    }
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    stream
        .write_all(format!("{VERSION} {request}\n").as_bytes())
        .map_err(io)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(io)?;
    // Read into a buffer allocated once, so no copy of the keys is left in freed memory.
    let mut answer = Zeroizing::new(Vec::with_capacity(MAX_ANSWER));
    (&mut stream)
        .take(MAX_ANSWER as u64)
        .read_to_end(&mut answer)
        .map_err(io)?;
    Ok(Some(answer))
}

/// The socket's directory must be this user's and closed to everyone else.
fn check_private_dir(socket: &Path) -> Result<(), String> {
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let meta = fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if meta.uid() != rustix::process::geteuid().as_raw() || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is open to other users; the agent's socket must be in a 0700 directory of yours",
            dir.display()
        ));
    }
    Ok(())
}

fn first_line(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
    if text.is_empty() {
        "nothing".into()
    } else {
        format!("`{text}`")
    }
}

/// The hidden `cairn agent-serve`: reads the key bytes from standard input, listens, and
/// prints `ready` (or `error MESSAGE`) on standard output for `cairn unlock` to relay.
pub fn serve(args: AgentServeArgs) -> Result<(), CliError> {
    match Agent::bind(&args) {
        Ok(agent) => {
            println!("ready");
            agent.run();
            Ok(())
        }
        Err(message) => {
            println!("error {message}");
            Err(CliError::failure(message))
        }
    }
}

struct Agent {
    listener: UnixListener,
    socket: PathBuf,
    inode: u64,
    digest: String,
    keys: Zeroizing<Vec<u8>>,
    idle: Duration,
}

impl Agent {
    fn bind(args: &AgentServeArgs) -> Result<Agent, String> {
        // Not dumpable: no core file holds the keys, and other processes of this user cannot
        // read this one's memory through ptrace or /proc.
        #[cfg(target_os = "linux")]
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .map_err(|e| format!("cannot protect the agent's memory: {e}"))?;
        let mut keys = Zeroizing::new(Vec::with_capacity(MAX_ANSWER));
        std::io::stdin()
            .take(MAX_ANSWER as u64 - 16)
            .read_to_end(&mut keys)
            .map_err(|e| format!("cannot read the keys: {e}"))?;
        DeviceKeys::from_unlocked_bytes(&keys).map_err(|e| e.to_string())?;

        let socket = args.socket.clone();
        let dir = socket.parent().unwrap_or(Path::new("/"));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        check_private_dir(&socket)?;
        if let Ok(Some(_)) = ask(&socket, "ping") {
            return Err(format!("another agent listens at {}", socket.display()));
        }
        let listener = UnixListener::bind(&socket)
            .map_err(|e| format!("cannot listen at {}: {e}", socket.display()))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {}: {e}", socket.display()))?;
        let inode = fs::symlink_metadata(&socket)
            .map_err(|e| format!("cannot read {}: {e}", socket.display()))?
            .ino();
        Ok(Agent {
            listener,
            socket,
            inode,
            digest: args.digest.to_ascii_lowercase(),
            keys,
            idle: Duration::from_secs(args.idle).min(MAX_IDLE),
        })
    }

    /// Serves until idle for `idle`, locked, or its socket is gone; then removes the socket.
    /// The keys are zeroized when `self` drops.
    fn run(self) {
        let mut deadline = Instant::now() + self.idle;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.socket_is_mine() {
                break;
            }
            let wait = left.min(WAKE);
            let timeout = rustix::event::Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            let mut fds = [rustix::event::PollFd::new(
                &self.listener,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
            let Ok((stream, _)) = self.listener.accept() else {
                continue;
            };
            match self.serve_one(stream) {
                Served::Keys => deadline = Instant::now() + self.idle,
                Served::Other => {}
                Served::Lock => break,
            }
        }
        self.remove_socket();
    }

    fn remove_socket(&self) {
        if self.socket_is_mine() {
            let _ = fs::remove_file(&self.socket);
        }
    }

    fn socket_is_mine(&self) -> bool {
        fs::symlink_metadata(&self.socket).is_ok_and(|m| m.ino() == self.inode)
    }

    fn serve_one(&self, mut stream: UnixStream) -> Served {
        // Another user's process gets nothing, not even an answer.
        let me = rustix::process::geteuid();
        match rustix::net::sockopt::socket_peercred(&stream) {
            Ok(peer) if peer.uid == me => {}
            _ => return Served::Other,
        }
        let _ = stream.set_read_timeout(Some(AGENT_TIMEOUT));
        let _ = stream.set_write_timeout(Some(AGENT_TIMEOUT));
        let mut request = Vec::new();
        if (&mut stream)
            .take(MAX_REQUEST)
            .read_to_end(&mut request)
            .is_err()
        {
            return Served::Other;
        }
        let request = String::from_utf8_lossy(&request);
        let words: Vec<&str> = request.split_ascii_whitespace().collect();
        let (answer, served): (&[u8], Served) = match words.as_slice() {
            [VERSION, "keys", digest] if *digest == self.digest => (&self.keys, Served::Keys),
            [VERSION, "keys", _] => (b"refused not this vault\n", Served::Other),
            [VERSION, "lock"] => (b"locked\n", Served::Lock),
            [VERSION, "ping"] => (b"pong\n", Served::Other),
            _ => (b"refused bad request\n", Served::Other),
        };
        if matches!(served, Served::Lock) {
            // Gone before `cairn lock` returns, so nothing that follows finds it.
            self.remove_socket();
        }
        if matches!(served, Served::Keys) {
            let _ = stream
                .write_all(b"ok\n")
                .and_then(|()| stream.write_all(answer));
        } else {
            let _ = stream.write_all(answer);
        }
        served
    }
}

enum Served {
    Keys,
    Lock,
    Other,
}
