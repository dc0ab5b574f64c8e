//! The server's TLS: a self-signed certificate made at `init`, pinned by devices through the
//! SHA-256 fingerprint carried in every admission. rustls with the `ring` provider.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::error::ServerError;

/// A new certificate and its key, in PEM, with the certificate's fingerprint.
pub struct GeneratedCert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM). Keep it readable by the server only.
    pub key_pem: String,
    /// Lowercase hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
}

/// Lowercase hex SHA-256 of a certificate's DER: what admissions carry and devices pin.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Makes a self-signed certificate for `localhost`, `127.0.0.1`, `::1` and `listen_host`.
pub fn generate(listen_host: IpAddr) -> Result<GeneratedCert, ServerError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen_host.is_unspecified() {
        let host = listen_host.to_string();
        if !names.contains(&host) {
            names.push(host);
        }
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ServerError::Tls(format!("cannot make a certificate: {e}")))?;
    Ok(GeneratedCert {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
        fingerprint: fingerprint(certified.cert.der()),
    })
}

/// Loads the certificate and key into a rustls configuration; returns it with the
/// certificate's fingerprint.
pub fn load(cert: &Path, key: &Path) -> Result<(Arc<rustls::ServerConfig>, String), ServerError> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| ServerError::io("read", path, e));
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ServerError::Tls(format!("{} is not a PEM certificate: {e}", cert.display()))
        })?;
    let leaf = chain
        .first()
        .ok_or_else(|| ServerError::Tls(format!("{} holds no certificate", cert.display())))?;
    let fp = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        ServerError::Tls(format!("{} is not a PEM private key: {e}", key.display()))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            ServerError::Tls(format!("the certificate and key do not work together: {e}"))
        })?;
    // HTTP/1.1 only: every client speaks it, and it has one request per connection at a time.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Records usable only whole: small ones waste less of a link cut mid-record (a download
    // of attachment chunks keeps every chunk that arrived whole).
    config.max_fragment_size = Some(4096);
    Ok((Arc::new(config), fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let made = generate("10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(made.fingerprint.len(), 64);
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &made.cert_pem).unwrap();
        std::fs::write(&key, &made.key_pem).unwrap();
        let (_, fp) = load(&cert, &key).unwrap();
        assert_eq!(fp, made.fingerprint);
        std::fs::write(&key, "garbage").unwrap();
        assert!(load(&cert, &key).is_err());
    }
}
