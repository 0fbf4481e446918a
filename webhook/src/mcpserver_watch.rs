//! The in-cluster MCPServer cache: a kube-runtime reflector fed by a watch, so admission reads memory
//! and never calls the API server on the hot path.

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use muster_exchange_api::MCPServer;
use tokio_util::sync::CancellationToken;

/// Starts watching MCPServers in all namespaces (a pod's annotation may name any namespace) and returns
/// the cache. `on_synced` runs once the first full list is in, which is when `/readyz` may turn ready.
pub fn watch_mcpservers(
    client: Client,
    on_synced: impl FnOnce() + Send + 'static,
    stop: CancellationToken,
) -> Store<MCPServer> {
    let api: Api<MCPServer> = Api::all(client);
    let (reader, writer) = reflector::store();
    // managedFields are dropped before caching: they are large and the webhook never reads them.
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|mcpserver| mcpserver.metadata.managed_fields = None);
    let stream = reflector::reflector(writer, events);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                event = stream.next() => match event {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => tracing::warn!(%error, "MCPServer watch failed; retrying with backoff"),
                    None => return,
                },
            }
        }
    });
    let ready = reader.clone();
    tokio::spawn(async move {
        if ready.wait_until_ready().await.is_ok() {
            tracing::info!(count = ready.len(), "MCPServer cache synced");
            on_synced();
        }
    });
    reader
}
