//! Serving certificates: PEM files reloaded on change, or a self-signed CA with rotation and `caBundle`
//! publication.

pub mod authority;
pub mod ca_bundle;
pub mod ca_certs;
pub mod ca_secret;
pub(crate) mod expiry;
pub mod pem_files;
pub mod self_signed;
pub mod server_config;

use std::path::PathBuf;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {error}; check --tls-cert-file/--tls-key-file and the mounted Secret")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The PEM data does not form a usable certificate and key.
    #[error("cannot load {what}: {error}; the files must hold a PEM certificate chain and its private key")]
    Load {
        /// What was loaded.
        what: String,
        /// The rustls error.
        error: std::io::Error,
    },
    /// `--client-ca-file` cannot be used.
    #[error("cannot use {path} as --client-ca-file: {reason}; give a file of PEM CA certificates")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rcgen failed to mint a certificate.
    #[error("cannot generate the self-signed certificate: {0}")]
    Generate(String),
    /// The new CA could not be published.
    #[error(transparent)]
    Publish(#[from] ca_bundle::PublishError),
    /// The shared CA Secret could not be read or written.
    #[error(transparent)]
    CaStore(#[from] ca_secret::CaStoreError),
}

impl TlsError {
    fn generate(error: rcgen::Error) -> Self {
        Self::Generate(error.to_string())
    }
}
