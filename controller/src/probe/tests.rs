//! Probe tests against the in-test Dex double: each failure class, refused and black-holed addresses,
//! and a fleet where black holes delay no healthy cluster.

use std::time::{Duration, Instant};

use futures::StreamExt;
use muster_exchange_dex::test_double::{
    BlackHole, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CONNECTOR, DexDouble, DoubleClient,
    FailureMode, refused_addr,
};
use muster_exchange_dex::{ClientOptions, ExchangeClient};

use super::credentials::ClientCredentials;
use super::exchange_probe::PROBE_SUBJECT_TOKEN;
use super::fleet::probe_fleet;
use super::outcome::{Check, ProbeOutcome};
use super::target::ProbeTarget;
use super::{ProbeSettings, probe_one};

pub(crate) fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A double that refuses the probe token the way a real Dex connector does.
pub(crate) async fn dex() -> DexDouble {
    let dex = DexDouble::start().await.unwrap();
    dex.update(|b| {
        b.refused_subject_tokens.insert(PROBE_SUBJECT_TOKEN.to_string());
    });
    dex
}

pub(crate) fn client(ca_pem: &str, timeout: Duration) -> ExchangeClient {
    install_crypto();
    ExchangeClient::new(ClientOptions {
        timeout,
        extra_ca_pem: Some(ca_pem.as_bytes().to_vec()),
    })
    .unwrap()
}

fn target(name: &str, endpoint: &str, issuer: &str) -> ProbeTarget {
    ProbeTarget {
        namespace: "muster".into(),
        name: name.into(),
        generation: Some(3),
        endpoint: endpoint.into(),
        expected_issuer: issuer.into(),
        connector_id: DEFAULT_CONNECTOR.into(),
        scope: "openid groups".into(),
        credentials_check: Check::ok("SecretFound", "ok"),
        credentials: Some(ClientCredentials {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
        }),
        last_answered: None,
    }
}

const SETTINGS: ProbeSettings = ProbeSettings {
    timeout: Duration::from_millis(800),
    exchange_probe: true,
};

async fn probe_double(dex: &DexDouble, change: impl FnOnce(&mut ProbeTarget)) -> ProbeOutcome {
    let mut t = target("a", &dex.token_endpoint(), dex.issuer());
    change(&mut t);
    probe_one(&client(dex.ca_pem(), SETTINGS.timeout), &t, &SETTINGS).await
}

fn reasons(o: &ProbeOutcome) -> (&str, &str, &str, bool) {
    (
        o.credentials.reason,
        o.connected.reason,
        o.token_exchange.reason,
        o.is_ready(),
    )
}

#[tokio::test]
async fn healthy_cluster_is_ready_and_the_probe_token_was_refused() {
    let dex = dex().await;
    let outcome = probe_double(&dex, |_| {}).await;
    assert_eq!(
        reasons(&outcome),
        ("SecretFound", "DexAnswered", "ExchangeVerified", true)
    );
    let sent = dex.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].field("subject_token"), Some(PROBE_SUBJECT_TOKEN));
    assert_eq!(sent[0].field("connector_id"), Some("central"));
}

#[tokio::test]
async fn dex_rejections_are_told_apart() {
    let dex = dex().await;
    let rejected = probe_double(&dex, |t| {
        t.credentials.as_mut().unwrap().client_secret = "wrong".into()
    })
    .await;
    assert_eq!(
        reasons(&rejected),
        ("SecretFound", "DexAnswered", "CredentialsRejected", false)
    );
    assert!(
        rejected.token_exchange.message.contains("invalid_client"),
        "{}",
        rejected.token_exchange.message
    );
    let unknown = probe_double(&dex, |t| t.connector_id = "nope".into()).await;
    assert_eq!(
        reasons(&unknown),
        ("SecretFound", "DexAnswered", "ConnectorUnknown", false)
    );
    dex.update(|b| {
        b.clients.insert(
            DEFAULT_CLIENT_ID.into(),
            DoubleClient {
                secret: DEFAULT_CLIENT_SECRET.into(),
                allowed_connectors: vec!["other".into()],
            },
        );
    });
    let not_allowed = probe_double(&dex, |_| {}).await;
    assert_eq!(
        reasons(&not_allowed),
        ("SecretFound", "DexAnswered", "ConnectorNotAllowed", false)
    );
}

#[tokio::test]
async fn wrong_issuer_in_discovery_is_issuer_mismatch() {
    let dex = dex().await;
    dex.update(|b| b.discovery_issuer = Some("https://dex.elsewhere.example/dex".into()));
    let outcome = probe_double(&dex, |_| {}).await;
    assert_eq!(
        reasons(&outcome),
        ("SecretFound", "IssuerMismatch", "NotProbed", false)
    );
    assert!(
        outcome
            .connected
            .message
            .contains("\"https://dex.elsewhere.example/dex\""),
        "{}",
        outcome.connected.message
    );
}

