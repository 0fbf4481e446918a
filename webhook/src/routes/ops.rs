//! `GET /healthz`, `GET /readyz`, `GET /metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::AppState;

/// Liveness: the process serves HTTP.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: MCPServers cached and a certificate loaded; 503 with what is missing otherwise.
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.readiness.missing() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(missing) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {missing}\n")).into_response(),
    }
}

/// Prometheus exposition.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}
