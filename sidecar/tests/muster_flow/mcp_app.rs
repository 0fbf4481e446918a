//! An MCP streamable-HTTP app standing in for mcp-kubernetes / kubernetes-mcp-server behind the sidecar:
//! `POST /mcp` with JSON-RPC (`initialize` answers JSON and opens a session, `notifications/initialized`
//! 202, `tools/call` one SSE `message` event), 401 without `Authorization`, 404 for an unknown session.
//! It records the credentials of every request it is given, which is what the flow test asserts on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the app saw of one request.
#[derive(Clone, Debug)]
pub struct Call {
    /// The JSON-RPC method.
    pub method: String,
    /// `Authorization`.
    pub authorization: Option<String>,
    /// Every `kubernetes-*` header, by name.
    pub kubernetes: BTreeMap<String, String>,
}

impl Call {
    /// The bearer token of `Authorization`.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization.as_deref()?.strip_prefix("Bearer ")
    }
}

#[derive(Default)]
struct AppState {
    calls: Mutex<Vec<Call>>,
    sessions: AtomicUsize,
}

/// The running app.
pub struct McpApp {
    pub addr: SocketAddr,
    state: Arc<AppState>,
}

impl McpApp {
    pub async fn start() -> Self {
        let state = Arc::new(AppState::default());
        let app = axum::Router::new()
            .route("/mcp", axum::routing::post(mcp))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// Every request the app was given, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }
}

async fn mcp(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON-RPC").into_response();
    };
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let method = request["method"].as_str().unwrap_or_default().to_string();
    let call = Call {
        method: method.clone(),
        authorization: text("authorization"),
        kubernetes: headers
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("kubernetes-"))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
    };
    state.calls.lock().unwrap().push(call.clone());
    if call.authorization.is_none() {
        return (StatusCode::UNAUTHORIZED, "authentication required").into_response();
    }
    let id = request["id"].clone();
    match method.as_str() {
        "initialize" => {
            let session = format!("session-{}", state.sessions.fetch_add(1, Ordering::SeqCst) + 1);
            let result = json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "mcp-app-double", "version": "0"},
            });
            (
                [("mcp-session-id", session.as_str())],
                axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})),
            )
                .into_response()
        }
        "notifications/initialized" => StatusCode::ACCEPTED.into_response(),
        "tools/call" => {
            let known = text("mcp-session-id").is_some_and(|s| {
                s.strip_prefix("session-")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|n| n >= 1 && n <= state.sessions.load(Ordering::SeqCst))
            });
            if !known {
                return (StatusCode::NOT_FOUND, "unknown session").into_response();
            }
            let server = call
                .kubernetes
                .get("kubernetes-server")
                .cloned()
                .unwrap_or_default();
            let result = json!({"content": [{"type": "text", "text": format!("pods listed at {server}")}]});
            let event = format!(
                "event: message\ndata: {}\n\n",
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            );
            ([("content-type", "text/event-stream")], event).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "unknown method").into_response(),
    }
}
