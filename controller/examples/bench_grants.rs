//! Benchmark: the whole controller (grant controller, probe controller, metrics server; no leader
//! election) against an in-process mock API server on loopback that counts every request: 1,000
//! organization namespaces with 5 kubeconfig Secrets each (plus 2 other Secrets), no MCPServers.
//!
//! The mock answers lists, keeps watches open and streams the Roles and RoleBindings the controller
//! applies back to its watches, like an API server. Prints, for the first sync and for one resync of
//! unchanged state (every namespace reconciled again after `--grants-resync-interval`): writes, lists
//! (cluster-wide and per namespace), watches opened, other requests, wall time; then peak RSS.
//! Targets: first sync ≤ 2 writes per namespace; resync 0 writes, 0 lists, 0 new watches.
//!
//! Run: `cargo run --profile perf -p muster-exchange-controller --example bench_grants`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use clap::Parser;
use muster_exchange_controller::cli::{ControllerArgs, run_controller_with};
use serde_json::{Value, json};
use tokio::sync::watch;

const NAMESPACES: usize = 1_000;
const SECRETS_PER_NAMESPACE: usize = 5;
const RESYNC: Duration = Duration::from_secs(20);

/// Request counts by kind.
#[derive(Default)]
struct Counts {
    lists: AtomicUsize,
    namespaced_lists: AtomicUsize,
    watches: AtomicUsize,
    writes: AtomicUsize,
    other: AtomicUsize,
}

impl Counts {
    fn snapshot(&self) -> [usize; 5] {
        [
            &self.lists,
            &self.namespaced_lists,
            &self.watches,
            &self.writes,
            &self.other,
        ]
        .map(|c| c.load(Ordering::SeqCst))
    }
}

/// Roles and RoleBindings by `(resource, namespace, name)`, and every change as a watch event.
#[derive(Default)]
struct Objects {
    stored: BTreeMap<(String, String, String), Value>,
    events: Vec<(u64, String, Value)>,
    version: u64,
}

struct Mock {
    counts: Counts,
    objects: Mutex<Objects>,
    changed: watch::Sender<u64>,
}

type Shared = Arc<Mock>;

fn list(kind: &str, api_version: &str, version: u64, items: Vec<Value>) -> Body {
    let list = json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"resourceVersion": version.to_string()}, "items": items});
    Body::from(serde_json::to_vec(&list).unwrap_or_default())
}

fn meta_item(ns: Option<&str>, name: &str, labels: Value) -> Value {
    let mut metadata = json!({"name": name, "uid": format!("{}-{name}", ns.unwrap_or("")),
        "resourceVersion": "1", "labels": labels});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": metadata})
}

fn namespace_name(i: usize) -> String {
    format!("org-{i:04}")
}

fn is_watch(query: &Option<String>) -> bool {
    query.as_deref().is_some_and(|q| q.contains("watch=true"))
}

fn query_value(query: &Option<String>, key: &str) -> Option<String> {
    query.as_deref()?.split('&').find_map(|p| {
        p.strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))
            .map(|v| v.replace("%3D", "=").replace("%2F", "/"))
    })
}

/// A watch that never sends anything (its objects never change in this benchmark).
fn quiet_watch() -> Body {
    Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>())
}

async fn namespaces(State(mock): State<Shared>, RawQuery(query): RawQuery) -> Body {
    if is_watch(&query) {
        mock.counts.watches.fetch_add(1, Ordering::SeqCst);
        return quiet_watch();
    }
    mock.counts.lists.fetch_add(1, Ordering::SeqCst);
    let labels = json!({"giantswarm.io/organization": "true"});
    let items = (0..NAMESPACES)
        .map(|i| meta_item(None, &namespace_name(i), labels.clone()))
        .collect();
    list("PartialObjectMetadataList", "meta.k8s.io/v1", 1, items)
}

