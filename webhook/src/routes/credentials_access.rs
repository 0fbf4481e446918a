//! `POST /validate-mcpserver-credentials`: the author of an MCPServer may `get` the credentials Secret
//! it names (see [`crate::admission::credentials_access`]). A route of its own, so its webhook can fail closed
//! (`failurePolicy: Fail`, only for MCPServers naming a Secret) while the rule validation stays
//! `Ignore`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::{namespace_problem, respond};
use crate::admission::credentials_access::decide_secret_access;
use crate::admission::parse_request;
use crate::admission::span::review_span;
use crate::server::AppState;

/// Route name in metrics.
pub(crate) const CREDENTIALS_ACCESS_ROUTE: &str = "validate-mcpserver-credentials";

/// The handler.
pub(crate) async fn validate_credentials_access(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let started = Instant::now();
    let malformed = |message: String| {
        state.metrics.record_review(
            CREDENTIALS_ACCESS_ROUTE,
            "malformed",
            started.elapsed().as_secs_f64(),
        );
        (StatusCode::BAD_REQUEST, message).into_response()
    };
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(route = CREDENTIALS_ACCESS_ROUTE, %error, "malformed admission review");
            return malformed(format!("{error}\n"));
        }
    };
    if let Some(problem) = namespace_problem(CREDENTIALS_ACCESS_ROUTE, &request) {
        return malformed(problem);
    }
    let span = review_span(CREDENTIALS_ACCESS_ROUTE, &request);
    let (answer, outcome) = decide_secret_access(state.access_reviewer.as_ref(), &request)
        .instrument(span.clone())
        .await;
    span.in_scope(|| respond(&state, CREDENTIALS_ACCESS_ROUTE, answer, outcome, started))
}
