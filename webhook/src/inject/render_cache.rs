//! Memoised rendering for the webhook's hot path.
//!
//! Rendering (validation, sidecar configuration JSON, container and volumes) depends only on the pod's
//! injection annotations, the namespaces and the MCPServer objects. MCPServers come from the cache as
//! `Arc`s that are replaced whenever an object changes, so the `Arc` addresses identify the versions;
//! each entry holds its `Arc`s, so an address cannot be reused while the entry exists. The cache is
//! cleared when full: a cluster has few distinct combinations, and a miss only costs a render.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use muster_exchange_api::MCPServer;

use super::refusal::Refusal;
use super::render::Injection;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    pod_namespace: String,
    lookup_namespace: String,
    options: String,
    mcpservers: Vec<usize>,
}

struct Entry {
    _pinned: Vec<Arc<MCPServer>>,
    rendered: Result<Arc<Injection>, Refusal>,
}

/// Renders remembered per inputs. Belongs to one set of [`super::InjectorSettings`].
#[derive(Default)]
pub struct RenderCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl RenderCache {
    /// The remembered render for these inputs, or `render()` remembered.
    pub(super) fn get_or_render(
        &self,
        pod_namespace: &str,
        lookup_namespace: &str,
        options: &super::InjectOptions,
        mcpservers: &[Arc<MCPServer>],
        render: impl FnOnce() -> Result<Injection, Refusal>,
    ) -> Result<Arc<Injection>, Refusal> {
        let key = Key {
            pod_namespace: pod_namespace.to_string(),
            lookup_namespace: lookup_namespace.to_string(),
            options: format!("{options:?}"),
            mcpservers: mcpservers.iter().map(|m| Arc::as_ptr(m) as usize).collect(),
        };
        if let Some(entry) = self.lock().get(&key) {
            return entry.rendered.clone();
        }
        let rendered = render().map(Arc::new);
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                _pinned: mcpservers.to_vec(),
                rendered: rendered.clone(),
            },
        );
        rendered
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated (insert/clear are atomic to
        // us), so a poisoned lock is safe to keep using.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
