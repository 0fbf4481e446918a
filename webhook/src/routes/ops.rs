//! `GET /healthz`, `GET /readyz`, `GET /metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use crate::server::AppState;

/// Liveness: the process serves HTTP.
pub(crate) async fn healthz() -> Response {
    muster_exchange_ops::healthz()
}

/// Readiness: MCPServers cached and a certificate loaded; 503 with what is missing otherwise.
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    muster_exchange_ops::readyz(state.readiness.missing().as_slice())
}

/// Prometheus exposition.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    muster_exchange_ops::openmetrics(state.metrics.encode())
}
