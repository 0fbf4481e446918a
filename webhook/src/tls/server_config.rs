//! The rustls server configuration, with optional client-certificate checking (`--client-ca-file`):
//! when set, only clients presenting a certificate signed by that CA (the API server, configured with an
//! admission kubeconfig) complete the TLS handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::ring::default_provider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Checks client certificates; `None` accepts any client (the default).
pub type ClientVerifier = Option<Arc<dyn ClientCertVerifier>>;

/// Reads the CA certificates of `path` and requires clients to present a certificate they signed.
pub fn client_verifier(path: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let invalid = |reason: String| TlsError::ClientCa {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|e| invalid(e.to_string()))?;
        roots.add(certificate).map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("it holds no PEM certificate".into()));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(default_provider()))
        .build()
        .map_err(|e| invalid(e.to_string()))
}

/// A server configuration for the PEM `cert` chain and `key`, checking clients with `client` if set;
/// HTTP/2 and HTTP/1.1 offered by ALPN, like axum-server's own.
pub fn server_config(cert: &[u8], key: &[u8], client: &ClientVerifier) -> std::io::Result<Arc<ServerConfig>> {
    let other = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| other(format!("cannot parse the certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| other(format!("cannot parse the key: {e}")))?;
    let builder = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| other(e.to_string()))?;
    let builder = match client {
        Some(verifier) => builder.with_client_cert_verifier(verifier.clone()),
        None => builder.with_no_client_auth(),
    };
    let leaf = chain.first().map(|der| der.as_ref().to_vec());
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| other(e.to_string()))?;
    if let Some(leaf) = leaf {
        super::expiry::record(&leaf);
    }
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
