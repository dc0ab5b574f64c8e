//! `server.toml`: where the server listens, its database, its limits and the office's keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cairn_protocol::OfficeKeys;
use serde::Deserialize;

use crate::error::ServerError;
use crate::storage::Database;

/// The configuration file's name inside the server directory.
pub const CONFIG_FILE: &str = "server.toml";
/// Default request body limit: 4 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Default largest blob upload request: 64 MiB of sealed chunks (the client sends less).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 64 * 1024 * 1024;
/// Default largest pull page, in changes.
pub const DEFAULT_MAX_PAGE: u32 = 1000;
/// Default allowed clock difference for signed requests.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: u64 = 300;
/// Default largest sealed change accepted in a push: 2 MiB (a device seals at most 1 MiB of
/// content per change; sealing adds a little per recipient).
pub const DEFAULT_MAX_CHANGE_BYTES: usize = 2 * 1024 * 1024;
/// Default bytes of sealed changes and attachment chunks one device may store: 8 GiB, so
/// that several attachments of the collector's largest (2 GiB by default) fit.
pub const DEFAULT_DEVICE_QUOTA_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Default steady rate of requests per device, per second.
pub const DEFAULT_DEVICE_REQUESTS_PER_SEC: u32 = 10;
/// Default burst of requests per device.
pub const DEFAULT_DEVICE_REQUEST_BURST: u32 = 60;
/// Default requests one device may have in progress at once.
pub const DEFAULT_DEVICE_MAX_IN_FLIGHT: u32 = 4;
/// Default largest join body: 16 KiB.
pub const DEFAULT_JOIN_MAX_BYTES: usize = 16 * 1024;
/// Default joins per minute from one IP address.
pub const DEFAULT_JOIN_PER_MINUTE: u32 = 30;
/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default memory budget of request and pull-page bodies in flight: 32 MiB.
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 32 * 1024 * 1024;
/// Default time for a new connection's TLS handshake and first request head.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default time a kept-alive connection may wait for its next request head.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
/// Default time to receive a whole request body.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;

/// The server's settings, as read from `server.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// An SQLite path (relative to the server directory) or a `postgres://` URL.
    #[serde(default = "default_database")]
    pub database: String,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Largest blob upload request body, in bytes (its chunks are stored as they arrive).
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: u64,
    /// Largest pull page, in changes.
    #[serde(default = "default_max_page")]
    pub max_page: u32,
    /// How far a signed request's time may be from the server's clock.
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: u64,
    /// Largest sealed change accepted in a push (at most `max_request_bytes - 4` applies).
    #[serde(default = "default_max_change_bytes")]
    pub max_change_bytes: usize,
    /// Bytes of sealed changes one device may store on this server.
    #[serde(default = "default_device_quota_bytes")]
    pub device_quota_bytes: u64,
    /// Steady rate of requests one device may make, per second.
    #[serde(default = "default_device_requests_per_sec")]
    pub device_requests_per_sec: u32,
    /// Requests one device may make in a burst above the steady rate.
    #[serde(default = "default_device_request_burst")]
    pub device_request_burst: u32,
    /// Requests one device may have in progress at once.
    #[serde(default = "default_device_max_in_flight")]
    pub device_max_in_flight: u32,
    /// Largest join body (an admission), in bytes.
    #[serde(default = "default_join_max_bytes")]
    pub join_max_bytes: usize,
    /// Joins accepted per minute from one IP address.
    #[serde(default = "default_join_per_minute")]
    pub join_per_minute: u32,
    /// Open connections at most; more wait in the operating system's queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Memory budget, in bytes, of request bodies and pull pages held at once.
    #[serde(default = "default_max_inflight_bytes")]
    pub max_inflight_bytes: usize,
    /// Seconds a new connection has for its TLS handshake, then for its first request head.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for (and take to send) its next request head.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Seconds to receive a whole request body once its head was accepted.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
    /// The TLS certificate (PEM), relative to the server directory.
    #[serde(default = "default_cert")]
    pub tls_cert: String,
    /// The TLS private key (PEM), relative to the server directory.
    #[serde(default = "default_key")]
    pub tls_key: String,
    /// A secret that lets a scraper on another machine read `/metrics` (as
    /// `authorization: Bearer <token>`); without it only loopback peers may.
    #[serde(default)]
    pub metrics_token: Option<String>,
    /// `text` (the default) or `json` log lines; `CAIRN_LOG_FORMAT` overrides it.
    #[serde(default)]
    pub log_format: Option<LogFormat>,
    /// The office's public keys: every roster statement and receipt must carry its signature.
    pub office: OfficeKeys,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `key=value` lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

