//! The muster-exchange admission webhook: validates and defaults MCPServers, injects the
//! token-exchange native sidecar into annotated pods, and offers the same injection offline
//! (`muster-exchange inject`).
//!
//! Layout: [`inject`] is the pure pod mutation; [`layout`] fixes names and paths; [`mcpserver_store`]
//! finds MCPServers without touching the API on the hot path.

pub mod admission;
pub mod cli;
pub mod inject;
pub mod inject_manifests;
pub mod layout;
pub mod mcpserver_store;
pub mod mcpserver_watch;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod server;
pub mod state;
pub mod tls;
