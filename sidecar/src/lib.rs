//! The token-exchange sidecar: a reverse proxy in the mcp-kubernetes pod that exchanges the caller's
//! central-Dex ID token at the remote cluster's Dex (RFC 8693) and forwards the request to the app with
//! the exchanged token (and, in `auth-headers` mode, the `kubernetes-*` headers of that cluster).
//!
//! Request path: [`routing`] → [`inbound_auth`] → [`state::AppState::authorize`] ([`token_cache`] with
//! single flight; on a miss [`subject`] picks passthrough, refusal or exchange; [`backoff`], [`exchanger`]) → [`forward`] (streaming) → 401 retry in [`proxy`].
//! HTTP/1.1 requests to proxied paths take a fast path (`http1`: raw heads parsed with `httparse`,
//! pooled connections to the app, bodies passed through with their framing) that decides with the same
//! [`proxy`] functions; everything else is served by hyper ([`server`]).

pub mod auth_headers;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod endpoint;
pub mod errors;
pub mod exchanger;
pub mod forward;
mod http1;
// Fuzz entry points (fuzz/); compiled in the crate's tests too, so they cannot drift from the code.
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod inbound_auth;
pub mod kubeconfig;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod state;
pub mod subject;
pub mod token_cache;
pub mod upstream_pool;

pub use server::{Sidecar, StartError};
pub use state::SidecarOptions;
