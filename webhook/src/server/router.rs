//! The axum router: admission routes behind a body limit and a trace layer, operational routes outside
//! the trace layer so probes and scrapes do not create spans.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use super::AppState;
use crate::routes::{credentials_access, mcpservers, ops, pods};

/// Path of pod injection.
pub const MUTATE_PODS_PATH: &str = "/mutate-pods";
/// Path of MCPServer validation.
pub const VALIDATE_MCPSERVERS_PATH: &str = "/validate-mcpservers";
/// Path of the MCPServer credentials Secret access check.
pub const VALIDATE_MCPSERVER_CREDENTIALS_PATH: &str = "/validate-mcpserver-credentials";
/// Path of MCPServer defaulting.
pub const MUTATE_MCPSERVERS_PATH: &str = "/mutate-mcpservers";

/// Largest review body accepted. An UPDATE review carries `object` and `oldObject`, each at most what
/// etcd stores (~1.5 MiB), so 4 MiB admits every legal review and stops anything larger early (413).
pub const ADMISSION_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The complete router of the webhook server.
pub fn router(state: Arc<AppState>) -> Router {
    let admission = Router::new()
        .route(MUTATE_PODS_PATH, post(pods::mutate_pods))
        .route(VALIDATE_MCPSERVERS_PATH, post(mcpservers::validate_mcpservers))
        .route(MUTATE_MCPSERVERS_PATH, post(mcpservers::mutate_mcpservers))
        .route(
            VALIDATE_MCPSERVER_CREDENTIALS_PATH,
            post(credentials_access::validate_credentials_access),
        )
        .layer(DefaultBodyLimit::max(ADMISSION_BODY_LIMIT))
        .layer(TraceLayer::new_for_http());
    let operational = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    admission.merge(operational).with_state(state)
}
