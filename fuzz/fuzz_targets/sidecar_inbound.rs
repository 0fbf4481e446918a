//! The sidecar's request path up to the exchange (routing, header budget, bearer parsing, the subject's
//! `exp`, stripping) and the request it builds for the app.
//!
//! Input: one flags byte (bit 0: two clusters `a`, `b`; bit 1: `auth-headers` mode; bit 2: the app URL
//! has a base path), then lines: the path and query, then `name: value` headers.
//!
//! Two clusters are configured with their Dex issuers (`a`: `https://dex.a.example.com`, `b`:
//! `https://dex.b.example.com/dex`); no Dex is called.
//!
//! Asserts: a refusal is the right one (the budget counts exactly, a missing token means no
//! `Authorization`, an expired token has `exp` not after now); a forwarded request carries the routed
//! URL, exactly one `Authorization` (the exchanged token), exactly our `kubernetes-*` headers (none in
//! `bearer` mode), no hop-by-hop header or header named by `Connection`, no `Host`, and every other
//! caller header unchanged; the subject is the caller's bearer token, non-empty, without spaces and
//! within the size limit, and not yet expired; a token whose `iss` is the routed cluster's Dex is passed
//! through unchanged (and needs an `exp`), one of another configured cluster's Dex is refused, any other
//! is exchanged only when it is a JWT with an `exp` (else refused as not a JWT or without expiry).
//!
//! The entry point runs the proxy's own pre-Dex functions (`proxy::caller_subject`,
//! `AppState::admit_subject`), so these assertions are about what the proxy does.
#![no_main]

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use muster_exchange_api::issuer::issuers_match;
use muster_exchange_api::sidecar_config::HeaderMode;
use muster_exchange_dex::jwt::peek_claims;
use muster_exchange_sidecar::errors::ExchangeFailure;
use muster_exchange_sidecar::fuzzing::{
    CLUSTERS, Clusters, ENDPOINT_CA, ENDPOINT_SERVER, EXCHANGED_TOKEN, Refused, decode_inbound, inbound,
};
use muster_exchange_sidecar::inbound_auth::{
    InboundError, MAX_INBOUND_HEADER_BYTES, MAX_SUBJECT_TOKEN_BYTES,
};

