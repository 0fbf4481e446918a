//! The in-cluster MCPServer cache against a mock API server: one list across all namespaces fills the cache and
//! marks it synced; lookups then come from memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use muster_exchange_webhook::mcpserver_store::McpServerLookup;
use muster_exchange_webhook::mcpserver_watch::watch_mcpservers;
use serde_json::json;
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
