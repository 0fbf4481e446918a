//! `POST /validate-mcpservers` and `POST /mutate-mcpservers`: the foundation rules and defaults
//! (decided in [`crate::admission::mcpservers`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;

use super::handle_review;
use crate::admission::mcpservers::{decide_defaults, decide_validation};
use crate::server::AppState;

/// Route name of validation in metrics.
pub(crate) const VALIDATE_ROUTE: &str = "validate-mcpservers";
/// Route name of defaulting in metrics.
pub(crate) const MUTATE_ROUTE: &str = "mutate-mcpservers";

/// The validating handler.
pub(crate) async fn validate_mcpservers(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle_review(&state, VALIDATE_ROUTE, &body, decide_validation)
}

/// The defaulting handler.
pub(crate) async fn mutate_mcpservers(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle_review(&state, MUTATE_ROUTE, &body, decide_defaults)
}
