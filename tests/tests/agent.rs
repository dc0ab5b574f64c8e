//! The unlock agent, with the real binary: `cairn unlock` once, then commands with no
//! passphrase anywhere (no CAIRN_PASSPHRASE, no terminal) until `cairn lock`, `cairn wipe`
//! or the idle timeout; a socket no other user can use.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_e2e::{Device, Run};

/// A device whose commands see `runtime` as XDG_RUNTIME_DIR (or none), so each test has its
/// own agent sockets.
struct Unlocked {
    device: Device,
    runtime: Option<PathBuf>,
}

impl Unlocked {
    /// A field vault at the given scrypt cost (None: the default, calibrated one).
    fn init(cost: Option<&str>, runtime: bool) -> Unlocked {
        let device = Device::empty();
        let runtime = runtime.then(|| {
            let dir = device.home().with_file_name("run");
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            dir
        });
        let me = Unlocked { device, runtime };
        let mut args = vec!["init", "--team", "T03"];
        if let Some(cost) = cost {
            args.extend(["--kdf-cost", cost]);
        }
        me.ok_with_passphrase(&args);
        me
    }

    fn command(&self, args: &[&str], passphrase: bool) -> Command {
        let mut cmd = self.device.command(args);
        if !passphrase {
            cmd.env_remove("CAIRN_PASSPHRASE");
        }
        match &self.runtime {
            Some(dir) => cmd.env("XDG_RUNTIME_DIR", dir),
            None => cmd.env_remove("XDG_RUNTIME_DIR"),
        };
        cmd
    }

    /// Runs with no passphrase available.
    fn run(&self, args: &[&str]) -> Run {
        self.command(args, false).output().unwrap().into()
    }

    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
        run.stdout
    }

    fn ok_with_passphrase(&self, args: &[&str]) -> String {
        let run: Run = self.command(args, true).output().unwrap().into();
        assert_eq!(run.code, 0, "cairn {args:?} failed: {}", run.stderr);
        run.stdout
    }

    /// The agent's socket, where this vault's agent listens.
    fn socket(&self) -> PathBuf {
        match &self.runtime {
            None => self.device.home().join("agent.sock"),
            Some(dir) => {
                let dir = dir.join("cairn");
                let mut socks: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map(|d| d.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                assert!(socks.len() <= 1, "one agent per vault: {socks:?}");
                socks.pop().unwrap_or_else(|| dir.join("none.sock"))
            }
        }
    }

    fn key_file_digest(&self) -> String {
        let bytes = std::fs::read(self.device.home().join("keys.age")).unwrap();
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    }

    /// Asserts that a command now needs the passphrase: it fails without one, saying so.
    fn assert_locked(&self) {
        let run = self.run(&["case", "list", "--json"]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("no passphrase"), "{}", run.stderr);
    }
}

/// Sends one raw request to the agent and returns all it answered.
fn raw(socket: &Path, request: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The agent reads a bounded request; what it does not read may fail to send.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn with_the_agent_ten_commands_need_no_passphrase_at_the_default_cost() {
    // The default, calibrated cost: what a person gets, and what the agent is for.
    let v = Unlocked::init(None, false);
    assert!(v.run(&["case", "list"]).stderr.contains("no passphrase"));
    let out = v.ok_with_passphrase(&["unlock"]);
    assert!(out.contains("Unlocked"), "{out}");
    // The vault's own 0700 directory holds the socket when XDG_RUNTIME_DIR is unset.
    let socket = v.socket();
    assert!(std::fs::metadata(&socket).unwrap().file_type().is_socket());
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&v.device.home()), 0o700);

    let reference = v.ok(&["case", "new", "--kind", "remains", "--place", "KHR"]);
    for _ in 0..10 {
        let list: serde_json::Value =
            serde_json::from_str(&v.ok(&["case", "list", "--json"])).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["reference"], reference.trim());
    }
    v.ok(&["lock"]);
    assert!(!socket.exists());
    v.assert_locked();
}

#[test]
fn the_socket_is_private_and_lock_ends_the_agent() {
    let v = Unlocked::init(Some("4"), true);
    v.ok_with_passphrase(&["unlock", "--for", "1h"]);
    let socket = v.socket();
    assert!(std::fs::metadata(&socket).unwrap().file_type().is_socket());
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    // Nothing of the vault is in the runtime directory but the socket.
    assert_eq!(
        std::fs::read_dir(socket.parent().unwrap()).unwrap().count(),
        1
    );
    v.ok(&["case", "new", "--kind", "killed", "--place", "KHR"]);

    // Unlocking again replaces the agent: still one socket, still unlocked.
    v.ok_with_passphrase(&["unlock"]);
    assert_eq!(v.socket(), socket);
    assert_eq!(v.ok(&["case", "list", "--json"]).matches("KHR-").count(), 1);

    let out = v.ok(&["lock"]);
    assert!(out.contains("Locked"), "{out}");
    assert!(!socket.exists());
    v.assert_locked();
    assert!(v.ok(&["lock"]).contains("Not unlocked"));
}

