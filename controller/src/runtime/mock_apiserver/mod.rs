//! An in-memory API server that behaves like the real one where the controller's correctness and cost
//! depend on it, and counts every request by verb and path.
//!
//! - Objects of any resource (core `/api/v1` and `/apis/{group}/{version}`, namespaced or not), each
//!   with a `resourceVersion` from one increasing counter; a write that changes nothing keeps the object
//!   and its version (no event), as server-side apply of an unchanged object does.
//! - Lists carry the current `metadata.resourceVersion` (never "0"), honour label and field selectors,
//!   `limit` and `continue`, and answer metadata-only (`as=PartialObjectMetadataList`) when asked.
//! - Watches start after the `resourceVersion` given (all objects as `ADDED` when none or "0"), stream
//!   changes as they happen (an object leaving the selector arrives as `DELETED`), stay open until the
//!   client goes away or the `timeoutSeconds` it asked for runs out (then a `BOOKMARK` when
//!   `allowWatchBookmarks`), and answer a compacted `resourceVersion` with `410 Gone`.
//! - Writes: create, update (resourceVersion precondition, 409 on a stale one), merge and apply
//!   patches, deletes with uid/resourceVersion preconditions. The `status` subresource follows the
//!   CRD's list type for `status.conditions` (`atomic`, as Muster's CRD declares it, or `map` keyed by
//!   `type`, as ours does), and every status update must carry the version it read.
//!
//! Every client carries a name, and a hook may run after a request of one client is answered, to place
//! another writer's write exactly between two requests. Served in memory ([`MockApiServer::client`]) or
//! on loopback ([`MockApiServer::serve_loopback`]).

mod patch;
mod selector;
mod watch;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::time::Instant;

use self::patch::{apply_status, merge_patch};
use self::selector::Selector;

/// How the CRD declares `status.conditions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// No `x-kubernetes-list-type` (Muster's CRD): an apply replaces the whole list.
    Atomic,
    /// `x-kubernetes-list-type: map` keyed by `type` (our CRD): an apply owns entries by type.
    Map,
}

/// One request as the mock saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The name of the client that sent it.
    pub client: String,
    /// The Kubernetes verb: get, list, watch, create, update, patch, delete.
    pub verb: &'static str,
    /// The URL path.
    pub path: String,
    /// The decoded query parameters.
    pub query: BTreeMap<String, String>,
}

impl Recorded {
    /// The namespace in the path (`/namespaces/{ns}/...`), when the request names one.
    pub fn namespace(&self) -> Option<String> {
        parse_path(&self.path)
            .map(|t| t.namespace)
            .filter(|ns| !ns.is_empty())
    }

    /// The resource (plural) the path addresses.
    pub fn resource(&self) -> Option<String> {
        parse_path(&self.path).map(|t| t.collection.rsplit('/').next().unwrap_or_default().to_string())
    }
}

/// Who ended a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// The server, after the `timeoutSeconds` the client asked for (or with `410 Gone`).
    Server,
    /// The client closed it.
    Client,
}

/// One watch request and how it ended.
#[derive(Debug, Clone)]
pub struct WatchRecord {
    /// The watched path.
    pub path: String,
    /// Its query parameters.
    pub query: BTreeMap<String, String>,
    /// When it was opened.
    pub opened: Instant,
    /// Who ended it and when; `None` while open.
    pub ended: Option<(WatchEnd, Instant)>,
}

type Hook = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// `(collection, namespace, name)`; the collection is the path prefix plus the resource, e.g.
/// `/apis/rbac.authorization.k8s.io/v1/roles`; the namespace is empty for cluster-scoped objects.
type Key = (String, String, String);

/// One change, as watches stream it.
#[derive(Debug, Clone)]
struct Change {
    version: u64,
    collection: String,
    /// The object before the change (none when created).
    before: Option<Value>,
    /// The object after the change (for a delete: as it was, with the delete's version).
    after: Value,
    deleted: bool,
}

