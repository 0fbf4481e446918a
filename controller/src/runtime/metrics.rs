//! Prometheus metrics (prometheus-client), served on `/metrics`. Labels are bounded: grant kinds, error
//! categories, condition reasons; `cluster` is `namespace/name` of an MCPServer (one per cluster).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{loop}`: which reconcile loop.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoopLabels {
    /// `kubeconfig_grants`, `credential_grants` or `probe`.
    pub r#loop: &'static str,
}

/// `{loop, error}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Loop.
    pub r#loop: &'static str,
    /// Error category.
    pub error: &'static str,
}

/// `{cluster, condition, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// MCPServer `namespace/name`.
    pub cluster: String,
    /// Condition type.
    pub condition: &'static str,
    /// Condition reason.
    pub reason: &'static str,
}

/// `{kind, operation}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    /// `kubeconfig` or `credentials`.
    pub kind: &'static str,
}

/// `{kind, operation}` for writes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `kubeconfig` or `credentials`.
    pub kind: &'static str,
    /// `apply` or `delete`.
    pub operation: &'static str,
}

/// Every metric the controller exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reconciles run.
    pub reconciles: Family<LoopLabels, Counter>,
    /// Reconcile errors.
    pub errors: Family<ErrorLabels, Counter>,
    /// Probe results.
    pub probe_results: Family<ProbeLabels, Counter>,
    /// Namespaces holding a managed grant.
    pub grants_managed: Family<GrantLabels, Gauge>,
    /// Namespaces refused (system or own namespace).
    pub grants_refused: Family<GrantLabels, Gauge>,
    /// Grant writes sent.
    pub grant_writes: Family<WriteLabels, Counter>,
    /// Status writes sent.
    pub status_writes: Counter,
    /// Status writes that met a conflict (another writer, e.g. Muster, wrote in between) and were re-read
    /// and merged again.
    pub status_write_conflicts: Counter,
    /// MCPServers in the cache that cannot be read at all (each costs only itself; logged by name).
    pub mcpservers_unreadable: Gauge,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
}

impl Metrics {
    /// Registers everything under the `muster_exchange_controller` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("muster_exchange_controller");
        r.register("reconciles", "Reconcile runs by loop", self.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconcile errors by loop and category",
            self.errors.clone(),
        );
        r.register(
            "probe_results",
            "Probe results by cluster, condition and reason",
            self.probe_results.clone(),
        );
        r.register(
            "grants_managed",
            "Namespaces holding a managed grant, by kind",
            self.grants_managed.clone(),
        );
        r.register(
            "grants_refused",
            "Namespaces refused a grant (system or own namespace)",
            self.grants_refused.clone(),
        );
        r.register(
            "grant_writes",
            "Role/RoleBinding writes by kind and operation",
            self.grant_writes.clone(),
        );
        r.register(
            "status_writes",
            "MCPServer status writes",
            self.status_writes.clone(),
        );
        r.register(
            "status_write_conflicts",
            "MCPServer status writes re-read and merged again after a conflict with another writer",
            self.status_write_conflicts.clone(),
        );
        r.register(
            "mcpservers_unreadable",
            "MCPServers in the cache that cannot be read at all (see the log for their names)",
            self.mcpservers_unreadable.clone(),
        );
        r.register(
            "leader",
            "1 while this replica is the leader",
            self.leader.clone(),
        );
    }
}
