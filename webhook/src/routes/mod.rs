//! HTTP routes: the three admission routes and the operational ones.

pub(crate) mod credentials_access;
pub(crate) mod mcpservers;
pub(crate) mod ops;
pub(crate) mod pods;
#[cfg(test)]
mod span_tests;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_exchange_api::validation::syntax::is_dns1123_label;

use crate::admission::span::review_span;
use crate::admission::{AdmissionAnswer, AdmissionRequest, MalformedReview, parse_request};
use crate::server::AppState;

/// One admission route: how it is named in metrics, and its decision function.
pub(crate) type Decide = fn(&AppState, &AdmissionRequest) -> (AdmissionAnswer, &'static str);

/// How a route reads its review body.
pub(crate) type Parse = fn(&[u8]) -> Result<AdmissionRequest, MalformedReview>;

/// Shared body of every admission route: parse (400 on garbage), decide, record, answer.
pub(crate) fn handle_review(
    state: &Arc<AppState>,
    route: &'static str,
    body: &Bytes,
    decide: Decide,
) -> Response {
    handle_review_parsed_by(state, route, body, parse_request, decide)
}

/// [`handle_review`] with a route's own way of reading the body.
pub(crate) fn handle_review_parsed_by(
    state: &Arc<AppState>,
    route: &'static str,
    body: &Bytes,
    parse: Parse,
    decide: Decide,
) -> Response {
    let started = Instant::now();
    let malformed = |message: String| {
        state
            .metrics
            .record_review(route, "malformed", started.elapsed().as_secs_f64());
        (StatusCode::BAD_REQUEST, message).into_response()
    };
    let request = match parse(body) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(route, %error, "malformed admission review");
            return malformed(format!("{error}\n"));
        }
    };
    if let Some(problem) = namespace_problem(route, &request) {
        return malformed(problem);
    }
    review_span(route, &request).in_scope(|| {
        let (answer, outcome) = decide(state, &request);
        respond(state, route, answer, outcome, started)
    })
}

/// Records a decided review and writes its answer; called inside the review's span.
pub(crate) fn respond(
    state: &AppState,
    route: &'static str,
    answer: AdmissionAnswer,
    outcome: &'static str,
    started: Instant,
) -> Response {
    let allowed = answer.allowed();
    let body = answer.to_body();
    state
        .metrics
        .record_review(route, outcome, started.elapsed().as_secs_f64());
    tracing::debug!(outcome, allowed, "admission review");
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot serialise the admission response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot serialise the admission response\n",
            )
                .into_response()
        }
    }
}

/// The 400 message for a review whose `request.namespace` is not a namespace name, `None` when it is
/// one or empty. The namespace keys caches and appears in logs: anything else is not a review the API
/// server sent.
pub(crate) fn namespace_problem(route: &'static str, request: &AdmissionRequest) -> Option<String> {
    let namespace = request.namespace.as_deref().unwrap_or_default();
    if namespace.is_empty() || is_dns1123_label(namespace) {
        return None;
    }
    tracing::warn!(route, uid = %request.uid, namespace_bytes = namespace.len(),
        "malformed admission review: request.namespace is not a namespace name");
    Some(format!(
        "request.namespace is not a namespace name (a DNS-1123 label of at most 63 characters): {:?}\n",
        truncated(namespace)
    ))
}

/// At most the first 64 characters of `text`, so an answer never echoes a huge value back.
fn truncated(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}