struct State {
    objects: BTreeMap<Key, Value>,
    version: u64,
    /// Changes up to this version are forgotten: a watch from an older version gets `410 Gone`.
    compacted: u64,
    changes: Vec<Change>,
    /// Under `map`: the field manager owning each condition type (set by status applies).
    owners: BTreeMap<Key, BTreeMap<String, String>>,
    requests: Vec<Recorded>,
    /// `client method path` of every request, in order.
    log: Vec<String>,
    /// Every successful write: the writing client and the object as stored after it.
    writes: Vec<(String, Value)>,
    watches: Vec<WatchRecord>,
}

impl Default for State {
    fn default() -> Self {
        State {
            objects: BTreeMap::new(),
            // An API server's versions never start at 0: "0" means "any version" to a client.
            version: 100,
            compacted: 0,
            changes: Vec::new(),
            owners: BTreeMap::new(),
            requests: Vec::new(),
            log: Vec::new(),
            writes: Vec::new(),
            watches: Vec::new(),
        }
    }
}

/// The mock API server; cheap to clone (shared state).
#[derive(Clone)]
pub struct MockApiServer {
    list_type: ListType,
    state: Arc<Mutex<State>>,
    hook: Arc<Mutex<Option<(String, Hook)>>>,
    /// The latest version, for watches waiting on a change.
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const MCPSERVERS: &str = "/apis/muster.giantswarm.io/v1alpha1/mcpservers";

impl MockApiServer {
    pub fn new(list_type: ListType) -> Self {
        MockApiServer {
            list_type,
            state: Arc::default(),
            hook: Arc::default(),
            changed: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Stores `object` (resource from `apiVersion` and `kind`, namespace and name from its metadata)
    /// with a fresh resourceVersion, as if someone else had written it: watches see it, `writes` does not.
    pub fn insert(&self, object: Value) {
        let Some(collection) = collection_of(&object) else {
            return;
        };
        let meta = |k: &str| object["metadata"][k].as_str().unwrap_or_default().to_string();
        let key = (collection, meta("namespace"), meta("name"));
        let mut state = lock(&self.state);
        let before = state.objects.get(&key).cloned();
        self.store(&mut state, key, object, before, false);
    }

    /// The stored MCPServer `namespace/name` (null when absent).
    pub fn object(&self, namespace: &str, name: &str) -> Value {
        self.stored(MCPSERVERS, namespace, name)
    }

    /// The stored object of `collection` (e.g. `/api/v1/secrets`; null when absent).
    pub fn stored(&self, collection: &str, namespace: &str, name: &str) -> Value {
        let key = (collection.to_string(), namespace.to_string(), name.to_string());
        lock(&self.state)
            .objects
            .get(&key)
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

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// Every watch so far, open or ended.
    pub fn watches(&self) -> Vec<WatchRecord> {
        lock(&self.state).watches.clone()
    }

    /// Forgets every change so far: a watch from an older resourceVersion gets `410 Gone`, and an open
    /// watch that has not sent them all yet ends (as when its API server restarts).
    pub fn compact(&self) {
        let mut state = lock(&self.state);
        state.compacted = state.version;
        state.changes.clear();
        self.changed.send_replace(state.version);
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

    /// A kube client talking to this server in memory, named `name` in the log and for hooks.
    pub fn client(&self, name: &str) -> kube::Client {
        let (server, name) = (self.clone(), name.to_string());
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let (server, name) = (server.clone(), name.clone());
            async move { Ok::<_, Infallible>(server.serve(&name, request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Serves this server on a loopback port until the runtime ends; its requests are logged as client
    /// `loopback`. Returns the base URL.
    pub async fn serve_loopback(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = self.clone();
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let server = server.clone();
            async move { server.serve("loopback", request).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(url)
    }

    async fn serve<B>(&self, client: &str, request: Request<B>) -> Response<Body>
    where
        B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), usize::MAX)
            .await
            .unwrap_or_default();
        let header_text = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let (content_type, accept) = (header_text(header::CONTENT_TYPE), header_text(header::ACCEPT));
        let metadata_only = accept.contains("as=PartialObjectMetadata");
        let path = parts.uri.path().to_string();
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let request_line = format!("{} {path}", parts.method);
        let target = parse_path(&path);
        let recorded = Recorded {
            client: client.to_string(),
            verb: verb(&parts.method, target.as_ref(), &query),
            path: path.clone(),
            query: query.clone(),
        };
        // Other tasks get a chance to run between any two requests, so concurrent writers interleave.
        tokio::task::yield_now().await;
        {
            let mut state = lock(&self.state);
            state.log.push(format!("{client} {request_line}"));
            state.requests.push(recorded.clone());
        }
        let Some(target) = target else {
            return respond(failure(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("no route {path}"),
            ));
        };
        if recorded.verb == "watch" {
            return Response::new(watch::open(self.clone(), target, &query, metadata_only));
        }
        let answer = self.answer(
            client,
            &parts.method,
            &target,
            &query,
            &content_type,
            metadata_only,
            &bytes,
        );
        let hook = lock(&self.hook)
            .as_ref()
            .filter(|(name, _)| name == client)
            .map(|(_, hook)| hook.clone());
        if let Some(hook) = hook {
            hook(request_line).await;
        }
        respond(answer)
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        client: &str,
        method: &Method,
        target: &Target,
        query: &BTreeMap<String, String>,
        content_type: &str,
        metadata_only: bool,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let Some(name) = &target.name else {
            return match *method {
                Method::GET => self.list(target, query, metadata_only),
                Method::POST => self.create(client, target, body),
                _ => failure(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "not on a collection",
                ),
            };
        };
        let key = (target.collection.clone(), target.namespace.clone(), name.clone());
        let mut state = lock(&self.state);
        let current = state.objects.get(&key).cloned();
        if *method == Method::GET {
            return match current {
                Some(object) if metadata_only => (StatusCode::OK, as_metadata(&object)),
                Some(object) => (StatusCode::OK, object),
                None => not_found(&target.collection),
            };
        }
        if *method == Method::DELETE {
            return self.delete(&mut state, key, current, body);
        }
        let Ok(sent) = serde_json::from_slice::<Value>(body) else {
            return failure(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
        };
        let stored = if target.subresource.as_deref() == Some("status") {
            let Some(current) = &current else {
                return not_found(&target.collection);
            };
            match self.status_write(&mut state, &key, method, content_type, query, current, &sent) {
                Ok(stored) => stored,
                Err(answer) => return answer,
            }
        } else {
            match write_object(method, content_type, current.as_ref(), sent) {
                Ok(object) => object,
                Err(answer) => return answer,
            }
        };
        // Every status write makes a new version, so concurrent writers see each other's writes.
        let force = target.subresource.is_some();
        let changed = self.store(&mut state, key, stored, current, force);
        state.writes.push((client.to_string(), changed.clone()));
        (StatusCode::OK, changed)
    }

    /// The new object after a write of `status` (the rest of the object stays as it is).
    #[allow(clippy::too_many_arguments)]
    fn status_write(
        &self,
        state: &mut State,
        key: &Key,
        method: &Method,
        content_type: &str,
        query: &BTreeMap<String, String>,
        current: &Value,
        sent: &Value,
    ) -> Result<Value, (StatusCode, Value)> {
        let precondition = sent.pointer("/metadata/resourceVersion").and_then(Value::as_str);
        let current_version = current
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        let status = match (method.as_str(), content_type) {
            ("PUT", _) => {
                // An update requires the version read; a stale one is a conflict.
                if precondition != current_version {
                    return Err(conflict(&key.0));
                }
                sent.get("status").cloned().unwrap_or(Value::Null)
            }
            ("PATCH", "application/merge-patch+json") => {
                if precondition.is_some() && precondition != current_version {
                    return Err(conflict(&key.0));
                }
                let mut status = current.get("status").cloned().unwrap_or(Value::Null);
                merge_patch(&mut status, sent.get("status").unwrap_or(&Value::Null));
                status
            }
            ("PATCH", "application/apply-patch+yaml") => {
                let manager = query.get("fieldManager").cloned().unwrap_or_default();
                let owners = state.owners.entry(key.clone()).or_default();
                apply_status(self.list_type, current, sent, &manager, owners)
            }
            _ => return Err(unsupported_media_type()),
        };
        let mut stored = current.clone();
        match status {
            Value::Null => {
                stored.as_object_mut().map(|o| o.remove("status"));
            }
            status => stored["status"] = status,
        }
        Ok(stored)
    }

    fn create(&self, client: &str, target: &Target, body: &[u8]) -> (StatusCode, Value) {
        let Ok(mut sent) = serde_json::from_slice::<Value>(body) else {
            return failure(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
        };
        let name = sent["metadata"]["name"].as_str().unwrap_or_default().to_string();
        if name.is_empty() {
            return failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "metadata.name is required",
            );
        }
        if !target.namespace.is_empty() {
            sent["metadata"]["namespace"] = json!(target.namespace);
        }
        let key = (target.collection.clone(), target.namespace.clone(), name);
        let mut state = lock(&self.state);
        if state.objects.contains_key(&key) {
            return failure(StatusCode::CONFLICT, "AlreadyExists", "the object already exists");
        }
        let stored = self.store(&mut state, key, sent, None, false);
        state.writes.push((client.to_string(), stored.clone()));
        (StatusCode::CREATED, stored)
    }

    fn delete(
        &self,
        state: &mut State,
        key: Key,
        current: Option<Value>,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let Some(current) = current else {
            return not_found(&key.0);
        };
        let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        for field in ["uid", "resourceVersion"] {
            let wanted = options["preconditions"][field].as_str();
            if wanted.is_some() && wanted != current["metadata"][field].as_str() {
                return conflict(&key.0);
            }
        }
        state.objects.remove(&key);
        state.version += 1;
        let mut after = current.clone();
        after["metadata"]["resourceVersion"] = json!(state.version.to_string());
        state.changes.push(Change {
            version: state.version,
            collection: key.0,
            before: Some(current),
            after,
            deleted: true,
        });
        self.changed.send_replace(state.version);
        let success =
            json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "code": 200});
        (StatusCode::OK, success)
    }

    /// Stores `object` under `key` unless it equals `before` and `force` is false (then nothing
    /// changes); returns what is stored.
    fn store(
        &self,
        state: &mut State,
        key: Key,
        mut object: Value,
        before: Option<Value>,
        force: bool,
    ) -> Value {
        if let Some(before) = &before {
            for field in ["uid", "creationTimestamp"] {
                if let Some(value) = before["metadata"].get(field) {
                    object["metadata"][field] = value.clone();
                }
            }
            if !force && without_version(before) == without_version(&object) {
                return before.clone();
            }
        }
        state.version += 1;
        let version = state.version;
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = json!(version.to_string());
        if meta.get("uid").is_none() {
            meta["uid"] = json!(format!("uid-{}-{}-{version}", key.1, key.2));
        }
        if meta.get("creationTimestamp").is_none() {
            meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        if !key.1.is_empty() {
            meta["namespace"] = json!(key.1);
        }
        state.changes.push(Change {
            version,
            collection: key.0.clone(),
            before,
            after: object.clone(),
            deleted: false,
        });
        state.objects.insert(key, object.clone());
        self.changed.send_replace(version);
        object
    }

    fn list(
        &self,
        target: &Target,
        query: &BTreeMap<String, String>,
        metadata_only: bool,
    ) -> (StatusCode, Value) {
        let labels = Selector::parse(query.get("labelSelector").map_or("", String::as_str));
        let fields = Selector::parse(query.get("fieldSelector").map_or("", String::as_str));
        let state = lock(&self.state);
        let matching: Vec<&Value> = state
            .objects
            .iter()
            .filter(|((collection, ns, _), _)| {
                *collection == target.collection && (target.namespace.is_empty() || *ns == target.namespace)
            })
            .map(|(_, o)| o)
            .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
            .collect();
        // `continue` is `{version}:{offset}`: later pages report the version of the first.
        let (version, offset) = query
            .get("continue")
            .and_then(|c| c.split_once(':'))
            .and_then(|(v, o)| Some((v.parse().ok()?, o.parse().ok()?)))
            .unwrap_or((state.version, 0usize));
        let limit = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|o| {
                if metadata_only {
                    as_metadata(o)
                } else {
                    (*o).clone()
                }
            })
            .collect();
        let next = offset.saturating_add(page.len());
        let mut metadata = json!({"resourceVersion": version.to_string()});
        if next < matching.len() {
            metadata["continue"] = json!(format!("{version}:{next}"));
        }
        let (api_version, kind) = if metadata_only {
            ("meta.k8s.io/v1", "PartialObjectMetadataList")
        } else {
            ("v1", "List")
        };
        let list = json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "items": page});
        (StatusCode::OK, list)
    }
}

/// The object with everything but its content removed, for "did this write change anything".
fn without_version(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    object
}

/// The new object for a write of a whole object (not a subresource).
fn write_object(
    method: &Method,
    content_type: &str,
    current: Option<&Value>,
    mut sent: Value,
) -> Result<Value, (StatusCode, Value)> {
    match (method.as_str(), content_type, current) {
        ("PUT", _, Some(current)) => {
            let precondition = sent["metadata"]["resourceVersion"].as_str();
            if precondition.is_some_and(|v| Some(v) != current["metadata"]["resourceVersion"].as_str()) {
                return Err(conflict("object"));
            }
            Ok(sent)
        }
        (
            "PATCH",
            "application/merge-patch+json" | "application/strategic-merge-patch+json",
            Some(current),
        ) => {
            let mut object = current.clone();
            merge_patch(&mut object, &sent);
            Ok(object)
        }
        // Apply creates or updates; the fields sent replace those stored (one field manager per object
        // is all the controller uses).
        ("PATCH", "application/apply-patch+yaml", current) => {
            sent["metadata"]
                .as_object_mut()
                .map(|m| m.remove("resourceVersion"));
            let mut object = current.cloned().unwrap_or_else(|| json!({}));
            merge_patch(&mut object, &sent);
            Ok(object)
        }
        ("PUT" | "PATCH", _, None) => Err(not_found("object")),
        ("PATCH", _, Some(_)) => Err(unsupported_media_type()),
        _ => Err(failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not supported",
        )),
    }
}

/// What a path addresses.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// Path prefix plus resource, e.g. `/api/v1/secrets`.
    collection: String,
    /// Empty for cluster-scoped objects and cluster-wide collections.
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let (prefix, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        ("/api/v1".to_string(), rest)
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let mut parts = rest.splitn(3, '/');
        let (group, version, rest) = (parts.next()?, parts.next()?, parts.next()?);
        (format!("/apis/{group}/{version}"), rest)
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let owned = |s: &&str| s.to_string();
    let (namespace, resource, name, subresource) = match segments.as_slice() {
        ["namespaces", ns, resource, tail @ ..] if tail.len() <= 2 => (
            Some(*ns),
            *resource,
            tail.first().map(owned),
            tail.get(1).map(owned),
        ),
        [resource, tail @ ..] if tail.len() <= 2 => {
            (None, *resource, tail.first().map(owned), tail.get(1).map(owned))
        }
        _ => return None,
    };
    Some(Target {
        collection: format!("{prefix}/{resource}"),
        namespace: namespace.unwrap_or_default().to_string(),
        name,
        subresource,
    })
}

/// The collection of an object from its `apiVersion` and `kind` (plural: lowercase kind plus `s`).
fn collection_of(object: &Value) -> Option<String> {
    let api_version = object["apiVersion"].as_str()?;
    let kind = object["kind"].as_str()?;
    let prefix = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    Some(format!("{prefix}/{}s", kind.to_lowercase()))
}

fn verb(method: &Method, target: Option<&Target>, query: &BTreeMap<String, String>) -> &'static str {
    let collection = target.is_none_or(|t| t.name.is_none());
    match *method {
        Method::GET if query.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// The object as `PartialObjectMetadata`.
fn as_metadata(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]})
}

fn respond((status, body): (StatusCode, Value)) -> Response<Body> {
    let mut response = Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    *response.status_mut() = status;
    response
}

fn failure(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    let body = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    (code, body)
}

fn not_found(collection: &str) -> (StatusCode, Value) {
    let resource = collection.rsplit('/').next().unwrap_or_default();
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{resource} not found"),
    )
}

