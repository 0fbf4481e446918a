//! The muster-exchange admission webhook: validates and defaults MCPServers, injects the
//! token-exchange native sidecar into annotated pods, and offers the same injection offline
//! (`muster-exchange inject`).
//!
//! Where things are:
//! - [`inject`]: the pure pod mutation (annotations → MCPServers → sidecar, volumes, JSON Patch);
//! - [`layout`]: mount paths and injected volume names;
//! - [`mcpserver_store`] / [`mcpserver_watch`]: MCPServers from a file or a reflector cache;
//! - [`admission`]: reading AdmissionReviews and writing answers ([`review_object`]: objects read
//!   without their managedFields, [`review_pod`]: pods read with only what injection reads);
//! - [`routes`] and [`server`]: the axum router; [`state`]: what handlers share; [`metrics`];
//! - [`tls`]: PEM files reloaded on change, or a self-signed CA with rotation and caBundle publication;
//! - [`serve`]: running the server with graceful shutdown; [`cli`]: the `webhook` and `inject` commands;
//! - [`inject_manifests`]: offline injection across workload kinds.

pub mod admission;
pub mod admission_sar;
pub mod cli;
// Fuzz entry points (fuzz/); compiled in the crate's tests too, so they cannot drift from the code.
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod inject;
pub mod inject_manifests;
pub mod layout;
pub mod limits;
pub mod mcpserver_store;
pub mod mcpserver_watch;
pub mod metrics;
pub mod review_object;
pub mod review_pod;
pub mod routes;
pub mod serve;
pub mod server;
pub mod state;
pub mod tls;
