//! The confused deputy, rebuilt: MCPServers naming an unlabelled Opaque Secret and a labelled TLS Secret
//! (with `clientSecretKey: tls.key`) against a fake API server that filters Secrets by selector as the
//! real one does, and the Dex double recording every token request. Neither Secret's data is ever
//! served to the controller, nor sent to Dex; the opted-in Secret works.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use muster_exchange_api::MCPServer;
use muster_exchange_api::credentials_policy::CredentialsPolicy;
use muster_exchange_dex::test_double::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use serde_json::{Value, json};

use super::*;
use crate::probe::read_target::target_from_cluster;
use crate::probe::tests::{client as exchange_client, dex};
use crate::probe::{ProbeSettings, probe_one};

const TLS_KEY: &str = "-----BEGIN PRIVATE KEY-----tls-key-material";

fn secret(name: &str, labelled: bool, type_: &str, data: &[(&str, &str)]) -> Value {
    let labels = if labelled {
        json!({CREDENTIALS_OPT_IN_LABEL: "true"})
    } else {
        json!({"app": "x"})
    };
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            let bytes = k8s_openapi::ByteString(v.as_bytes().to_vec());
            (k.to_string(), serde_json::to_value(bytes).unwrap())
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": type_,
        "metadata": {"name": name, "namespace": "muster", "labels": labels}, "data": data})
}

/// What the fake API server saw and served.
#[derive(Default)]
struct ApiLog {
    /// Every request, as `METHOD path?query`.
    requests: Vec<String>,
    /// Names of Secrets whose `data` was in a response.
    served_data: Vec<String>,
}

fn matches_selectors(secret: &Value, query: &BTreeMap<String, String>) -> bool {
    let label_ok = query.get("labelSelector").is_none_or(|selector| {
        selector.split(',').all(|term| {
            let (k, v) = term.split_once('=').unwrap();
            secret["metadata"]["labels"][k] == v
        })
    });
    let field_ok = query.get("fieldSelector").is_none_or(|selector| {
        selector
            .split(',')
            .all(|term| match term.split_once('=').unwrap() {
                ("metadata.name", v) => secret["metadata"]["name"] == v,
                ("type", v) => secret["type"] == v,
                (other, _) => panic!("field selector {other} is not supported on Secrets"),
            })
    });
    label_ok && field_ok
}

/// Serves Secret lists in `muster`, filtered by label and field selector; metadata-only when asked.
fn fake_api(secrets: Vec<Value>, log: Arc<Mutex<ApiLog>>) -> Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let (secrets, log) = (secrets.clone(), log.clone());
        async move {
            let uri = request.uri().clone();
            let metadata_only = request
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("PartialObjectMetadata"));
            let mut log = log.lock().unwrap();
            log.requests.push(format!("{} {}", request.method(), uri));
            let answer = if request.method() == http::Method::GET
                && uri.path() == "/api/v1/namespaces/muster/secrets"
            {
                let query: BTreeMap<String, String> =
                    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect();
                let items: Vec<Value> = secrets
                    .iter()
                    .filter(|s| matches_selectors(s, &query))
                    .map(|s| {
                        if metadata_only {
                            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": s["metadata"]})
                        } else {
                            log.served_data
                                .push(s["metadata"]["name"].as_str().unwrap().to_string());
                            s.clone()
                        }
                    })
                    .collect();
                let kind = if metadata_only {
                    "PartialObjectMetadataList"
                } else {
                    "SecretList"
                };
                json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
            } else {
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"})
            };
            Ok::<_, Infallible>(Response::new(Body::from(serde_json::to_vec(&answer).unwrap())))
        }
    });
    Client::new(service, "default")
}

fn server(name: &str, secret: &str, keys: Option<(&str, &str)>, endpoint: &str, issuer: &str) -> MCPServer {
    let mut secret_ref = json!({"name": secret});
    if let Some((id, key)) = keys {
        secret_ref["clientIdKey"] = json!(id);
        secret_ref["clientSecretKey"] = json!(key);
    }
    serde_json::from_value(
        json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": "muster"},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": true, "dexTokenEndpoint": endpoint, "expectedIssuer": issuer,
                "connectorId": "central", "clientCredentialsSecretRef": secret_ref}}}}),
    )
    .unwrap()
}

