//! The muster-exchange controller: Secret-read grants per organization namespace and per MCPServer,
//! per-cluster token-exchange conditions on MCPServers, and `diagnose`, the same checks run once.

pub mod error;
pub mod grants;

pub mod backoff;
pub mod cli;
pub mod conditions;
pub mod context;
pub mod controller_cmd;
mod controller_runtime;
pub mod diagnose;
pub mod diagnose_cmd;
pub mod duration_arg;
pub mod events;
#[cfg(test)]
mod fixtures;
pub mod grants_loop;
pub mod http;
pub mod leader_election;
pub mod metrics;
pub mod probe;
pub mod probe_loop;
pub mod sources;
pub mod status_writer;
pub mod triggers;

#[cfg(test)]
mod manifest_tests;
