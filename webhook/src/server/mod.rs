//! How the webhook serves: `muster-exchange webhook` in one place.
//!
//! - `run`: wires the MCPServer catalog ([`crate::mcpservers`]), the Kubernetes client
//!   (`crate::apiserver`), the serving certificate ([`crate::tls`]) and the router together, and serves
//!   until SIGTERM or Ctrl-C;
//! - `router`: the admission routes (`crate::routes`) behind a body limit, and `/healthz`, `/readyz`,
//!   `/metrics`;
//! - `limits`: timeouts, connection and in-flight caps of the HTTPS server ([`serve_within`]);
//! - `shutdown`: on SIGTERM, report not ready, keep serving for a delay, then drain in-flight reviews;
//! - `state`: what every handler shares (settings, catalog, metrics, readiness);
//! - `metrics`: the Prometheus families served on `/metrics`.

mod limits;
mod metrics;
mod router;
pub(crate) mod run;
mod shutdown;
mod state;

use std::net::SocketAddr;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;

pub use limits::ServerLimits;
pub use metrics::Metrics;
pub use router::{
    ADMISSION_BODY_LIMIT, MUTATE_MCPSERVERS_PATH, MUTATE_PODS_PATH, VALIDATE_MCPSERVER_CREDENTIALS_PATH,
    VALIDATE_MCPSERVERS_PATH, router,
};
pub use shutdown::Shutdown;
pub use state::{AppState, Readiness};

/// Serves `router` over TLS until `handle` shuts it down, within the default [`ServerLimits`].
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    tls: RustlsConfig,
    handle: Handle<SocketAddr>,
) -> std::io::Result<()> {
    serve_within(listen, router, tls, handle, &ServerLimits::default()).await
}

/// [`serve`] within `limits` (timeouts, connection and in-flight caps; see [`ServerLimits`]).
pub async fn serve_within(
    listen: SocketAddr,
    router: Router,
    tls: RustlsConfig,
    handle: Handle<SocketAddr>,
    limits: &ServerLimits,
) -> std::io::Result<()> {
    let mut server = axum_server::bind_rustls(listen, tls).handle(handle);
    limits::configure(limits, server.http_builder());
    let acceptor = limits::LimitedAcceptor::new(limits);
    server
        .map(|rustls| rustls.acceptor(acceptor))
        .serve(limits::layer(limits, router).into_make_service())
        .await
}
