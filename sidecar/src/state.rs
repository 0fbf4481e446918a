//! Everything a request needs, built once at start.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use muster_exchange_dex::jwt::peek_claims;

use muster_exchange_api::sidecar_config::{HeaderMode, SidecarConfig};

use crate::auth_headers::ForwardAuth;
use crate::backoff::{Backoff, BackoffOptions};
use crate::errors::ExchangeFailure;
use crate::exchanger::{ClusterRuntime, ClusterSetupError};
use crate::forward::{UpstreamClient, UpstreamError, UpstreamTarget, upstream_client};
use crate::metrics::{ClusterMetrics, Metrics};
use crate::subject::{self, SubjectPath};
use crate::token_cache::{CacheKey, CacheOptions, Fetched, Lookup, TokenCache};

/// What [`AppState::admit_subject`] decided without Dex.
pub(crate) enum Admitted {
    /// Forward this identity (the cluster's own token, passed through).
    Forward(Fetched<Arc<ForwardAuth>>),
    /// Exchange the token at the cluster's Dex; its `exp`, when it has one.
    Exchange { subject_expires_at: Option<SystemTime> },
}

/// Default of [`SidecarOptions::exchange_queue_limit`]: four times the exchange slots.
pub const DEFAULT_EXCHANGE_QUEUE_LIMIT: usize = 4 * crate::exchanger::MAX_CONCURRENT_EXCHANGES;

/// Tuning knobs (defaults are the production values; tests shorten them).
#[derive(Debug, Clone)]
pub struct SidecarOptions {
    /// Timeout of one exchange at Dex.
    pub exchange_timeout: Duration,
    /// Cache sizing and timing.
    pub cache: CacheOptions,
    /// Negative-cache delays.
    pub backoff: BackoffOptions,
    /// Request bodies up to this size are buffered so a 401 from the app can be retried; larger or
    /// unsized bodies stream and are not retried.
    pub replay_limit: u64,
    /// A 401 from the app for an exchanged token younger than this is passed through, not retried with
    /// a fresh exchange: an app that refuses every fresh token (missing audience scope) would otherwise
    /// cost one exchange per request.
    pub unauthorized_retry_cooldown: Duration,
    /// Most requests of one cluster waiting for an exchange slot; further ones get 503 at once.
    pub exchange_queue_limit: usize,
    /// Bounds of the HTTP server (timeouts, connection and in-flight caps).
    pub limits: crate::limits::ServerLimits,
}

