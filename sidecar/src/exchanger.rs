//! One cluster's exchange path: backoff check, credentials and kubeconfig read fresh, the Dex exchange,
//! the forwarded headers built once, metrics and a log line without any token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use muster_exchange_api::sidecar_config::{ClusterConfig, HeaderMode};
use muster_exchange_dex::{BuildError, ClientOptions, ExchangeClient, ExchangeRequest};

use crate::auth_headers::{self, ForwardAuth};
use crate::backoff::Backoff;
use crate::errors::ExchangeFailure;
use crate::metrics::Metrics;
use crate::token_cache::Fetched;
use crate::{credentials, kubeconfig};

/// A configured cluster, ready to exchange.
pub struct ClusterRuntime {
    /// Its configuration entry.
    pub config: ClusterConfig,
    /// The issuer exchanged tokens must carry.
    pub expected_issuer: String,
    /// The `scope` form value.
    pub scope: String,
    client: ExchangeClient,
    /// Bounds concurrent exchanges: distinct subject tokens do not share a flight, so a burst of new
    /// (or forged) tokens would otherwise open one Dex request each.
    in_flight: tokio::sync::Semaphore,
}

/// Most exchanges one cluster runs at the same time; further ones wait for a slot.
pub const MAX_CONCURRENT_EXCHANGES: usize = 16;

/// Why a cluster could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterSetupError {
    /// `caFile` unreadable.
    #[error("cluster {cluster:?}: cannot read caFile {path}: {cause}")]
    CaFile {
        /// Cluster name.
        cluster: String,
        /// The file.
        path: String,
        /// I/O error.
        cause: String,
    },
    /// The HTTPS client could not be built.
    #[error("cluster {cluster:?}: {source}")]
    Client {
        /// Cluster name.
        cluster: String,
        /// Why.
        source: BuildError,
    },
}

impl ClusterRuntime {
    /// Prepares `config` (reads its `caFile` once; CA bundles change with a rollout, not at runtime).
    pub fn new(config: ClusterConfig, timeout: Duration) -> Result<Self, ClusterSetupError> {
        let extra_ca_pem = match &config.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| ClusterSetupError::CaFile {
                cluster: config.name.clone(),
                path: path.display().to_string(),
                cause: e.to_string(),
            })?),
            None => None,
        };
        let client = ExchangeClient::new(ClientOptions {
            timeout,
            extra_ca_pem,
        })
        .map_err(|source| ClusterSetupError::Client {
            cluster: config.name.clone(),
            source,
        })?;
        Ok(Self {
            expected_issuer: config.expected_issuer(),
            scope: config.scope_parameter(),
            config,
            client,
            in_flight: tokio::sync::Semaphore::new(MAX_CONCURRENT_EXCHANGES),
        })
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Exchanges `subject_token`, honouring and updating the backoff. `subject_fingerprint` scopes
    /// per-caller failures.
    pub async fn exchange(
        &self,
        mode: HeaderMode,
        subject_token: &str,
        subject_fingerprint: &str,
        backoff: &Backoff<Arc<ExchangeFailure>>,
        metrics: &Metrics,
    ) -> Result<Fetched<Arc<ForwardAuth>>, Arc<ExchangeFailure>> {
        let subject_scope = format!("{}/{subject_fingerprint}", self.name());
        for scope in [self.name(), subject_scope.as_str()] {
            if let Some((last, retry_after)) = backoff.blocked(scope) {
                metrics.exchange(self.name(), "backoff");
                return Err(Arc::new(ExchangeFailure::BackingOff { last, retry_after }));
            }
        }
        let Ok(_slot) = self.in_flight.acquire().await else {
            return Err(Arc::new(ExchangeFailure::Aborted));
        };
        let started = Instant::now();
        let result = self.exchange_once(mode, subject_token).await;
        let labels = crate::metrics::ClusterLabels {
            cluster: self.name().to_string(),
        };
        metrics
            .exchange_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(fetched) => {
                metrics.exchange(self.name(), "success");
                backoff.record_success(self.name());
                backoff.record_success(&subject_scope);
                tracing::info!(cluster = self.name(), subject = subject_fingerprint,
                    token = %fetched.value.token_fingerprint, "token exchanged");
                Ok(fetched)
            }
            Err(failure) => {
                let failure = Arc::new(failure);
                metrics.exchange(self.name(), failure.outcome());
                let scope = if failure.is_subject_specific() {
                    subject_scope.as_str()
                } else {
                    self.name()
                };
                let delay = backoff.record_failure(scope, failure.clone());
                tracing::warn!(cluster = self.name(), subject = subject_fingerprint, error = %failure,
                    backoff_ms = delay.as_millis() as u64, "token exchange failed");
                Err(failure)
            }
        }
    }

    async fn exchange_once(
        &self,
        mode: HeaderMode,
        subject_token: &str,
    ) -> Result<Fetched<Arc<ForwardAuth>>, ExchangeFailure> {
        let creds = credentials::read(&self.config)?;
        let endpoint = match (mode, &self.config.kubeconfig_file) {
            (HeaderMode::AuthHeaders, Some(file)) => Some(kubeconfig::load(file)?),
            _ => None,
        };
        let request = ExchangeRequest {
            endpoint: &self.config.dex_token_endpoint,
            subject_token,
            connector_id: &self.config.connector_id,
            scope: &self.scope,
            client_id: &creds.client_id,
            client_secret: &creds.client_secret,
            expected_issuer: Some(&self.expected_issuer),
        };
        let token = self.client.exchange(&request).await?;
        let auth = auth_headers::build(&token.access_token, token.expires_at, mode, endpoint.as_ref())?;
        Ok(Fetched {
            value: Arc::new(auth),
            expires_at: token.expires_at,
        })
    }

    /// Problems that make the sidecar not ready for this cluster (credentials, kubeconfig).
    pub fn readiness_problems(&self, mode: HeaderMode) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = credentials::read(&self.config) {
            problems.push(format!("cluster {}: {e}", self.name()));
        }
        if mode == HeaderMode::AuthHeaders {
            match &self.config.kubeconfig_file {
                Some(file) => {
                    if let Err(e) = kubeconfig::load(file) {
                        problems.push(format!("cluster {}: {e}", self.name()));
                    }
                }
                None => problems.push(format!(
                    "cluster {}: {}",
                    self.name(),
                    auth_headers::HeaderBuildError::NoKubeconfig
                )),
            }
        }
        problems
    }
}
