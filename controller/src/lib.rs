//! The muster-exchange controller: Secret-read grants per organization namespace and per MCPServer,
//! per-cluster token-exchange conditions on MCPServers, and `diagnose`, the same checks run once.

pub mod error;
pub mod grants;

pub mod conditions;
#[cfg(test)]
mod fixtures;
pub mod probe;