#[test]
fn after_the_idle_timeout_the_passphrase_is_asked_again() {
    let v = Unlocked::init(Some("4"), true);
    v.ok_with_passphrase(&["unlock", "--for", "2s"]);
    let socket = v.socket();
    assert!(socket.exists());
    // Bounded: the agent ends two seconds after its last request; allow a loaded machine.
    let start = Instant::now();
    while socket.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!socket.exists(), "the agent outlived its idle timeout");
    v.assert_locked();
    // The passphrase still works, and nothing was lost.
    v.ok_with_passphrase(&["case", "list"]);
}

#[test]
fn wipe_ends_the_agent() {
    let v = Unlocked::init(Some("4"), true);
    v.ok_with_passphrase(&["unlock"]);
    let socket = v.socket();
    assert!(socket.exists());
    v.ok(&["wipe", "--yes"]);
    assert!(!socket.exists());
    assert!(!v.device.home().join("keys.age").exists());
}

#[test]
fn hostile_requests_get_nothing_and_the_agent_keeps_serving() {
    let v = Unlocked::init(Some("4"), true);
    v.ok_with_passphrase(&["unlock"]);
    let socket = v.socket();
    let digest = v.key_file_digest();

    let good = format!("cairn-agent/1 keys {digest}\n");
    assert!(raw(&socket, good.as_bytes()).starts_with(b"ok\ncairn-keys v1\n"));
    let extra = format!("cairn-agent/1 keys {digest} extra\n");
    let refused: &[&[u8]] = &[
        b"cairn-agent/1 keys 0000000000000000000000000000000000000000000000000000000000000000\n",
        &good.as_bytes()[..good.len() - 10],
        b"cairn-agent/2 keys",
        b"",
        &[0xff; 64],
        &[b'a'; 100_000],
        extra.as_bytes(),
    ];
    for request in refused {
        let answer = raw(&socket, request);
        assert!(
            !answer.starts_with(b"ok") && !answer.windows(10).any(|w| w == b"cairn-keys"),
            "request of {} bytes got {:?}",
            request.len(),
            String::from_utf8_lossy(&answer)
        );
    }
    // A client that connects and says nothing holds the agent for a bounded time only.
    let silent = UnixStream::connect(&socket).unwrap();
    assert!(v.ok(&["case", "list", "--json"]).starts_with('['));
    drop(silent);

    // A socket someone else loosened is not trusted: the client falls back to the passphrase.
    let dir = socket.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    v.assert_locked();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    v.ok(&["case", "list"]);
    v.ok(&["lock"]);
}

#[test]
fn a_stale_socket_is_ignored_and_removed() {
    let v = Unlocked::init(Some("4"), true);
    let dir = v.runtime.as_ref().unwrap().join("cairn");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Where the agent would listen: made by unlocking once, then left behind by a listener
    // that is gone (an agent killed with SIGKILL leaves the same).
    v.ok_with_passphrase(&["unlock"]);
    let socket = v.socket();
    v.ok(&["lock"]);
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    v.assert_locked();
    assert!(!socket.exists(), "the stale socket was left");
    v.ok_with_passphrase(&["case", "list"]);
}

/// Runs `python3` as the unprivileged user 65534 (setpriv), connecting to `socket` and
/// sending a request; prints `denied`, or `answer N` with how many bytes came back.
fn as_nobody(socket: &Path, request: &str) -> Option<String> {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError:
    print("denied"); sys.exit(0)
data = b""
try:
    s.sendall(sys.argv[2].encode()); s.shutdown(socket.SHUT_WR)
    while True:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
except OSError:
    pass  # the agent hung up on us
print("answer", len(data))
"#;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
        ])
        .arg(script)
        .arg(socket)
        .arg(request)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "the client as another user failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn another_users_process_cannot_use_the_socket() {
    let root = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root.stdout).trim() != "0"
        || !Path::new("/usr/bin/python3").exists()
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!(
            "skipped: needs root, setpriv and /usr/bin/python3 to run a client as another user"
        );
        return;
    }
    let v = Unlocked::init(Some("4"), true);
    v.ok_with_passphrase(&["unlock"]);
    let socket = v.socket();
    let request = format!("cairn-agent/1 keys {}\n", v.key_file_digest());

    // As it is, the directory keeps everyone else out.
    assert_eq!(as_nobody(&socket, &request).as_deref(), Some("denied"));

    // Even with every directory and the socket opened up, the agent's peer-credential check
    // refuses the other user: not one byte comes back.
    let mut opened = vec![socket.clone()];
    let mut dir = socket.parent();
    while let Some(d) = dir {
        if d == Path::new("/") || d == std::env::temp_dir() {
            break;
        }
        opened.push(d.to_path_buf());
        dir = d.parent();
    }
    let before: Vec<u32> = opened.iter().map(|p| mode(p)).collect();
    for path in &opened {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let other = as_nobody(&socket, &request);
    for (path, m) in opened.iter().zip(before) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    match other.as_deref() {
        Some("denied") => eprintln!("skipped the peer check: the system denied the connection"),
        other => assert_eq!(other, Some("answer 0")),
    }
    // The owner is still served.
    v.ok(&["case", "list"]);
    v.ok(&["lock"]);
}

#[test]
fn unlock_refuses_a_socket_directory_open_to_others() {
    let v = Unlocked::init(Some("4"), true);
    let dir = v.runtime.as_ref().unwrap().join("cairn");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run: Run = v.command(&["unlock"], true).output().unwrap().into();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("could not start") && run.stderr.contains("open to other users"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no socket was made"
    );
    v.assert_locked();
}
