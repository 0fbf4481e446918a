//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which
//! cargo-fuzz sets): thin wrappers, so the targets depend on these names and not on the module layout.

pub mod http1;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri, header};
use muster_exchange_api::sidecar_config::{ClusterConfig, HeaderMode};
use muster_exchange_dex::jwt::peek_claims;

use crate::auth_headers;
use crate::errors::ExchangeFailure;
use crate::exchanger::ClusterRuntime;
use crate::forward::{UpstreamTarget, mark_forwarded_host, upstream_request};
use crate::inbound_auth::{self, InboundError};
use crate::kubeconfig::{ClusterEndpoint, endpoint_from_text};
use crate::metrics::{ClusterMetrics, Metrics};
use crate::routing::{self, RouteError};
use crate::subject::{self, SubjectPath};

/// The token that stands in for Dex's answer in [`inbound`].
pub const EXCHANGED_TOKEN: &str = "exchanged.fuzz.token";
/// The cluster endpoint [`inbound`] forwards in `auth-headers` mode.
pub const ENDPOINT_SERVER: &str = "https://api.wc:6443";
/// Its CA (base64 of PEM).
pub const ENDPOINT_CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";
/// The clusters [`Clusters::new`] configures, and their Dex issuers.
pub const CLUSTERS: [(&str, &str); 2] = [
    ("a", "https://dex.a.example.com"),
    ("b", "https://dex.b.example.com/dex"),
];

/// Configured clusters (no Dex is ever called), each with a kubeconfig naming [`ENDPOINT_SERVER`] and
/// [`ENDPOINT_CA`]. Needs the process-wide rustls provider installed first.
pub struct Clusters {
    runtimes: Vec<ClusterRuntime>,
    metrics: Vec<ClusterMetrics>,
}

impl Clusters {
    /// The first `count` of [`CLUSTERS`]; their kubeconfig is written to `dir`.
    pub fn new(count: usize, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let kubeconfig = dir.join("kubeconfig");
        let text = format!(
            "current-context: c\ncontexts:\n- name: c\n  context:\n    cluster: c\nclusters:\n- name: c\n  \
             cluster:\n    server: {ENDPOINT_SERVER}\n    certificate-authority-data: {ENDPOINT_CA}\n"
        );
        std::fs::write(&kubeconfig, text).map_err(|e| e.to_string())?;
        let metrics = Metrics::default();
        let mut clusters = Self {
            runtimes: Vec::new(),
            metrics: Vec::new(),
        };
        for (name, issuer) in CLUSTERS.iter().take(count) {
            let config = ClusterConfig {
                name: (*name).to_string(),
                dex_token_endpoint: format!("{issuer}/token"),
                expected_issuer: None,
                connector_id: "central".into(),
                scopes: "openid".into(),
                required_audiences: Vec::new(),
                credentials_dir: PathBuf::from("/nonexistent/muster-exchange-fuzz"),
                client_id_key: "client-id".into(),
                client_secret_key: "client-secret".into(),
                kubeconfig_file: Some(kubeconfig.clone()),
                endpoint_dir: None,
                ca_file: None,
            };
            let runtime =
                ClusterRuntime::new(config, Duration::from_secs(1), 64).map_err(|e| e.to_string())?;
            clusters.runtimes.push(runtime);
            clusters.metrics.push(metrics.for_cluster(name));
        }
        Ok(clusters)
    }

    /// The cluster names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.runtimes.iter().map(ClusterRuntime::name).collect()
    }
}

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
    /// Forwarded unchanged (issued by the routed cluster's Dex) rather than exchanged.
    pub passthrough: bool,
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
    /// Refused after reading the token's claims (another cluster's token, a passthrough without `exp`).
    Subject(ExchangeFailure),
}

/// The request path of `proxy::proxy` and `proxy::forward` up to the exchange, with Dex's answer
/// replaced by [`EXCHANGED_TOKEN`]: routing, header budget, bearer parsing, stripping, the subject's
/// expiry and the path its issuer chooses (`state::AppState::authorize`: passthrough, another
/// cluster's token, exchange), and the request built for the app.
pub fn inbound(
    clusters: &Clusters,
    upstream: &str,
    path_and_query: &str,
    mut headers: HeaderMap,
    mode: HeaderMode,
    now: SystemTime,
) -> Result<Forwarded, Refused> {
    let original = PathAndQuery::try_from(path_and_query).map_err(|_| Refused::Path)?;
    let route = routing::route(&clusters.names(), original.as_str()).map_err(Refused::Route)?;
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
    let claims = peek_claims(subject);
    let subject_expires_at = claims.as_ref().and_then(|c| c.expires_at());
    if subject_expires_at.is_some_and(|at| at <= now) {
        return Err(Refused::Inbound(InboundError::Expired));
    }
    let index = route.cluster;
    let runtimes = &clusters.runtimes;
    let auth = match subject::classify(claims.as_ref(), index, runtimes) {
        SubjectPath::Exchange => {
            let endpoint = ClusterEndpoint {
                server: ENDPOINT_SERVER.to_string(),
                ca_data_base64: ENDPOINT_CA.to_string(),
            };
            auth_headers::build(EXCHANGED_TOKEN, now, mode, Some(&endpoint))
                .map_err(|e| Refused::Upstream(e.to_string()))?
        }
        SubjectPath::Passthrough => {
            let metrics = &clusters.metrics[index];
            let fetched = subject::passthrough(&runtimes[index], mode, subject, subject_expires_at, metrics)
                .map_err(|failure| match std::sync::Arc::try_unwrap(failure) {
                    Ok(failure) => Refused::Subject(failure),
                    Err(shared) => Refused::Upstream(shared.to_string()),
                })?;
            (*fetched.value).clone()
        }
        SubjectPath::OtherCluster(other) => {
            return Err(Refused::Subject(ExchangeFailure::IssuedForOtherCluster {
                issuer_cluster: runtimes[other].name().to_string(),
            }));
        }
    };
    let request = upstream_request(&Method::GET, uri.clone(), headers, &auth, Body::empty())
        .map_err(|e| Refused::Upstream(e.to_string()))?;
    Ok(Forwarded {
        cluster: route.cluster,
        uri,
        subject: subject.to_string(),
        subject_expires_at,
        passthrough: auth.passthrough,
        headers: request.headers().clone(),
    })
}

/// The kubeconfig reading of `kubeconfig::load` on `text` (file references are refused unread).
pub fn kubeconfig_endpoint(text: &str) -> Result<ClusterEndpoint, String> {
    endpoint_from_text(text)
}
