//! What the webhook, the sidecar and the controller share to be operated by Kubernetes: the shutdown
//! signal ([`shutdown_signal`]), the answers of `/healthz`, `/readyz` and `/metrics` ([`healthz`],
//! [`readyz`], [`openmetrics`]), so a probe or a scrape reads the same thing from every component, and
//! the bounded server that carries them on a port of their own ([`serve`]).

mod endpoints;
mod server;
mod signal;

pub use endpoints::{healthz, openmetrics, readyz};
pub use server::serve;
pub use signal::shutdown_signal;
