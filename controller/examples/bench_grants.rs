//! Benchmark: kubeconfig grants for 1,000 organization namespaces with 5 kubeconfig Secrets each,
//! through an in-process mock API server (a tower service answering list/apply/delete from memory).
//!
//! Prints API writes on the first sync (target ≤ 2 per namespace), writes on a resync of unchanged state
//! (target 0), wall times, peak RSS, and a baseline measured in the same run: an apply-always sync
//! (what a controller without the desired-vs-observed comparison does on every resync).
//!
//! Run: `cargo run --profile perf -p muster-exchange-controller --example bench_grants`

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use muster_exchange_controller::grants::kubeconfig_grants::{KubeconfigGrantConfig, sync_kubeconfig_grants};
use muster_exchange_controller::grants::subjects::parse_service_account;
use serde_json::{Value, json};

const NAMESPACES: usize = 1_000;
const SECRETS_PER_NAMESPACE: usize = 5;

#[derive(Default)]
struct MockApi {
    objects: Mutex<BTreeMap<(String, String), Value>>,
    writes: AtomicUsize,
    requests: AtomicUsize,
    /// Baseline mode: lists of grants come back empty, so every grant is re-applied.
    hide_grants: AtomicBool,
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

fn meta_item(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": name, "namespace": ns}})
}

fn not_found() -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": 404})
}

impl MockApi {
    fn answer(&self, method: &Method, path: &str, body: &[u8]) -> Value {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", _) => self.answer_read(&parts),
            (
                "PATCH",
                [
                    "apis",
                    "rbac.authorization.k8s.io",
                    "v1",
                    "namespaces",
                    ns,
                    kind,
                    _,
                ],
            ) => self.apply(ns, kind, body),
            (
                "DELETE",
                [
                    "apis",
                    "rbac.authorization.k8s.io",
                    "v1",
                    "namespaces",
                    ns,
                    kind,
                    _,
                ],
            ) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                self.objects
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&(kind.to_string(), ns.to_string()));
                json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success"})
            }
            _ => not_found(),
        }
    }

    fn answer_read(&self, parts: &[&str]) -> Value {
        match parts {
            ["api", "v1", "namespaces"] => {
                let items = (0..NAMESPACES)
                    .map(|i| meta_item("", &format!("org-{i:04}")))
                    .collect();
                list("PartialObjectMetadataList", "meta.k8s.io/v1", items)
            }
            ["api", "v1", "namespaces", ns, "secrets"] => {
                let mut items: Vec<Value> = (0..SECRETS_PER_NAMESPACE)
                    .map(|i| meta_item(ns, &format!("cluster-{i}-kubeconfig")))
                    .collect();
                items.push(meta_item(ns, "cluster-0-ca"));
                items.push(meta_item(ns, "default-token"));
                list("PartialObjectMetadataList", "meta.k8s.io/v1", items)
            }
            ["apis", "rbac.authorization.k8s.io", "v1", kind] => {
                let items = if self.hide_grants.load(Ordering::Relaxed) {
                    Vec::new()
                } else {
                    let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
                    objects
                        .iter()
                        .filter(|((k, _), _)| k == kind)
                        .map(|(_, v)| v.clone())
                        .collect()
                };
                let list_kind = if *kind == "roles" {
                    "RoleList"
                } else {
                    "RoleBindingList"
                };
                list(list_kind, "rbac.authorization.k8s.io/v1", items)
            }
            _ => not_found(),
        }
    }

    fn apply(&self, ns: &str, kind: &str, body: &[u8]) -> Value {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut object: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        object["metadata"]["uid"] = json!(format!("{ns}-{kind}"));
        object["metadata"]["resourceVersion"] = json!("2");
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        objects.insert((kind.to_string(), ns.to_string()), object.clone());
        object
    }
}

fn client(api: Arc<MockApi>) -> Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let api = api.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let answer = api.answer(&parts.method, parts.uri.path(), &bytes);
            let body = Body::from(serde_json::to_vec(&answer).unwrap_or_default());
            Ok::<_, Infallible>(Response::new(body))
        }
    });
    Client::new(service, "default")
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn timed_sync(
    client: &Client,
    config: &KubeconfigGrantConfig,
    api: &MockApi,
) -> (usize, usize, Duration) {
    let (writes_before, requests_before) = (
        api.writes.load(Ordering::Relaxed),
        api.requests.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    let report = match sync_kubeconfig_grants(client, config).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("sync failed: {e}");
            std::process::exit(1);
        }
    };
    let took = started.elapsed();
    if !report.sync.errors.is_empty() {
        eprintln!(
            "sync reported {} errors, first: {}",
            report.sync.errors.len(),
            report.sync.errors[0]
        );
    }
    (
        api.writes.load(Ordering::Relaxed) - writes_before,
        api.requests.load(Ordering::Relaxed) - requests_before,
        took,
    )
}

#[tokio::main]
async fn main() {
    let Ok(subject) = parse_service_account("serviceaccount:muster/mcp-kubernetes") else {
        return;
    };
    let config = KubeconfigGrantConfig {
        namespace_selector: "giantswarm.io/organization".into(),
        subjects: vec![subject],
        secret_suffix: "-kubeconfig".into(),
        controller_namespace: "muster-exchange".into(),
        concurrency: 8,
    };
    let api = Arc::new(MockApi::default());
    let client = client(api.clone());
    println!(
        "bench_grants: {NAMESPACES} organization namespaces x {SECRETS_PER_NAMESPACE} kubeconfig Secrets (mock API, in-process)"
    );
    let (w1, r1, t1) = timed_sync(&client, &config, &api).await;
    println!(
        "first sync:      {w1:>5} writes ({:.2} per namespace, target <= 2), {r1:>5} requests, {:>8.1} ms",
        w1 as f64 / NAMESPACES as f64,
        t1.as_secs_f64() * 1e3
    );
    let (w2, r2, t2) = timed_sync(&client, &config, &api).await;
    println!(
        "unchanged resync: {w2:>4} writes (target 0), {r2:>5} requests, {:>8.1} ms",
        t2.as_secs_f64() * 1e3
    );
    api.hide_grants.store(true, Ordering::Relaxed);
    let (wb, rb, tb) = timed_sync(&client, &config, &api).await;
    println!(
        "baseline (apply-always resync): {wb:>5} writes, {rb:>5} requests, {:>8.1} ms",
        tb.as_secs_f64() * 1e3
    );
    println!(
        "ratio resync/baseline: writes {w2}/{wb} = {:.3}, wall time {:.2}",
        w2 as f64 / wb.max(1) as f64,
        t2.as_secs_f64() / tb.as_secs_f64().max(1e-9)
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}
