//! The muster-exchange controller: Secret-read grants per organization namespace and per MCPServer,
//! per-cluster token-exchange conditions on MCPServers, and `diagnose`, the same checks run once.

pub mod error;
pub mod grants;

pub mod backoff;
pub mod conditions;
pub mod diagnose;
pub mod diagnose_cmd;
pub mod duration_arg;
pub mod events;
#[cfg(test)]
mod fixtures;
pub mod metrics;
pub mod probe;
pub mod sources;
pub mod status_writer;
