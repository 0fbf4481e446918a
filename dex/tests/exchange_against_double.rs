//! The exchange client against the HTTPS Dex double: every answer Dex gives, and every way it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use std::sync::Once;
use std::time::{Duration, SystemTime};

use muster_exchange_dex::jwt::{peek_claims, unsigned_jwt};
use muster_exchange_dex::test_double::{
    BlackHole, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DexDouble, DoubleClient, FailureMode, refused_addr,
};
use muster_exchange_dex::{
    ClientOptions, ExchangeClient, ExchangeError, ExchangeRequest, FailureClass, InvalidResponse,
};
use serde_json::json;

fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn client_for(dex: &DexDouble, timeout: Duration) -> ExchangeClient {
    install_provider();
    ExchangeClient::new(ClientOptions {
        timeout,
        extra_ca_pem: Some(dex.ca_pem().as_bytes().to_vec()),
    })
    .unwrap()
}

fn subject() -> String {
    unsigned_jwt(&json!({"iss": "https://central", "sub": "alice", "exp": 4_000_000_000u64}))
}

fn request<'a>(endpoint: &'a str, subject: &'a str, issuer: Option<&'a str>) -> ExchangeRequest<'a> {
    ExchangeRequest {
        endpoint,
        subject_token: subject,
        connector_id: "central",
        scope: "openid groups audience:server:client_id:dex-k8s-authenticator",
        client_id: DEFAULT_CLIENT_ID,
        client_secret: DEFAULT_CLIENT_SECRET,
        expected_issuer: issuer,
    }
}

async fn exchange(
    dex: &DexDouble,
    change: impl FnOnce(&mut ExchangeRequest<'_>),
) -> Result<muster_exchange_dex::ExchangedToken, ExchangeError> {
    let client = client_for(dex, Duration::from_secs(5));
    let endpoint = dex.token_endpoint();
    let subject = subject();
    let mut req = request(&endpoint, &subject, Some(dex.issuer()));
    change(&mut req);
    client.exchange(&req).await
}

#[tokio::test]
async fn success_sends_exactly_what_dex_expects_with_a_plus_and_slash_secret() {
    let dex = DexDouble::start().await.unwrap();
    let before = SystemTime::now();
    let token = exchange(&dex, |_| {}).await.unwrap();
    assert_eq!(dex.exchanges(), 1);
    let sent = &dex.requests()[0];
    let subject = subject();
    let expected_form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", subject.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
        ("connector_id", "central"),
        (
            "scope",
            "openid groups audience:server:client_id:dex-k8s-authenticator",
        ),
    ];
    let form: Vec<(&str, &str)> = sent.form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(form, expected_form);
    assert_eq!(
        sent.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    // "exchange-client:s3cr%2Bt%2Fwith%3Dchars"
    assert_eq!(
        sent.authorization.as_deref(),
        Some("Basic ZXhjaGFuZ2UtY2xpZW50OnMzY3IlMkJ0JTJGd2l0aCUzRGNoYXJz")
    );
    assert_eq!(token.issuer.as_deref(), Some(dex.issuer()));
    assert_eq!(
        token.issued_token_type.as_deref(),
        Some("urn:ietf:params:oauth:token-type:id_token")
    );
    let lifetime = token.expires_at.duration_since(before).unwrap();
    assert!(
        lifetime >= Duration::from_secs(299) && lifetime <= Duration::from_secs(301),
        "{lifetime:?}"
    );
    let claims = peek_claims(&token.access_token).unwrap();
    assert_eq!(claims.sub.as_deref(), Some("exchanged-1"));
}

#[tokio::test]
async fn dex_rejections_are_classified_with_hints() {
    let dex = DexDouble::start().await.unwrap();
    dex.update(|b| {
        b.connectors.insert("other".into());
        b.refused_subject_tokens.insert("refused".into());
        b.clients.insert(
            "limited".into(),
            DoubleClient {
                secret: "x".into(),
                allowed_connectors: vec!["other".into()],
            },
        );
    });
    let e = exchange(&dex, |r| r.client_secret = "s3cr t/with=chars")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dex rejected the token exchange (status 401): invalid_client - Invalid client credentials."
    );
    assert_eq!(e.failure_class(), FailureClass::CredentialsRejected);
    let e = exchange(&dex, |r| r.connector_id = "nope").await.unwrap_err();
    assert_eq!(
        e.oauth_error(),
        Some(("invalid_request", "Requested connector does not exist."))
    );
    assert_eq!(e.failure_class(), FailureClass::ConnectorUnknown);
    let e = exchange(&dex, |r| {
        r.client_id = "limited";
        r.client_secret = "x";
    })
    .await
    .unwrap_err();
    assert_eq!(
        e.oauth_error(),
        Some(("invalid_grant", "Connector not allowed for this client."))
    );
    assert_eq!(e.failure_class(), FailureClass::ConnectorNotAllowed);
    let e = exchange(&dex, |r| r.subject_token = "refused").await.unwrap_err();
    assert!(matches!(e, ExchangeError::Rejected { status: 401, .. }), "{e:?}");
    assert_eq!(e.failure_class(), FailureClass::AccessDenied);
    assert!(e.hint().unwrap().contains("does not trust the central issuer"));
    assert_eq!(dex.exchanges(), 0);
    assert_eq!(dex.token_requests(), 4);
}

#[tokio::test]
async fn wrong_issuer_fails_closed_and_suggests_expected_issuer() {
    let dex = DexDouble::start().await.unwrap();
    dex.update(|b| b.token_issuer = Some("https://dex.real.example".into()));
    let e = exchange(&dex, |_| {}).await.unwrap_err();
    assert_eq!(e.failure_class(), FailureClass::IssuerMismatch);
    let message = e.to_string();
    assert!(
        message.contains("set expectedIssuer to \"https://dex.real.example\""),
        "{message}"
    );
    let token = exchange(&dex, |r| r.expected_issuer = Some("https://dex.real.example/"))
        .await
        .unwrap();
    assert_eq!(token.issuer.as_deref(), Some("https://dex.real.example"));
}

