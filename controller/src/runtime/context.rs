//! What the grant and probe controllers share: the API client for calls, the configuration, metrics
//! and leadership.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;
use muster_exchange_dex::ExchangeClient;
use tokio::sync::watch;

use crate::grants::credential_grants::CredentialGrantConfig;
use crate::grants::kubeconfig_grants::KubeconfigGrantConfig;
use crate::probe::ProbeSettings;
use crate::runtime::metrics::Metrics;

/// How MCPServers are probed.
#[derive(Debug, Clone)]
pub(crate) struct ProbeConfig {
    /// Interval between probes of one healthy MCPServer (jittered).
    pub(crate) interval: Duration,
    /// Longest delay after repeated failures.
    pub(crate) max_backoff: Duration,
    /// Per-probe timeout and whether to send the probe exchange.
    pub(crate) settings: ProbeSettings,
    /// Probes (with their status writes) in flight at most.
    pub(crate) concurrency: usize,
}

/// Shared by both controllers and the HTTP server.
pub(crate) struct Context {
    /// Kubernetes API client for request/response calls (never used for watches).
    pub(crate) client: Client,
    /// Kubeconfig grant settings.
    pub(crate) kubeconfig: KubeconfigGrantConfig,
    /// Credential grant settings.
    pub(crate) credentials: CredentialGrantConfig,
    /// Probe settings.
    pub(crate) probe: ProbeConfig,
    /// HTTPS client for Dex.
    pub(crate) exchange: ExchangeClient,
    /// Event recorder.
    pub(crate) recorder: Recorder,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// True while this replica leads; only the leader writes.
    pub(crate) leader: watch::Receiver<bool>,
    /// Every namespace's grants are re-checked (from the caches) at least this often.
    pub(crate) grants_resync: Duration,
    /// Namespaces reconciled at once.
    pub(crate) grants_concurrency: usize,
}

impl Context {
    /// True while this replica holds the Lease.
    pub(crate) fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }
}
