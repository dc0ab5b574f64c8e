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
/// Default largest pull page, in changes.
pub const DEFAULT_MAX_PAGE: u32 = 1000;
/// Default allowed clock difference for signed requests.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: u64 = 300;

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
    /// Largest pull page, in changes.
    #[serde(default = "default_max_page")]
    pub max_page: u32,
    /// How far a signed request's time may be from the server's clock.
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: u64,
    /// The TLS certificate (PEM), relative to the server directory.
    #[serde(default = "default_cert")]
    pub tls_cert: String,
    /// The TLS private key (PEM), relative to the server directory.
    #[serde(default = "default_key")]
    pub tls_key: String,
    /// The office's public keys: invites and revocations must carry its signature.
    pub office: OfficeKeys,
}

fn default_database() -> String {
    "server.db".into()
}
fn default_max_request_bytes() -> usize {
    DEFAULT_MAX_REQUEST_BYTES
}
fn default_max_page() -> u32 {
    DEFAULT_MAX_PAGE
}
fn default_skew() -> u64 {
    DEFAULT_MAX_CLOCK_SKEW_SECS
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
            max_page: DEFAULT_MAX_PAGE,
            max_clock_skew_secs: DEFAULT_MAX_CLOCK_SKEW_SECS,
            tls_cert: default_cert(),
            tls_key: default_key(),
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
        if self.max_request_bytes < 1024 {
            return Err(ServerError::Config(
                "max_request_bytes must be at least 1024".into(),
            ));
        }
        if self.max_page == 0 {
            return Err(ServerError::Config("max_page must be at least 1".into()));
        }
        Ok(())
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
             # Address and port to listen on. Port 0 picks a free port, written to the file `listening`.\n\
             listen = {listen}\n\
             # SQLite file (relative to this directory) or a postgres:// URL.\n\
             database = {database}\n\
             # Largest request body in bytes; larger ones get 413 too_large.\n\
             max_request_bytes = {max_request_bytes}\n\
             # Largest pull page, in changes.\n\
             max_page = {max_page}\n\
             # How far (seconds) a device's clock may be from this server's.\n\
             max_clock_skew_secs = {skew}\n\
             # TLS certificate and key (PEM), relative to this directory.\n\
             tls_cert = {cert}\n\
             tls_key = {key}\n\
             \n\
             # The office's public keys (from `cairn office pubkey`). Invites and revocations\n\
             # must be signed by this key; the server cannot decrypt anything.\n\
             [office]\n\
             signing = {signing}\n\
             recipient = {recipient}\n",
            listen = q(&self.listen.to_string()),
            database = q(&self.database),
            max_request_bytes = self.max_request_bytes,
            max_page = self.max_page,
            skew = self.max_clock_skew_secs,
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
        let missing = tempfile::tempdir().unwrap();
        let err = ServerConfig::load(missing.path()).unwrap_err().to_string();
        assert!(err.contains("cairn-server init"), "{err}");
    }
}
