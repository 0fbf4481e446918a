//! The in-cluster MCPServer cache against a mock API server: one list across all namespaces fills the cache and
//! marks it synced; lookups then come from memory. Objects a newer Muster wrote are read, and one that
//! cannot be read at all costs only itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use muster_exchange_webhook::mcpservers::McpServerLookup;
use muster_exchange_webhook::mcpservers::watch_mcpservers;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_first_list_fills_the_cache_and_marks_it_synced() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let store = watch_mcpservers(
        client,
        move || {
            let _ = synced_tx.send(());
        },
        stop.clone(),
        Gauge::default(),
    );

    let (request, send) = handle.next_request().await.expect("a list request");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(
        request.uri().to_string(),
        "/apis/muster.giantswarm.io/v1alpha1/mcpservers?&limit=500"
    );
    let list = json!({
        "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServerList",
        "metadata": {"resourceVersion": "7"},
        "items": [{
            "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "cluster-a", "namespace": "apps", "resourceVersion": "7",
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"type": "streamable-http", "url": "https://mcp.example.com/mcp"}
        }]
    });
    send.send_response(Response::new(Body::from(serde_json::to_vec(&list).unwrap())));

    tokio::time::timeout(Duration::from_secs(5), synced_rx)
        .await
        .expect("synced in time")
        .unwrap();
    let cached = McpServerLookup::get(&store, "apps", "cluster-a").expect("cached");
    assert_eq!(cached.spec.url.as_deref(), Some("https://mcp.example.com/mcp"));
    assert!(
        cached.metadata.managed_fields.is_none(),
        "managedFields are not cached"
    );
    assert!(McpServerLookup::get(&store, "other", "cluster-a").is_none());

    // The watch follows from the list's resourceVersion; no further list on the hot path.
    let (request, _send) = handle.next_request().await.expect("a watch request");
    assert_eq!(
        request.uri().to_string(),
        "/apis/muster.giantswarm.io/v1alpha1/mcpservers\
         ?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=7"
    );
    stop.cancel();
}

/// The good MCPServer of the router tests (`apps/cluster-a`, token exchange on) as JSON.
fn good_cluster_a() -> Value {
    let path = common::fixture_path("mcpservers.yaml");
    let docs = muster_exchange_api::documents::read_documents(path.to_str().unwrap()).unwrap();
    let mut good = docs
        .into_iter()
        .find(|d| d.value["metadata"]["name"] == "cluster-a")
        .unwrap()
        .value;
    good["metadata"]["resourceVersion"] = json!("3");
    good
}

fn mcpserver(name: &str, spec: Value, status: Value) -> Value {
    json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": "apps", "resourceVersion": "4"}, "spec": spec, "status": status})
}

#[tokio::test]
async fn objects_a_newer_muster_wrote_or_that_cannot_be_read_cost_only_themselves() {
    use muster_exchange_webhook::server::AppState;
    use muster_exchange_webhook::server::router;

    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let state = std::sync::Arc::new(AppState::new(
        common::state().settings.clone(),
        std::sync::Arc::new(muster_exchange_webhook::mcpservers::StaticMcpServers::default()),
    ));
    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let unreadable = state.metrics.mcpservers_unreadable.clone();
    let cache = watch_mcpservers(
        client,
        move || {
            let _ = synced_tx.send(());
        },
        stop.clone(),
        unreadable.clone(),
    );
    let remote = json!({"type": "streamable-http", "url": "https://mcp.example/mcp"});
    let items = vec![
        mcpserver(
            "awaiting",
            remote.clone(),
            json!({"state": "Awaiting Session", "newField": 1}),
        ),
        mcpserver(
            "future-type",
            json!({"type": "websocket", "url": "wss://mcp.example/mcp"}),
            json!({}),
        ),
        mcpserver(
            "unreadable",
            json!({"type": ["stdio"], "timeout": "soon"}),
            json!({}),
        ),
        good_cluster_a(),
    ];
    let list = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServerList",
        "metadata": {"resourceVersion": "7"}, "items": items});
    let (_request, send) = handle.next_request().await.expect("a list request");
    send.send_response(Response::new(Body::from(serde_json::to_vec(&list).unwrap())));
    synced_rx.await.unwrap();

    assert!(McpServerLookup::get(&cache, "apps", "cluster-a").is_some());
    let awaiting = McpServerLookup::get(&cache, "apps", "awaiting").unwrap();
    assert_eq!(
        awaiting.status.as_ref().and_then(|s| s.state.clone()),
        Some(muster_exchange_api::ServerState::AwaitingSession)
    );
    let future = McpServerLookup::get(&cache, "apps", "future-type").unwrap();
    assert_eq!(future.spec.server_type.as_str(), "websocket");
    assert!(McpServerLookup::get(&cache, "apps", "unreadable").is_none());
    assert_eq!(unreadable.get(), 1);
    let named = cache.unreadable();
    assert_eq!(named.len(), 1);
    assert!(named[0].starts_with("apps/unreadable: "), "{named:?}");

    // The webhook serving from this cache: ready, and the good MCPServer still injects.
    let state = std::sync::Arc::new(AppState {
        metrics: Default::default(),
        ..AppState::new(state.settings.clone(), std::sync::Arc::new(cache.clone()))
    });
    state.readiness.mark_catalog_synced();
    state.readiness.mark_certificate_loaded();
    let app = router(state.clone());
    let (status, body) = common::send(&app, "GET", "/readyz", Vec::new()).await;
    assert_eq!(status, http::StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let review = common::fixture_json("pod-create-generate-name.json");
    let response = common::review(&app, "/mutate-pods", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    let patch = common::patch_of(&response).expect("the good MCPServer is injected");
    assert!(patch.to_string().contains("token-exchange"), "{patch}");

    // A later fix of the unreadable object brings it in and clears the count.
    let (_request, send) = handle.next_request().await.expect("a watch request");
    let fixed = mcpserver("unreadable", remote, json!({}));
    let event = json!({"type": "MODIFIED", "object": fixed});
    send.send_response(Response::new(Body::from(serde_json::to_vec(&event).unwrap())));
    for _ in 0..200 {
        if McpServerLookup::get(&cache, "apps", "unreadable").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(McpServerLookup::get(&cache, "apps", "unreadable").is_some());
    assert_eq!(unreadable.get(), 0);
    stop.cancel();
}
