//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which
//! cargo-fuzz sets): thin wrappers, so the targets depend on these names and not on the module layout.

use std::path::Path;
use std::time::SystemTime;

use axum::body::Body;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri, header};
use muster_exchange_api::sidecar_config::HeaderMode;
use muster_exchange_dex::jwt::peek_claims;

use crate::auth_headers;
use crate::forward::{UpstreamTarget, mark_forwarded_host, upstream_request};
use crate::inbound_auth::{self, InboundError};
use crate::kubeconfig::{ClusterEndpoint, endpoint_from_text};
use crate::routing::{self, RouteError};

/// The token that stands in for Dex's answer in [`inbound`].
pub const EXCHANGED_TOKEN: &str = "exchanged.fuzz.token";
/// The cluster endpoint [`inbound`] forwards in `auth-headers` mode.
pub const ENDPOINT_SERVER: &str = "https://api.wc:6443";
/// Its CA (base64 of PEM).
pub const ENDPOINT_CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";

/// A request the sidecar would exchange for and forward.
#[derive(Debug)]
pub struct Forwarded {
    /// Index of the routed cluster.
    pub cluster: usize,
    /// The app URL.
    pub uri: Uri,
    /// The caller's subject token (what would go to Dex).
    pub subject: String,
    /// Its `exp`, when it is a JWT with a representable one.
    pub subject_expires_at: Option<SystemTime>,
    /// The headers of the request to the app.
    pub headers: HeaderMap,
}

/// Why the sidecar answers the caller itself.
#[derive(Debug)]
pub enum Refused {
    /// Not a path axum would deliver.
    Path,
    /// No cluster for the path.
    Route(RouteError),
    /// The app URL cannot be built.
    Upstream(String),
    /// The caller's headers or token.
    Inbound(InboundError),
}

/// The request path of `proxy::proxy` and `proxy::forward` up to the exchange, with Dex's answer
/// replaced by [`EXCHANGED_TOKEN`]: routing, header budget, bearer parsing, the subject's expiry
/// (`state::AppState::authorize`), stripping, and the request built for the app.
pub fn inbound(
    names: &[&str],
    upstream: &str,
    path_and_query: &str,
    mut headers: HeaderMap,
    mode: HeaderMode,
    now: SystemTime,
) -> Result<Forwarded, Refused> {
    let original = PathAndQuery::try_from(path_and_query).map_err(|_| Refused::Path)?;
    let route = routing::route(names, original.as_str()).map_err(Refused::Route)?;
    let target = UpstreamTarget::parse(upstream).map_err(|e| Refused::Upstream(e.to_string()))?;
    let uri = target
        .uri_for(&original, &route.upstream_path_and_query)
        .map_err(|e| Refused::Upstream(e.to_string()))?;
    inbound_auth::check_header_budget(&headers).map_err(Refused::Inbound)?;
    let authorization = headers.remove(header::AUTHORIZATION);
    let subject = inbound_auth::bearer_token(authorization.as_ref()).map_err(Refused::Inbound)?;
    inbound_auth::strip_caller_credentials(&mut headers);
    inbound_auth::strip_hop_by_hop(&mut headers);
    mark_forwarded_host(&mut headers);
    let subject_expires_at = peek_claims(subject).and_then(|c| c.expires_at());
    if subject_expires_at.is_some_and(|at| at <= now) {
        return Err(Refused::Inbound(InboundError::Expired));
    }
    let endpoint = ClusterEndpoint {
        server: ENDPOINT_SERVER.to_string(),
        ca_data_base64: ENDPOINT_CA.to_string(),
    };
    let auth = auth_headers::build(EXCHANGED_TOKEN, now, mode, Some(&endpoint))
        .map_err(|e| Refused::Upstream(e.to_string()))?;
    let request = upstream_request(&Method::GET, uri.clone(), headers, &auth, Body::empty())
        .map_err(|e| Refused::Upstream(e.to_string()))?;
    Ok(Forwarded {
        cluster: route.cluster,
        uri,
        subject: subject.to_string(),
        subject_expires_at,
        headers: request.headers().clone(),
    })
}

/// The kubeconfig reading of `kubeconfig::load` on `text`, relative CA paths resolved against a
/// directory that does not exist.
pub fn kubeconfig_endpoint(text: &str) -> Result<ClusterEndpoint, String> {
    endpoint_from_text(text, Path::new("/nonexistent/muster-exchange-fuzz"))
}
