//! The shutdown signal: Kubernetes stops a pod with SIGTERM, a developer stops a local run with Ctrl-C.

/// Completes on the first SIGTERM or Ctrl-C, logging which one arrived.
///
/// When one of the two handlers cannot be installed, a warning says so and the other one still
/// works; the future then never completes only if neither can be installed.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C; stop the process with SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received: shutting down"),
        () = terminate() => tracing::info!("SIGTERM received: shutting down"),
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => {
            sigterm.recv().await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; stop the process with Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use tokio::signal::unix::{SignalKind, signal};

    #[tokio::test]
    async fn completes_on_sigterm() {
        // A listener of the test's own keeps SIGTERM from ending the test process whatever happens.
        let mut guard = signal(SignalKind::terminate()).unwrap();
        let waiting = tokio::spawn(shutdown_signal());
        // On this single-threaded runtime the spawned task runs, and installs its listeners, before the
        // test continues.
        tokio::task::yield_now().await;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        guard.recv().await;
        waiting.await.unwrap();
    }
}
