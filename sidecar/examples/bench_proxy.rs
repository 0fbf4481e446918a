//! Benchmark: requests through the sidecar on a cache hit versus straight to the same upstream, in the
//! same run. Prints p50/p99 latency of both, the added latency, throughput of both and their ratio, and
//! the number of exchanges Dex saw (one per token and cluster is the target).
//!
//! `cargo run --profile perf -p muster-exchange-sidecar --example bench_proxy [-- SEQ_REQUESTS CONCURRENCY SECONDS GROUPS]`
//! (GROUPS: groups claims per subject token, 0 by default; 300 makes a ~13 KiB token)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use muster_exchange_dex::jwt::unsigned_jwt;
use muster_exchange_dex::test_double::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DexDouble};
use muster_exchange_sidecar::{Sidecar, SidecarOptions};
use serde_json::json;

type Http = Client<HttpConnector, Empty<Bytes>>;

/// The app: answers at once, or after `service_time` (an app that calls the Kubernetes API).
async fn upstream(service_time: Duration) -> SocketAddr {
    let app = axum::Router::new().fallback(move || async move {
        if !service_time.is_zero() {
            tokio::time::sleep(service_time).await;
        }
        "{\"jsonrpc\":\"2.0\",\"result\":{}}"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn sidecar(dex: &DexDouble, upstream: SocketAddr, dir: &std::path::Path) -> SocketAddr {
    std::fs::write(dir.join("client-id"), DEFAULT_CLIENT_ID).unwrap();
    std::fs::write(dir.join("client-secret"), DEFAULT_CLIENT_SECRET).unwrap();
    std::fs::write(dir.join("ca.pem"), dex.ca_pem()).unwrap();
    let ca = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";
    let kubeconfig = format!(
        "current-context: c\ncontexts:\n- name: c\n  context:\n    cluster: c\nclusters:\n- name: c\n  cluster:\n    \
         server: https://api.example:6443\n    certificate-authority-data: {ca}\n"
    );
    std::fs::write(dir.join("value"), kubeconfig).unwrap();
    let config = serde_json::from_value(json!({
        "listen": "127.0.0.1:0",
        "upstream": format!("http://{upstream}"),
        "clusters": [{"name": "bench", "dexTokenEndpoint": dex.token_endpoint(), "connectorId": "central",
            "credentialsDir": dir, "kubeconfigFile": dir.join("value"), "caFile": dir.join("ca.pem")}],
    }))
    .unwrap();
    let sidecar = Sidecar::bind(&config, &SidecarOptions::default()).await.unwrap();
    let addr = sidecar.local_addr().unwrap();
    tokio::spawn(sidecar.serve(std::future::pending(), Duration::from_secs(1)));
    addr
}

async fn one(http: &Http, addr: SocketAddr, token: &str) -> Duration {
    let request = http::Request::get(format!("http://{addr}/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .unwrap();
    let started = Instant::now();
    let response = http.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn latencies(http: &Http, addr: SocketAddr, token: &str, n: usize) -> Vec<Duration> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(one(http, addr, token).await);
    }
    all.sort();
    all
}

async fn throughput(http: &Http, addr: SocketAddr, tokens: &[String], concurrency: usize, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (http, stop, done, token) = (
                http.clone(),
                stop.clone(),
                done.clone(),
                tokens[i % tokens.len()].clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    one(&http, addr, &token).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed) as f64;
    futures::future::join_all(workers).await;
    count / elapsed
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Scenario {
    upstream: SocketAddr,
    proxy: SocketAddr,
}

async fn run(
    name: &str,
    s: &Scenario,
    http: &Http,
    tokens: &[String],
    seq: usize,
    concurrency: usize,
    secs: u64,
) {
    // Warm up both paths (connections, the one exchange per token, allocator).
    for token in tokens {
        latencies(http, s.proxy, token, 200).await;
    }
    latencies(http, s.upstream, &tokens[0], 500).await;
    println!("== {name}");
    if seq > 0 {
        let direct = latencies(http, s.upstream, &tokens[0], seq).await;
        let proxied = latencies(http, s.proxy, &tokens[0], seq).await;
        let (d50, d99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
        let (p50, p99) = (percentile(&proxied, 0.5), percentile(&proxied, 0.99));
        println!("sequential requests: {seq} per path (keep-alive, one client)");
        println!(
            "  direct   p50 {:>8.1} µs   p99 {:>8.1} µs",
            micros(d50),
            micros(d99)
        );
        println!(
            "  sidecar  p50 {:>8.1} µs   p99 {:>8.1} µs",
            micros(p50),
            micros(p99)
        );
        println!(
            "  added    p50 {:>8.1} µs   p99 {:>8.1} µs",
            micros(p50) - micros(d50),
            micros(p99) - micros(d99)
        );
    }
    let direct_rps = throughput(http, s.upstream, tokens, concurrency, secs).await;
    let proxied_rps = throughput(http, s.proxy, tokens, concurrency, secs).await;
    println!(
        "throughput: {concurrency} concurrent clients, {secs} s per path, {} subject tokens",
        tokens.len()
    );
    println!("  direct  {direct_rps:>10.0} req/s");
    println!("  sidecar {proxied_rps:>10.0} req/s");
    println!("  ratio   {:>10.1} % of direct", 100.0 * proxied_rps / direct_rps);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let seq = args.first().copied().unwrap_or(20_000);
    let concurrency = args.get(1).copied().unwrap_or(32);
    let secs = args.get(2).copied().unwrap_or(3) as u64;
    // Groups in each subject token: real ID tokens can carry hundreds (tens of KiB of payload).
    let groups = args.get(3).copied().unwrap_or(0);
    let dex = DexDouble::start().await.unwrap();
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build_http();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let tokens: Vec<String> = (0..4)
        .map(|i| {
            let groups: Vec<String> = (0..groups)
                .map(|g| format!("org-team-with-a-long-name-{g}"))
                .collect();
            unsigned_jwt(&json!({"sub": format!("user-{i}"), "exp": exp, "groups": groups}))
        })
        .collect();
    println!("subject tokens: {} bytes each", tokens[0].len());

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let trivial_upstream = upstream(Duration::ZERO).await;
    let trivial = Scenario {
        upstream: trivial_upstream,
        proxy: sidecar(&dex, trivial_upstream, dir_a.path()).await,
    };
    run(
        "trivial upstream (CPU-bound: client, sidecar and app share 2 cores)",
        &trivial,
        &http,
        &tokens,
        seq,
        concurrency,
        secs,
    )
    .await;
    let slow_upstream = upstream(Duration::from_millis(1)).await;
    let slow = Scenario {
        upstream: slow_upstream,
        proxy: sidecar(&dex, slow_upstream, dir_b.path()).await,
    };
    run(
        "upstream with 1 ms service time (an app calling the Kubernetes API)",
        &slow,
        &http,
        &tokens,
        0,
        concurrency,
        secs,
    )
    .await;
    println!(
        "exchanges at Dex: {} for {} tokens x 2 sidecars (target: one per token and sidecar = {})",
        dex.exchanges(),
        tokens.len(),
        2 * tokens.len()
    );
}
