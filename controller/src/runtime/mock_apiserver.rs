//! An in-memory API server for MCPServers, enough to test writers that share one object: it keeps each
//! object with a `resourceVersion` bumped on every write and honours it as a precondition (409 on a
//! stale one) for PUT and merge PATCH of the status subresource; server-side apply of `status` follows
//! the CRD's list type for `status.conditions` (`atomic`, as Muster's CRD declares it, or `map` keyed by
//! `type`, as ours does). Every client of the mock carries a name, and a hook may run after a request of
//! one client is answered, to place another writer's write exactly between two requests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

/// How the CRD declares `status.conditions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// No `x-kubernetes-list-type` (Muster's CRD): an apply replaces the whole list.
    Atomic,
    /// `x-kubernetes-list-type: map` keyed by `type` (our CRD): an apply owns entries by type.
    Map,
}

type Hook = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Default)]
struct State {
    objects: BTreeMap<(String, String), Value>,
    version: u64,
    /// Under `map`: the field manager owning each condition type (set by applies).
    owners: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// `client method path` of every request, in order.
    log: Vec<String>,
    /// Every successful write: the writing client and the object as stored after it.
    writes: Vec<(String, Value)>,
}

/// The mock API server; cheap to clone (shared state).
#[derive(Clone)]
pub struct MockApiServer {
    list_type: ListType,
    state: Arc<Mutex<State>>,
    hook: Arc<Mutex<Option<(String, Hook)>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MockApiServer {
    pub fn new(list_type: ListType) -> Self {
        MockApiServer {
            list_type,
            state: Arc::default(),
            hook: Arc::default(),
        }
    }

    /// Stores `object` (namespace and name from its metadata) with a fresh resourceVersion.
    pub fn insert(&self, mut object: Value) {
        let mut state = lock(&self.state);
        state.version += 1;
        object["metadata"]["resourceVersion"] = json!(state.version.to_string());
        let key = key_of(&object);
        state.objects.insert(key, object);
    }

    /// The stored object.
    pub fn object(&self, namespace: &str, name: &str) -> Value {
        lock(&self.state)
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Every successful write so far: `(client, object as stored after it)`.
    pub fn writes(&self) -> Vec<(String, Value)> {
        lock(&self.state).writes.clone()
    }

    /// Every request so far, as `client METHOD path`.
    pub fn log(&self) -> Vec<String> {
        lock(&self.state).log.clone()
    }

    /// After each answered request of `client`, `hook` runs (with the request's `METHOD path`) before the
    /// answer is handed back, so whatever it writes lands between that request and the client's next.
    pub fn after_each_request_of<F, Fut>(&self, client: &str, hook: F)
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let hook: Hook = Arc::new(move |request| Box::pin(hook(request)));
        *lock(&self.hook) = Some((client.to_string(), hook));
    }

    /// A kube client talking to this server, named `name` in the log and for hooks.
    pub fn client(&self, name: &str) -> kube::Client {
        let (server, name) = (self.clone(), name.to_string());
        let service = tower::service_fn(move |request: Request<Body>| {
            let (server, name) = (server.clone(), name.clone());
            async move { Ok::<_, Infallible>(server.serve(&name, request).await) }
        });
        kube::Client::new(service, "default")
    }

    async fn serve(&self, client: &str, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let path = parts.uri.path().to_string();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let request_line = format!("{} {path}", parts.method);
        // Other tasks get a chance to run between any two requests, so concurrent writers interleave.
        tokio::task::yield_now().await;
        let response = self.answer(client, &parts.method, &path, &query, &content_type, &bytes);
        lock(&self.state).log.push(format!("{client} {request_line}"));
        let hook = lock(&self.hook)
            .as_ref()
            .filter(|(name, _)| name == client)
            .map(|(_, hook)| hook.clone());
        if let Some(hook) = hook {
            hook(request_line).await;
        }
        let (status, body) = response;
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }

    fn answer(
        &self,
        client: &str,
        method: &Method,
        path: &str,
        query: &str,
        content_type: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let Some((namespace, name, status_subresource)) = parse_path(path) else {
            return failure(StatusCode::NOT_FOUND, "NotFound", &format!("no route {path}"));
        };
        let key = (namespace, name);
        let mut state = lock(&self.state);
        let Some(current) = state.objects.get(&key).cloned() else {
            return failure(StatusCode::NOT_FOUND, "NotFound", "mcpservers not found");
        };
        if *method == Method::GET {
            return (StatusCode::OK, current);
        }
        if !status_subresource {
            return failure(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "only status is written here",
            );
        }
        let Ok(sent) = serde_json::from_slice::<Value>(body) else {
            return failure(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
        };
        let precondition = sent.pointer("/metadata/resourceVersion").and_then(Value::as_str);
        let current_version = current
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        let status = match (method.as_str(), content_type) {
            ("PUT", _) => {
                // An update requires the version read; a stale one is a conflict.
                if precondition != current_version {
                    return conflict();
                }
                sent.get("status").cloned().unwrap_or(Value::Null)
            }
            ("PATCH", "application/merge-patch+json") => {
                if precondition.is_some() && precondition != current_version {
                    return conflict();
                }
                let mut status = current.get("status").cloned().unwrap_or(Value::Null);
                merge_patch(&mut status, sent.get("status").unwrap_or(&Value::Null));
                status
            }
            ("PATCH", "application/apply-patch+yaml") => {
                let manager = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("fieldManager="))
                    .unwrap_or_default()
                    .to_string();
                let owners = state.owners.entry(key.clone()).or_default();
                apply_status(self.list_type, &current, &sent, &manager, owners)
            }
            _ => {
                return failure(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format",
                );
            }
        };
        state.version += 1;
        let mut stored = current;
        match status {
            Value::Null => {
                stored.as_object_mut().map(|o| o.remove("status"));
            }
            status => stored["status"] = status,
        }
        stored["metadata"]["resourceVersion"] = json!(state.version.to_string());
        state.objects.insert(key, stored.clone());
        state.writes.push((client.to_string(), stored.clone()));
        (StatusCode::OK, stored)
    }
}

fn key_of(object: &Value) -> (String, String) {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

/// `/apis/muster.giantswarm.io/v1alpha1/namespaces/{ns}/mcpservers/{name}[/status]`.
fn parse_path(path: &str) -> Option<(String, String, bool)> {
    let rest = path.strip_prefix("/apis/muster.giantswarm.io/v1alpha1/namespaces/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [ns, "mcpservers", name] => Some((ns.to_string(), name.to_string(), false)),
        [ns, "mcpservers", name, "status"] => Some((ns.to_string(), name.to_string(), true)),
        _ => None,
    }
}

fn failure(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    let body = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    (code, body)
}

fn conflict() -> (StatusCode, Value) {
    failure(
        StatusCode::CONFLICT,
        "Conflict",
        "Operation cannot be fulfilled on mcpservers.muster.giantswarm.io: the object has been modified; \
         please apply your changes to the latest version and try again",
    )
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(target) = target.as_object_mut() {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Server-side apply of `status`, reduced to what matters here: fields other than `conditions` are set
/// when sent; `conditions` follows the list type.
fn apply_status(
    list_type: ListType,
    current: &Value,
    sent: &Value,
    manager: &str,
    owners: &mut BTreeMap<String, String>,
) -> Value {
    let mut status = current.get("status").cloned().unwrap_or_else(|| json!({}));
    let Some(applied) = sent.get("status").and_then(Value::as_object) else {
        return status;
    };
    for (key, value) in applied {
        if key != "conditions" {
            status[key] = value.clone();
        }
    }
    let Some(applied) = applied.get("conditions").and_then(Value::as_array) else {
        return status;
    };
    let type_of = |c: &Value| {
        c.get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match list_type {
        ListType::Atomic => status["conditions"] = Value::Array(applied.clone()),
        ListType::Map => {
            let existing = status["conditions"].as_array().cloned().unwrap_or_default();
            let applied_types: Vec<String> = applied.iter().map(type_of).collect();
            let mut out: Vec<Value> = existing
                .into_iter()
                .filter(|c| {
                    let t = type_of(c);
                    // Entries this manager owned and no longer applies are removed; others stay.
                    !applied_types.contains(&t) && owners.get(&t).is_none_or(|owner| owner != manager)
                })
                .collect();
            owners.retain(|_, owner| owner != manager);
            for condition in applied {
                owners.insert(type_of(condition), manager.to_string());
                out.push(condition.clone());
            }
            status["conditions"] = Value::Array(out);
        }
    }
    status
}
