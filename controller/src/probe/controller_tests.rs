//! The probe controller end to end: MCPServer cache, mock API server (Secrets, status, events; every
//! write slowed down), Dex double and black holes; and the requeue each reconcile returns.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::api::DynamicObject;
use kube::client::Body;
use kube::runtime::controller::Action;
use muster_exchange_dex::test_double::{BlackHole, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, refused_addr};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ProbeSettings;
use super::controller::{ProbeContext, reconcile, run};
use super::tests::{client as exchange_client, dex};
use crate::runtime::context::{Context, ProbeConfig};
use crate::runtime::fixtures::{synced_store, test_context};

pub(super) type Log = Arc<Mutex<Vec<(String, String, Value, Instant)>>>;

/// Every write to the mock API server takes this long (a loaded API server).
const WRITE_LATENCY: Duration = Duration::from_millis(50);

/// Probes every `interval` (the first within a tenth of it), 0.5 s timeout, 4 at once.
pub(crate) fn probe_config(interval: Duration) -> ProbeConfig {
    ProbeConfig {
        interval,
        max_backoff: Duration::from_secs(60),
        settings: ProbeSettings {
            timeout: Duration::from_millis(500),
            exchange_probe: true,
        },
        concurrency: 4,
    }
}

pub(super) fn server_json(name: &str, endpoint: &str) -> Value {
    json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": "muster", "generation": 2, "uid": format!("uid-{name}")},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": true, "dexTokenEndpoint": endpoint, "connectorId": "central",
                "clientCredentialsSecretRef": {"name": "creds"}}}}})
}

/// Runs the probe controller over `servers` (already in its cache, each delivered once by the watch)
/// until the returned token is cancelled.
pub(super) fn start(ctx: Arc<Context>, servers: &[Value]) -> (JoinHandle<()>, CancellationToken) {
    let store = synced_store(servers);
    let objects: Vec<Result<DynamicObject, kube::runtime::watcher::Error>> = servers
        .iter()
        .map(|s| Ok(serde_json::from_value(s.clone()).unwrap()))
        .collect();
    let watch = futures::stream::iter(objects).chain(futures::stream::pending());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(run(
        ctx,
        watch,
        store,
        futures::stream::pending(),
        shutdown.clone().cancelled_owned(),
    ));
    (running, shutdown)
}

/// Waits until `done`, looking every 10 ms, without a time limit: a slow machine only makes it take
/// longer (on paused time, virtual time also runs on while loopback I/O is under way).
pub(super) async fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Answers Secret lists (one opted-in Secret), MCPServer reads, status patches and events; records every
/// request with its arrival time.
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
            let answer = if path == "/api/v1/namespaces/muster/secrets" {
                json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": [
                    {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": "creds", "namespace": "muster",
                            "labels": {"exchange.muster.giantswarm.io/credentials": "true"}},
                        "stringData": {"client-id": DEFAULT_CLIENT_ID, "client-secret": DEFAULT_CLIENT_SECRET}}]})
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

/// Black holes (probe timeout: an hour) hold 10 of 16 probe slots; all 40 healthy clusters still get
/// their status written, so no cluster waits for another.
#[tokio::test]
async fn healthy_statuses_are_written_while_black_holes_time_out() {
    let dex = dex().await;
    let hole = BlackHole::start().await.unwrap();
    let servers = fleet(&hole, &dex.token_endpoint());
    let log: Log = Arc::default();
    let client = mock_api(log.clone(), servers.clone());
    let timeout = Duration::from_secs(3600);
    let (_leader_tx, leader) = tokio::sync::watch::channel(true);
    let probe = ProbeConfig {
        // First probes are spread over a tenth of the interval: at most 0.3 s here.
        interval: Duration::from_secs(3),
        max_backoff: Duration::from_secs(600),
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
    let (running, _shutdown) = start(ctx, &servers.values().cloned().collect::<Vec<_>>());
    let status_writes = |log: &Log| -> Vec<(String, Value)> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _, _)| m == "PATCH" && p.ends_with("/status"))
            .map(|(_, p, b, _)| (p.split('/').nth(7).unwrap().to_string(), b.clone()))
            .collect()
    };
    // The black holes never answer, so only the healthy clusters can make these 40 writes.
    wait_until(|| status_writes(&log).len() >= 40).await;
    running.abort();
    let writes = status_writes(&log);
    let names: Vec<&str> = writes.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.len() >= 40 && names.iter().all(|n| n.starts_with("ok-")),
        "{names:?}"
    );
    for (_, body) in &writes {
        let conditions = body["status"]["conditions"].as_array().unwrap();
        let ready = conditions
            .iter()
            .find(|c| c["type"] == "TokenExchangeReady")
            .unwrap();
        assert_eq!(ready["status"], "True", "{body}");
        assert_eq!(
            body["status"].as_object().unwrap().len(),
            1,
            "only conditions are written: {body}"
        );
    }
}

