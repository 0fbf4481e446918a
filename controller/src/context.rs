//! Everything the controller's loops share: the API client, the configuration, metrics, leadership.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;
use muster_exchange_dex::ExchangeClient;
use tokio::sync::watch;

use crate::grants::credential_grants::CredentialGrantConfig;
use crate::grants::kubeconfig_grants::KubeconfigGrantConfig;
use crate::metrics::Metrics;
use crate::probe::ProbeSettings;

/// How the probe loop runs.
#[derive(Debug, Clone)]
pub struct ProbeLoopConfig {
    /// Interval between probes of one healthy MCPServer (jittered).
    pub interval: Duration,
    /// Longest delay after repeated failures.
    pub max_backoff: Duration,
    /// Per-probe timeout and whether to send the probe exchange.
    pub settings: ProbeSettings,
    /// Probes in flight at most.
    pub concurrency: usize,
}

/// Shared by the grant loop, the probe loop and the HTTP server.
pub struct Context {
    /// Kubernetes API client.
    pub client: Client,
    /// Kubeconfig grant settings.
    pub kubeconfig: KubeconfigGrantConfig,
    /// Credential grant settings.
    pub credentials: CredentialGrantConfig,
    /// Probe settings.
    pub probe: ProbeLoopConfig,
    /// HTTPS client for Dex.
    pub exchange: ExchangeClient,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// True while this replica leads; only the leader writes.
    pub leader: watch::Receiver<bool>,
    /// Grants are re-checked at least this often, even without a watch event.
    pub grants_resync: Duration,
}

impl Context {
    /// True while this replica holds the Lease.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }
}
