//! The HTTP server: operations endpoints (`/healthz`, `/readyz`, `/metrics`) and the proxy for every
//! other path, with graceful shutdown bounded by a grace period (SSE streams never end on their own).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use http::{StatusCode, header};
use muster_exchange_api::sidecar_config::SidecarConfig;
use tokio::net::TcpListener;

use crate::proxy::proxy;
use crate::state::{AppState, SidecarOptions, StateError};

/// Paths the sidecar answers itself; the app's own paths of these names are not reachable through it.
pub const OPERATIONS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The router.
pub fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(proxy)
        .with_state(app)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when every cluster's credentials (and, in auth-headers mode, kubeconfig) load.
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let problems = app.readiness_problems();
    if problems.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let body = serde_json::json!({"ready": false, "problems": problems});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    match app.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state could not be built.
    #[error(transparent)]
    State(#[from] StateError),
    /// The listen address is unusable.
    #[error("cannot listen on {listen}: {cause}; choose a free address with listen or --listen")]
    Listen {
        /// The address.
        listen: String,
        /// Why.
        cause: String,
    },
}

/// A bound, not yet serving sidecar.
pub struct Sidecar {
    listener: TcpListener,
    app: Arc<AppState>,
}

impl Sidecar {
    /// Builds the state and binds `config.listen`.
    pub async fn bind(config: &SidecarConfig, options: &SidecarOptions) -> Result<Self, StartError> {
        let app = Arc::new(AppState::new(config, options)?);
        let listen_error = |cause: String| StartError::Listen {
            listen: config.listen.clone(),
            cause,
        };
        let addr = crate::config::listen_addr(&config.listen).map_err(listen_error)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| listen_error(e.to_string()))?;
        Ok(Self { listener, app })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (metrics, cache), for tests and embedding.
    pub fn state(&self) -> Arc<AppState> {
        self.app.clone()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish for at most `grace`.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // No Nagle delay: SSE events and small MCP responses must leave as soon as they are written.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
            }
        });
        let server = axum::serve(listener, router(self.app)).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let mut stop = stop_rx;
        let grace_expired = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server.into_future() => result,
            () = grace_expired => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "shutdown grace period over; closing open streams");
                Ok(())
            }
        }
    }
}
