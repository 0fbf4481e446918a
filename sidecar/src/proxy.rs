//! The request path: route, authenticate the caller, get the exchanged identity (cache or exchange),
//! forward with streaming bodies, and retry once with a fresh exchange when the app answers 401.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use muster_exchange_dex::client::error_chain;
use tracing::Instrument as _;

use crate::auth_headers::ForwardAuth;
use crate::errors::{ExchangeFailure, ProxyError};
use crate::forward::{downstream_response, mark_forwarded_host, upstream_request};
use crate::inbound_auth::{self, InboundError};
use crate::routing;
use crate::state::AppState;
use crate::token_cache::CacheKey;

/// Axum fallback handler: everything that is not an operations endpoint.
pub async fn proxy(State(app): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let original = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let route = match routing::route(&app.names, original.as_str()) {
        Ok(route) => route,
        Err(e) => return ProxyError::Route(e).into_response(),
    };
    let cluster = route.cluster;
    let uri = match app.upstream.uri_for(&original, &route.upstream_path_and_query) {
        Ok(uri) => uri,
        Err(e) => return upstream_error(&app, cluster, format!("invalid path: {e}")).into_response(),
    };
    let span = tracing::debug_span!("proxied request", cluster = %app.names[cluster], method = %parts.method);
    let response = match forward(&app, cluster, uri, parts, body).instrument(span).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    let metrics = &app.cluster_metrics[cluster];
    metrics.proxy_duration.observe(started.elapsed().as_secs_f64());
    metrics.request(response.status());
    response
}

/// The forwarded identity of one request: the cache key of the caller's token and what the app gets.
pub(crate) struct Decision {
    /// The (cluster, subject) key, for dropping exactly this entry after a 401.
    pub(crate) key: CacheKey,
    /// What is forwarded to the app.
    pub(crate) auth: Arc<ForwardAuth>,
}

/// Decides what a request to `cluster` forwards, or the error response: the header budget
/// (`header_bytes`: names and values added up), the caller's bearer token (`authorization`, the raw
/// value) and the identity from the cache or an exchange. Both server paths (hyper's and
/// [`crate::http1`]) call this, so refusals, errors and metrics are the same whichever served it.
pub(crate) async fn decide<'a>(
    app: &Arc<AppState>,
    cluster: usize,
    header_bytes: usize,
    authorization: Option<&'a [u8]>,
) -> Result<(Decision, &'a str), ProxyError> {
    let subject = caller_subject(header_bytes, authorization).map_err(ProxyError::Inbound)?;
    let key = CacheKey::new(cluster, subject);
    let auth = app
        .authorize(cluster, &key, subject)
        .await
        .map_err(|f| exchange_error(app, cluster, f))?;
    Ok((Decision { key, auth }, subject))
}

/// The caller's side of [`decide`], before the cache and any Dex call: the header budget, then the
/// bearer token. The request path up to Dex is this and, on a cache miss,
/// [`AppState::admit_subject`]; the fuzz target `sidecar_inbound` runs both, so it checks what the
/// proxy does.
pub(crate) fn caller_subject(
    header_bytes: usize,
    authorization: Option<&[u8]>,
) -> Result<&str, InboundError> {
    inbound_auth::check_header_size(header_bytes)?;
    inbound_auth::bearer_token_bytes(authorization)
}

/// Whether a 401 from the app for a request sent with `auth` is retried with a fresh exchange.
///
/// A token exchanged moments ago that the app refuses will be refused again (missing audience scope,
/// wrong RBAC): retrying would cost one Dex exchange per request and never trip the backoff. A
/// passed-through token would simply be forwarded again.
pub(crate) fn retries_unauthorized(app: &AppState, auth: &ForwardAuth) -> bool {
    !auth.passthrough && auth.exchanged_at.elapsed() >= app.unauthorized_retry_cooldown
}

/// After the app refused `decision`'s older exchanged token (revoked, or the remote Dex rotated keys):
/// drops exactly that entry and exchanges afresh.
pub(crate) async fn refresh_after_unauthorized(
    app: &Arc<AppState>,
    cluster: usize,
    decision: &Decision,
    subject: &str,
) -> Result<Arc<ForwardAuth>, ProxyError> {
    tracing::info!(cluster = app.names[cluster], token = %decision.auth.token_fingerprint, "app answered 401; re-exchanging once");
    app.cluster_metrics[cluster].unauthorized_retries.inc();
    app.cache
        .invalidate(&decision.key, |cached| Arc::ptr_eq(cached, &decision.auth));
    app.authorize(cluster, &decision.key, subject)
        .await
        .map_err(|f| exchange_error(app, cluster, f))
}