/// Each reconcile returns the requeue of the next probe: a first one within a tenth of the interval,
/// then the interval after a success and an exponential backoff (capped) after failures, the failure
/// count kept in the context between reconciles and reset by a spec change.
#[tokio::test]
async fn reconcile_requeues_after_the_interval_or_the_backoff() {
    let dex = dex().await;
    let refused = format!("https://{}/dex/token", refused_addr().unwrap());
    let servers = BTreeMap::from([
        ("ok".to_string(), server_json("ok", &dex.token_endpoint())),
        ("down".to_string(), server_json("down", &refused)),
    ]);
    let client = mock_api(Log::default(), servers.clone());
    let (_leader_tx, leader) = tokio::sync::watch::channel(true);
    let mut probe = probe_config(Duration::from_secs(60));
    probe.max_backoff = Duration::from_secs(240);
    probe.settings.timeout = Duration::from_secs(30);
    let ctx = Arc::new(test_context(
        client,
        exchange_client(dex.ca_pem(), Duration::from_secs(30)),
        leader,
        probe,
    ));
    let values: Vec<Value> = servers.values().cloned().collect();
    let p = Arc::new(ProbeContext::new(ctx, synced_store(&values), || 0.5));
    let object = |name: &str, generation: i64| {
        let mut value = servers[name].clone();
        value["metadata"]["generation"] = json!(generation);
        Arc::new(serde_json::from_value::<DynamicObject>(value).unwrap())
    };
    let secs = |s: u64| Action::requeue(Duration::from_secs(s));
    let mut healthy = Vec::new();
    let mut down = Vec::new();
    for _ in 0..6 {
        healthy.push(reconcile(object("ok", 2), p.clone()).await.unwrap());
        down.push(reconcile(object("down", 2), p.clone()).await.unwrap());
    }
    assert_eq!(
        healthy,
        [secs(3), secs(60), secs(60), secs(60), secs(60), secs(60)]
    );
    assert_eq!(
        down,
        [secs(3), secs(60), secs(120), secs(240), secs(240), secs(240)]
    );
    // A new generation starts over: probed at once, the backoff from the interval again.
    let changed = reconcile(object("down", 3), p.clone()).await.unwrap();
    assert_eq!(changed, secs(60));
}

/// Each log line of a probe reconcile names the MCPServer it is about, through the reconcile's span.
#[tokio::test]
async fn log_lines_of_a_probe_reconcile_carry_the_objects_ids() {
    let (captured, _guard) = crate::runtime::fixtures::capture_logs();
    super::tests::install_crypto();
    let mut malformed = server_json("unreadable", "https://dex.example/dex/token");
    malformed["spec"] = json!("not an object");
    let client = mock_api(Log::default(), BTreeMap::new());
    let (_leader_tx, leader) = tokio::sync::watch::channel(true);
    let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
    let ctx = Arc::new(test_context(
        client,
        exchange,
        leader,
        probe_config(Duration::from_secs(60)),
    ));
    let p = Arc::new(ProbeContext::new(ctx, synced_store(&[malformed.clone()]), || 0.5));
    let object = Arc::new(serde_json::from_value::<DynamicObject>(malformed).unwrap());
    assert_eq!(reconcile(object, p).await.unwrap(), Action::await_change());
    let line = captured.line_with("a malformed MCPServer");
    assert!(
        line.contains(r#"reconcile{controller="probe" kind="MCPServer" namespace=muster name=unreadable}"#),
        "{line}"
    );
}
