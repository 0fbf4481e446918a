//! Benchmark: cache-hit requests through the sidecar versus straight to the same app and through a bare
//! hyper reverse proxy (the least any proxy hop costs), all in the same run. Prints p50/p99 latency and
//! the added latency, throughput of the three paths with the whole process's CPU time per request, the
//! ratios, and the number of exchanges Dex saw (one per token and sidecar is the target).
//!
//! `cargo run --profile perf -p muster-exchange-sidecar --example bench_proxy [-- SEQ_REQUESTS CONCURRENCY SECONDS GROUPS]`
//! (GROUPS: groups claims per subject token, 0 by default; 300 makes a ~13 KiB token)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::serve::ListenerExt as _;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use muster_exchange_dex::jwt::unsigned_jwt;
use muster_exchange_dex::test_double::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DexDouble};
use muster_exchange_sidecar::{Sidecar, SidecarOptions};
use serde_json::json;

type Http = Client<HttpConnector, Empty<Bytes>>;

/// The app: answers at once, or after about `service_time` (an app that calls the Kubernetes API).
///
/// The wait varies from 0.5 to 1.5 times `service_time` (same mean, a fixed sequence): API calls do vary,
/// and a constant wait on tokio's 1 ms timer wheel locks the closed-loop clients into bursts that all wake
/// on the same tick, which measures the bursts rather than the proxy.
async fn upstream(service_time: Duration) -> SocketAddr {
    let sequence = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move || async move {
        if !service_time.is_zero() {
            // Multiplicative hashing spreads consecutive requests over the range; 1024 steps.
            let step = sequence
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 54;
            tokio::time::sleep(service_time.mul_f64(0.5 + step as f64 / 1024.0)).await;
        }
        "{\"jsonrpc\":\"2.0\",\"result\":{}}"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The floor: the least any hyper-based reverse proxy does (same client settings as the sidecar, no auth,
/// no cache, no metrics). Separates the cost of the extra HTTP hop from the cost of the sidecar's logic.
async fn bare_proxy(upstream: SocketAddr) -> SocketAddr {
    let client = muster_exchange_sidecar::forward::upstream_client();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let client = client.clone();
        async move {
            let (mut parts, body) = request.into_parts();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = format!("http://{upstream}{path}").parse().unwrap();
            parts.headers.remove(http::header::HOST);
            let response = client
                .request(http::Request::from_parts(parts, body))
                .await
                .unwrap();
            response.map(axum::body::Body::new)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // TCP_NODELAY on accepted connections, as the sidecar sets it.
    let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).unwrap());
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

/// `concurrency` requests per token, all started together.
async fn first_contact(http: &Http, addr: SocketAddr, tokens: &[String], concurrency: usize) {
    let requests = tokens
        .iter()
        .flat_map(|token| std::iter::repeat_n(token, concurrency))
        .map(|token| one(http, addr, token));
    futures::future::join_all(requests).await;
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

/// CPU seconds this process has used (user + system), from `/proc/self/stat`; `None` off Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Requests completed, over how long, and the CPU time the whole process spent meanwhile (`None` where
/// `/proc` is missing).
struct Load {
    requests: f64,
    seconds: f64,
    cpu_seconds: Option<f64>,
}

impl Load {
    fn none() -> Self {
        Self {
            requests: 0.0,
            seconds: 0.0,
            cpu_seconds: Some(0.0),
        }
    }

    fn add(&mut self, other: Load) {
        self.requests += other.requests;
        self.seconds += other.seconds;
        self.cpu_seconds = self.cpu_seconds.zip(other.cpu_seconds).map(|(a, b)| a + b);
    }

    fn rps(&self) -> f64 {
        self.requests / self.seconds
    }

    fn cpu_us_per_request(&self) -> Option<f64> {
        self.cpu_seconds.map(|cpu| cpu * 1e6 / self.requests)
    }
}

async fn throughput(
    http: &Http,
    addr: SocketAddr,
    tokens: &[String],
    concurrency: usize,
    duration: Duration,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds();
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
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed) as f64;
    let cpu = cpu_before
        .zip(cpu_seconds())
        .map(|(before, after)| after - before);
    futures::future::join_all(workers).await;
    Load {
        requests: count,
        seconds: elapsed,
        cpu_seconds: cpu,
    }
}

/// Rounds per throughput measurement.
const ROUNDS: u32 = 3;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Scenario {
    upstream: SocketAddr,
    floor: SocketAddr,
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
    // The sidecar's first requests arrive all at once, nothing cached yet: the exchange count printed at
    // the end shows single flight under load (one exchange per token), not a sequential warm-up.
    first_contact(http, s.proxy, tokens, concurrency).await;
    // Warm up all paths (connections, allocator).
    for token in tokens {
        latencies(http, s.proxy, token, 200).await;
    }
    latencies(http, s.upstream, &tokens[0], 500).await;
    latencies(http, s.floor, &tokens[0], 500).await;
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
    // The three paths take turns, three rounds each, so drift in the machine's load (other work, CPU
    // frequency) spreads over all of them instead of landing on whichever path runs last.
    let (mut direct, mut floor, mut proxied) = (Load::none(), Load::none(), Load::none());
    let round = Duration::from_secs(secs).div_f64(ROUNDS as f64);
    for _ in 0..ROUNDS {
        direct.add(throughput(http, s.upstream, tokens, concurrency, round).await);
        floor.add(throughput(http, s.floor, tokens, concurrency, round).await);
        proxied.add(throughput(http, s.proxy, tokens, concurrency, round).await);
    }
    println!(
        "throughput: {concurrency} concurrent clients, {secs} s per path in {ROUNDS} interleaved rounds, {} subject tokens",
        tokens.len()
    );
    for (path, load) in [("direct", &direct), ("bare proxy", &floor), ("sidecar", &proxied)] {
        let cpu = load.cpu_us_per_request().map_or(String::new(), |us| {
            format!("   {us:>6.1} µs CPU per request (all of it)")
        });
        println!("  {path:<10} {:>9.0} req/s{cpu}", load.rps());
    }
    println!(
        "  ratio      {:>9.1} % of direct",
        100.0 * proxied.rps() / direct.rps()
    );
    println!(
        "  ratio      {:>9.1} % of the bare proxy (the sidecar's cost beyond the hop itself)",
        100.0 * proxied.rps() / floor.rps()
    );
    if let (Some(d), Some(f), Some(p)) = (
        direct.cpu_us_per_request(),
        floor.cpu_us_per_request(),
        proxied.cpu_us_per_request(),
    ) {
        // Whole-process figures: at saturation they mirror the throughput ratio; unsaturated (the apps
        // with a service time) they are what the hop costs in CPU, kernel and both ends included.
        println!(
            "  CPU added per request (whole process): sidecar {:.1} µs, bare proxy {:.1} µs",
            p - d,
            f - d
        );
    }
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

    // The app's service time: none (CPU-bound: client, proxy and app share the 2 cores, so the extra
    // HTTP hop shows in full), then a pessimistic and a typical Kubernetes API round trip.
    let scenarios = [
        (
            Duration::ZERO,
            "trivial app (answers at once; client, proxy and app share 2 cores)",
        ),
        (
            Duration::from_millis(1),
            "app with 1 ms service time (a fast Kubernetes API call)",
        ),
        (
            Duration::from_millis(5),
            "app with 5 ms service time (a typical Kubernetes API call)",
        ),
    ];
    let mut dirs = Vec::new();
    for (index, (service_time, name)) in scenarios.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let app = upstream(service_time).await;
        let scenario = Scenario {
            upstream: app,
            floor: bare_proxy(app).await,
            proxy: sidecar(&dex, app, dir.path()).await,
        };
        dirs.push(dir);
        let sequential = if index == 0 { seq } else { 0 };
        run(name, &scenario, &http, &tokens, sequential, concurrency, secs).await;
    }
    println!(
        "exchanges at Dex: {} for {} tokens x {} sidecars, each hit first by {concurrency} concurrent requests per \
         token (target: one per token and sidecar = {})",
        dex.exchanges(),
        tokens.len(),
        dirs.len(),
        dirs.len() * tokens.len()
    );
}
