//! Shutting down on SIGTERM or Ctrl-C without failing reviews the API server still sends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use tokio_util::sync::CancellationToken;

use super::AppState;

/// What happens on SIGTERM: `/readyz` fails at once, the server keeps serving for `delay` (the API
/// server keeps sending reviews until the endpoints drop the pod, and a closed listener would fail them
/// under `failurePolicy: Fail`), then background tasks stop and in-flight reviews drain for up to `grace`.
pub struct Shutdown {
    /// The server's handle.
    pub handle: Handle<SocketAddr>,
    /// Stops the background tasks (watch, certificate loops).
    pub stop: CancellationToken,
    /// Whose readiness turns false.
    pub state: Arc<AppState>,
    /// Serving time after the signal.
    pub delay: Duration,
    /// Longest drain.
    pub grace: Duration,
}

impl Shutdown {
    /// Waits for `signal`, then shuts down as described on [`Shutdown`].
    pub async fn after(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.state.readiness.mark_shutting_down();
        tracing::info!(
            delay_seconds = self.delay.as_secs_f64(),
            "shutting down; reporting not ready and serving on until the endpoints drop this pod"
        );
        tokio::time::sleep(self.delay).await;
        tracing::info!(grace_seconds = self.grace.as_secs(), "draining in-flight reviews");
        self.stop.cancel();
        self.handle.graceful_shutdown(Some(self.grace));
    }
}
