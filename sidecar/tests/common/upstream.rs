//! A recording stand-in for mcp-kubernetes: remembers every request, answers 401 to tokens whose `sub`
//! is in `reject_subjects`, and streams SSE events on `/sse` exactly when the test sends them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use muster_exchange_dex::jwt::peek_claims;
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn bearer_sub(&self) -> Option<String> {
        let token = self.header("authorization")?.strip_prefix("Bearer ")?;
        peek_claims(token)?.sub
    }
}

#[derive(Default)]
pub struct UpstreamState {
    pub seen: Mutex<Vec<Seen>>,
    pub reject_subjects: Mutex<BTreeSet<String>>,
    /// Notified when `/upload-streaming` has received its first body chunk.
    pub first_chunk_received: tokio::sync::Notify,
    sse: Mutex<Option<mpsc::Receiver<String>>>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub state: Arc<UpstreamState>,
}

impl Upstream {
    pub async fn start() -> Self {
        let state = Arc::new(UpstreamState::default());
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// From now on, answers 401 to tokens whose `sub` is one of `subjects`.
    pub fn reject_subjects(&self, subjects: impl IntoIterator<Item = impl Into<String>>) {
        let mut rejected = self.state.reject_subjects.lock().unwrap();
        rejected.extend(subjects.into_iter().map(Into::into));
    }

    /// The sender for `/sse` events (each string is sent as one chunk).
    pub fn sse_channel(&self) -> mpsc::Sender<String> {
        let (tx, rx) = mpsc::channel(8);
        *self.state.sse.lock().unwrap() = Some(rx);
        tx
    }
}

async fn handle(State(state): State<Arc<UpstreamState>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    if path_and_query == "/sse" {
        let rx = state.sse.lock().unwrap().take();
        state.seen.lock().unwrap().push(Seen {
            method: parts.method,
            path_and_query,
            headers: parts.headers,
            body: Bytes::new(),
        });
        let Some(rx) = rx else {
            return StatusCode::GONE.into_response();
        };
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|event| (Ok::<_, std::io::Error>(Bytes::from(event)), rx))
        });
        return (
            [
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
            ],
            Body::from_stream(stream),
        )
            .into_response();
    }
    let body = if path_and_query == "/upload-streaming" {
        read_reporting_the_first_chunk(body, &state).await
    } else {
        axum::body::to_bytes(body, usize::MAX).await.unwrap()
    };
    let seen = Seen {
        method: parts.method,
        path_and_query,
        headers: parts.headers,
        body,
    };
    let rejected = seen
        .bearer_sub()
        .is_some_and(|sub| state.reject_subjects.lock().unwrap().contains(&sub));
    state.seen.lock().unwrap().push(seen);
    if rejected {
        return (StatusCode::UNAUTHORIZED, "token rejected").into_response();
    }
    (
        [
            ("mcp-session-id", "upstream-session"),
            ("keep-alive", "timeout=5"),
            ("x-app", "mcp"),
        ],
        "app says hi",
    )
        .into_response()
}

/// Reads the body chunk by chunk and says when the first one arrived, so a test can hold its own stream
/// until then: a proxy that buffers the whole body before sending never gets past that point.
async fn read_reporting_the_first_chunk(body: Body, state: &UpstreamState) -> Bytes {
    use futures::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if all.is_empty() && !chunk.is_empty() {
            state.first_chunk_received.notify_one();
        }
        all.extend_from_slice(&chunk);
    }
    Bytes::from(all)
}