async fn secrets(State(mock): State<Shared>, RawQuery(query): RawQuery) -> Body {
    if is_watch(&query) {
        mock.counts.watches.fetch_add(1, Ordering::SeqCst);
        return quiet_watch();
    }
    mock.counts.lists.fetch_add(1, Ordering::SeqCst);
    // The watch of opted-in credentials Secrets (by label selector): none here.
    if query.as_deref().is_some_and(|q| q.contains("labelSelector")) {
        return list("PartialObjectMetadataList", "meta.k8s.io/v1", 1, Vec::new());
    }
    let mut items = Vec::new();
    for i in 0..NAMESPACES {
        let ns = namespace_name(i);
        for c in 0..SECRETS_PER_NAMESPACE {
            items.push(meta_item(
                Some(&ns),
                &format!("cluster-{c}-kubeconfig"),
                json!({}),
            ));
        }
        items.push(meta_item(Some(&ns), "cluster-0-ca", json!({})));
        items.push(meta_item(Some(&ns), "default-token", json!({})));
    }
    list("PartialObjectMetadataList", "meta.k8s.io/v1", 1, items)
}

async fn namespaced_secrets(State(mock): State<Shared>) -> Body {
    mock.counts.namespaced_lists.fetch_add(1, Ordering::SeqCst);
    list("PartialObjectMetadataList", "meta.k8s.io/v1", 1, Vec::new())
}

async fn mcpservers(State(mock): State<Shared>, RawQuery(query): RawQuery) -> Body {
    if is_watch(&query) {
        mock.counts.watches.fetch_add(1, Ordering::SeqCst);
        return quiet_watch();
    }
    mock.counts.lists.fetch_add(1, Ordering::SeqCst);
    list("MCPServerList", "muster.giantswarm.io/v1alpha1", 1, Vec::new())
}

fn rbac_kind(resource: &str) -> &'static str {
    if resource == "roles" {
        "Role"
    } else {
        "RoleBinding"
    }
}

/// Lists or watches Roles/RoleBindings across namespaces, filtered by `metadata.name=`.
async fn rbac(State(mock): State<Shared>, Path(resource): Path<String>, RawQuery(query): RawQuery) -> Body {
    let name = query_value(&query, "fieldSelector")
        .and_then(|s| s.strip_prefix("metadata.name=").map(str::to_string));
    let matches = move |object: &Value| {
        name.as_deref()
            .is_none_or(|n| object["metadata"]["name"].as_str() == Some(n))
    };
    if !is_watch(&query) {
        mock.counts.lists.fetch_add(1, Ordering::SeqCst);
        let objects = mock.objects.lock().unwrap_or_else(|p| p.into_inner());
        let items = objects
            .stored
            .iter()
            .filter(|((r, _, _), o)| *r == resource && matches(o))
            .map(|(_, o)| o.clone())
            .collect();
        let kind = format!("{}List", rbac_kind(&resource));
        return list(&kind, "rbac.authorization.k8s.io/v1", objects.version, items);
    }
    mock.counts.watches.fetch_add(1, Ordering::SeqCst);
    let from: u64 = query_value(&query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let changed = mock.changed.subscribe();
    let stream = futures::stream::unfold((from, changed), move |(mut cursor, mut changed)| {
        let (mock, resource, matches) = (mock.clone(), resource.clone(), matches.clone());
        async move {
            loop {
                let lines: Vec<u8> = {
                    let objects = mock.objects.lock().unwrap_or_else(|p| p.into_inner());
                    let mut lines = Vec::new();
                    let from = cursor;
                    for (version, r, event) in objects.events.iter().filter(|(v, _, _)| *v > from) {
                        cursor = *version;
                        if *r == resource && matches(&event["object"]) {
                            lines.extend(serde_json::to_vec(event).unwrap_or_default());
                            lines.push(b'\n');
                        }
                    }
                    lines
                };
                if !lines.is_empty() {
                    return Some((Ok::<_, std::io::Error>(Bytes::from(lines)), (cursor, changed)));
                }
                changed.changed().await.ok()?;
            }
        }
    });
    Body::from_stream(stream)
}

/// Server-side apply of one Role/RoleBinding: stored, answered, streamed to the watches.
async fn apply(
    State(mock): State<Shared>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Body {
    mock.counts.writes.fetch_add(1, Ordering::SeqCst);
    let mut object: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let version = {
        let mut objects = mock.objects.lock().unwrap_or_else(|p| p.into_inner());
        objects.version += 1;
        let version = objects.version;
        object["metadata"]["uid"] = json!(format!("{ns}-{resource}-{name}"));
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let key = (resource.clone(), ns.clone(), name.clone());
        let kind = if objects.stored.insert(key, object.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let event = json!({"type": kind, "object": object});
        objects.events.push((version, resource, event));
        version
    };
    mock.changed.send_replace(version);
    Body::from(serde_json::to_vec(&object).unwrap_or_default())
}

async fn other(State(mock): State<Shared>) -> (axum::http::StatusCode, Body) {
    mock.counts.other.fetch_add(1, Ordering::SeqCst);
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "reason": "NotFound", "code": 404});
    (
        axum::http::StatusCode::NOT_FOUND,
        Body::from(serde_json::to_vec(&status).unwrap_or_default()),
    )
}

fn router(mock: Shared) -> Router {
    Router::new()
        .route("/api/v1/namespaces", get(namespaces))
        .route("/api/v1/secrets", get(secrets))
        .route("/api/v1/namespaces/{ns}/secrets", get(namespaced_secrets))
        .route("/apis/muster.giantswarm.io/v1alpha1/mcpservers", get(mcpservers))
        .route("/apis/rbac.authorization.k8s.io/v1/{resource}", get(rbac))
        .route(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{resource}/{name}",
            axum::routing::patch(apply),
        )
        .fallback(other)
        .with_state(mock)
}

fn free_port() -> Option<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()
}

