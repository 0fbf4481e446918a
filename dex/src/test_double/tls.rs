//! A throwaway CA and a server certificate for `localhost` / `127.0.0.1`.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A CA (PEM, for clients to trust) and a rustls server config with a leaf it signed.
pub(crate) struct TestTls {
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

/// Why the test TLS material could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create test TLS material: {0}")]
pub struct TlsSetupError(String);

fn err(e: impl std::fmt::Display) -> TlsSetupError {
    TlsSetupError(e.to_string())
}

pub(crate) fn generate() -> Result<TestTls, TlsSetupError> {
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "dex-double test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(err)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "dex-double");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(err)?;

    let key = PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).map_err(err)?;
    let chain = vec![CertificateDer::from(leaf.der().to_vec())];
    // Explicit ring provider: the double works whether or not the test installed a process default.
    let server_config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(err)?;
    Ok(TestTls {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(server_config),
    })
}
