//! The probe controller and what it must never do: read a credentials Secret the policy refuses, or
//! keep our conditions on an MCPServer whose token exchange was switched off.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::controller_tests::{Log, mock_api, probe_config, server_json, start, wait_until};
use super::tests::{client as exchange_client, dex};
use crate::runtime::fixtures::{Expect, run_scenario_for, test_context};

/// A Secret in another namespace is never requested, whatever `clientCredentialsSecretRef` names (the
/// probe would send it to the author's endpoint); the condition says what to do instead.
#[tokio::test(start_paused = true)]
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
    let (running, shutdown) = start(ctx.clone(), &[server]);
    wait_until(|| ctx.metrics.status_writes.get() >= 1).await;
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
        .find(|c| c["type"] == "ExchangeCredentialsReady")
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
            {"type": "DexConnected", "status": "True", "reason": "IssuerMatches", "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z"},
            musters_ready(),
            {"type": "TokenExchangeReady", "status": "True", "reason": "AllChecksPassed", "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
}

/// Muster's own condition: never ours to remove.
fn musters_ready() -> Value {
    json!({"type": "Ready", "status": "True", "reason": "Reachable", "message": "ok",
        "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// Switching token exchange off removes our conditions with one read and one patch guarded by the
/// version read, keeping Muster's `Ready`; nothing is probed or written again for that generation.
#[tokio::test(start_paused = true)]
async fn switching_exchange_off_clears_our_conditions_once() {
    crate::probe::tests::install_crypto();
    let object = "/apis/muster.giantswarm.io/v1alpha1/namespaces/muster/mcpservers/a";
    let uri = format!("{object}/status?&fieldManager=muster-exchange-controller-conditions");
    let body = json!({"metadata": {"resourceVersion": "9"}, "status": {"conditions": [musters_ready()]}});
    let expected = vec![
        Expect::get(object, switched_off_server()),
        Expect::apply(uri, body).responding(switched_off_server()),
    ];
    run_scenario_for(Duration::from_secs(7200), expected, |client| async move {
        let (_leader_tx, leader) = tokio::sync::watch::channel(true);
        let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
        let ctx = Arc::new(test_context(
            client,
            exchange,
            leader,
            probe_config(Duration::from_secs(60)),
        ));
        let (running, shutdown) = start(ctx.clone(), &[switched_off_server()]);
        // The cache still shows the old conditions (no watch event follows): ten intervals send nothing more.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(ctx.metrics.status_writes.get(), 1);
        shutdown.cancel();
        running.await.unwrap();
    })
    .await;
}
