//! The probe loop end to end: MCPServer cache, mock API server (Secrets, status, events; every write
//! slowed down), Dex double and black holes. Healthy clusters' statuses are written while black-holed
//! ones are still timing out.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use muster_exchange_dex::test_double::{BlackHole, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::run_probe_loop;
use crate::runtime::context::ProbeLoopConfig;
use crate::runtime::fixtures::{synced_store, test_context};
use crate::probe::ProbeSettings;
use crate::probe::tests::{client as exchange_client, dex};

pub(super) type Log = Arc<Mutex<Vec<(String, String, Value, Instant)>>>;

/// Every write to the mock API server takes this long (a loaded API server).
const WRITE_LATENCY: Duration = Duration::from_millis(50);

pub(super) fn server_json(name: &str, endpoint: &str) -> Value {
    json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": "muster", "generation": 2, "uid": format!("uid-{name}")},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": true, "dexTokenEndpoint": endpoint, "connectorId": "central",
                "clientCredentialsSecretRef": {"name": "creds"}}}}})
}

/// Answers Secret reads, status applies and events; records every request with its arrival time.
pub(super) fn mock_api(log: Log, servers: BTreeMap<String, Value>) -> Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let (log, servers) = (log.clone(), servers.clone());
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path().to_string();
            if parts.method != http::Method::GET {
                tokio::time::sleep(WRITE_LATENCY).await;
            }
            let answer = if path == "/api/v1/namespaces/muster/secrets/creds" {
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "muster"},
                    "stringData": {"client-id": DEFAULT_CLIENT_ID, "client-secret": DEFAULT_CLIENT_SECRET}})
            } else if let Some(name) =
                path.strip_prefix("/apis/muster.giantswarm.io/v1alpha1/namespaces/muster/mcpservers/")
            {
                servers
                    .get(name.trim_end_matches("/status"))
                    .cloned()
                    .unwrap_or(Value::Null)
            } else {
                body.clone()
            };
            log.lock()
                .unwrap()
                .push((parts.method.to_string(), path, body, Instant::now()));
            Ok::<_, Infallible>(Response::new(Body::from(serde_json::to_vec(&answer).unwrap())))
        }
    });
    Client::new(service, "default")
}

fn fleet(hole: &BlackHole, dex_endpoint: &str) -> BTreeMap<String, Value> {
    let holes = (0..10).map(|i| (format!("hole-{i}"), hole.token_endpoint()));
    let healthy = (0..40).map(|i| (format!("ok-{i}"), dex_endpoint.to_string()));
    holes
        .chain(healthy)
        .map(|(name, endpoint)| (name.clone(), server_json(&name, &endpoint)))
        .collect()
}

#[tokio::test]
async fn healthy_statuses_are_written_while_black_holes_time_out() {
    let dex = dex().await;
    let hole = BlackHole::start().await.unwrap();
    let servers = fleet(&hole, &dex.token_endpoint());
    let store = synced_store(&servers.values().cloned().collect::<Vec<_>>());
    let log: Log = Arc::default();
    let client = mock_api(log.clone(), servers);
    let timeout = Duration::from_secs(2);
    let (_leader_tx, leader) = tokio::sync::watch::channel(true);
    let probe = ProbeLoopConfig {
        // First probes are spread over a tenth of the interval: at most 0.3 s here.
        interval: Duration::from_secs(3),
        max_backoff: Duration::from_secs(60),
        settings: ProbeSettings {
            timeout,
            exchange_probe: true,
        },
        concurrency: 16,
    };
    let ctx = Arc::new(test_context(
        client,
        exchange_client(dex.ca_pem(), timeout),
        leader,
        probe,
    ));
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(run_probe_loop(ctx.clone(), store, shutdown.clone()));
    let status_writes = |log: &Log| -> Vec<(String, Value, Duration)> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _, _)| m == "PATCH" && p.ends_with("/status"))
            .map(|(_, p, b, at)| (p.split('/').nth(7).unwrap().to_string(), b.clone(), *at - started))
            .collect()
    };
    // Poll with a deadline: every MCPServer gets exactly one status write in the first round.
    let deadline = Instant::now() + Duration::from_secs(8);
    while status_writes(&log).len() < 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    let writes = status_writes(&log);
    assert_eq!(
        writes.len(),
        50,
        "{:?}",
        writes.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
    for (name, body, at) in &writes {
        let conditions = body["status"]["conditions"].as_array().unwrap();
        let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
        let connected = conditions.iter().find(|c| c["type"] == "Connected").unwrap();
        assert_eq!(
            body["status"].as_object().unwrap().len(),
            1,
            "only conditions are written: {body}"
        );
        if name.starts_with("ok-") {
            assert_eq!(ready["status"], "True", "{body}");
            // Jitter (≤ 0.3 s), a tick, the probe and the slow write: long before the black holes time
            // out. A loop that waited for black holes, or wrote statuses one after another inline,
            // would land after half the timeout.
            assert!(*at < timeout / 2, "{name} took {at:?}");
        } else {
            assert_eq!(
                (connected["status"].as_str(), connected["reason"].as_str()),
                (Some("False"), Some("Disconnected"))
            );
            assert_eq!(connected["observedGeneration"], 2);
            assert!(*at >= timeout, "{name} at {at:?}");
        }
    }
    let events = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, p, _, _)| m == "POST" && p.contains("/events"))
        .count();
    // First statuses: no Event for healthy conditions, one per failing one (Connected and Ready of each hole).
    assert_eq!(events, 10 * 2);
}
