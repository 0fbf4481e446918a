//! The double's HTTP handlers: `POST /dex/token` and discovery, following Dex's order of checks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;

use super::{Behaviour, FailureMode, RecordedRequest, Shared};
use crate::jwt::unsigned_jwt;
use crate::{GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/dex/token", post(token))
        .route("/dex/.well-known/openid-configuration", get(discovery))
        .with_state(shared)
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(status) = shared.behaviour().discovery_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, "upstream connect error").into_response();
    }
    let issuer = shared
        .behaviour()
        .discovery_issuer
        .clone()
        .unwrap_or_else(|| shared.issuer.clone());
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{}/token", shared.issuer),
        "grant_types_supported": ["authorization_code", "refresh_token", GRANT_TYPE_TOKEN_EXCHANGE],
    }))
    .into_response()
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let recorded = RecordedRequest {
        form,
        authorization: header_text(&headers, header::AUTHORIZATION),
        content_type: header_text(&headers, header::CONTENT_TYPE),
    };
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight::enter(&shared);
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(recorded.clone());
    let behaviour = shared.behaviour().clone();
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    match behaviour.failure {
        Some(FailureMode::Hang) => std::future::pending::<Response>().await,
        Some(FailureMode::ServerError) => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", ""),
        Some(FailureMode::OversizedBody) => oversized(),
        Some(FailureMode::NotJson) => (StatusCode::OK, "<html>not dex</html>").into_response(),
        Some(FailureMode::LongRejection(length)) => {
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &"é".repeat(length))
        }
        None => match check_and_issue(&shared, &behaviour, &recorded) {
            Ok(response) => response,
            Err((status, error, description)) => oauth_error(status, error, description),
        },
    }
}

/// Dex's answer to a refused request: status, `error`, `error_description`.
type Rejection = (StatusCode, &'static str, &'static str);

/// Tracks concurrent token requests (a hanging request stays counted until its connection drops).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn check_and_issue(shared: &Shared, b: &Behaviour, req: &RecordedRequest) -> Result<Response, Rejection> {
    let client_id = authenticate_client(b, req)?;
    if req.field("grant_type") != Some(GRANT_TYPE_TOKEN_EXCHANGE) {
        return Err((StatusCode::BAD_REQUEST, "unsupported_grant_type", ""));
    }
    let connector = req.field("connector_id").unwrap_or_default();
    if !b.connectors.contains(connector) {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Requested connector does not exist.",
        ));
    }
    let allowed = b
        .clients
        .get(&client_id)
        .map(|c| c.allowed_connectors.clone())
        .unwrap_or_default();
    if !allowed.is_empty() && !allowed.iter().any(|c| c == connector) {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Connector not allowed for this client.",
        ));
    }
    check_token_types(req)?;
    let subject = req.field("subject_token").unwrap_or_default();
    // Dex answers a subject token its connector cannot verify with 401 access_denied, no description.
    let denied = (StatusCode::UNAUTHORIZED, "access_denied", "");
    if b.refused_subject_tokens.contains(subject) {
        return Err(denied);
    }
    let identity = match &b.connector_issuer {
        Some(upstream) => Some(verify_subject(subject, upstream).ok_or(denied)?),
        None => None,
    };
    Ok(issue(shared, b, req, &client_id, identity.as_ref()))
}

/// Dex: Basic (each part QueryUnescaped) or body credentials; unknown client or wrong secret is 401.
fn authenticate_client(b: &Behaviour, req: &RecordedRequest) -> Result<String, Rejection> {
    let invalid = || {
        (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        )
    };
    let (id, secret) = match req
        .authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Basic "))
    {
        Some(encoded) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| invalid())?;
            let text = String::from_utf8(decoded).map_err(|_| invalid())?;
            let (id, secret) = text.split_once(':').ok_or_else(invalid)?;
            (query_unescape(id), query_unescape(secret))
        }
        None => (
            req.field("client_id").unwrap_or_default().to_string(),
            req.field("client_secret").unwrap_or_default().to_string(),
        ),
    };
    match b.clients.get(&id) {
        Some(client) if client.secret == secret => Ok(id),
        _ => Err(invalid()),
    }
}

