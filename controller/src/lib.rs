//! The muster-exchange controller: Secret-read grants per namespace (kubeconfig grants in organization
//! namespaces, credential grants for MCPServers), per-cluster token-exchange conditions on MCPServers,
//! and `diagnose`, the same checks run once.
//!
//! Where things are:
//! - `grants/`: the grant controller (kube-runtime, keyed by namespace, reading watch caches), the pure
//!   RBAC builders and the per-namespace sync (desired vs observed, server-side apply, guarded deletes).
//! - `probe/`: the probe controller (kube-runtime, one MCPServer per reconcile, requeued with backoff),
//!   the probe itself (credentials, discovery, probe exchange), conditions, status writes and Events.
//! - `leader/`: leader election on a Lease; only the leader writes.
//! - `diagnose/`: the one-shot check.
//! - `runtime/`: wiring, API clients, context, metrics, `/healthz` `/readyz` `/metrics`, and the mock
//!   API servers the tests run against.
//! - `cli`: the two commands the `muster-exchange` binary wires in.

pub mod cli;
pub(crate) mod diagnose;
pub(crate) mod grants;
pub(crate) mod leader;
pub(crate) mod probe;
pub(crate) mod runtime;

/// The controller's metrics, public so the monitoring manifests can be checked against its registry.
pub use runtime::metrics;

/// `/healthz`, `/readyz` and `/metrics`, public so the listen address can be tested end to end.
pub use runtime::http;

/// What the benchmark in `examples/` and the tests in `tests/` use: the mock API server, and the grant
/// objects the controller writes. Not part of the interface.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    pub use crate::grants::rbac_objects::{DesiredGrant, GrantKind, desired_role, desired_role_binding};
    pub use crate::grants::subjects::parse_service_account;
    pub use crate::runtime::mock_apiserver::{ListType, MockApiServer, Recorded, WatchEnd, WatchRecord};
}
