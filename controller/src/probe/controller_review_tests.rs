//! Probe-loop scenarios from review: a refused credentials Secret is never read, and switching token
//! exchange off removes our conditions with exactly one apply.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::run_probe_loop;
use super::tests::{Log, mock_api, server_json};
use crate::runtime::context::ProbeLoopConfig;
use crate::runtime::fixtures::{Expect, run_scenario, synced_store, test_context};
use crate::probe::ProbeSettings;
use crate::probe::tests::{client as exchange_client, dex};

/// `interval` is also how long before a clear that did not show up in the cache is sent again; the
/// first probe comes within a tenth of it.
fn probe_config(interval: Duration) -> ProbeLoopConfig {
    ProbeLoopConfig {
        interval,
        max_backoff: Duration::from_secs(60),
        settings: ProbeSettings {
            timeout: Duration::from_millis(500),
            exchange_probe: true,
        },
        concurrency: 4,
    }
}

async fn poll(deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Finding: the probe read whatever Secret `clientCredentialsSecretRef` named and sent it to the
/// author's endpoint. A Secret in another namespace is not requested; the condition says what to do.
#[tokio::test]
async fn a_secret_in_another_namespace_is_never_read_and_is_reported() {
    let dex = dex().await;
    let mut server = server_json("thief", &dex.token_endpoint());
    server["spec"]["auth"]["tokenExchange"]["clientCredentialsSecretRef"] =
        json!({"name": "db-password", "namespace": "org-b"});
    let log: Log = Arc::default();
    let client = mock_api(
        log.clone(),
        BTreeMap::from([("thief".to_string(), server.clone())]),
    );
    let (_leader_tx, leader) = tokio::sync::watch::channel(true);
    let ctx = Arc::new(test_context(
        client,
        exchange_client(dex.ca_pem(), Duration::from_secs(2)),
        leader,
        probe_config(Duration::from_secs(1)),
    ));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(run_probe_loop(
        ctx.clone(),
        synced_store(&[server]),
        shutdown.clone(),
    ));
    poll(Duration::from_secs(5), || ctx.metrics.status_writes.get() >= 1).await;
    shutdown.cancel();
    running.await.unwrap();
    let log = log.lock().unwrap();
    assert!(
        log.iter().all(|(_, path, _, _)| !path.contains("/secrets")),
        "no Secret is read: {:?}",
        log.iter()
            .map(|(m, p, _, _)| format!("{m} {p}"))
            .collect::<Vec<_>>()
    );
    let status = log
        .iter()
        .find(|(m, p, _, _)| m == "PATCH" && p.ends_with("/thief/status"))
        .map(|(_, _, body, _)| body.clone())
        .unwrap();
    let conditions = status["status"]["conditions"].as_array().unwrap();
    let credentials = conditions
        .iter()
        .find(|c| c["type"] == "CredentialsReady")
        .unwrap();
    assert_eq!(
        (&credentials["status"], &credentials["reason"]),
        (&json!("False"), &json!("SecretNamespaceRefused"))
    );
    assert_eq!(
        credentials["message"],
        "Secret org-b/db-password is not in the MCPServer's namespace; create the Secret in the MCPServer's \
         namespace \"muster\" and point clientCredentialsSecretRef at it (or, if every MCPServer author may \
         use Secrets in \"org-b\", start the controller with --allow-cross-namespace-credentials=true)"
    );
}

fn switched_off_server() -> Value {
    json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "a", "namespace": "muster", "generation": 3, "resourceVersion": "9"},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": false}}},
        "status": {"state": "Running", "conditions": [
            {"type": "Connected", "status": "True", "reason": "IssuerMatches", "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
}

/// Finding: switching token exchange off left our conditions on the MCPServer for ever. One apply of an
/// empty list with our field manager removes exactly ours; it is not repeated for the same object.
#[tokio::test]
async fn switching_exchange_off_clears_our_conditions_once() {
    crate::probe::tests::install_crypto();
    let uri = "/apis/muster.giantswarm.io/v1alpha1/namespaces/muster/mcpservers/a/status?&force=true\
               &fieldManager=muster-exchange-controller-conditions";
    let body = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "status": {"conditions": []}});
    let expected = vec![Expect::apply(uri, body).responding(switched_off_server())];
    run_scenario(expected, |client| async move {
        let (_leader_tx, leader) = tokio::sync::watch::channel(true);
        let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
        let ctx = Arc::new(test_context(
            client,
            exchange,
            leader,
            probe_config(Duration::from_secs(60)),
        ));
        let shutdown = CancellationToken::new();
        let store = synced_store(&[switched_off_server()]);
        let running = tokio::spawn(run_probe_loop(ctx.clone(), store, shutdown.clone()));
        poll(Duration::from_secs(4), || ctx.metrics.status_writes.get() >= 1).await;
        assert_eq!(ctx.metrics.status_writes.get(), 1);
        // The cache still shows the old conditions (no watch here): two more ticks send nothing more.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        shutdown.cancel();
        running.await.unwrap();
    })
    .await;
}
