//! `POST /mutate-pods`: token-exchange sidecar injection.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;

use super::handle_review_parsed_by;
use crate::admission::parse_pod_request;
use crate::admission::pods::decide;
use crate::server::AppState;

/// Route name in metrics.
pub(crate) const ROUTE: &str = "mutate-pods";

/// The axum handler.
pub(crate) async fn mutate_pods(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle_review_parsed_by(&state, ROUTE, &body, parse_pod_request, decide)
}
