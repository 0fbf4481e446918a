//! Link-local and cloud-metadata addresses are refused after resolution, for the connection the client
//! makes; private and loopback addresses stay allowed.

use std::collections::BTreeMap;
use std::time::Duration;

use muster_exchange_dex::{ClientOptions, ExchangeClient};

use super::*;
use crate::probe::tests::{dex, install_crypto};

/// Answers from a fixed table, like a DNS server the MCPServer author controls.
struct FakeLookup(BTreeMap<&'static str, Vec<IpAddr>>);

impl Lookup for FakeLookup {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let answer = self
            .0
            .get(host.as_str())
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no such host {host}")));
        Box::pin(async move { answer })
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn fake() -> Arc<FakeLookup> {
    Arc::new(FakeLookup(BTreeMap::from([
        ("metadata.evil.test", vec![ip("169.254.169.254")]),
        ("v6-metadata.evil.test", vec![ip("fd00:ec2::254"), ip("fe80::1")]),
        // Rebinding: one refused and one allowed address; only the allowed one may be used.
        ("localhost", vec![ip("169.254.169.254"), ip("127.0.0.1")]),
    ])))
}

#[test]
fn refused_ranges_are_link_local_and_metadata_only() {
    for refused in [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "febf::1",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
    ] {
        assert!(is_refused(ip(refused)), "{refused}");
    }
    for allowed in [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "::1",
        "fd00:ec2::253",
        "fec0::1",
        "100.64.0.1",
        "8.8.8.8",
    ] {
        assert!(!is_refused(ip(allowed)), "{allowed}");
    }
}

#[tokio::test]
async fn endpoints_are_refused_by_literal_and_after_resolution() {
    let lookup = fake();
    let literal = refused_endpoint(lookup.as_ref(), "https://169.254.169.254/latest/token").await;
    assert!(
        literal.as_deref().is_some_and(
            |m| m.starts_with("dexTokenEndpoint https://169.254.169.254/latest/token is a link-local")
        ),
        "{literal:?}"
    );
    assert!(
        refused_endpoint(lookup.as_ref(), "https://[fd00:ec2::254]/token")
            .await
            .is_some()
    );
    let resolved = refused_endpoint(lookup.as_ref(), "https://v6-metadata.evil.test/dex/token").await;
    assert_eq!(
        resolved.as_deref(),
        Some(
            "Dex host v6-metadata.evil.test resolves only to link-local or cloud-metadata addresses \
             (fd00:ec2::254, fe80::1); muster-exchange never connects there (169.254.0.0/16, fe80::/10, \
             fd00:ec2::254): set dexTokenEndpoint to the remote Dex's address"
        )
    );
    for allowed in [
        "https://10.1.2.3/dex/token",
        "https://127.0.0.1:5556/dex/token",
        "https://localhost/dex/token",
        "https://unknown.test/dex/token",
    ] {
        assert_eq!(
            refused_endpoint(lookup.as_ref(), allowed).await,
            None,
            "{allowed}"
        );
    }
}

#[tokio::test]
async fn the_resolver_yields_only_allowed_addresses() {
    let resolver = GuardedResolver::new(fake());
    let addrs: Vec<SocketAddr> = resolver
        .resolve("localhost".parse().unwrap())
        .await
        .unwrap()
        .collect();
    assert_eq!(addrs, [SocketAddr::new(ip("127.0.0.1"), 0)]);
    let error = resolver
        .resolve("metadata.evil.test".parse().unwrap())
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("(169.254.169.254)"), "{error}");
}

#[tokio::test]
async fn the_client_never_connects_to_a_refused_address_a_name_resolves_to() {
    install_crypto();
    let dex = dex().await;
    let client = ExchangeClient::with_resolver(
        ClientOptions {
            timeout: Duration::from_secs(5),
            extra_ca_pem: Some(dex.ca_pem().as_bytes().to_vec()),
        },
        Arc::new(GuardedResolver::new(fake())),
    )
    .unwrap();
    let error = client
        .discover_issuer("https://metadata.evil.test/latest/token")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("resolves only to link-local or cloud-metadata addresses (169.254.169.254)"),
        "{error}"
    );
    // `localhost` also resolves to 169.254.169.254 (listed first): only 127.0.0.1, where the Dex double
    // answers, is used.
    let endpoint = format!("https://localhost:{}/dex/token", dex.addr().port());
    let issuer = client.discover_issuer(&endpoint).await.unwrap();
    assert_eq!(issuer, dex.issuer());
}

fn probe_target(endpoint: &str, issuer: &str) -> crate::probe::target::ProbeTarget {
    use muster_exchange_dex::test_double::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CONNECTOR};
    crate::probe::target::ProbeTarget {
        namespace: "muster".into(),
        name: "a".into(),
        generation: Some(1),
        endpoint: endpoint.into(),
        expected_issuer: issuer.into(),
        connector_id: DEFAULT_CONNECTOR.into(),
        scope: "openid".into(),
        credentials_check: crate::probe::outcome::Check::ok("SecretFound", "ok"),
        credentials: Some(crate::probe::credentials::ClientCredentials {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
        }),
        last_answered: None,
    }
}

const SETTINGS: crate::probe::ProbeSettings = crate::probe::ProbeSettings {
    timeout: Duration::from_secs(3),
    exchange_probe: true,
};

/// A link-local or cloud-metadata endpoint is refused before any connection, with its own reason.
#[tokio::test]
async fn a_link_local_endpoint_is_refused_without_a_connection() {
    install_crypto();
    let client = ExchangeClient::new(ClientOptions::default()).unwrap();
    for endpoint in [
        "https://169.254.169.254/latest/meta-data/token",
        "https://[fe80::1]:5556/dex/token",
    ] {
        let outcome = crate::probe::probe_one(&client, &probe_target(endpoint, "https://x"), &SETTINGS).await;
        assert_eq!(
            (outcome.connected.reason, outcome.token_exchange.reason),
            ("EndpointRefused", "NotProbed"),
            "{endpoint}"
        );
        assert!(outcome.connected.message.contains("never connects there"));
    }
}

/// Dex's error text is capped at 1 KiB in the condition, on a character boundary, and still classified (a
/// 40k-character message would exceed the CRD's limit).
#[tokio::test]
async fn a_40k_character_dex_error_is_capped_in_the_condition() {
    use muster_exchange_dex::test_double::FailureMode;
    let dex = dex().await;
    dex.update(|b| b.failure = Some(FailureMode::LongRejection(40_000)));
    let client = crate::probe::tests::client(dex.ca_pem(), SETTINGS.timeout);
    let outcome = crate::probe::probe_one(
        &client,
        &probe_target(&dex.token_endpoint(), dex.issuer()),
        &SETTINGS,
    )
    .await;
    assert_eq!(outcome.token_exchange.reason, "CredentialsRejected");
    let message = &outcome.token_exchange.message;
    assert!(
        message.len() <= crate::probe::outcome::MAX_MESSAGE_BYTES,
        "{} bytes",
        message.len()
    );
    assert!(message.contains("invalid_client - éé"), "{message}");
    assert!(message.ends_with('…'));
}