impl LogFormat {
    /// The format to log in: `CAIRN_LOG_FORMAT` (`env`) if set, else server.toml's
    /// `log_format`, else text. An unknown name is an error naming the two.
    pub fn choose(env: Option<&str>, configured: Option<LogFormat>) -> Result<LogFormat, String> {
        match env.map(str::trim) {
            None | Some("") => Ok(configured.unwrap_or_default()),
            Some(name) if name.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(name) if name.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(name) => Err(format!(
                "CAIRN_LOG_FORMAT is {name:?}; it must be `text` or `json`"
            )),
        }
    }
}

fn default_database() -> String {
    "server.db".into()
}
fn default_max_request_bytes() -> usize {
    DEFAULT_MAX_REQUEST_BYTES
}
fn default_max_upload_bytes() -> u64 {
    DEFAULT_MAX_UPLOAD_BYTES
}
fn default_max_page() -> u32 {
    DEFAULT_MAX_PAGE
}
fn default_skew() -> u64 {
    DEFAULT_MAX_CLOCK_SKEW_SECS
}
fn default_max_change_bytes() -> usize {
    DEFAULT_MAX_CHANGE_BYTES
}
fn default_device_quota_bytes() -> u64 {
    DEFAULT_DEVICE_QUOTA_BYTES
}
fn default_device_requests_per_sec() -> u32 {
    DEFAULT_DEVICE_REQUESTS_PER_SEC
}
fn default_device_request_burst() -> u32 {
    DEFAULT_DEVICE_REQUEST_BURST
}
fn default_device_max_in_flight() -> u32 {
    DEFAULT_DEVICE_MAX_IN_FLIGHT
}
fn default_join_max_bytes() -> usize {
    DEFAULT_JOIN_MAX_BYTES
}
fn default_join_per_minute() -> u32 {
    DEFAULT_JOIN_PER_MINUTE
}
fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
fn default_max_inflight_bytes() -> usize {
    DEFAULT_MAX_INFLIGHT_BYTES
}
fn default_header_timeout() -> u64 {
    DEFAULT_HEADER_TIMEOUT_SECS
}
fn default_idle_timeout() -> u64 {
    DEFAULT_IDLE_TIMEOUT_SECS
}
fn default_body_timeout() -> u64 {
    DEFAULT_BODY_TIMEOUT_SECS
}
fn default_cert() -> String {
    "cert.pem".into()
}
fn default_key() -> String {
    "key.pem".into()
}

impl ServerConfig {
    /// Defaults for a new server directory.
    pub fn new(listen: SocketAddr, database: Option<String>, office: OfficeKeys) -> Self {
        ServerConfig {
            listen,
            database: database.unwrap_or_else(default_database),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_page: DEFAULT_MAX_PAGE,
            max_clock_skew_secs: DEFAULT_MAX_CLOCK_SKEW_SECS,
            max_change_bytes: DEFAULT_MAX_CHANGE_BYTES,
            device_quota_bytes: DEFAULT_DEVICE_QUOTA_BYTES,
            device_requests_per_sec: DEFAULT_DEVICE_REQUESTS_PER_SEC,
            device_request_burst: DEFAULT_DEVICE_REQUEST_BURST,
            device_max_in_flight: DEFAULT_DEVICE_MAX_IN_FLIGHT,
            join_max_bytes: DEFAULT_JOIN_MAX_BYTES,
            join_per_minute: DEFAULT_JOIN_PER_MINUTE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
            tls_cert: default_cert(),
            tls_key: default_key(),
            metrics_token: None,
            log_format: None,
            office,
        }
    }