fn check_token_types(req: &RecordedRequest) -> Result<(), Rejection> {
    let known = |t: &str| t == TOKEN_TYPE_ID_TOKEN || t == TOKEN_TYPE_ACCESS_TOKEN;
    if !known(req.field("subject_token_type").unwrap_or_default()) {
        return Err((
            StatusCode::BAD_REQUEST,
            "request_not_supported",
            "Invalid subject_token_type.",
        ));
    }
    if req.field("subject_token").unwrap_or_default().is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing subject_token",
        ));
    }
    let requested = req
        .field("requested_token_type")
        .filter(|t| !t.is_empty())
        .unwrap_or(TOKEN_TYPE_ACCESS_TOKEN);
    if !known(requested) {
        return Err((
            StatusCode::BAD_REQUEST,
            "request_not_supported",
            "Invalid requested_token_type.",
        ));
    }
    Ok(())
}

/// What the OIDC connector takes from a verified subject token.
struct Identity {
    sub: String,
    email: Option<String>,
}

/// The connector's check of a subject ID token against its upstream issuer: a JWT whose `iss` is
/// `upstream` and whose `exp` is still ahead (go-oidc's verifier; the signature is not checked here).
fn verify_subject(subject: &str, upstream: &str) -> Option<Identity> {
    let payload = subject.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if claims["iss"].as_str()? != upstream {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    if claims["exp"].as_u64()? <= now {
        return None;
    }
    Some(Identity {
        sub: claims["sub"].as_str()?.to_string(),
        email: claims["email"].as_str().map(str::to_string),
    })
}

fn issue(
    shared: &Shared,
    b: &Behaviour,
    req: &RecordedRequest,
    client_id: &str,
    identity: Option<&Identity>,
) -> Response {
    let serial = shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let mut audience = vec![client_id.to_string()];
    let scope = req.field("scope").unwrap_or_default();
    audience.extend(
        scope
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("audience:server:client_id:"))
            .map(String::from),
    );
    let mut claims = json!({
        "iss": b.token_issuer.clone().unwrap_or_else(|| shared.issuer.clone()),
        "sub": format!("exchanged-{serial}"),
        "aud": audience,
        "iat": now.as_secs(),
        "exp": (now + b.token_lifetime).as_secs(),
    });
    if let Some(identity) = identity {
        // Dex's GenSubject: the upstream subject and the connector, encoded together.
        let connector = req.field("connector_id").unwrap_or_default();
        claims["sub"] = json!(crate::jwt::base64url(
            format!("{}/{connector}", identity.sub).as_bytes()
        ));
        if let Some(email) = &identity.email {
            claims["email"] = json!(email);
        }
    }
    let token = unsigned_jwt(&claims);
    let requested = req
        .field("requested_token_type")
        .filter(|t| !t.is_empty())
        .unwrap_or(TOKEN_TYPE_ACCESS_TOKEN);
    let mut body = json!({"access_token": token, "issued_token_type": requested, "token_type": "bearer"});
    if let Some(expires_in) = b.expires_in {
        body["expires_in"] = json!(expires_in);
    }
    Json(body).into_response()
}

/// Dex's `tokenErrHelper`: JSON `error`, and `error_description` only when non-empty.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = if description.is_empty() {
        json!({"error": error})
    } else {
        json!({"error": error, "error_description": description})
    };
    (status, Json(body)).into_response()
}

fn oversized() -> Response {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = (0..32).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let body = Body::from_stream(futures::stream::iter(chunks));
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Go's `url.QueryUnescape`, which Dex applies to both Basic parts.
fn query_unescape(part: &str) -> String {
    url::form_urlencoded::parse(part.as_bytes())
        .map(|(k, _)| k.into_owned())
        .next()
        .unwrap_or_default()
}
