//! Which path a subject token takes, decided from its `iss` claim, read without verifying the signature
//! and only to choose the path (the remote API server verifies every token it receives):
//!
//! - `iss` is this cluster's expected issuer: the token was already exchanged (by Muster, topology M).
//!   It is forwarded unchanged, without a Dex call ("passthrough").
//! - `iss` is another configured cluster's issuer: it was exchanged for that cluster and is refused here,
//!   without a Dex call and without reaching the app.
//! - any other issuer: exchanged at this cluster's Dex as a central token, unless the configuration names
//!   the central issuer (`centralIssuer`) and the token carries another one: then it is refused.
//!
//! Before any path, [`admit`] refuses without a Dex call a token that is not a JWT with a readable
//! payload, one past its `exp`, and one to be exchanged that has no `exp`: a flood of garbage or stale
//! bearer strings never reaches Dex nor waits for an exchange slot.
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

/// The path of a token with `claims` (`None`: opaque or unreadable) sent to `clusters[index]`, or why it
/// is refused without asking Dex. `central_issuer` is the configuration's `centralIssuer`.
pub fn admit(
    claims: Option<&PeekedClaims>,
    now: SystemTime,
    index: usize,
    clusters: &[ClusterRuntime],
    central_issuer: Option<&str>,
) -> Result<SubjectPath, ExchangeFailure> {
    let claims = claims.ok_or(ExchangeFailure::NotAJwt)?;
    if claims.expires_at().is_some_and(|at| at <= now) {
        return Err(ExchangeFailure::SubjectExpired);
    }
    let path = classify(Some(claims), index, clusters);
    if path != SubjectPath::Exchange {
        return Ok(path);
    }
    if let Some(central) = central_issuer {
        let known = claims
            .iss
            .as_deref()
            .is_some_and(|iss| issuers_match(central, iss));
        if !known {
            return Err(ExchangeFailure::UnknownIssuer {
                central: central.to_string(),
            });
        }
    }
    if claims.exp.is_none() {
        return Err(ExchangeFailure::SubjectWithoutExpiry);
    }
    Ok(path)
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
            endpoint_dir: None,
            ca_file: None,
        };
        ClusterRuntime::new(config, Duration::from_secs(1), 4).unwrap()
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

    fn with(iss: Option<&str>, exp: Option<i64>) -> PeekedClaims {
        PeekedClaims { exp, ..claims(iss) }
    }

    #[test]
    fn garbage_expired_and_foreign_tokens_are_refused_before_dex() {
        let clusters = [cluster("a", "https://dex.a"), cluster("b", "https://dex.b")];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let later = Some(2_000_000);
        let outcome = |claims: Option<&PeekedClaims>, central: Option<&str>| {
            admit(claims, now, 0, &clusters, central).map_err(|f| f.outcome())
        };
        assert_eq!(outcome(None, None), Err("not_jwt"));
        assert_eq!(
            outcome(Some(&with(Some("https://c"), Some(1_000_000))), None),
            Err("subject_expired")
        );
        assert_eq!(
            outcome(Some(&with(Some("https://c"), None)), None),
            Err("no_expiry")
        );
        assert_eq!(
            outcome(Some(&with(Some("https://c"), later)), None),
            Ok(SubjectPath::Exchange)
        );
        // With the central issuer configured, only it and the cluster issuers pass.
        let central = Some("https://c/dex");
        assert_eq!(
            outcome(Some(&with(Some("https://c/dex/"), later)), central),
            Ok(SubjectPath::Exchange)
        );
        assert_eq!(
            outcome(Some(&with(Some("https://evil"), later)), central),
            Err("unknown_issuer")
        );
        assert_eq!(outcome(Some(&with(None, later)), central), Err("unknown_issuer"));
        assert_eq!(
            outcome(Some(&with(Some("https://dex.a"), later)), central),
            Ok(SubjectPath::Passthrough)
        );
        assert_eq!(
            outcome(Some(&with(Some("https://dex.b"), later)), central),
            Ok(SubjectPath::OtherCluster(1))
        );
        // A passthrough without exp is refused later, with its own message.
        assert_eq!(
            outcome(Some(&with(Some("https://dex.a"), None)), central),
            Ok(SubjectPath::Passthrough)
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
