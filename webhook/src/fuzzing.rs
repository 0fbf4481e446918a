//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which
//! cargo-fuzz sets): thin wrappers, so the targets depend on these names and not on the module layout.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use muster_exchange_api::documents::parse_documents;

use crate::inject::InjectorSettings;
use crate::mcpservers::StaticMcpServers;
pub use crate::server::AppState;

/// A fixed MCPServer catalog and injector settings, from which each fuzz input gets a fresh state.
pub struct PodReviews {
    settings: InjectorSettings,
    catalog: Arc<StaticMcpServers>,
}

/// What `POST /mutate-pods` answered.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: Vec<u8>,
}

impl PodReviews {
    /// The MCPServers of `mcpservers_yaml`, injected with `sidecar_image`.
    pub fn new(mcpservers_yaml: &str, sidecar_image: &str) -> Result<Self, String> {
        let documents = parse_documents(mcpservers_yaml, "fuzz-catalog").map_err(|e| e.to_string())?;
        let catalog = StaticMcpServers::from_documents(documents).map_err(|e| e.to_string())?;
        Ok(Self {
            settings: InjectorSettings {
                sidecar_image: sidecar_image.to_string(),
                default_mcpserver_namespace: None,
                central_issuer: None,
            },
            catalog: Arc::new(catalog),
        })
    }

    /// A webhook state with fresh metrics and render cache: what one input does cannot depend on
    /// earlier inputs, so every crash reproduces from its input alone.
    pub fn state(&self) -> Arc<AppState> {
        Arc::new(AppState::new(self.settings.clone(), self.catalog.clone()))
    }
}

/// `body` through the handler the router runs for `POST /mutate-pods`.
pub fn mutate_pods(state: &Arc<AppState>, body: &[u8]) -> Result<Answer, String> {
    let response = futures::executor::block_on(crate::routes::pods::mutate_pods(
        State(state.clone()),
        Bytes::copy_from_slice(body),
    ));
    let status = response.status().as_u16();
    let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}