/// Hop-by-hop headers (RFC 9110 7.6.1): the oracle's own copy, so a wrong list in the sidecar is caught.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// One and two configured clusters (`a`; `a` and `b`), built once.
static CONFIGURED: LazyLock<[Clusters; 2]> = LazyLock::new(|| {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("muster-exchange-fuzz-{}", std::process::id()));
    let build = |count| Clusters::new(count, &dir).unwrap_or_else(|e| panic!("fuzz clusters: {e}"));
    [build(1), build(2)]
});

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode_inbound(data) else {
        return;
    };
    let (flags, mode, upstream, path, headers) =
        (input.flags, input.mode, input.upstream, input.path, input.headers);
    let clusters = &CONFIGURED[input.clusters];
    let names = clusters.names();
    // What axum hands over: an origin-form path and query, as `http` parses it.
    let Ok(parsed) = http::uri::PathAndQuery::try_from(path) else {
        return;
    };
    if !parsed.as_str().starts_with('/') {
        return;
    }
    let path = parsed.as_str();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let sent = headers.clone();
    let budget: usize = sent.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    let issuer = |index: usize| CLUSTERS[index].1;
    let subject_claims = sent
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .and_then(|(_, t)| peek_claims(t.trim()));
    let subject_iss = subject_claims.as_ref().and_then(|c| c.iss.clone());
    let iss_is = |index: usize| {
        subject_iss
            .as_deref()
            .is_some_and(|iss| issuers_match(issuer(index), iss))
    };
    match inbound(clusters, upstream, path, headers, mode, now) {
        Ok(forwarded) => {
            assert!(forwarded.cluster < names.len());
            assert!(budget <= MAX_INBOUND_HEADER_BYTES, "over budget yet forwarded");
            let uri = forwarded.uri.to_string();
            assert!(uri.starts_with("http://127.0.0.1:8080/"), "{uri}");
            if flags & 4 != 0 {
                assert!(uri.starts_with("http://127.0.0.1:8080/base/"), "{uri}");
            }
            if names.len() == 1 {
                let base = if flags & 4 == 0 { "" } else { "/base" };
                assert_eq!(
                    forwarded.uri.path_and_query().map(|p| p.as_str().to_string()),
                    Some(format!("{base}{path}")),
                    "one cluster forwards every path unchanged"
                );
            } else {
                let prefix = format!("/clusters/{}", names[forwarded.cluster]);
                assert!(
                    path.starts_with(&prefix),
                    "{path} routed to {}",
                    names[forwarded.cluster]
                );
            }
            check_subject(&sent, &forwarded.subject);
            if let Some(at) = forwarded.subject_expires_at {
                assert!(at > now, "an expired subject was forwarded");
            }
            assert_eq!(
                forwarded.passthrough,
                iss_is(forwarded.cluster),
                "passthrough exactly for the routed cluster's own tokens"
            );
            if !forwarded.passthrough {
                assert!(
                    !(0..names.len()).any(iss_is),
                    "a token of a configured cluster's Dex was exchanged"
                );
                assert!(
                    peek_claims(&forwarded.subject).is_some_and(|c| c.exp.is_some()),
                    "a token without readable claims or exp was exchanged"
                );
            } else {
                assert!(
                    forwarded.subject_expires_at.is_some(),
                    "a passthrough without exp"
                );
            }
            let token = if forwarded.passthrough {
                forwarded.subject.as_str()
            } else {
                EXCHANGED_TOKEN
            };
            check_forwarded(&sent, &forwarded.headers, mode, token);
        }
        Err(Refused::Subject(ExchangeFailure::IssuedForOtherCluster { issuer_cluster })) => {
            let other = names
                .iter()
                .position(|n| *n == issuer_cluster)
                .unwrap_or_else(|| panic!("refused for unknown cluster {issuer_cluster}"));
            assert!(
                iss_is(other),
                "refused as {issuer_cluster}'s token without its issuer"
            );
        }
        Err(Refused::Subject(ExchangeFailure::PassthroughWithoutExpiry)) => {
            assert!(
                (0..names.len()).any(iss_is),
                "refused as a passthrough without a cluster's issuer"
            );
        }
        Err(Refused::Subject(ExchangeFailure::NotAJwt)) => {
            assert!(subject_claims.is_none(), "a JWT refused as not one");
        }
        Err(Refused::Subject(ExchangeFailure::SubjectWithoutExpiry)) => {
            assert!(
                subject_claims.as_ref().is_some_and(|c| c.exp.is_none()),
                "refused for a missing exp the token has"
            );
            assert!(
                !(0..names.len()).any(iss_is),
                "a configured cluster's token refused as one to exchange"
            );
        }
        Err(Refused::Subject(other)) => panic!("unexpected refusal: {other}"),
        Err(Refused::Inbound(InboundError::HeadersTooLarge { size, limit })) => {
            assert_eq!(size, budget);
            assert!(size > limit);
        }
        Err(Refused::Inbound(InboundError::MissingToken)) => {
            assert!(!sent.contains_key(header::AUTHORIZATION));
        }
        Err(Refused::Inbound(InboundError::TokenTooLarge { size, limit })) => {
            assert!(size > limit && limit == MAX_SUBJECT_TOKEN_BYTES);
        }
        Err(Refused::Inbound(InboundError::Expired)) => {
            let value = sent.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            let token = value.and_then(|v| v.split_once(' ')).map(|(_, t)| t.trim());
            let at = token.and_then(peek_claims).and_then(|c| c.expires_at());
            assert!(
                at.is_some_and(|at| at <= now),
                "refused as expired without an exp in the past"
            );
        }
        Err(Refused::Inbound(InboundError::Malformed)) => {
            assert!(sent.contains_key(header::AUTHORIZATION));
        }
        Err(Refused::Route(_)) => assert_eq!(names.len(), 2, "one cluster takes every path"),
        Err(Refused::Path | Refused::Upstream(_)) => {}
    }
});