async fn forward(
    app: &Arc<AppState>,
    cluster: usize,
    uri: Uri,
    mut parts: Parts,
    body: Body,
) -> Result<Response, ProxyError> {
    // Taken out of the headers: the caller's token never reaches the app.
    let header_bytes = inbound_auth::header_bytes(&parts.headers);
    let authorization = parts.headers.remove(header::AUTHORIZATION);
    let (decision, subject) = decide(
        app,
        cluster,
        header_bytes,
        authorization.as_ref().map(HeaderValue::as_bytes),
    )
    .await?;
    inbound_auth::strip_caller_credentials(&mut parts.headers);
    inbound_auth::strip_hop_by_hop(&mut parts.headers);
    mark_forwarded_host(&mut parts.headers);
    let auth = &decision.auth;

    let bytes = match replayable_body(body, app.replay_limit).await {
        Ok(Replay::Buffered(bytes)) => bytes,
        Ok(Replay::Streaming(body)) => {
            // Not replayable, so never retried: the headers move into the request, no copy.
            return send(app, cluster, &parts.method, uri, parts.headers, auth, body).await;
        }
        Err(cause) => {
            return Err(ProxyError::RequestBody {
                cluster: app.names[cluster].clone(),
                cause,
            });
        }
    };
    if !retries_unauthorized(app, auth) {
        return send(
            app,
            cluster,
            &parts.method,
            uri,
            parts.headers,
            auth,
            Body::from(bytes),
        )
        .await;
    }
    let headers = parts.headers.clone();
    let response = send(
        app,
        cluster,
        &parts.method,
        uri.clone(),
        headers,
        auth,
        Body::from(bytes.clone()),
    )
    .await?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    let fresh = refresh_after_unauthorized(app, cluster, &decision, subject).await?;
    send(
        app,
        cluster,
        &parts.method,
        uri,
        parts.headers,
        &fresh,
        Body::from(bytes),
    )
    .await
}

fn exchange_error(app: &AppState, cluster: usize, failure: Arc<ExchangeFailure>) -> ProxyError {
    if matches!(*failure, ExchangeFailure::SubjectExpired) {
        return ProxyError::Inbound(InboundError::Expired);
    }
    ProxyError::Exchange {
        cluster: app.names[cluster].clone(),
        failure,
    }
}

pub(crate) fn upstream_error(app: &AppState, cluster: usize, cause: String) -> ProxyError {
    ProxyError::Upstream {
        cluster: app.names[cluster].clone(),
        cause,
    }
}

enum Replay {
    Buffered(Bytes),
    Streaming(Body),
}

/// Small bodies of known size are read so they can be sent twice; anything else streams through.
/// The error is the caller's broken body (closed early, malformed chunking), not the app's fault.
async fn replayable_body(body: Body, limit: u64) -> Result<Replay, String> {
    match body.size_hint().exact() {
        Some(0) => Ok(Replay::Buffered(Bytes::new())),
        Some(size) if size <= limit => {
            let collected = body.collect().await.map_err(|e| error_chain(&e))?;
            Ok(Replay::Buffered(collected.to_bytes()))
        }
        _ => Ok(Replay::Streaming(body)),
    }
}

async fn send(
    app: &AppState,
    cluster: usize,
    method: &http::Method,
    uri: Uri,
    headers: HeaderMap,
    auth: &ForwardAuth,
    body: Body,
) -> Result<Response, ProxyError> {
    let request = upstream_request(method, uri, headers, auth, body)
        .map_err(|e| upstream_error(app, cluster, format!("cannot build the request: {e}")))?;
    let response = app
        .http
        .request(request)
        .await
        .map_err(|e| upstream_error(app, cluster, error_chain(&e)))?;
    Ok(downstream_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body that announces 5 bytes and then fails, like a client that hangs up mid-body.
    struct BrokenBody;

    impl http_body::Body for BrokenBody {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(Some(Err(std::io::Error::other("client hung up"))))
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(5)
        }
    }

    #[tokio::test]
    async fn a_broken_request_body_is_the_callers_400_naming_the_cluster() {
        let Err(cause) = replayable_body(Body::new(BrokenBody), 1024).await else {
            panic!("a failing body must fail");
        };
        assert_eq!(cause, "client hung up");
        let error = ProxyError::RequestBody {
            cluster: "alpha".into(),
            cause,
        };
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({
                "error": "request_body_unreadable",
                "message": "reading the request body failed: client hung up; resend the request with a complete body",
                "cluster": "alpha",
            })
        );
    }
}
