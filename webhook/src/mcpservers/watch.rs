//! The in-cluster MCPServer cache, fed by a watch, so admission reads memory and never calls the API
//! server on the hot path.
//!
//! Muster owns the MCPServer CRD and may write values this build does not know; the api types read those
//! (unknown enum values are kept, `status` is read field by field). An object that still cannot be read
//! at all (its spec has a shape no version knows) costs only itself: each object is decoded on its own
//! (kube-runtime's `DeserializeGuard`), the unreadable one is logged by name, counted in
//! `muster_exchange_webhook_mcpservers_unreadable`, and left out of the cache; the list still completes,
//! so `/readyz` turns ready and every other MCPServer is injected.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use muster_exchange_api::MCPServer;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use crate::mcpservers::McpServerLookup;

type Key = (String, String);

#[derive(Default)]
struct Objects {
    servers: HashMap<Key, Arc<MCPServer>>,
    /// Objects that cannot be read, with why.
    unreadable: HashMap<Key, String>,
}

#[derive(Default)]
struct CacheState {
    live: Objects,
    /// A relist in progress: replaces `live` atomically when complete.
    relist: Option<Objects>,
}

/// The watch-backed MCPServer cache.
#[derive(Clone, Default)]
pub struct McpServerCache {
    state: Arc<RwLock<CacheState>>,
    unreadable: Gauge,
}

impl McpServerLookup for McpServerCache {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<MCPServer>> {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .live
            .servers
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

impl McpServerCache {
    /// An empty cache that reports unreadable objects in `unreadable`.
    pub fn new(unreadable: Gauge) -> Self {
        McpServerCache {
            state: Arc::default(),
            unreadable,
        }
    }

    /// Readable MCPServers cached.
    pub fn len(&self) -> usize {
        self.read().live.servers.len()
    }

    /// True when no readable MCPServer is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `namespace/name: why` of every object that cannot be read, sorted.
    pub fn unreadable(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .read()
            .live
            .unreadable
            .iter()
            .map(|((ns, name), why)| format!("{ns}/{name}: {why}"))
            .collect();
        out.sort();
        out
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies one watch event; true when a full list just completed.
    pub fn apply(&self, event: watcher::Event<DeserializeGuard<MCPServer>>) -> bool {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let completed = match event {
            watcher::Event::Init => {
                state.relist = Some(Objects::default());
                false
            }
            watcher::Event::InitApply(object) => {
                let known = state.live.unreadable.clone();
                let target = state.relist.get_or_insert_with(Objects::default);
                insert(target, object, &known);
                false
            }
            watcher::Event::InitDone => {
                if let Some(objects) = state.relist.take() {
                    state.live = objects;
                }
                true
            }
            watcher::Event::Apply(object) => {
                let known = state.live.unreadable.clone();
                insert(&mut state.live, object, &known);
                false
            }
            watcher::Event::Delete(object) => {
                let key = key_of(&object);
                state.live.servers.remove(&key);
                state.live.unreadable.remove(&key);
                false
            }
        };
        self.unreadable
            .set(i64::try_from(state.live.unreadable.len()).unwrap_or(i64::MAX));
        completed
    }
}

fn key_of(object: &DeserializeGuard<MCPServer>) -> Key {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// Caches a readable object; an unreadable one is dropped from the cache and logged (once per reason).
fn insert(objects: &mut Objects, object: DeserializeGuard<MCPServer>, known: &HashMap<Key, String>) {
    let key = key_of(&object);
    match object.0 {
        Ok(mut server) => {
            // managedFields are large and the webhook never reads them.
            server.metadata.managed_fields = None;
            objects.unreadable.remove(&key);
            objects.servers.insert(key, Arc::new(server));
        }
        Err(invalid) => {
            if known.get(&key) != Some(&invalid.error) {
                tracing::warn!(mcpserver = %format!("{}/{}", key.0, key.1), error = %invalid.error,
                    "cannot read this MCPServer; it is left out of the cache (pods naming it are refused \
                     as naming an unknown MCPServer) until it is fixed");
            }
            objects.servers.remove(&key);
            objects.unreadable.insert(key, invalid.error);
        }
    }
}

/// Starts watching MCPServers in all namespaces (a pod's annotation may name any namespace) and returns
/// the cache. `on_synced` runs once the first full list is in, which is when `/readyz` may turn ready.
pub fn watch_mcpservers(
    client: Client,
    on_synced: impl FnOnce() + Send + 'static,
    stop: CancellationToken,
    unreadable: Gauge,
) -> McpServerCache {
    let api: Api<DeserializeGuard<MCPServer>> = Api::all(client);
    let cache = McpServerCache::new(unreadable);
    let events = watcher(api, watcher::Config::default()).default_backoff();
    let writer = cache.clone();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut on_synced = Some(on_synced);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        if writer.apply(event) && let Some(synced) = on_synced.take() {
                            tracing::info!(count = writer.len(), unreadable = writer.unreadable().len(),
                                "MCPServer cache synced");
                            synced();
                        }
                    }
                    Some(Err(error)) => tracing::warn!(%error, "MCPServer watch failed; retrying with backoff"),
                    None => return,
                },
            }
        }
    });
    cache
}