/// The subject is what follows `Bearer ` in the caller's (first) `Authorization`.
fn check_subject(sent: &HeaderMap, subject: &str) {
    let value = sent
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a subject without a readable Authorization header"));
    let (scheme, token) = value
        .split_once(' ')
        .unwrap_or_else(|| panic!("a subject from an Authorization without a scheme: {value:?}"));
    assert!(
        scheme.eq_ignore_ascii_case("bearer"),
        "scheme {scheme:?} accepted"
    );
    assert_eq!(token.trim(), subject);
    assert!(
        !subject.is_empty() && !subject.contains(' '),
        "subject {subject:?}"
    );
    assert!(subject.len() <= MAX_SUBJECT_TOKEN_BYTES);
}

/// `token` is what the app must see: the exchanged token, or the caller's own on a passthrough.
fn check_forwarded(sent: &HeaderMap, forwarded: &HeaderMap, mode: HeaderMode, token: &str) {
    let authorization: Vec<&HeaderValue> = forwarded.get_all(header::AUTHORIZATION).iter().collect();
    assert_eq!(
        authorization,
        [&HeaderValue::from_str(&format!("Bearer {token}")).unwrap_or_else(|e| panic!("{e}"))],
        "the app must see exactly the forwarded token"
    );
    let ours: Vec<(String, String)> = forwarded
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("kubernetes-"))
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let expected: Vec<(String, String)> = match mode {
        HeaderMode::Bearer => Vec::new(),
        HeaderMode::AuthHeaders => vec![
            ("kubernetes-authorization".into(), format!("Bearer {token}")),
            ("kubernetes-server".into(), ENDPOINT_SERVER.into()),
            ("kubernetes-certificate-authority-data".into(), ENDPOINT_CA.into()),
        ],
    };
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    let mut expected_sorted = expected;
    expected_sorted.sort();
    assert_eq!(
        ours_sorted, expected_sorted,
        "kubernetes-* headers reaching the app"
    );
    let connection_named: BTreeSet<String> = sent
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .map(|n| n.to_string())
        .collect();
    for name in forwarded.keys() {
        assert!(
            !HOP_BY_HOP.contains(&name.as_str()),
            "hop-by-hop {name} forwarded"
        );
        // Headers the sidecar sets itself may carry a name the caller's Connection listed.
        let set_by_sidecar = name == header::AUTHORIZATION
            || name.as_str().starts_with("kubernetes-")
            || (sent.contains_key(header::HOST)
                && (name == "x-forwarded-host" || name == "x-forwarded-proto"));
        assert!(
            set_by_sidecar || !connection_named.contains(name.as_str()),
            "{name} named by Connection forwarded"
        );
        assert_ne!(name, header::HOST, "the caller's Host forwarded");
    }
    // A caller's `Connection: host` makes Host hop-by-hop: stripped, so nothing to keep.
    if sent.contains_key(header::HOST) && !connection_named.contains("host") {
        assert!(
            forwarded.contains_key("x-forwarded-host"),
            "Host not kept as X-Forwarded-Host"
        );
    }
    for name in sent.keys() {
        let dropped = HOP_BY_HOP.contains(&name.as_str())
            || connection_named.contains(name.as_str())
            || name.as_str().starts_with("kubernetes-")
            || name == header::AUTHORIZATION
            || name == header::HOST
            || (sent.contains_key(header::HOST)
                && (name == "x-forwarded-host" || name == "x-forwarded-proto"));
        if dropped {
            continue;
        }
        let before: Vec<&HeaderValue> = sent.get_all(name).iter().collect();
        let after: Vec<&HeaderValue> = forwarded.get_all(name).iter().collect();
        assert_eq!(
            before, after,
            "caller header {name} changed on the way to the app"
        );
    }
}
