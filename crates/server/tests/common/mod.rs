//! A real `cairn-server` process on 127.0.0.1 with an ephemeral port, and a reqwest client
//! that trusts only its self-signed certificate.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_crypto::{DeviceKeys, SealedChange, SealedKind};
use cairn_protocol::{
    encode_push, paths, sign_request, unix_now, Enrollment, ErrorBody, Invite, OfficeKeys,
    PushResponse,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_cairn-server");

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub office: DeviceKeys,
    pub client: reqwest::Client,
    child: Option<Child>,
}

/// An answer, read whole.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!("not an error body: {}", String::from_utf8_lossy(&self.body))
        })
    }
    pub fn code(&self) -> String {
        self.error().code
    }
    pub fn push(&self) -> PushResponse {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|c| c)
    }

    /// Starts a server whose `server.toml` was edited by `edit` after `init`.
    pub fn start_with(edit: impl FnOnce(String) -> String) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let office = DeviceKeys::generate();
        let key_file = dir.path().join("office.pub");
        std::fs::write(&key_file, OfficeKeys::from_keys(&office).to_string()).unwrap();
        let server_dir = dir.path().join("server");
        let out = Command::new(BIN)
            .args(["init", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&server_dir)
            .arg("--office-key")
            .arg(&key_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fingerprint = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_eq!(
            std::fs::read_to_string(server_dir.join("fingerprint"))
                .unwrap()
                .trim(),
            fingerprint
        );
        let config = server_dir.join("server.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, edit(text)).unwrap();

        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--dir"])
            .arg(&server_dir)
            .env("CAIRN_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let listening = server_dir.join("listening");
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&listening) {
                if let Ok(addr) = text.trim().parse::<SocketAddr>() {
                    break addr;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                log_text(dir.path())
            );
            std::thread::sleep(Duration::from_millis(25));
        };
        let cert = std::fs::read(server_dir.join("cert.pem")).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&cert).unwrap()])
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestServer {
            dir,
            addr,
            fingerprint,
            office,
            client,
            child: Some(child),
        }
    }

    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn invite(&self, team: &str) -> Invite {
        Invite::issue(
            &self.office,
            team,
            &self.base(),
            &self.fingerprint,
            unix_now() + 3600,
        )
        .unwrap()
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        auth: Option<String>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base()))
            .body(body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap().to_vec();
        Answer { status, body }
    }

    /// A request signed by `keys`.
    pub async fn signed(
        &self,
        keys: &DeviceKeys,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Answer {
        let auth = sign_request(keys, method, path, &body, unix_now());
        self.send(method, path, body, Some(auth)).await
    }

    pub async fn enroll_with(&self, enrollment: &Enrollment) -> Answer {
        self.send(
            "POST",
            paths::ENROLL,
            serde_json::to_vec(enrollment).unwrap(),
            None,
        )
        .await
    }

    /// A new device enrolled in `team`.
    pub async fn device(&self, team: &str) -> DeviceKeys {
        let keys = DeviceKeys::generate();
        let e = Enrollment::create(&keys, self.invite(team), None).unwrap();
        let answer = self.enroll_with(&e).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        keys
    }

    pub async fn push(&self, keys: &DeviceKeys, changes: &[Vec<u8>]) -> Answer {
        self.signed(keys, "POST", paths::PUSH, encode_push(changes))
            .await
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the log.
    pub fn stop(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "exit status {status}");
                    break;
                }
                assert!(Instant::now() < deadline, "the server did not stop");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        log_text(self.dir.path())
    }

    pub fn log(&self) -> String {
        log_text(self.dir.path())
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// A line of `/proc/<server pid>/status`, in kB (`VmHWM` is the peak resident memory).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// The server's peak resident memory so far, in MB.
    pub fn peak_mb(&self) -> f64 {
        self.status_kb("VmHWM") as f64 / 1024.0
    }

    /// How many sockets the server process has open (its listener included).
    pub fn open_sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|target| target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// A TLS client configuration that trusts only this server's certificate.
    pub fn tls_client_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(self.server_dir().join("cert.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// A blocking TLS connection.
pub type RawTls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A plain TCP connection (blocking) with a short read timeout, if one is made in 5 s.
pub fn tcp_connect(addr: SocketAddr) -> Option<std::net::TcpStream> {
    let tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    Some(tcp)
}

/// A TLS connection (blocking), its handshake done.
pub fn tls_connect(addr: SocketAddr, config: &std::sync::Arc<rustls::ClientConfig>) -> RawTls {
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp_connect(addr).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream.conn.is_handshaking() {
        match stream.conn.complete_io(&mut stream.sock) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("TLS handshake: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the TLS handshake did not finish"
        );
    }
    stream
}

/// Whether the server closed `stream`, waiting at most `within` for it (reads and discards
/// whatever the server sends meanwhile).
pub fn closed_within(stream: &mut impl std::io::Read, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Replaces the `key = ...` line of a `server.toml` text.
pub fn set(config: String, key: &str, value: impl std::fmt::Display) -> String {
    let prefix = format!("{key} =");
    assert!(config.lines().any(|l| l.starts_with(&prefix)), "no {key}");
    config
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{key} = {value}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn log_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// A sealed change by `keys`, readable by the office.
pub fn sealed(keys: &DeviceKeys, office: &DeviceKeys, seq: u64, plaintext: &[u8]) -> Vec<u8> {
    SealedChange::seal(
        keys,
        &[office.public().recipient],
        SealedKind::CaseChange,
        [7; 16],
        seq,
        plaintext,
    )
    .unwrap()
    .to_bytes()
}
