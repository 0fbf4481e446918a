//! The request path: route, authenticate the caller, get the exchanged identity (cache or exchange),
//! forward with streaming bodies, and retry once with a fresh exchange when the app answers 401.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use muster_exchange_dex::jwt::peek_claims;

use crate::auth_headers::ForwardAuth;
use crate::errors::ProxyError;
use crate::forward::{downstream_response, upstream_request};
use crate::inbound_auth::{self, InboundError};
use crate::routing;
use crate::state::AppState;
use crate::token_cache::{CacheKey, instant_of};

/// Axum fallback handler: everything that is not an operations endpoint.
pub async fn proxy(State(app): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let route = match routing::route(&app.names, &path_and_query) {
        Ok(route) => route,
        Err(e) => return ProxyError::Route(e).into_response(),
    };
    let cluster = route.cluster;
    let response = match forward(&app, cluster, &route.upstream_path_and_query, &mut parts, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    let metrics = &app.cluster_metrics[cluster];
    metrics.proxy_duration.observe(started.elapsed().as_secs_f64());
    metrics.request(response.status());
    response
}

async fn forward(
    app: &Arc<AppState>,
    cluster: usize,
    path_and_query: &str,
    parts: &mut Parts,
    body: Body,
) -> Result<Response, ProxyError> {
    inbound_auth::check_header_budget(&parts.headers).map_err(ProxyError::Inbound)?;
    // Taken out of the headers: the caller's token never reaches the app.
    let authorization = parts.headers.remove(header::AUTHORIZATION);
    let subject = inbound_auth::bearer_token(authorization.as_ref()).map_err(ProxyError::Inbound)?;
    let subject_expiry = subject_expiry(subject)?;
    inbound_auth::strip_caller_credentials(&mut parts.headers);
    inbound_auth::strip_hop_by_hop(&mut parts.headers);
    let key = CacheKey::new(cluster, subject);
    let exchange_error = |failure| ProxyError::Exchange {
        cluster: app.names[cluster].clone(),
        failure,
    };
    let auth = app
        .authorize(cluster, &key, subject, subject_expiry)
        .await
        .map_err(exchange_error)?;

    let (first_body, replay) = match replayable_body(body, app.replay_limit).await? {
        Replay::Buffered(bytes) => (Body::from(bytes.clone()), Some(bytes)),
        Replay::Streaming(body) => (body, None),
    };
    let response = send(app, cluster, path_and_query, parts, &auth, first_body).await?;
    let Some(bytes) = replay.filter(|_| response.status() == StatusCode::UNAUTHORIZED) else {
        return Ok(response);
    };
    // The app refused the exchanged token (revoked, or the remote Dex rotated keys): drop exactly that
    // entry and retry once with a fresh exchange.
    tracing::info!(cluster = app.names[cluster], token = %auth.token_fingerprint, "app answered 401; re-exchanging once");
    app.cluster_metrics[cluster].unauthorized_retries.inc();
    app.cache.invalidate(&key, |cached| Arc::ptr_eq(cached, &auth));
    let fresh = app
        .authorize(cluster, &key, subject, subject_expiry)
        .await
        .map_err(exchange_error)?;
    send(app, cluster, path_and_query, parts, &fresh, Body::from(bytes)).await
}

/// The subject token's expiry when it is a JWT; an expired one is refused without asking Dex.
fn subject_expiry(subject: &str) -> Result<Option<Instant>, ProxyError> {
    let Some(exp) = peek_claims(subject).and_then(|c| c.exp) else {
        return Ok(None);
    };
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(exp).unwrap_or(0));
    let wall_now = SystemTime::now();
    if at <= wall_now {
        return Err(ProxyError::Inbound(InboundError::Expired));
    }
    Ok(Some(instant_of(at, Instant::now(), wall_now)))
}

enum Replay {
    Buffered(Bytes),
    Streaming(Body),
}

/// Small bodies of known size are read so they can be sent twice; anything else streams through.
async fn replayable_body(body: Body, limit: u64) -> Result<Replay, ProxyError> {
    match body.size_hint().exact() {
        Some(0) => Ok(Replay::Buffered(Bytes::new())),
        Some(size) if size <= limit => {
            let collected = body.collect().await.map_err(|e| ProxyError::Upstream {
                cluster: String::new(),
                cause: format!("reading the request body failed: {e}"),
            })?;
            Ok(Replay::Buffered(collected.to_bytes()))
        }
        _ => Ok(Replay::Streaming(body)),
    }
}

async fn send(
    app: &AppState,
    cluster: usize,
    path_and_query: &str,
    parts: &Parts,
    auth: &ForwardAuth,
    body: Body,
) -> Result<Response, ProxyError> {
    let upstream_error = |cause: String| ProxyError::Upstream {
        cluster: app.names[cluster].clone(),
        cause,
    };
    let uri = app
        .upstream
        .uri(path_and_query)
        .map_err(|e| upstream_error(format!("invalid path: {e}")))?;
    let request = upstream_request(&parts.method, uri, &parts.headers, auth, body)
        .map_err(|e| upstream_error(format!("cannot build the request: {e}")))?;
    let response = app
        .http
        .request(request)
        .await
        .map_err(|e| upstream_error(error_chain(&e)))?;
    Ok(downstream_response(response))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
