//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Metrics;
use crate::inject::{InjectorSettings, RenderCache};
use crate::mcpservers::McpServerLookup;

/// Shared state of the webhook server.
pub struct AppState {
    /// Injection settings from the command line.
    pub settings: InjectorSettings,
    /// Where MCPServers are looked up.
    pub catalog: Arc<dyn McpServerLookup>,
    /// The exported metrics.
    pub metrics: Metrics,
    /// What `/readyz` reports.
    pub readiness: Readiness,
    /// Renders reused across reviews (tied to `settings`).
    pub render_cache: RenderCache,
    /// Asks the API server whether an MCPServer's author may read its credentials Secret; `None`: no
    /// client, so every MCPServer naming a credentials Secret is denied with a message saying so.
    pub access_reviewer: Option<kube::Client>,
}

impl AppState {
    /// State with fresh metrics and readiness not yet reached.
    pub fn new(settings: InjectorSettings, catalog: Arc<dyn McpServerLookup>) -> Self {
        Self {
            settings,
            catalog,
            metrics: Metrics::default(),
            readiness: Readiness::default(),
            render_cache: RenderCache::default(),
            access_reviewer: None,
        }
    }

    /// The same state, checking credentials Secret access with `client`.
    #[must_use]
    pub(crate) fn with_access_reviewer(mut self, client: kube::Client) -> Self {
        self.access_reviewer = Some(client);
        self
    }
}

/// Ready means: the MCPServer cache holds a full list, and a serving certificate is loaded.
#[derive(Debug, Default)]
pub struct Readiness {
    catalog_synced: AtomicBool,
    certificate_loaded: AtomicBool,
    shutting_down: AtomicBool,
}

impl Readiness {
    /// The MCPServer cache finished its first list.
    pub fn mark_catalog_synced(&self) {
        self.catalog_synced.store(true, Ordering::Release);
    }

    /// A serving certificate is in place that the API server trusts (for `--self-signed`: its CA is
    /// published).
    pub fn mark_certificate_loaded(&self) {
        self.certificate_loaded.store(true, Ordering::Release);
    }

    /// SIGTERM arrived: report not ready so endpoints drop the pod while it still serves.
    pub fn mark_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// What is still missing, or `None` when ready.
    pub fn missing(&self) -> Option<&'static str> {
        if self.shutting_down.load(Ordering::Acquire) {
            Some("shutting down")
        } else if !self.catalog_synced.load(Ordering::Acquire) {
            Some("the MCPServer cache has not finished its first list yet")
        } else if !self.certificate_loaded.load(Ordering::Acquire) {
            Some("no serving certificate is loaded yet, or its CA is not published yet")
        } else {
            None
        }
    }
}