/// `muster_exchange_controller_reconciles_total{loop="kubeconfig_grants"}` from `/metrics`.
async fn reconciles(metrics: SocketAddr) -> u64 {
    let Ok(mut stream) = tokio::net::TcpStream::connect(metrics).await else {
        return 0;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text).await;
    text.lines()
        .find(|l| l.starts_with("muster_exchange_controller_reconciles_total{loop=\"kubeconfig_grants\"}"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

async fn wait_for_reconciles(metrics: SocketAddr, at_least: u64, counts: &Counts) {
    let mut polls = 0u64;
    loop {
        let done = reconciles(metrics).await;
        if done >= at_least {
            return;
        }
        polls += 1;
        if polls.is_multiple_of(100) {
            eprintln!(
                "  waiting: {done} of {at_least} reconciles, requests {:?}",
                counts.snapshot()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print(what: &str, before: [usize; 5], after: [usize; 5], took: Duration) {
    let d: Vec<usize> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    println!(
        "{what:<17} writes {:>5} ({:.2}/namespace) | lists {:>2} cluster-wide, {:>4} per namespace | \
         watches opened {:>2} | other {:>3} | {:>8.1} ms",
        d[3],
        d[3] as f64 / NAMESPACES as f64,
        d[0],
        d[1],
        d[2],
        d[4],
        took.as_secs_f64() * 1e3
    );
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    controller: ControllerArgs,
}

#[tokio::main]
async fn main() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let (changed, _) = watch::channel(0);
    let mock = Arc::new(Mock {
        counts: Counts::default(),
        objects: Mutex::default(),
        changed,
    });
    let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
        eprintln!("cannot listen on loopback");
        return;
    };
    let (Ok(api), Some(metrics)) = (listener.local_addr(), free_port()) else {
        return;
    };
    let app = router(mock.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let resync = format!("{}s", RESYNC.as_secs());
    let metrics_addr = metrics.to_string();
    let argv = [
        "controller",
        "--leader-election=false",
        "--grant-subject=serviceaccount:muster/mcp-kubernetes",
        "--grants-resync-interval",
        &resync,
        "--metrics-addr",
        &metrics_addr,
        "--controller-namespace=muster-exchange",
    ];
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args.controller,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let Ok(url) = format!("http://{api}").parse() else {
        return;
    };
    println!(
        "bench_grants: {NAMESPACES} organization namespaces x {SECRETS_PER_NAMESPACE} kubeconfig Secrets, \
         whole controller against a counting mock API server on loopback; resync every {resync}"
    );
    let started = Instant::now();
    tokio::spawn(run_controller_with(args, kube::Config::new(url)));
    let zero = mock.counts.snapshot();
    wait_for_reconciles(metrics, NAMESPACES as u64, &mock.counts).await;
    // Let the writes of the last reconciles land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = mock.counts.snapshot();
    print("first sync:", zero, first, started.elapsed());
    let resync_started = Instant::now();
    wait_for_reconciles(metrics, 2 * NAMESPACES as u64, &mock.counts).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = mock.counts.snapshot();
    print("unchanged resync:", first, second, resync_started.elapsed());
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS (mock and controller): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
    std::process::exit(0);
}
