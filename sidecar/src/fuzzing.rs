//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled with `--cfg fuzzing` (which cargo-fuzz
//! sets) and in the crate's tests, which run them on the committed seeds: wrappers over the code the
//! server runs, so the targets depend on these names and not on the module layout.

pub mod http1;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use muster_exchange_api::sidecar_config::{ClusterConfig, HeaderMode, SidecarConfig};

use crate::auth_headers;
use crate::errors::ExchangeFailure;
use crate::forward::{UpstreamTarget, mark_forwarded_host, upstream_request};
use crate::inbound_auth::{self, InboundError};
use crate::kubeconfig::{ClusterEndpoint, endpoint_from_text};
use crate::proxy::caller_subject;
use crate::routing::{self, RouteError};
use crate::state::{Admitted, AppState, SidecarOptions};
use crate::token_cache::CacheKey;

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
/// [`ENDPOINT_CA`]: the sidecar's own state, once per header mode. Needs the process-wide rustls
/// provider installed first.
pub struct Clusters {
    bearer: Arc<AppState>,
    auth_headers: Arc<AppState>,
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
        let clusters: Vec<ClusterConfig> = CLUSTERS
            .iter()
            .take(count)
            .map(|(name, issuer)| ClusterConfig {
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
            })
            .collect();
        let state = |header_mode| {
            let config = SidecarConfig {
                listen: "127.0.0.1:0".into(),
                upstream: "http://127.0.0.1:8080".into(),
                header_mode,
                clusters: clusters.clone(),
                central_issuer: None,
            };
            AppState::new(&config, &SidecarOptions::default())
                .map(Arc::new)
                .map_err(|e| e.to_string())
        };
        Ok(Self {
            bearer: state(HeaderMode::Bearer)?,
            auth_headers: state(HeaderMode::AuthHeaders)?,
        })
    }

    /// The cluster names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.bearer.names.iter().map(String::as_str).collect()
    }

    fn state(&self, mode: HeaderMode) -> &Arc<AppState> {
        match mode {
            HeaderMode::Bearer => &self.bearer,
            HeaderMode::AuthHeaders => &self.auth_headers,
        }
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
    /// Refused after reading the token's claims (not a JWT, no `exp`, another cluster's token, a
    /// passthrough without `exp`).
    Subject(ExchangeFailure),
}

/// A `sidecar_inbound` input as the fuzz target and the seed tests read it: a flags byte (bit 0: two
/// clusters instead of one, bit 1: auth-headers mode, bit 2: an upstream with a base path), the path
/// line, then `name: value` header lines (lines that are not a valid header are skipped).
pub struct InboundInput<'a> {
    /// The flags byte.
    pub flags: u8,
    /// Index into the configured cluster sets (0: one cluster, 1: two).
    pub clusters: usize,
    /// The header mode.
    pub mode: HeaderMode,
    /// The app's URL.
    pub upstream: &'static str,
    /// The path line as sent (not yet checked to be a path).
    pub path: &'a str,
    /// The caller's headers.
    pub headers: HeaderMap,
}

/// Reads `data` as described on [`InboundInput`]; `None` when there is no flags byte or the path line
/// is not UTF-8.
pub fn decode_inbound(data: &[u8]) -> Option<InboundInput<'_>> {
    let (&flags, rest) = data.split_first()?;
    let mut lines = rest.split(|&b| b == b'\n');
    let path = std::str::from_utf8(lines.next()?).ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    Some(InboundInput {
        flags,
        clusters: usize::from(flags & 1),
        mode: if flags & 2 == 0 {
            HeaderMode::Bearer
        } else {
            HeaderMode::AuthHeaders
        },
        upstream: if flags & 4 == 0 {
            "http://127.0.0.1:8080"
        } else {
            "http://127.0.0.1:8080/base/"
        },
        path,
        headers,
    })
}

