//! The muster-exchange admission webhook: validates and defaults MCPServers, injects the
//! token-exchange native sidecar into annotated pods, and offers the same injection offline
//! (`muster-exchange inject`).
//!
//! Where things are:
//! - [`cli`]: the `webhook` and `inject` commands;
//! - [`server`]: how the webhook serves (wiring, router, TLS serving within limits, shutdown, shared
//!   state, metrics);
//! - `routes`: the axum handlers; each parses a review and calls a decision in `admission`;
//! - [`admission`]: the reviews (decoding an AdmissionReview, MCPServer validation and defaulting, pod
//!   injection, the credentials Secret access check) and their answers;
//! - [`inject`]: the pure pod mutation (annotations → MCPServers → sidecar, volumes, JSON Patch);
//! - [`mcpservers`]: MCPServers from a file or a watch-backed cache;
//! - `apiserver`: the Kubernetes client, and the deadline on each request/response call;
//! - [`tls`]: PEM files reloaded on change, or a self-signed CA with rotation and caBundle publication;
//! - `offline`: injection across workload kinds for `muster-exchange inject`.

pub mod admission;
pub(crate) mod apiserver;
pub mod cli;
// Fuzz entry points (fuzz/); compiled in the crate's tests too, so they cannot drift from the code.
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod inject;
pub mod mcpservers;
pub(crate) mod offline;
pub(crate) mod routes;
pub mod server;
pub mod tls;