#[tokio::test]
async fn an_unlabelled_or_tls_secret_is_never_served_nor_sent_to_dex() {
    let dex = dex().await;
    let secrets = vec![
        secret(
            "plain",
            false,
            "Opaque",
            &[
                ("client-id", DEFAULT_CLIENT_ID),
                ("client-secret", DEFAULT_CLIENT_SECRET),
            ],
        ),
        secret(
            "tls",
            true,
            "kubernetes.io/tls",
            &[("tls.crt", DEFAULT_CLIENT_ID), ("tls.key", TLS_KEY)],
        ),
        secret(
            "good",
            true,
            "Opaque",
            &[
                ("client-id", DEFAULT_CLIENT_ID),
                ("client-secret", DEFAULT_CLIENT_SECRET),
            ],
        ),
    ];
    let log = Arc::new(Mutex::new(ApiLog::default()));
    let client = fake_api(secrets, log.clone());
    let policy = CredentialsPolicy::for_controller("mx", false);
    let settings = ProbeSettings {
        timeout: Duration::from_secs(2),
        exchange_probe: true,
    };
    let exchange = exchange_client(dex.ca_pem(), settings.timeout);
    let (endpoint, issuer) = (dex.token_endpoint(), dex.issuer().to_string());
    let mut results = Vec::new();
    for (name, keys) in [
        ("plain", None),
        ("tls", Some(("tls.crt", "tls.key"))),
        ("good", None),
    ] {
        let server = server(name, name, keys, &endpoint, &issuer);
        let target = target_from_cluster(&client, &server, &policy, settings.timeout)
            .await
            .unwrap();
        let outcome = probe_one(&exchange, &target, &settings).await;
        results.push((
            name,
            outcome.credentials.reason,
            outcome.token_exchange.reason,
            outcome.credentials.message,
        ));
    }
    let reasons: Vec<_> = results.iter().map(|(n, c, t, _)| (*n, *c, *t)).collect();
    assert_eq!(
        reasons,
        [
            ("plain", "SecretNotOptedIn", "NotProbed"),
            ("tls", "SecretNotOpaque", "NotProbed"),
            ("good", "SecretFound", "ExchangeVerified"),
        ]
    );
    assert!(
        results[0]
            .3
            .contains("kubectl label secret -n muster plain exchange.muster.giantswarm.io/credentials=true"),
        "{}",
        results[0].3
    );
    assert!(results[1].3.contains("is not of type Opaque"), "{}", results[1].3);
    // Only the opted-in Secret's client credentials reached Dex; the TLS key never did.
    let sent = dex.requests();
    assert_eq!(sent.len(), 1, "{sent:?}");
    for request in &sent {
        let all = format!("{request:?}");
        assert!(!all.contains("tls-key-material"), "{all}");
    }
    let log = log.lock().unwrap();
    assert_eq!(log.served_data, ["good"], "{:?}", log.requests);
    assert!(
        log.requests.iter().all(|r| !r.contains("/secrets/")),
        "no Secret is read by name (a GET returns its data whatever its labels): {:?}",
        log.requests
    );
}

#[tokio::test]
async fn the_lookup_tells_missing_unlabelled_and_not_opaque_apart_without_reading_data() {
    let secrets = vec![
        secret("plain", false, "Opaque", &[("client-id", "a")]),
        secret("tls", true, "kubernetes.io/tls", &[("tls.key", TLS_KEY)]),
    ];
    let log = Arc::new(Mutex::new(ApiLog::default()));
    let client = fake_api(secrets, log.clone());
    let mut found = Vec::new();
    for name in ["plain", "tls", "absent"] {
        found.push(read_credentials_secret(&client, "muster", name).await.unwrap());
    }
    assert_eq!(
        found,
        [
            SecretLookup::Refused(OptInRefusal::NotLabelled),
            SecretLookup::Refused(OptInRefusal::NotOpaque(None)),
            SecretLookup::NotFound,
        ]
    );
    let log = log.lock().unwrap();
    assert!(log.served_data.is_empty(), "{:?}", log.served_data);
    assert_eq!(
        log.requests[0],
        "GET /api/v1/namespaces/muster/secrets?&fieldSelector=metadata.name%3Dplain%2Ctype%3DOpaque&labelSelector=exchange.muster.giantswarm.io%2Fcredentials%3Dtrue"
    );
}

#[test]
fn a_secret_at_hand_is_judged_by_label_value_and_type() {
    let parse = |v: Value| serde_json::from_value::<k8s_openapi::api::core::v1::Secret>(v).unwrap();
    let mut wrong_value = secret("a", true, "Opaque", &[]);
    wrong_value["metadata"]["labels"][CREDENTIALS_OPT_IN_LABEL] = json!("yes");
    assert_eq!(judge(&parse(wrong_value)), Err(OptInRefusal::NotLabelled));
    let mut untyped = secret("a", true, "Opaque", &[]);
    untyped.as_object_mut().unwrap().remove("type");
    assert_eq!(
        judge(&parse(untyped)),
        Ok(()),
        "the API server defaults the type to Opaque"
    );
    assert_eq!(
        judge(&parse(secret(
            "a",
            true,
            "kubernetes.io/service-account-token",
            &[]
        ))),
        Err(OptInRefusal::NotOpaque(Some(
            "kubernetes.io/service-account-token".into()
        )))
    );
}
