//! `--tls-cert-file/--tls-key-file`, reloaded without restart.
//!
//! Kubernetes updates Secret volumes by swapping a symlink, which inotify on the file paths misses, so
//! the files are re-read on an interval and compared by content. A half-updated pair (new certificate,
//! old key) fails to load and is retried on the next tick while the old pair keeps serving.

use std::path::PathBuf;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use super::TlsError;
use super::server_config::{ClientVerifier, server_config};

/// The certificate and key files.
#[derive(Debug, Clone)]
pub struct PemFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Contents of the pair as last read.
#[derive(Clone, PartialEq, Eq)]
pub struct PemPair {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl PemFiles {
    /// Reads both files.
    pub fn read(&self) -> Result<PemPair, TlsError> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|error| TlsError::Read {
                path: path.clone(),
                error,
            })
        };
        Ok(PemPair {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
        })
    }

    /// Loads the pair into a new rustls configuration checking clients with `client`.
    pub fn load(&self, client: &ClientVerifier) -> Result<(RustlsConfig, PemPair), TlsError> {
        let pair = self.read()?;
        let config = server_config(&pair.cert, &pair.key, client).map_err(|error| TlsError::Load {
            what: self.describe(),
            error,
        })?;
        Ok((RustlsConfig::from_config(config), pair))
    }

    fn describe(&self) -> String {
        format!("{} and {}", self.cert.display(), self.key.display())
    }

    /// Polls the files every `interval` and reloads `config` when their contents change, until `stop`.
    pub async fn watch(
        self,
        (config, client): (RustlsConfig, ClientVerifier),
        mut loaded: PemPair,
        interval: Duration,
        stop: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let pair = match self.read() {
                Ok(pair) if pair != loaded => pair,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the TLS files; still serving the previous certificate");
                    continue;
                }
            };
            match server_config(&pair.cert, &pair.key, &client) {
                Ok(server) => {
                    config.reload_from_config(server);
                    tracing::info!(certificate = %self.cert.display(), "reloaded the serving certificate");
                    loaded = pair;
                }
                Err(error) => tracing::warn!(
                    %error,
                    what = %self.describe(),
                    "the TLS files changed but do not load (maybe mid-update); retrying, still serving the previous certificate"
                ),
            }
        }
    }
}