/// The request path of `proxy::proxy` and `proxy::forward` up to the exchange, with Dex's answer
/// replaced by [`EXCHANGED_TOKEN`]: routing, then the functions the proxy itself calls before Dex
/// (`proxy::caller_subject`: header budget and bearer parsing; `AppState::admit_subject`: the subject's
/// claims, its refusals and the passthrough identity), the stripping of `proxy::forward`, and the
/// request built for the app. Only the token cache, which sits between the two on the proxy's path, is
/// left out: every input is a miss.
pub fn inbound(
    clusters: &Clusters,
    upstream: &str,
    path_and_query: &str,
    mut headers: HeaderMap,
    mode: HeaderMode,
    now: SystemTime,
) -> Result<Forwarded, Refused> {
    let app = clusters.state(mode);
    let original = PathAndQuery::try_from(path_and_query).map_err(|_| Refused::Path)?;
    let route = routing::route(&app.names, original.as_str()).map_err(Refused::Route)?;
    let target = UpstreamTarget::parse(upstream).map_err(|e| Refused::Upstream(e.to_string()))?;
    let uri = target
        .uri_for(&original, &route.upstream_path_and_query)
        .map_err(|e| Refused::Upstream(e.to_string()))?;
    let index = route.cluster;
    let header_bytes = inbound_auth::header_bytes(&headers);
    let authorization = headers.remove(header::AUTHORIZATION);
    let subject = caller_subject(header_bytes, authorization.as_ref().map(HeaderValue::as_bytes))
        .map_err(Refused::Inbound)?;
    inbound_auth::strip_caller_credentials(&mut headers);
    inbound_auth::strip_hop_by_hop(&mut headers);
    mark_forwarded_host(&mut headers);
    let fingerprint = CacheKey::new(index, subject).subject_fingerprint();
    let (auth, subject_expires_at) = match app.admit_subject(index, subject, &fingerprint, now) {
        Ok(Admitted::Forward(fetched)) => ((*fetched.value).clone(), fetched.subject_expires_at),
        Ok(Admitted::Exchange { subject_expires_at }) => {
            let endpoint = ClusterEndpoint {
                server: ENDPOINT_SERVER.to_string(),
                ca_data_base64: ENDPOINT_CA.to_string(),
            };
            let auth = auth_headers::build(EXCHANGED_TOKEN, now, mode, Some(&endpoint))
                .map_err(|e| Refused::Upstream(e.to_string()))?;
            (auth, subject_expires_at)
        }
        // As `proxy::exchange_error` answers it: an expired subject is the caller's 401.
        Err(failure) => {
            return Err(match Arc::try_unwrap(failure) {
                Ok(ExchangeFailure::SubjectExpired) => Refused::Inbound(InboundError::Expired),
                Ok(failure) => Refused::Subject(failure),
                Err(shared) => Refused::Upstream(shared.to_string()),
            });
        }
    };
    let request = upstream_request(&Method::GET, uri.clone(), headers, &auth, Body::empty())
        .map_err(|e| Refused::Upstream(e.to_string()))?;
    Ok(Forwarded {
        cluster: index,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A `sidecar_inbound` seed run as the fuzz target runs it.
    fn run_seed(clusters: &[Clusters; 2], data: &[u8]) -> Result<Forwarded, Refused> {
        let input = decode_inbound(data).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        inbound(
            &clusters[input.clusters],
            input.upstream,
            input.path,
            input.headers,
            input.mode,
            now,
        )
    }

    fn outcome(result: &Result<Forwarded, Refused>) -> String {
        match result {
            Ok(forwarded) if forwarded.passthrough => "passthrough".into(),
            Ok(_) => "exchanged".into(),
            Err(Refused::Inbound(e)) => format!("inbound: {e:?}"),
            Err(Refused::Subject(e)) => format!("subject: {e:?}"),
            Err(Refused::Route(_)) => "route".into(),
            Err(Refused::Path) => "path".into(),
            Err(Refused::Upstream(e)) => format!("upstream: {e}"),
        }
    }

    /// The committed `sidecar_inbound` seeds through the entry point, each with the outcome its name
    /// says: the proxy's own pre-Dex functions decide, so a later refusal (not a JWT, no `exp`) shows.
    #[test]
    fn the_inbound_fuzz_seeds_get_the_proxys_answers() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("muster-exchange-fuzz-test-{}", std::process::id()));
        let clusters = [Clusters::new(1, &dir).unwrap(), Clusters::new(2, &dir).unwrap()];
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sidecar_inbound");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&seeds).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let result = run_seed(&clusters, &std::fs::read(&path).unwrap());
            seen.push(format!("{name} => {}", outcome(&result)));
        }
        seen.sort();
        let _ = std::fs::remove_dir_all(&dir);
        let expected = [
            "exchange-without-exp => subject: SubjectWithoutExpiry",
            "expired-subject => inbound: Expired",
            "malformed => inbound: Malformed",
            "missing-token => inbound: MissingToken",
            "one-cluster-bearer => exchanged",
            "opaque-token-base-path => subject: NotAJwt",
            "other-clusters-token => subject: IssuedForOtherCluster { issuer_cluster: \"b\" }",
            "passthrough-own-cluster => passthrough",
            "passthrough-without-exp => subject: PassthroughWithoutExpiry",
            "two-clusters-auth-headers => exchanged",
            "unknown-cluster => route",
        ];
        assert_eq!(seen, expected);
    }
}