impl Default for SidecarOptions {
    fn default() -> Self {
        Self {
            exchange_timeout: Duration::from_secs(10),
            cache: CacheOptions::default(),
            backoff: BackoffOptions::default(),
            replay_limit: 64 * 1024,
            unauthorized_retry_cooldown: Duration::from_secs(30),
            exchange_queue_limit: DEFAULT_EXCHANGE_QUEUE_LIMIT,
            limits: crate::limits::ServerLimits::default(),
        }
    }
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A cluster could not be set up.
    #[error(transparent)]
    Cluster(#[from] ClusterSetupError),
    /// `upstream` is unusable.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Shared state of the running sidecar.
pub struct AppState {
    /// Configured clusters, in order.
    pub clusters: Vec<ClusterRuntime>,
    /// Their names (routing).
    pub names: Vec<String>,
    /// Per-cluster metric handles, same order.
    pub cluster_metrics: Vec<ClusterMetrics>,
    /// How the identity is forwarded.
    pub header_mode: HeaderMode,
    /// Exchanged tokens.
    pub cache: TokenCache<Arc<ForwardAuth>, Arc<ExchangeFailure>>,
    /// Negative cache.
    pub backoff: Backoff<Arc<ExchangeFailure>>,
    /// Metrics.
    pub metrics: Metrics,
    /// The app.
    pub upstream: UpstreamTarget,
    /// Client to the app.
    pub http: UpstreamClient,
    /// See [`SidecarOptions::replay_limit`].
    pub replay_limit: u64,
    /// See [`SidecarOptions::unauthorized_retry_cooldown`].
    pub unauthorized_retry_cooldown: Duration,
    /// The configuration's `centralIssuer`.
    pub central_issuer: Option<String>,
}

impl AppState {
    /// Builds the state for `config`.
    pub fn new(config: &SidecarConfig, options: &SidecarOptions) -> Result<Self, StateError> {
        let clusters = config
            .clusters
            .iter()
            .map(|c| ClusterRuntime::new(c.clone(), options.exchange_timeout, options.exchange_queue_limit))
            .collect::<Result<Vec<_>, _>>()?;
        let metrics = Metrics::default();
        let names: Vec<String> = clusters.iter().map(|c| c.name().to_string()).collect();
        let cluster_metrics = names.iter().map(|n| metrics.for_cluster(n)).collect();
        Ok(Self {
            clusters,
            names,
            cluster_metrics,
            header_mode: config.header_mode,
            cache: TokenCache::new(options.cache),
            backoff: Backoff::new(options.backoff),
            metrics,
            upstream: UpstreamTarget::parse(&config.upstream)?,
            http: upstream_client(),
            replay_limit: options.replay_limit,
            unauthorized_retry_cooldown: options.unauthorized_retry_cooldown,
            central_issuer: config.central_issuer.clone(),
        })
    }

    /// The forwarded identity for `subject_token` at cluster `index`: cached, or worked out once for all
    /// concurrent callers: passed through when the cluster's own Dex issued the token, refused when
    /// another configured cluster's did, exchanged otherwise ([`subject`]). The subject's `exp` is read only when exchanging (a hit is already bounded by
    /// it); [`subject::admit`] refuses garbage, expired and (with `centralIssuer`) foreign tokens without
    /// asking Dex.
    pub async fn authorize(
        self: &Arc<Self>,
        index: usize,
        key: &CacheKey,
        subject_token: &str,
    ) -> Result<Arc<ForwardAuth>, Arc<ExchangeFailure>> {
        let fetch = || {
            let app = self.clone();
            let subject = subject_token.to_string();
            let fingerprint = key.subject_fingerprint();
            async move {
                let subject_expires_at =
                    match app.admit_subject(index, &subject, &fingerprint, SystemTime::now())? {
                        Admitted::Forward(fetched) => return Ok(fetched),
                        Admitted::Exchange { subject_expires_at } => subject_expires_at,
                    };
                let cluster = &app.clusters[index];
                let metrics = &app.cluster_metrics[index];
                let mut fetched = cluster
                    .exchange(app.header_mode, &subject, &fingerprint, &app.backoff, metrics)
                    .await?;
                fetched.subject_expires_at = subject_expires_at;
                Ok(fetched)
            }
        };
        let (result, lookup) = self.cache.get(key, fetch).await;
        let m = &self.cluster_metrics[index];
        match lookup {
            Lookup::Hit => m.cache_hit.inc(),
            Lookup::HitRefreshing => {
                m.cache_hit.inc();
                m.background_refreshes.inc()
            }
            Lookup::Miss => m.cache_miss.inc(),
            Lookup::Joined => m.cache_joined.inc(),
        };
        result
    }

    /// Everything a miss decides before any Dex call, for `subject_token` (logged as `fingerprint`) at
    /// cluster `index` at `now`:
    /// refusals of garbage, expired, foreign and other clusters' tokens ([`subject::admit`]), or the
    /// passthrough identity, or that the token is exchanged. The fuzz target `sidecar_inbound` runs this
    /// same function, so it checks what the proxy does.
    pub(crate) fn admit_subject(
        &self,
        index: usize,
        subject_token: &str,
        fingerprint: &str,
        now: SystemTime,
    ) -> Result<Admitted, Arc<ExchangeFailure>> {
        let claims = peek_claims(subject_token);
        let subject_expires_at = claims.as_ref().and_then(|c| c.expires_at());
        let cluster = &self.clusters[index];
        let metrics = &self.cluster_metrics[index];
        let path = subject::admit(
            claims.as_ref(),
            now,
            index,
            &self.clusters,
            self.central_issuer.as_deref(),
        )
        .map_err(|refusal| {
            metrics.exchange(refusal.outcome());
            Arc::new(refusal)
        })?;
        match path {
            SubjectPath::Exchange => Ok(Admitted::Exchange { subject_expires_at }),
            SubjectPath::Passthrough => subject::passthrough(
                cluster,
                self.header_mode,
                subject_token,
                subject_expires_at,
                metrics,
            )
            .map(Admitted::Forward),
            SubjectPath::OtherCluster(other) => {
                tracing::info!(
                    cluster = cluster.name(),
                    subject = fingerprint,
                    issuer_cluster = self.names[other],
                    "refused a token issued for another cluster"
                );
                Err(Arc::new(ExchangeFailure::IssuedForOtherCluster {
                    issuer_cluster: self.names[other].clone(),
                }))
            }
        }
    }

    /// Problems that make the sidecar not ready.
    pub fn readiness_problems(&self) -> Vec<String> {
        self.clusters
            .iter()
            .flat_map(|c| c.readiness_problems(self.header_mode))
            .collect()
    }
}
