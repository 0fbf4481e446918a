//! One cluster's exchange path: backoff check, credentials and kubeconfig read fresh, the Dex exchange,
//! the forwarded headers built once, metrics and a log line without any token.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use muster_exchange_api::sidecar_config::{ClusterConfig, HeaderMode};
use muster_exchange_dex::{BuildError, ClientOptions, ExchangeClient, ExchangeRequest};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::auth_headers::{self, ForwardAuth};
use crate::backoff::Backoff;
use crate::errors::ExchangeFailure;
use crate::metrics::ClusterMetrics;
use crate::token_cache::Fetched;
use crate::{credentials, endpoint, kubeconfig};

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
    in_flight: Semaphore,
    /// Longest wait for a slot (the exchange timeout).
    slot_timeout: Duration,
    /// Requests waiting for a slot now, and the most that may: beyond it a request is refused at once
    /// (a time bound alone lets a flood of distinct tokens pile up for the whole timeout).
    waiting: AtomicUsize,
    max_waiting: usize,
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
    /// At most `max_waiting` requests wait for an exchange slot.
    pub fn new(
        config: ClusterConfig,
        timeout: Duration,
        max_waiting: usize,
    ) -> Result<Self, ClusterSetupError> {
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
            in_flight: Semaphore::new(MAX_CONCURRENT_EXCHANGES),
            slot_timeout: timeout,
            waiting: AtomicUsize::new(0),
            max_waiting,
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
        metrics: &ClusterMetrics,
    ) -> Result<Fetched<Arc<ForwardAuth>>, Arc<ExchangeFailure>> {
        let subject_scope = format!("{}/{subject_fingerprint}", self.name());
        self.check_backoff(&subject_scope, backoff, metrics)?;
        let _slot = self
            .acquire_slot()
            .await
            .inspect_err(|f| metrics.exchange(f.outcome()))?;
        // Checked again: while this request queued for a slot, the exchanges ahead of it may have found
        // Dex down, and it must not ask Dex once more.
        self.check_backoff(&subject_scope, backoff, metrics)?;
        let started = Instant::now();
        let result = self.exchange_once(mode, subject_token).await;
        metrics.exchange_duration.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(fetched) => {
                metrics.exchange("success");
                backoff.record_success(self.name());
                backoff.record_success(&subject_scope);
                tracing::info!(cluster = self.name(), subject = subject_fingerprint,
                    token = %fetched.value.token_fingerprint, "token exchanged");
                Ok(fetched)
            }
            Err(failure) => {
                let failure = Arc::new(failure);
                metrics.exchange(failure.outcome());
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

    fn check_backoff(
        &self,
        subject_scope: &str,
        backoff: &Backoff<Arc<ExchangeFailure>>,
        metrics: &ClusterMetrics,
    ) -> Result<(), Arc<ExchangeFailure>> {
        for scope in [self.name(), subject_scope] {
            if let Some((last, retry_after)) = backoff.blocked(scope) {
                metrics.exchange("backoff");
                return Err(Arc::new(ExchangeFailure::BackingOff { last, retry_after }));
            }
        }
        Ok(())
    }

    /// One of the cluster's exchange slots, waiting at most the exchange timeout (a request must not
    /// queue without bound behind a slow Dex).
    async fn acquire_slot(&self) -> Result<SemaphorePermit<'_>, Arc<ExchangeFailure>> {
        if let Ok(permit) = self.in_flight.try_acquire() {
            return Ok(permit);
        }
        let _place = QueuePlace::take(&self.waiting, self.max_waiting)?;
        acquire_within(&self.in_flight, self.slot_timeout).await
    }

    async fn exchange_once(
        &self,
        mode: HeaderMode,
        subject_token: &str,
    ) -> Result<Fetched<Arc<ForwardAuth>>, ExchangeFailure> {
        let creds = credentials::read(&self.config)?;
        let endpoint = self.endpoint(mode)?;
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
            subject_expires_at: None,
        })
    }

    /// The cluster's API server and CA, read fresh from the endpoint directory or the kubeconfig in
    /// `auth-headers` mode (`None` in `bearer` mode, or with neither: building the headers then reports
    /// it).
    pub fn endpoint(
        &self,
        mode: HeaderMode,
    ) -> Result<Option<kubeconfig::ClusterEndpoint>, kubeconfig::KubeconfigError> {
        if mode != HeaderMode::AuthHeaders {
            return Ok(None);
        }
        match (&self.config.endpoint_dir, &self.config.kubeconfig_file) {
            (Some(dir), _) => endpoint::load(dir).map(Some),
            (None, Some(file)) => kubeconfig::load(file).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Problems that make the sidecar not ready for this cluster (credentials, endpoint or kubeconfig).
    pub fn readiness_problems(&self, mode: HeaderMode) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = credentials::read(&self.config) {
            problems.push(format!("cluster {}: {e}", self.name()));
        }
        match self.endpoint(mode) {
            Ok(Some(_)) => {}
            Ok(None) if mode == HeaderMode::AuthHeaders => problems.push(format!(
                "cluster {}: {}",
                self.name(),
                auth_headers::HeaderBuildError::NoKubeconfig
            )),
            Ok(None) => {}
            Err(e) => problems.push(format!("cluster {}: {e}", self.name())),
        }
        problems
    }
}

/// One place in a cluster's queue for an exchange slot, given back when dropped.
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    /// A place, or [`ExchangeFailure::QueueFull`] when `max` requests already wait.
    fn take(waiting: &'a AtomicUsize, max: usize) -> Result<Self, Arc<ExchangeFailure>> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| Self(waiting))
            .map_err(|_| Arc::new(ExchangeFailure::QueueFull { waiting: max }))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A permit of `slots`, or [`ExchangeFailure::SlotTimeout`] after `timeout`.
async fn acquire_within(
    slots: &Semaphore,
    timeout: Duration,
) -> Result<SemaphorePermit<'_>, Arc<ExchangeFailure>> {
    match tokio::time::timeout(timeout, slots.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_closed)) => Err(Arc::new(ExchangeFailure::Aborted)),
        Err(_elapsed) => Err(Arc::new(ExchangeFailure::SlotTimeout {
            waited: timeout,
            slots: MAX_CONCURRENT_EXCHANGES,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_for_a_slot_ends_after_the_timeout() {
        let slots = Semaphore::new(1);
        let _held = slots.acquire().await.unwrap();
        let started = Instant::now();
        let failure = acquire_within(&slots, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(
            failure.to_string(),
            "waited 1s for one of the 16 exchange slots of this cluster (Dex is slow or many new callers \
             arrived at once); retry shortly"
        );
        assert_eq!(failure.outcome(), "queue_timeout");
        drop(_held);
        assert!(acquire_within(&slots, Duration::from_millis(50)).await.is_ok());
    }

    #[test]
    fn the_queue_for_a_slot_has_a_length_cap() {
        let waiting = AtomicUsize::new(0);
        let first = QueuePlace::take(&waiting, 2).unwrap();
        let second = QueuePlace::take(&waiting, 2).unwrap();
        let Err(full) = QueuePlace::take(&waiting, 2) else {
            panic!("a third waiter must be refused");
        };
        assert_eq!(full.outcome(), "queue_full");
        drop(first);
        assert_eq!(waiting.load(Ordering::Acquire), 1);
        let third = QueuePlace::take(&waiting, 2).unwrap();
        drop((second, third));
        assert_eq!(waiting.load(Ordering::Acquire), 0);
    }
}
