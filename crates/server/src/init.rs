//! `cairn-server init`: a new server directory with its configuration, self-signed TLS
//! certificate, fingerprint file and database. Refuses to touch an existing configuration.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use cairn_protocol::OfficeKeys;

use crate::config::{ServerConfig, CONFIG_FILE};
use crate::error::ServerError;
use crate::storage::AnyStorage;

/// The file holding the certificate's fingerprint.
pub const FINGERPRINT_FILE: &str = "fingerprint";

/// What `init` made.
pub struct Initialized {
    /// The configuration file.
    pub config_path: PathBuf,
    /// Lowercase hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
}

/// Creates the server directory `dir`.
pub async fn init(
    dir: &Path,
    office_key_file: &Path,
    listen: SocketAddr,
    database: Option<String>,
) -> Result<Initialized, ServerError> {
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(ServerError::Config(format!(
            "{} already exists; refusing to overwrite it (use another --dir, or remove it first)",
            config_path.display()
        )));
    }
    let office_text = std::fs::read_to_string(office_key_file)
        .map_err(|e| ServerError::io("read the office key file", office_key_file, e))?;
    let office: OfficeKeys = office_text.parse().map_err(|e| {
        ServerError::Config(format!(
            "{}: {e} (`cairn office pubkey` writes them)",
            office_key_file.display()
        ))
    })?;
    std::fs::create_dir_all(dir).map_err(|e| ServerError::io("create", dir, e))?;

    let config = ServerConfig::new(listen, database, office);
    let cert = crate::tls::generate(listen.ip())?;
    let (cert_path, key_path) = config.tls_paths(dir);
    write_file(&cert_path, cert.cert_pem.as_bytes(), 0o644)?;
    write_file(&key_path, cert.key_pem.as_bytes(), 0o600)?;
    write_file(
        &dir.join(FINGERPRINT_FILE),
        format!("{}\n", cert.fingerprint).as_bytes(),
        0o644,
    )?;
    // Creates the tables now, so a wrong database URL is found at init, not at first use.
    AnyStorage::open(&config.database(dir)).await?;
    // Written last and only if absent: its presence means the directory is complete.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&config_path)
        .map_err(|e| ServerError::io("create", &config_path, e))?;
    file.write_all(config.render().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| ServerError::io("write", &config_path, e))?;
    Ok(Initialized {
        config_path,
        fingerprint: cert.fingerprint,
    })
}

/// `listen`, with port 0 replaced by a port free now: bound, read and released. Saved as
/// port 0, a server would pick another port at every start, and the admissions that name its
/// address would all stop working after a restart.
pub fn choose_port(listen: SocketAddr) -> Result<SocketAddr, ServerError> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    let bound = |source| ServerError::Bind {
        addr: listen,
        source,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(bound)?;
    listener.local_addr().map_err(bound)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ServerError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| ServerError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| ServerError::io("write", path, e))
}
