//! `POST /validate-mcpserver-credentials`: the author of an MCPServer may `get` the credentials Secret
//! it names (see [`crate::admission_sar`]). A route of its own, so its webhook can fail closed
//! (`failurePolicy: Fail`, only for MCPServers naming a Secret) while the rule validation stays
//! `Ignore`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::respond;
use crate::admission::parse_request;
use crate::admission_sar::decide_secret_access;
use crate::state::AppState;

/// Route name in metrics.
pub const CREDENTIALS_ACCESS_ROUTE: &str = "validate-mcpserver-credentials";

/// The handler.
pub async fn validate_credentials_access(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let started = Instant::now();
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(route = CREDENTIALS_ACCESS_ROUTE, %error, "malformed admission review");
            state.metrics.record_review(
                CREDENTIALS_ACCESS_ROUTE,
                "malformed",
                "",
                started.elapsed().as_secs_f64(),
            );
            return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response();
        }
    };
    let (answer, outcome) = decide_secret_access(state.access_reviewer.as_ref(), &request).await;
    respond(
        &state,
        CREDENTIALS_ACCESS_ROUTE,
        &request,
        answer,
        outcome,
        started,
    )
}
