//! The Kubernetes API clients of the controller and of `diagnose`, from the inferred configuration
//! (in-cluster or kubeconfig). Two clients on the same configuration, because one timeout cannot suit
//! both kinds of call:
//! - `watch`: no read timeout. A watch is quiet for as long as nothing changes; a read timeout would cut
//!   it and force a re-list (kube-runtime's watcher has its own idle timeout above the server's).
//! - `call`: request/response calls (get, apply, delete, Lease rounds) with a read timeout counted from
//!   the request, so a hung call fails instead of freezing a reconcile.

use std::time::Duration;

use kube::runtime::watcher;
use kube::{Client, Config};

/// Longest wait for an answer to one request/response call.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The `timeoutSeconds` every watch asks for: the API server ends a quiet watch after 10 minutes and
/// the watcher resumes from the version it last saw (no re-list). kube's watcher takes 5 s more than
/// this without a byte as a dead connection, so a silently dropped connection is noticed within it.
pub(crate) const WATCH_TIMEOUT_SECS: u32 = 600;

/// The watcher configuration every watch of the controller starts from.
pub(crate) fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neither in-cluster nor kubeconfig configuration found.
    #[error("no Kubernetes configuration: {0}; run in-cluster or set a kubeconfig context")]
    Config(#[from] kube::config::InferConfigError),
    /// The configuration did not give a client (e.g. bad TLS material).
    #[error("cannot build a Kubernetes client: {0}; check the kubeconfig")]
    Client(#[from] kube::Error),
}

/// The client for watches and the client for request/response calls.
#[derive(Clone)]
pub(crate) struct Clients {
    /// Long-lived watch streams: no read timeout.
    pub(crate) watch: Client,
    /// Request/response calls: [`READ_TIMEOUT`].
    pub(crate) call: Client,
}

/// Both clients from the inferred configuration.
pub(crate) async fn clients() -> Result<Clients, ClientError> {
    clients_from(Config::infer().await?)
}

/// Both clients from `config`.
pub(crate) fn clients_from(config: Config) -> Result<Clients, ClientError> {
    let mut watch = config.clone();
    watch.read_timeout = None;
    let mut call = config;
    call.read_timeout = Some(READ_TIMEOUT);
    // Count the timeout from each request, not from when its pooled connection went idle.
    call.reset_reader_on_write = true;
    Ok(Clients {
        watch: Client::try_from(watch)?,
        call: Client::try_from(call)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::{RawQuery, State};
    use axum::routing::get;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;
    use kube::runtime::{WatchStreamExt, watcher};
    use tokio::time::Instant;

    use super::*;

    /// How each watch request to the recording server ended, and when (since the server started).
    #[derive(Debug, Clone, PartialEq)]
    enum Ended {
        /// The server ended it at the request's `timeoutSeconds`, as an API server does.
        ByServer(Duration),
        /// The client went away first.
        ByClient(Duration),
    }

    #[derive(Clone)]
    struct Recording {
        started: Instant,
        watches: Arc<Mutex<Vec<Option<Ended>>>>,
    }

    /// Marks its watch as ended by the client unless the server ended it first.
    struct EndGuard {
        recording: Recording,
        index: usize,
        by_server: bool,
    }

    impl Drop for EndGuard {
        fn drop(&mut self) {
            let at = self.recording.started.elapsed();
            let ended = if self.by_server {
                Ended::ByServer(at)
            } else {
                Ended::ByClient(at)
            };
            self.recording.watches.lock().unwrap()[self.index] = Some(ended);
        }
    }

    async fn configmaps(State(recording): State<Recording>, RawQuery(query): RawQuery) -> Body {
        let query = query.unwrap_or_default();
        if !query.contains("watch=true") {
            return Body::from(
                r#"{"apiVersion":"v1","kind":"ConfigMapList","metadata":{"resourceVersion":"1"},"items":[]}"#,
            );
        }
        let timeout = query
            .split('&')
            .find_map(|p| p.strip_prefix("timeoutSeconds="))
            .and_then(|t| t.parse().ok())
            .unwrap_or(290);
        let index = {
            let mut watches = recording.watches.lock().unwrap();
            watches.push(None);
            watches.len() - 1
        };
        let guard = EndGuard {
            recording,
            index,
            by_server: false,
        };
        // A quiet watch: no event until the server's timeout ends it.
        let stream = futures::stream::unfold(Some(guard), move |guard| async move {
            let mut guard = guard?;
            tokio::time::sleep(Duration::from_secs(timeout)).await;
            guard.by_server = true;
            drop(guard);
            None::<(Result<axum::body::Bytes, std::io::Error>, Option<EndGuard>)>
        });
        Body::from_stream(stream)
    }

    /// A quiet watch through the watch client stays open until the API server ends it (after its
    /// `timeoutSeconds`, 290 s), never cut by the client: five minutes on paused time against a
    /// recording loopback server. (With the call client's read timeout it ends after 30 s.)
    #[tokio::test(start_paused = true)]
    async fn a_quiet_watch_stays_open_until_the_server_ends_it() {
        let recording = Recording {
            started: Instant::now(),
            watches: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/api/v1/namespaces/default/configmaps", get(configmaps))
            .with_state(recording.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let clients = clients_from(Config::new(url.parse().unwrap())).unwrap();
        let api: Api<ConfigMap> = Api::namespaced(clients.watch, "default");
        let watch = watcher(api, watcher::Config::default()).default_backoff();
        tokio::spawn(watch.for_each(|_| async {}));
        // Small steps until the watch is open (each step lets loopback I/O through).
        while recording.watches.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_secs(300)).await;
        let watches = recording.watches.lock().unwrap().clone();
        let first = watches[0].clone();
        assert!(
            matches!(first, Some(Ended::ByServer(at)) if at >= Duration::from_secs(290)),
            "{watches:?}"
        );
        assert!(
            !watches.iter().any(|w| matches!(w, Some(Ended::ByClient(_)))),
            "{watches:?}"
        );
    }
}