#[tokio::test]
async fn missing_expires_in_uses_the_jwt_exp() {
    let dex = DexDouble::start().await.unwrap();
    dex.update(|b| {
        b.expires_in = None;
        b.token_lifetime = Duration::from_secs(1234);
    });
    let token = exchange(&dex, |_| {}).await.unwrap();
    let exp = peek_claims(&token.access_token).unwrap().exp.unwrap();
    assert_eq!(
        token.expires_at,
        SystemTime::UNIX_EPOCH + Duration::from_secs(exp as u64)
    );
}

#[tokio::test]
async fn oversized_not_json_and_server_errors_are_invalid_or_server_errors() {
    let dex = DexDouble::start().await.unwrap();
    dex.update(|b| b.failure = Some(FailureMode::OversizedBody));
    let e = exchange(&dex, |_| {}).await.unwrap_err();
    assert!(
        matches!(
            e,
            ExchangeError::InvalidResponse {
                reason: InvalidResponse::TooLarge { limit: 1_048_576 },
                ..
            }
        ),
        "{e:?}"
    );
    dex.update(|b| b.failure = Some(FailureMode::NotJson));
    let e = exchange(&dex, |_| {}).await.unwrap_err();
    assert_eq!(e.failure_class(), FailureClass::InvalidResponse);
    dex.update(|b| b.failure = Some(FailureMode::ServerError));
    let e = exchange(&dex, |_| {}).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Dex at {} failed with status 500: server_error - ",
            dex.token_endpoint()
        )
    );
    assert_eq!(e.failure_class(), FailureClass::ServerError);
}

#[tokio::test]
async fn dex_down_hanging_or_black_holed_fails_fast_and_explained() {
    install_provider();
    let client = ExchangeClient::new(ClientOptions {
        timeout: Duration::from_millis(400),
        extra_ca_pem: None,
    })
    .unwrap();
    let subject = subject();
    let down = format!("https://127.0.0.1:{}/dex/token", refused_addr().unwrap().port());
    let e = client
        .exchange(&request(&down, &subject, None))
        .await
        .unwrap_err();
    assert_eq!(e.failure_class(), FailureClass::Unreachable, "{e}");

    let hole = BlackHole::start().await.unwrap();
    let endpoint = hole.token_endpoint();
    let started = std::time::Instant::now();
    let e = client
        .exchange(&request(&endpoint, &subject, None))
        .await
        .unwrap_err();
    assert_eq!(e.failure_class(), FailureClass::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let dex = DexDouble::start().await.unwrap();
    dex.update(|b| b.failure = Some(FailureMode::Hang));
    let hanging = client_for(&dex, Duration::from_millis(400));
    let endpoint = dex.token_endpoint();
    let e = hanging
        .exchange(&request(&endpoint, &subject, None))
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::Timeout { .. }), "{e:?}");
    assert_eq!(dex.token_requests(), 1);
}

#[tokio::test]
async fn untrusted_certificate_is_unreachable_with_the_tls_cause() {
    let dex = DexDouble::start().await.unwrap();
    install_provider();
    let client = ExchangeClient::new(ClientOptions::default()).unwrap();
    let endpoint = dex.token_endpoint();
    let subject = subject();
    let e = client
        .exchange(&request(&endpoint, &subject, None))
        .await
        .unwrap_err();
    assert_eq!(e.failure_class(), FailureClass::Unreachable);
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[tokio::test]
async fn refuses_http_endpoints_and_huge_subject_tokens_without_sending() {
    let dex = DexDouble::start().await.unwrap();
    let e = exchange(&dex, |r| r.endpoint = "http://127.0.0.1:1/dex/token")
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::InsecureEndpoint { .. }));
    let huge = "a".repeat(64 * 1024 + 1);
    let client = client_for(&dex, Duration::from_secs(5));
    let endpoint = dex.token_endpoint();
    let e = client
        .exchange(&request(&endpoint, &huge, None))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the subject token is 65537 bytes, over the 65536-byte limit; reduce the groups in the ID token"
    );
    assert_eq!(dex.token_requests(), 0);
}

#[tokio::test]
async fn discovery_returns_the_configured_issuer() {
    let dex = DexDouble::start().await.unwrap();
    let client = client_for(&dex, Duration::from_secs(5));
    assert_eq!(
        client.discover_issuer(&dex.token_endpoint()).await.unwrap(),
        dex.issuer()
    );
    dex.update(|b| b.discovery_issuer = Some("https://elsewhere".into()));
    assert_eq!(
        client.discover_issuer(&dex.token_endpoint()).await.unwrap(),
        "https://elsewhere"
    );
}

#[tokio::test]
async fn a_failing_discovery_is_a_server_error_and_a_wrong_path_is_not() {
    let dex = DexDouble::start().await.unwrap();
    let client = client_for(&dex, Duration::from_secs(5));
    dex.update(|b| b.discovery_status = Some(503));
    let err = client.discover_issuer(&dex.token_endpoint()).await.unwrap_err();
    assert_eq!(err.failure_class(), FailureClass::ServerError, "{err}");
    assert!(
        err.to_string().contains("503") && err.to_string().contains("upstream connect error"),
        "{err}"
    );
    dex.update(|b| b.discovery_status = Some(404));
    let err = client.discover_issuer(&dex.token_endpoint()).await.unwrap_err();
    assert_eq!(err.failure_class(), FailureClass::Other, "{err}");
    assert!(err.to_string().contains("status 404"), "{err}");
}
