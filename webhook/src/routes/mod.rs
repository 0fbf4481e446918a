//! HTTP routes: the three admission routes and the operational ones.

pub mod credentials_access;
pub mod mcpservers;
pub mod ops;
pub mod pods;

use std::sync::Arc;
use std::time::Instant;

use crate::admission::{AdmissionAnswer, AdmissionRequest, MalformedReview, parse_request};
use crate::state::AppState;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One admission route: how it is named in metrics, and its decision function.
pub type Decide = fn(&AppState, &AdmissionRequest) -> (AdmissionAnswer, &'static str);

/// How a route reads its review body.
pub type Parse = fn(&[u8]) -> Result<AdmissionRequest, MalformedReview>;

/// Shared body of every admission route: parse (400 on garbage), decide, record, answer.
pub fn handle_review(state: &Arc<AppState>, route: &'static str, body: &Bytes, decide: Decide) -> Response {
    handle_review_parsed_by(state, route, body, parse_request, decide)
}

/// [`handle_review`] with a route's own way of reading the body.
pub fn handle_review_parsed_by(
    state: &Arc<AppState>,
    route: &'static str,
    body: &Bytes,
    parse: Parse,
    decide: Decide,
) -> Response {
    let started = Instant::now();
    let request = match parse(body) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(route, %error, "malformed admission review");
            state
                .metrics
                .record_review(route, "malformed", "", started.elapsed().as_secs_f64());
            return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response();
        }
    };
    let (answer, outcome) = decide(state, &request);
    respond(state, route, &request, answer, outcome, started)
}

/// Records a decided review and writes its answer.
pub fn respond(
    state: &AppState,
    route: &'static str,
    request: &AdmissionRequest,
    answer: AdmissionAnswer,
    outcome: &'static str,
    started: Instant,
) -> Response {
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let allowed = answer.allowed();
    let body = answer.to_body();
    state
        .metrics
        .record_review(route, outcome, namespace, started.elapsed().as_secs_f64());
    tracing::debug!(route, uid = %request.uid, %namespace, name = %request.name, outcome, allowed, "admission review");
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => {
            tracing::error!(route, %error, "cannot serialise the admission response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot serialise the admission response\n",
            )
                .into_response()
        }
    }
}
