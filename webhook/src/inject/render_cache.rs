//! Memoised rendering for the webhook's hot path.
//!
//! Rendering (validation, sidecar configuration JSON, container and volumes) depends only on the pod's
//! injection options, the namespaces and the MCPServer objects. MCPServers come from the cache as
//! `Arc`s that are replaced whenever an object changes, so the `Arc` addresses identify the versions;
//! each entry holds its `Arc`s, so an address cannot be reused while the entry exists. The cache is
//! cleared when full: a cluster has few distinct combinations, and a miss only costs a render.
//!
//! A lookup allocates nothing: entries are found by a hash of the borrowed inputs and then compared
//! field by field.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use muster_exchange_api::MCPServer;

use super::options::InjectOptions;
use super::refusal::Refusal;
use super::render::Injection;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 512;

struct Entry {
    pod_namespace: String,
    lookup_namespace: String,
    options: InjectOptions,
    pinned: Vec<Arc<MCPServer>>,
    rendered: Result<Arc<Injection>, Refusal>,
}

impl Entry {
    fn matches(&self, inputs: &Inputs<'_>) -> bool {
        self.pod_namespace == inputs.pod_namespace
            && self.lookup_namespace == inputs.lookup_namespace
            && self.options == *inputs.options
            && self.pinned.len() == inputs.mcpservers.len()
            && self
                .pinned
                .iter()
                .zip(inputs.mcpservers)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

struct Inputs<'a> {
    pod_namespace: &'a str,
    lookup_namespace: &'a str,
    options: &'a InjectOptions,
    mcpservers: &'a [Arc<MCPServer>],
}

impl Inputs<'_> {
    fn hash(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.pod_namespace.hash(&mut hasher);
        self.lookup_namespace.hash(&mut hasher);
        self.options.hash(&mut hasher);
        for mcpserver in self.mcpservers {
            Arc::as_ptr(mcpserver).hash(&mut hasher);
        }
        hasher.finish()
    }
}

/// Renders remembered per inputs. Belongs to one set of [`super::InjectorSettings`].
#[derive(Default)]
pub struct RenderCache {
    entries: Mutex<HashMap<u64, Vec<Entry>>>,
}

impl RenderCache {
    /// The remembered render for these inputs, or `render()` remembered.
    pub(super) fn get_or_render(
        &self,
        pod_namespace: &str,
        lookup_namespace: &str,
        options: &InjectOptions,
        mcpservers: &[Arc<MCPServer>],
        render: impl FnOnce() -> Result<Injection, Refusal>,
    ) -> Result<Arc<Injection>, Refusal> {
        let inputs = Inputs {
            pod_namespace,
            lookup_namespace,
            options,
            mcpservers,
        };
        let hash = inputs.hash();
        if let Some(entry) = self
            .lock()
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|e| e.matches(&inputs)))
        {
            return entry.rendered.clone();
        }
        let rendered = render().map(Arc::new);
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        let bucket = entries.entry(hash).or_default();
        if !bucket.iter().any(|e| e.matches(&inputs)) {
            bucket.push(Entry {
                pod_namespace: pod_namespace.to_string(),
                lookup_namespace: lookup_namespace.to_string(),
                options: options.clone(),
                pinned: mcpservers.to_vec(),
                rendered: rendered.clone(),
            });
        }
        rendered
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Entry>>> {
        // A panic while holding the lock cannot leave the map half-updated (insert/clear are atomic to
        // us), so a poisoned lock is safe to keep using.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
