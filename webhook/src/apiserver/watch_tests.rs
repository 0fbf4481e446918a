//! The MCPServer watch through the webhook's client stays open while it is quiet: a loopback API server
//! that ends each watch only at the request's `timeoutSeconds` (as an API server does) sees no watch
//! closed by the client, over five minutes of paused time, although the configuration handed to
//! `client_from` asks for a 30 s read timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use kube::Config;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client_from;
use crate::mcpservers::watch_mcpservers;

/// How one watch request ended, and when (since the server started).
#[derive(Debug, Clone, PartialEq)]
enum Ended {
    /// The server ended it at the request's `timeoutSeconds`.
    ByServer(Duration),
    /// The client closed it first.
    ByClient(Duration),
}

#[derive(Clone)]
struct Recording {
    started: Instant,
    watches: Arc<Mutex<Vec<Option<Ended>>>>,
}

/// Records its watch as ended by the client unless the server ended it first.
struct OnEnd {
    recording: Recording,
    index: usize,
    by_server: bool,
}

impl Drop for OnEnd {
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

async fn mcpservers(State(recording): State<Recording>, RawQuery(query): RawQuery) -> Body {
    let query = query.unwrap_or_default();
    if !query.contains("watch=true") {
        return Body::from(
            r#"{"apiVersion":"muster.giantswarm.io/v1alpha1","kind":"MCPServerList","metadata":{"resourceVersion":"1"},"items":[]}"#,
        );
    }
    let timeout: u64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("timeoutSeconds="))
        .and_then(|t| t.parse().ok())
        .unwrap_or(290);
    let index = {
        let mut watches = recording.watches.lock().unwrap();
        watches.push(None);
        watches.len() - 1
    };
    let on_end = OnEnd {
        recording,
        index,
        by_server: false,
    };
    // No event at all until the server's timeout ends the watch.
    let stream = futures::stream::unfold(Some(on_end), move |on_end| async move {
        let mut on_end = on_end?;
        tokio::time::sleep(Duration::from_secs(timeout)).await;
        on_end.by_server = true;
        drop(on_end);
        None::<(Result<axum::body::Bytes, std::io::Error>, Option<OnEnd>)>
    });
    Body::from_stream(stream)
}

#[tokio::test(start_paused = true)]
async fn a_quiet_mcpserver_watch_is_never_cut_by_the_client() {
    let recording = Recording {
        started: Instant::now(),
        watches: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/apis/muster.giantswarm.io/v1alpha1/mcpservers", get(mcpservers))
        .with_state(recording.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = Config::new(url.parse().unwrap());
    // What a client with a read timeout would do to the watch: cut it after 30 quiet seconds.
    config.read_timeout = Some(Duration::from_secs(30));
    let client = client_from(config).unwrap();
    let stop = CancellationToken::new();
    let synced = CancellationToken::new();
    let on_synced = synced.clone();
    let cache = watch_mcpservers(client, move || on_synced.cancel(), stop.clone(), Gauge::default());
    // Small steps until the watch is open (each step lets loopback I/O through).
    while recording.watches.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(synced.is_cancelled(), "the first list completed");
    tokio::time::sleep(Duration::from_secs(300)).await;
    let watches = recording.watches.lock().unwrap().clone();
    assert!(
        matches!(watches[0], Some(Ended::ByServer(at)) if at >= Duration::from_secs(290)),
        "{watches:?}"
    );
    assert!(
        !watches.iter().any(|w| matches!(w, Some(Ended::ByClient(_)))),
        "{watches:?}"
    );
    assert!(cache.is_empty());
    stop.cancel();
}
