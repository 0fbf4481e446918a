//! The muster-exchange controller: Secret-read grants per organization namespace and per MCPServer,
//! per-cluster token-exchange conditions on MCPServers, and `diagnose`, the same checks run once.
//!
//! Where things are:
//! - `grants/`: pure RBAC builders, the generic sync (desired vs observed, SSA, guarded deletes), the
//!   kubeconfig and credential reconcilers; `grants_loop` runs them on watch events and resyncs.
//! - `probe/`: credentials (`ExchangeCredentialsReady`), discovery (`DexConnected`), the probe exchange
//!   (`TokenExchangeVerified`), the fleet runner; `conditions/` turns outcomes into conditions (plus the
//!   aggregate `TokenExchangeReady`); `status_writer` (read, merge, patch guarded by resourceVersion) and
//!   `events` publish them;
//!   `probe_loop` schedules probes with `backoff`.
//! - `diagnose` / `diagnose_cmd`: the one-shot check; `controller_cmd` / `controller_runtime`: the
//!   long-running controller; `cli`: the entry points the binary wires in.
//! - Operations: `leader_election`, `metrics`, `http` (`/healthz`, `/readyz`, `/metrics`), `triggers`.

pub mod backoff;
pub mod cli;
pub mod conditions;
pub mod context;
pub mod controller_cmd;
mod controller_runtime;
pub mod diagnose;
pub mod diagnose_cmd;
pub mod duration_arg;
pub mod error;
pub mod events;
pub mod grants;
pub mod grants_loop;
pub mod http;
pub mod http_server;
pub mod kube_client;
pub mod leader_election;
pub mod leader_election_loop;
pub mod mcpserver_parse;
pub mod metrics;
pub mod probe;
pub mod probe_loop;
pub mod probe_schedule;
pub mod probe_writes;
pub mod sources;
pub mod status_writer;
pub mod triggers;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod manifest_tests;
#[cfg(test)]
mod mock_apiserver;
#[cfg(test)]
mod status_coexist_tests;
