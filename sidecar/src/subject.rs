//! Which path a subject token takes, decided from its `iss` claim, read without verifying the signature
//! and only to choose the path (the remote API server verifies every token it receives):
//!
//! - `iss` is this cluster's expected issuer: the token was already exchanged (by Muster, topology M).
//!   It is forwarded unchanged, without a Dex call ("passthrough").
//! - `iss` is another configured cluster's issuer: it was exchanged for that cluster and is refused here,
//!   without a Dex call and without reaching the app.
//! - any other issuer, or an opaque token: exchanged at this cluster's Dex as a central token.
//!
//! This runs only when the cache has no entry for the token, so a cache hit never decodes it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use muster_exchange_api::issuer::issuers_match;
use muster_exchange_api::sidecar_config::HeaderMode;
use muster_exchange_dex::jwt::PeekedClaims;

use crate::auth_headers::{self, ForwardAuth};
use crate::errors::ExchangeFailure;
use crate::exchanger::ClusterRuntime;
use crate::metrics::ClusterMetrics;
use crate::token_cache::Fetched;

/// How far past the subject's own `exp` a passthrough entry's forwarded token is said to expire: more
/// than any cache expiry margin, so the subject's `exp` alone ends the entry (the forwarded token *is*
/// the subject; the margin for an exchanged token's trip to the API server does not apply to it).
const PASSTHROUGH_EXPIRY_SLACK: Duration = Duration::from_secs(3600);

/// The path of one subject token at one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectPath {
    /// Issued by this cluster's Dex: forward unchanged.
    Passthrough,
    /// Issued by the Dex of the configured cluster at this index: refuse.
    OtherCluster(usize),
    /// Anything else: exchange.
    Exchange,
}

/// The path for a token with `claims` (`None`: opaque or unreadable) sent to `clusters[index]`.
pub fn classify(claims: Option<&PeekedClaims>, index: usize, clusters: &[ClusterRuntime]) -> SubjectPath {
    let Some(iss) = claims.and_then(|c| c.iss.as_deref()) else {
        return SubjectPath::Exchange;
    };
    if clusters
        .get(index)
        .is_some_and(|c| issuers_match(&c.expected_issuer, iss))
    {
        return SubjectPath::Passthrough;
    }
    clusters
        .iter()
        .position(|c| issuers_match(&c.expected_issuer, iss))
        .map_or(SubjectPath::Exchange, SubjectPath::OtherCluster)
}

/// The forwarded identity for a token this cluster's Dex issued: the token itself, in `Authorization`
/// and, in `auth-headers` mode, in `kubernetes-authorization` with the cluster's server and CA. The entry
/// lives until the token's `exp`; a token without `exp` is refused (a Kubernetes API server refuses it
/// too, and nothing would bound the cache entry).
pub fn passthrough(
    cluster: &ClusterRuntime,
    mode: HeaderMode,
    subject_token: &str,
    subject_expires_at: Option<SystemTime>,
    metrics: &ClusterMetrics,
) -> Result<Fetched<Arc<ForwardAuth>>, Arc<ExchangeFailure>> {
    let expires_at = subject_expires_at.ok_or_else(|| Arc::new(ExchangeFailure::PassthroughWithoutExpiry))?;
    let endpoint = cluster.endpoint(mode).map_err(|e| Arc::new(e.into()))?;
    let mut auth = auth_headers::build(subject_token, expires_at, mode, endpoint.as_ref())
        .map_err(|e| Arc::new(e.into()))?;
    auth.passthrough = true;
    metrics.passthrough.inc();
    Ok(Fetched {
        value: Arc::new(auth),
        expires_at: expires_at
            .checked_add(PASSTHROUGH_EXPIRY_SLACK)
            .unwrap_or(expires_at),
        subject_expires_at: Some(expires_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use muster_exchange_api::sidecar_config::ClusterConfig;

    fn cluster(name: &str, issuer: &str) -> ClusterRuntime {
        let config = ClusterConfig {
            name: name.into(),
            dex_token_endpoint: format!("{issuer}/token"),
            expected_issuer: None,
            connector_id: "central".into(),
            scopes: "openid".into(),
            required_audiences: Vec::new(),
            credentials_dir: "/nonexistent".into(),
            client_id_key: "client-id".into(),
            client_secret_key: "client-secret".into(),
            kubeconfig_file: None,
            ca_file: None,
        };
        ClusterRuntime::new(config, Duration::from_secs(1)).unwrap()
    }

    fn claims(iss: Option<&str>) -> PeekedClaims {
        PeekedClaims {
            iss: iss.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn the_issuer_alone_chooses_the_path() {
        let clusters = [cluster("a", "https://dex.a"), cluster("b", "https://dex.b/dex")];
        let path = |iss| classify(Some(&claims(iss)), 0, &clusters);
        assert_eq!(path(Some("https://dex.a")), SubjectPath::Passthrough);
        assert_eq!(path(Some("https://dex.a/")), SubjectPath::Passthrough);
        assert_eq!(path(Some("https://dex.b/dex")), SubjectPath::OtherCluster(1));
        assert_eq!(path(Some("https://central.example/dex")), SubjectPath::Exchange);
        assert_eq!(path(Some("https://dex.a.evil")), SubjectPath::Exchange);
        assert_eq!(path(None), SubjectPath::Exchange);
        assert_eq!(classify(None, 0, &clusters), SubjectPath::Exchange);
        assert_eq!(
            classify(Some(&claims(Some("https://dex.b/dex"))), 1, &clusters),
            SubjectPath::Passthrough
        );
    }

    #[test]
    fn a_passthrough_needs_an_expiry_and_lives_until_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let a = cluster("a", "https://dex.a");
        let metrics = crate::metrics::Metrics::default().for_cluster("a");
        let Err(failure) = passthrough(&a, HeaderMode::Bearer, "t.o.k", None, &metrics) else {
            panic!("a passthrough without exp must fail");
        };
        assert_eq!(failure.outcome(), "no_expiry");
        let exp = SystemTime::now() + Duration::from_secs(600);
        let fetched = passthrough(&a, HeaderMode::Bearer, "t.o.k", Some(exp), &metrics).unwrap();
        assert_eq!(fetched.value.authorization, "Bearer t.o.k");
        assert!(fetched.value.passthrough);
        assert_eq!(fetched.subject_expires_at, Some(exp));
        assert!(fetched.expires_at > exp);
        assert_eq!(metrics.passthrough.get(), 1);
    }
}
