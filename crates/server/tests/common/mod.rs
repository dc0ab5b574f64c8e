//! A real `cairn-server` process on 127.0.0.1 with an ephemeral port, and a reqwest client
//! that trusts only its self-signed certificate.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_crypto::{DeviceId, DeviceKeys, SealedChange, SealedKind, TeamKey};
use cairn_protocol::{
    encode_push, paths, sign_request, unix_now, Act, DevicePublic, ErrorBody, JoinResponse,
    OfficeKeys, PushResponse, Statement,
};
pub use cairn_testkit::admit;
use cairn_testkit::{ServerDir, ServerProcess};

/// A real server process (killed, stopped, measured through [`ServerProcess`]), the office
/// that it trusts, and a client that trusts it.
pub struct TestServer {
    pub process: ServerProcess,
    pub office: DeviceKeys,
    pub client: reqwest::Client,
    /// The office's roster chain as the office holds it (not necessarily sent yet).
    chain: Mutex<Vec<Statement>>,
    /// Each team's key (epoch 1).
    keys: Mutex<HashMap<String, TeamKey>>,
    /// Each admitted device's team.
    teams: Mutex<HashMap<DeviceId, String>>,
}

/// An answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
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
    /// A header of the answer, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
    pub fn push(&self) -> PushResponse {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server whose `server.toml` has `settings` set after `init`.
    pub fn start_with(settings: &[(&str, &str)]) -> TestServer {
        Self::start_inner(settings, None)
    }

    /// Starts a server whose output (its log) goes to `log`, such as `/dev/full`.
    pub fn start_logging_to(log: &std::path::Path) -> TestServer {
        Self::start_inner(&[], Some(log))
    }

    fn start_inner(settings: &[(&str, &str)], log: Option<&std::path::Path>) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let office = DeviceKeys::generate();
        let dir = ServerDir::init(OfficeKeys::from_keys(&office));
        dir.configure(settings);
        if let Some(log) = log {
            // The launcher appends to `server.log`: make that name lead to `log`.
            std::os::unix::fs::symlink(log, dir.root().join("server.log")).unwrap();
        }
        let process = dir.spawn();
        let client = client_for(&process);
        TestServer {
            process,
            office,
            client,
            chain: Mutex::default(),
            keys: Mutex::default(),
            teams: Mutex::default(),
        }
    }

    /// Restarts the process, and connects afresh (kept-alive connections died with it).
    pub fn restart(&mut self) {
        self.process.restart();
        self.client = client_for(&self.process);
    }

    pub fn base(&self) -> String {
        self.process.url()
    }

    /// The key of `team` (epoch 1), made on first use.
    pub fn key(&self, team: &str) -> TeamKey {
        let mut keys = self.keys.lock().unwrap();
        let key = keys
            .entry(team.to_owned())
            .or_insert_with(|| TeamKey::generate(team, 1));
        TeamKey::from_bytes(key.team(), key.epoch(), *key.bytes())
    }

    /// The office's chain so far.
    pub fn chain(&self) -> Vec<Statement> {
        self.chain.lock().unwrap().clone()
    }

    /// The office issues the next statement of its chain with `act` (not sent anywhere).
    pub fn issue(&self, act: Act) -> Statement {
        let mut chain = self.chain.lock().unwrap();
        let counter = chain.len() as u64 + 1;
        let prev = chain.last().map_or([0; 32], Statement::hash);
        let s = Statement::issue(&self.office, counter, prev, unix_now(), act).unwrap();
        chain.push(s.clone());
        s
    }

    /// The office admits `keys` into `team` as the next statement of its chain (not sent).
    pub fn admission(&self, keys: &DeviceKeys, team: &str, expires_at: u64) -> Statement {
        let mut chain = self.chain.lock().unwrap();
        let counter = chain.len() as u64 + 1;
        let prev = chain.last().map_or([0; 32], Statement::hash);
        let s = admit(
            &self.office,
            counter,
            prev,
            &self.key(team),
            &DevicePublic::from_keys(keys),
            &self.base(),
            self.process.fingerprint(),
            expires_at,
        );
        chain.push(s.clone());
        self.teams
            .lock()
            .unwrap()
            .insert(keys.id(), team.to_owned());
        s
    }

    /// `POST /v2/join` with `statement`, signed by `keys`.
    pub async fn join_with(&self, keys: &DeviceKeys, statement: &Statement) -> Answer {
        self.signed(
            keys,
            "POST",
            paths::JOIN,
            serde_json::to_vec(statement).unwrap(),
        )
        .await
    }

    /// The office posts statements (`POST /v2/roster`).
    pub async fn post_roster(&self, statements: &[Statement]) -> Answer {
        let body = serde_json::to_vec(statements).unwrap();
        self.signed(&self.office, "POST", paths::ROSTER, body).await
    }

    /// A change by `keys` sealed under its team's key.
    pub fn sealed(&self, keys: &DeviceKeys, seq: u64, plaintext: &[u8]) -> Vec<u8> {
        let team = self.teams.lock().unwrap().get(&keys.id()).cloned();
        let team = team.expect(
            "a device admitted by this test server (seal the office's own with common::sealed)",
        );
        sealed(keys, &self.key(&team), seq, plaintext)
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
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Answer {
            status,
            headers,
            body,
        }
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

    /// A new device admitted into `team`, joined with its admission.
    pub async fn device(&self, team: &str) -> DeviceKeys {
        let keys = DeviceKeys::generate();
        let statement = self.admission(&keys, team, unix_now() + 3600);
        let answer = self.join_with(&keys, &statement).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let joined: JoinResponse = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(
            (joined.team.as_str(), joined.device),
            (team, keys.id().to_string())
        );
        keys
    }

    pub async fn push(&self, keys: &DeviceKeys, changes: &[Vec<u8>]) -> Answer {
        self.signed(keys, "POST", paths::PUSH, encode_push(changes))
            .await
    }

    /// A TLS client configuration that trusts only this server's certificate.
    pub fn tls_client_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(self.process.dir().path().join("cert.pem")).unwrap();
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
/// A client that trusts only `process`'s certificate.
fn client_for(process: &ServerProcess) -> reqwest::Client {
    let cert = std::fs::read(process.dir().path().join("cert.pem")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

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

/// A sealed change by `keys` under `key` (its team and epoch go in the header).
pub fn sealed(keys: &DeviceKeys, key: &TeamKey, seq: u64, plaintext: &[u8]) -> Vec<u8> {
    SealedChange::seal(keys, key, SealedKind::CaseChange, [7; 16], seq, plaintext)
        .unwrap()
        .to_bytes()
}

/// Runs `test` against a server whose database is PostgreSQL at `CAIRN_TEST_POSTGRES_URL`, in
/// a fresh schema dropped afterwards; without that variable, says it was skipped.
pub async fn with_postgres_server<F, Fut>(test: F)
where
    F: FnOnce(TestServer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    with_postgres_server_set(&[], test).await;
}

/// [`with_postgres_server`], its `server.toml` also having `settings` set.
pub async fn with_postgres_server_set<F, Fut>(settings: &[(&str, &str)], test: F)
where
    F: FnOnce(TestServer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        println!("skipped: CAIRN_TEST_POSTGRES_URL not set");
        return;
    };
    let schema = format!("cairn_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let admin = |sql: String| {
        let url = url.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(connection);
            client.batch_execute(&sql).await.unwrap();
            drop(client);
            let _ = task.await;
        }
    };
    admin(format!("CREATE SCHEMA {schema}")).await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let outcome = tokio::spawn(async move {
        let database = format!("\"{scoped}\"");
        let mut all: Vec<(&str, &str)> = vec![("database", &database)];
        all.extend(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let server = TestServer::start_with(&all);
        test(server).await;
    })
    .await;
    admin(format!("DROP SCHEMA {schema} CASCADE")).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
