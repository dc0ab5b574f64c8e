//! TLS that trusts exactly one certificate: the one whose SHA-256 the admission carries.
//!
//! The server's certificate is self-signed, so there is no CA to ask; the fingerprint, handed
//! over in person with the admission, is the trust anchor. Handshake signatures are still verified
//! with rustls's own algorithms, so only the holder of that certificate's key can answer.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The text rustls carries back when the pin does not match; the client looks for it.
pub(crate) const MISMATCH: &str = "cairn: certificate fingerprint mismatch";

#[derive(Debug)]
struct Pinned {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Sha256::digest(end_entity.as_ref()).as_slice() == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(MISMATCH.into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration pinned to `fingerprint` (64 hex digits).
pub(crate) fn pinned_config(fingerprint: &str) -> Result<rustls::ClientConfig, String> {
    let bytes =
        hex::decode(fingerprint.trim()).map_err(|_| "the fingerprint is not hex".to_string())?;
    let fingerprint: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "the fingerprint is not 64 hex digits".to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            fingerprint,
            provider,
        }))
        .with_no_client_auth();
    config.max_fragment_size = Some(RECORD_BYTES);
    Ok(config)
}

/// Largest TLS record sent. A record is usable only whole: on a link cut mid-record the
/// other side loses all of it, so small records waste less of a link that drops often
/// (rustls's default is 16 KiB; each record costs about 22 bytes).
pub(crate) const RECORD_BYTES: usize = 4096;