    /// Reads `DIR/server.toml`.
    pub fn load(dir: &Path) -> Result<ServerConfig, ServerError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ServerError::Config(format!(
                    "{} does not exist; run `cairn-server init --dir {} --office-key FILE` first",
                    path.display(),
                    dir.display()
                ))
            } else {
                ServerError::io("read", &path, e)
            }
        })?;
        let config: ServerConfig = toml::from_str(&text).map_err(|e| {
            ServerError::Config(format!("{} is not valid: {}", path.display(), e.message()))
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ServerError> {
        let bad = |what: String| Err(ServerError::Config(format!("server.toml: {what}")));
        if self.max_request_bytes < 1024 {
            return bad("max_request_bytes must be at least 1024".into());
        }
        if self.max_upload_bytes < cairn_crypto::MAX_SEALED_CHUNK as u64 + 4 {
            return bad(format!(
                "max_upload_bytes must be at least {} (one sealed chunk)",
                cairn_crypto::MAX_SEALED_CHUNK + 4
            ));
        }
        if self.max_page == 0 {
            return bad("max_page must be at least 1".into());
        }
        if self.max_change_bytes < 256 {
            return bad("max_change_bytes must be at least 256".into());
        }
        if self.join_max_bytes < 1024 {
            return bad("join_max_bytes must be at least 1024".into());
        }
        for (name, value) in [
            ("device_requests_per_sec", self.device_requests_per_sec),
            ("device_request_burst", self.device_request_burst),
            ("device_max_in_flight", self.device_max_in_flight),
            ("join_per_minute", self.join_per_minute),
        ] {
            if value == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        for (name, value) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
        ] {
            if !(1..=3600).contains(&value) {
                return bad(format!("{name} must be between 1 and 3600"));
            }
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return bad("metrics_token must be at least 16 characters (or left out)".into());
        }
        if !(1..=100_000).contains(&self.max_connections) {
            return bad("max_connections must be between 1 and 100000".into());
        }
        // A body is held twice while it is checked: the budget must fit the largest one.
        let least = self
            .max_request_bytes
            .saturating_mul(2)
            .max(self.join_max_bytes * 2);
        if self.max_inflight_bytes < least || self.max_inflight_bytes > u32::MAX as usize {
            return bad(format!(
                "max_inflight_bytes must be between twice max_request_bytes ({least}) and {}",
                u32::MAX
            ));
        }
        Ok(())
    }

    /// The largest sealed change a push may carry.
    pub fn change_limit(&self) -> usize {
        self.max_change_bytes
            .min(self.max_request_bytes.saturating_sub(4))
    }

    /// The database to open, relative paths taken from `dir`.
    pub fn database(&self, dir: &Path) -> Database {
        Database::parse(&self.database, dir)
    }

    /// The certificate and key paths.
    pub fn tls_paths(&self, dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join(&self.tls_cert), dir.join(&self.tls_key))
    }

    /// The file's text, with comments.
    pub fn render(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        format!(
            "# cairn-server configuration (see config/server.example.toml for every setting).\n\
             \n\
             # Address and port to listen on; admissions name it. (Port 0 would pick another one at every start.)\n\
             listen = {listen}\n\
             # SQLite file (relative to this directory) or a postgres:// URL.\n\
             database = {database}\n\
             # Largest request body in bytes; larger ones get 413 too_large.\n\
             max_request_bytes = {max_request_bytes}\n\
             # Largest pull page, in changes.\n\
             max_page = {max_page}\n\
             # How far (seconds) a device's clock may be from this server's.\n\
             max_clock_skew_secs = {skew}\n\
             \n\
             # Limits that keep one device or a stranger from starving the server.\n\
             # Largest sealed change in a push (413 change_too_large above it).\n\
             max_change_bytes = {max_change_bytes}\n\
             # Bytes of sealed changes one device may store (507 quota_full above it).\n\
             device_quota_bytes = {device_quota_bytes}\n\
             # Requests per second one device may make, and its burst (429 rate_limited).\n\
             device_requests_per_sec = {device_requests_per_sec}\n\
             device_request_burst = {device_request_burst}\n\
             # Requests one device may have in progress at once (429 rate_limited).\n\
             device_max_in_flight = {device_max_in_flight}\n\
             # Largest join body (an admission), and joins per minute from one IP address.\n\
             join_max_bytes = {join_max_bytes}\n\
             join_per_minute = {join_per_minute}\n\
             # Open connections at most; more wait in the system's queue until one closes.\n\
             max_connections = {max_connections}\n\
             # Memory budget of request bodies and pull pages held at once, in bytes.\n\
             max_inflight_bytes = {max_inflight_bytes}\n\
             # Seconds for a new connection's TLS handshake and first request head; for a\n\
             # kept-alive connection's next request head; for a whole request body.\n\
             header_timeout_secs = {header_timeout_secs}\n\
             idle_timeout_secs = {idle_timeout_secs}\n\
             body_timeout_secs = {body_timeout_secs}\n\
             \n\
             # TLS certificate and key (PEM), relative to this directory.\n\
             tls_cert = {cert}\n\
             tls_key = {key}\n\
             \n\
             # /metrics answers this machine; a scraper elsewhere sends this as a bearer token.\n\
             # metrics_token = \"a long random string\"\n\
             # Log lines as JSON objects (\"json\") or key=value text (\"text\", the default).\n\
             # log_format = \"json\"\n\
             \n\
             # The office's public keys (from `cairn office pubkey`). Roster statements and\n\
             # receipts must be signed by this key; the server cannot decrypt anything.\n\
             [office]\n\
             signing = {signing}\n\
             recipient = {recipient}\n",
            listen = q(&self.listen.to_string()),
            database = q(&self.database),
            max_request_bytes = self.max_request_bytes,
            max_page = self.max_page,
            skew = self.max_clock_skew_secs,
            max_change_bytes = self.max_change_bytes,
            device_quota_bytes = self.device_quota_bytes,
            device_requests_per_sec = self.device_requests_per_sec,
            device_request_burst = self.device_request_burst,
            device_max_in_flight = self.device_max_in_flight,
            join_max_bytes = self.join_max_bytes,
            join_per_minute = self.join_per_minute,
            max_connections = self.max_connections,
            max_inflight_bytes = self.max_inflight_bytes,
            header_timeout_secs = self.header_timeout_secs,
            idle_timeout_secs = self.idle_timeout_secs,
            body_timeout_secs = self.body_timeout_secs,
            cert = q(&self.tls_cert),
            key = q(&self.tls_key),
            signing = q(&self.office.signing.to_string()),
            recipient = q(&self.office.recipient),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_crypto::DeviceKeys;

    #[test]
    fn the_log_format_comes_from_the_environment_then_the_file() {
        let json = Some(LogFormat::Json);
        assert_eq!(LogFormat::choose(None, None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::choose(None, json), Ok(LogFormat::Json));
        assert_eq!(LogFormat::choose(Some(""), json), Ok(LogFormat::Json));
        assert_eq!(LogFormat::choose(Some("text"), json), Ok(LogFormat::Text));
        assert_eq!(LogFormat::choose(Some("JSON"), None), Ok(LogFormat::Json));
        let err = LogFormat::choose(Some("xml"), json).unwrap_err();
        assert!(err.contains("`text` or `json`"), "{err}");
        let text = "listen = \"127.0.0.1:1\"\nlog_format = \"yaml\"\n";
        assert!(toml::from_str::<ServerConfig>(text).is_err());
    }

    #[test]
    fn render_load_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let office = OfficeKeys::from_keys(&DeviceKeys::generate());
        let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), None, office);
        std::fs::write(dir.path().join(CONFIG_FILE), config.render()).unwrap();
        assert_eq!(ServerConfig::load(dir.path()).unwrap(), config);
        assert_eq!(
            config.database(dir.path()),
            Database::Sqlite(dir.path().join("server.db"))
        );

        std::fs::write(dir.path().join(CONFIG_FILE), config.render() + "typo = 1\n").unwrap();
        let err = ServerConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
        let bad = config.render().replace(&config.office.recipient, "age1bad");
        std::fs::write(dir.path().join(CONFIG_FILE), bad).unwrap();
        assert!(ServerConfig::load(dir.path()).is_err());
        let small = config
            .render()
            .replace("max_inflight_bytes = 33554432", "max_inflight_bytes = 1000");
        std::fs::write(dir.path().join(CONFIG_FILE), small).unwrap();
        let err = ServerConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("max_inflight_bytes"), "{err}");
        let zero = config
            .render()
            .replace("body_timeout_secs = 60", "body_timeout_secs = 0");
        std::fs::write(dir.path().join(CONFIG_FILE), zero).unwrap();
        let err = ServerConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("body_timeout_secs"), "{err}");
        // A file from before these settings existed still loads, with the defaults.
        let old: String = config
            .render()
            .lines()
            .filter(|l| !l.contains("timeout") && !l.contains("device_") && !l.contains("max_c"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.path().join(CONFIG_FILE), old).unwrap();
        assert_eq!(ServerConfig::load(dir.path()).unwrap(), config);
        let missing = tempfile::tempdir().unwrap();
        let err = ServerConfig::load(missing.path()).unwrap_err().to_string();
        assert!(err.contains("cairn-server init"), "{err}");
    }
}