#[tokio::test]
async fn server_error_is_disconnected() {
    let dex = dex().await;
    dex.update(|b| b.failure = Some(FailureMode::ServerError));
    let outcome = probe_double(&dex, |_| {}).await;
    assert_eq!(
        reasons(&outcome),
        ("SecretFound", "Disconnected", "NotProbed", false)
    );
    assert!(
        outcome.connected.message.contains("status 500"),
        "{}",
        outcome.connected.message
    );
    assert!(
        outcome
            .connected
            .message
            .ends_with("no answer seen since the checker started")
    );
}

#[tokio::test]
async fn a_failing_discovery_is_disconnected_naming_the_discovery_address() {
    let dex = dex().await;
    dex.update(|b| b.discovery_status = Some(502));
    let outcome = probe_double(&dex, |_| {}).await;
    assert_eq!(
        reasons(&outcome),
        ("SecretFound", "Disconnected", "NotProbed", false)
    );
    let message = &outcome.connected.message;
    assert!(message.contains("status 502"), "{message}");
    assert!(message.contains("/.well-known/openid-configuration"), "{message}");
}

#[tokio::test]
async fn refused_connection_is_disconnected_and_names_the_endpoint() {
    let addr = refused_addr().unwrap();
    let endpoint = format!("https://127.0.0.1:{}/dex/token", addr.port());
    let dex = dex().await;
    let mut t = target("a", &endpoint, "https://127.0.0.1/dex");
    t.last_answered = Some(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let outcome = probe_one(&client(dex.ca_pem(), SETTINGS.timeout), &t, &SETTINGS).await;
    assert_eq!(
        reasons(&outcome),
        ("SecretFound", "Disconnected", "NotProbed", false)
    );
    let message = &outcome.connected.message;
    assert!(
        message.starts_with(&format!(
            "cannot reach Dex at https://127.0.0.1:{}/dex/.well-known",
            addr.port()
        )),
        "{message}"
    );
    assert!(
        message.ends_with("last answered at 2023-11-14T22:13:20Z"),
        "{message}"
    );
}

#[tokio::test]
async fn black_hole_times_out_within_the_probe_timeout() {
    let hole = BlackHole::start().await.unwrap();
    let dex = dex().await;
    let started = Instant::now();
    let t = target("a", &hole.token_endpoint(), "https://127.0.0.1/dex");
    let outcome = probe_one(&client(dex.ca_pem(), SETTINGS.timeout), &t, &SETTINGS).await;
    let took = started.elapsed();
    assert_eq!(
        reasons(&outcome),
        ("SecretFound", "Disconnected", "NotProbed", false)
    );
    assert!(took >= SETTINGS.timeout, "{took:?}");
    assert!(
        outcome.connected.message.contains("did not answer within"),
        "ended by a timeout: {}",
        outcome.connected.message
    );
}

/// Ten black holes (probe timeout: an hour) hold ten of sixteen slots; the first forty results are
/// the forty healthy clusters, all ready, so no cluster waits for a black hole.
#[tokio::test]
async fn fifty_clusters_with_ten_black_holes_report_every_healthy_one_first() {
    let dex = dex().await;
    let hole = BlackHole::start().await.unwrap();
    let settings = ProbeSettings {
        timeout: Duration::from_secs(3600),
        exchange_probe: true,
    };
    // Black holes first, so they take their slots before any healthy probe starts.
    let mut targets: Vec<_> = (0..10)
        .map(|i| target(&format!("hole-{i}"), &hole.token_endpoint(), "x"))
        .collect();
    targets.extend((0..40).map(|i| target(&format!("ok-{i}"), &dex.token_endpoint(), dex.issuer())));
    let client = client(dex.ca_pem(), super::http_client_timeout(settings.timeout));
    let first: Vec<(String, bool)> = probe_fleet(&client, targets, &settings, 16)
        .map(|(t, o)| (t.name, o.is_ready()))
        .take(40)
        .collect()
        .await;
    assert!(
        first
            .iter()
            .all(|(name, ready)| name.starts_with("ok-") && *ready),
        "{first:?}"
    );
}

/// A black hole gets one message, every time (the HTTPS client's timeout is longer than the probe's), so
/// repeated probes do not rewrite the status.
#[tokio::test]
async fn a_black_hole_always_gets_the_same_message() {
    let hole = BlackHole::start().await.unwrap();
    let dex = dex().await;
    let settings = ProbeSettings {
        timeout: Duration::from_millis(300),
        exchange_probe: true,
    };
    assert!(super::http_client_timeout(settings.timeout) > settings.timeout);
    let client = client(dex.ca_pem(), super::http_client_timeout(settings.timeout));
    let t = target("a", &hole.token_endpoint(), "x");
    let expected = format!(
        "Dex at {} did not answer within the probe timeout of 300ms; ",
        hole.token_endpoint()
    );
    for _ in 0..5 {
        let outcome = probe_one(&client, &t, &settings).await;
        assert!(
            outcome.connected.message.starts_with(&expected),
            "{}",
            outcome.connected.message
        );
    }
}