fn unsupported_media_type() -> (StatusCode, Value) {
    failure(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format",
    )
}

fn conflict(collection: &str) -> (StatusCode, Value) {
    let resource = collection.rsplit('/').next().unwrap_or_default();
    let group = if resource == "mcpservers" {
        "mcpservers.muster.giantswarm.io"
    } else {
        resource
    };
    failure(
        StatusCode::CONFLICT,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {group}: the object has been modified; \
             please apply your changes to the latest version and try again"
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;
    use kube::api::ListParams;
    use kube::runtime::watcher;

    use super::*;

    fn config_map(name: &str, team: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "a", "labels": {"team": team}}})
    }

    /// Lists carry the current version and honour selectors and paging; an unchanged apply keeps the
    /// version.
    #[tokio::test]
    async fn lists_page_select_and_report_the_current_version() {
        let mock = MockApiServer::new(ListType::Map);
        for i in 0..5 {
            mock.insert(config_map(&format!("cm-{i}"), if i < 3 { "x" } else { "y" }));
        }
        let api: Api<ConfigMap> = Api::namespaced(mock.client("test"), "a");
        let first = api
            .list(&ListParams::default().labels("team=x").limit(2))
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.metadata.resource_version.as_deref(), Some("105"));
        let token = first.metadata.continue_.clone().unwrap();
        let second = api
            .list(
                &ListParams::default()
                    .labels("team=x")
                    .limit(2)
                    .continue_token(&token),
            )
            .await
            .unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.metadata.continue_, None);
        let params = kube::api::PatchParams::apply("test");
        let same: ConfigMap = serde_json::from_value(config_map("cm-0", "x")).unwrap();
        let applied = api
            .patch("cm-0", &params, &kube::api::Patch::Apply(&same))
            .await
            .unwrap();
        assert_eq!(applied.metadata.resource_version.as_deref(), Some("101"));
        let verbs: Vec<&str> = mock.requests().iter().map(|r| r.verb).collect();
        assert_eq!(verbs, ["list", "list", "patch"]);
    }

    type Events = futures::stream::BoxStream<'static, watcher::Result<watcher::Event<ConfigMap>>>;

    /// The names of the next complete list the watcher delivers.
    async fn next_list(events: &mut Events) -> Vec<String> {
        let mut names = Vec::new();
        loop {
            match events.next().await {
                Some(Ok(watcher::Event::InitApply(o))) => names.push(o.metadata.name.unwrap_or_default()),
                Some(Ok(watcher::Event::InitDone)) => return names,
                _ => {}
            }
        }
    }

    /// A watch from a version older than a compaction gets 410 Gone, and kube's watcher lists again.
    #[tokio::test(start_paused = true)]
    async fn a_watch_from_a_compacted_version_is_gone_and_the_watcher_lists_again() {
        let mock = MockApiServer::new(ListType::Map);
        mock.insert(config_map("one", "x"));
        let api: Api<ConfigMap> = Api::namespaced(mock.client("test"), "a");
        let mut events = watcher(api, watcher::Config::default()).boxed();
        let guard = Duration::from_secs(60);
        let first = tokio::time::timeout(guard, next_list(&mut events)).await.unwrap();
        assert_eq!(first, ["one"]);
        // Two changes, compacted before the watcher (which watches once polled again) saw them.
        mock.insert(config_map("two", "x"));
        mock.insert(config_map("three", "x"));
        mock.compact();
        let mut second = tokio::time::timeout(guard, next_list(&mut events)).await.unwrap();
        second.sort();
        assert_eq!(second, ["one", "three", "two"]);
        let verbs: Vec<&str> = mock.requests().iter().map(|r| r.verb).collect();
        assert_eq!(verbs, ["list", "watch", "list"]);
        let ended: Vec<_> = mock.watches().iter().map(|w| w.ended.map(|(by, _)| by)).collect();
        assert_eq!(ended, [Some(WatchEnd::Server)]);
    }
}
