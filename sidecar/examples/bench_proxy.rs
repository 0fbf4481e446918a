//! Benchmark: the sidecar's proxy hop next to nginx and HAProxy (when installed) in the same run, same app,
//! same load, cache hits only. Every proxy and the app run as their own processes, so each proxy's CPU
//! time is its own (utime + stime from `/proc/<pid>/stat`, worker processes included).
//!
//! Per app (answers at once; waits 1 ms with 0.5-1.5x spread) and per path (direct, sidecar, nginx,
//! HAProxy), in interleaved rounds:
//! - fixed rate: an open-loop generator sends RATE requests per second on a fixed schedule and measures
//!   latency from each request's scheduled time (latency-corrected): p50, p99 and the proxy's CPU per
//!   request;
//! - saturated: `wrk` with CONNECTIONS keep-alive connections: throughput and CPU per request.
//!
//! Each round prints how much CPU other processes used meanwhile (`/proc/stat` minus this benchmark's
//! processes); the summary uses only rounds where that stayed under 5 % of the machine, when there are any.
//!
//! `cargo run --profile perf -p muster-exchange-sidecar --example bench_proxy [-- RATE FIXED_SECS SAT_SECS ROUNDS CONNECTIONS]`
//! (defaults 2000 4 3 3 32). `BENCH_PATHS=direct,sidecar` limits the paths, `BENCH_APPS=trivial` the apps,
//! `BENCH_SIDECAR_WRAPPER="valgrind --tool=callgrind"` runs the sidecar under a profiler,
//! `BENCH_SIDECAR_THREADS=N` passes `--threads N`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use muster_exchange_dex::jwt::unsigned_jwt;
use muster_exchange_dex::test_double::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DexDouble};
use serde_json::json;

type Http = Client<HttpConnector, Empty<Bytes>>;

/// A round counts for the summary when other processes used less than this share of the machine.
const QUIET: f64 = 0.05;
/// The base64 CA and API server the sidecar forwards (from the bench kubeconfig); nginx and HAProxy send
/// the same values as static headers.
const CA_DATA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";
const API_SERVER: &str = "https://api.example:6443";
const BODY: &str = "{\"jsonrpc\":\"2.0\",\"result\":{}}";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child-app") => child_app(args[2].parse().unwrap(), args[3].parse().unwrap()),
        Some("child-sidecar") => child_sidecar(PathBuf::from(&args[2])),
        _ => {
            let numbers: Vec<u64> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
            let settings = Settings {
                rate: numbers.first().copied().unwrap_or(2000),
                fixed: Duration::from_secs(numbers.get(1).copied().unwrap_or(4)),
                saturated: Duration::from_secs(numbers.get(2).copied().unwrap_or(3)),
                rounds: numbers.get(3).copied().unwrap_or(3) as usize,
                connections: numbers.get(4).copied().unwrap_or(32) as usize,
            };
            // Timer slack 1 µs (inherited by the pacer thread): the schedule is kept to a few µs.
            let _ = std::fs::write("/proc/self/timerslack_ns", "1000");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(parent(settings));
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Child processes.

/// The app: answers at once, or after 0.5 to 1.5 times `service_us` (a fixed sequence with that mean: API
/// calls vary, and equal waits lock closed-loop clients into bursts). The wait is a thread sleep with 1 µs
/// timer slack on a blocking thread, not tokio's millisecond timer wheel, so "1 ms" is 1 ms.
fn child_app(port: u16, service_us: u64) {
    let _ = std::fs::write("/proc/self/timerslack_ns", "1000");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let sequence = Arc::new(AtomicU64::new(0));
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let sequence = sequence.clone();
            let service = hyper::service::service_fn(move |_request: http::Request<Incoming>| {
                let step = sequence
                    .fetch_add(1, Ordering::Relaxed)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    >> 54; // 1024 steps over the range
                async move {
                    if service_us > 0 {
                        let wait = Duration::from_micros(service_us).mul_f64(0.5 + step as f64 / 1024.0);
                        tokio::task::spawn_blocking(move || std::thread::sleep(wait))
                            .await
                            .unwrap();
                    }
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}

/// The sidecar, started exactly as `muster-exchange sidecar --config FILE` starts it.
fn child_sidecar(config: PathBuf) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = muster_exchange_sidecar::cli::SidecarArgs {
        config: Some(config),
        listen: None,
        exchange_timeout: std::time::Duration::from_secs(10),
        shutdown_grace: std::time::Duration::from_secs(1),
        threads: std::env::var("BENCH_SIDECAR_THREADS")
            .ok()
            .and_then(|t| t.parse().ok()),
    };
    muster_exchange_sidecar::cli::run(args);
}

// ---------------------------------------------------------------------------------------------------
// Processes and their CPU time.

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/proc/<pid>/stat` fields after the command name: state is index 0, ppid 1, utime 11, stime 12,
/// cutime 13, cstime 14.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat.rsplit_once(')')?.1.split_whitespace();
    Some(fields.map(|f| f.parse().unwrap_or(0)).collect())
}

/// Every process: pid -> (ppid, utime + stime).
fn process_table() -> HashMap<u32, (u32, u64)> {
    let mut table = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(f) = stat_fields(pid) {
            table.insert(pid, (f[1] as u32, f[11] + f[12]));
        }
    }
    table
}

/// CPU ticks of `root` and all its descendants (nginx's and HAProxy's workers).
fn tree_ticks(table: &HashMap<u32, (u32, u64)>, root: u32) -> u64 {
    let mut total = table.get(&root).map_or(0, |(_, t)| *t);
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, (ppid, ticks)) in table {
            if *ppid == parent {
                total += ticks;
                frontier.push(*pid);
            }
        }
    }
    total
}

/// Resident memory of `root` and its descendants, KiB.
fn tree_rss_kib(root: u32) -> u64 {
    let table = process_table();
    let mut pids = vec![root];
    let mut index = 0;
    while index < pids.len() {
        let parent = pids[index];
        pids.extend(
            table
                .iter()
                .filter(|(_, (ppid, _))| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// Ticks of the whole machine: (user + nice + system, all states).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    (cpu[0] + cpu[1] + cpu[2], cpu.iter().take(8).sum())
}

/// A snapshot to measure one round: the proxy's CPU and everyone else's.
struct Snapshot {
    proxy: u64,
    ours: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl Snapshot {
    fn take(proxy: Option<u32>) -> Self {
        let table = process_table();
        let me = std::process::id();
        // This process, its reaped children (wrk) and its live descendants (app, proxies).
        let own = stat_fields(me).map_or(0, |f| f[13] + f[14]);
        let (machine_busy, machine_total) = machine_ticks();
        Self {
            proxy: proxy.map_or(0, |pid| tree_ticks(&table, pid)),
            ours: tree_ticks(&table, me) + own,
            machine_busy,
            machine_total,
        }
    }

    /// (proxy CPU seconds, share of the machine other processes used).
    fn since(&self, before: &Snapshot) -> (f64, f64) {
        let proxy = (self.proxy - before.proxy) as f64 / 100.0; // USER_HZ
        let others = (self.machine_busy - before.machine_busy) as f64 - (self.ours - before.ours) as f64;
        let total = (self.machine_total - before.machine_total).max(1) as f64;
        (proxy, (others / total).max(0.0))
    }
}

struct Proc {
    child: Child,
    /// Stop with SIGTERM (nginx's master then stops its workers) rather than SIGKILL.
    term: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.term {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(command: &mut Command, term: bool) -> Proc {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Proc { child, term }
}

async fn wait_listening(port: u16) {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing listens on port {port}");
}

fn installed(program: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.exists())
}

// ---------------------------------------------------------------------------------------------------
// The paths.

struct Path_ {
    name: &'static str,
    port: u16,
    process: Option<Proc>,
}

fn start_sidecar(dex: &DexDouble, app_port: u16, dir: &Path) -> (u16, Proc) {
    std::fs::write(dir.join("client-id"), DEFAULT_CLIENT_ID).unwrap();
    std::fs::write(dir.join("client-secret"), DEFAULT_CLIENT_SECRET).unwrap();
    std::fs::write(dir.join("ca.pem"), dex.ca_pem()).unwrap();
    let kubeconfig = format!(
        "current-context: c\ncontexts:\n- name: c\n  context:\n    cluster: c\nclusters:\n- name: c\n  cluster:\n    \
         server: {API_SERVER}\n    certificate-authority-data: {CA_DATA}\n"
    );
    std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();
    let port = free_port();
    let config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "upstream": format!("http://127.0.0.1:{app_port}"),
        "clusters": [{"name": "bench", "dexTokenEndpoint": dex.token_endpoint(), "connectorId": "central",
            "credentialsDir": dir, "kubeconfigFile": dir.join("kubeconfig"), "caFile": dir.join("ca.pem")}],
    });
    let config_file = dir.join("sidecar.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let me = std::env::current_exe().unwrap();
    let mut command = match std::env::var("BENCH_SIDECAR_WRAPPER") {
        Ok(wrapper) if !wrapper.trim().is_empty() => {
            let mut words = wrapper.split_whitespace();
            let mut command = Command::new(words.next().unwrap());
            command.args(words).arg(me);
            command
        }
        _ => Command::new(me),
    };
    command.arg("child-sidecar").arg(config_file);
    (port, spawn(&mut command, true))
}

/// The static identity nginx and HAProxy send: an `Authorization` and the three `kubernetes-*` headers
/// with values as long as the sidecar's.
fn static_headers(exchanged: &str) -> [(&'static str, String); 4] {
    [
        ("Authorization", format!("Bearer {exchanged}")),
        ("kubernetes-authorization", format!("Bearer {exchanged}")),
        ("kubernetes-server", API_SERVER.to_string()),
        ("kubernetes-certificate-authority-data", CA_DATA.to_string()),
    ]
}

fn start_nginx(app_port: u16, dir: &Path, exchanged: &str) -> Option<(u16, Proc)> {
    let binary = installed("nginx")?;
    let port = free_port();
    let mut headers = String::new();
    for (name, value) in static_headers(exchanged) {
        writeln!(headers, "      proxy_set_header {name} \"{value}\";").unwrap();
    }
    let d = dir.display();
    // One worker per core (worker_processes auto), keep-alive to the app, responses streamed like the
    // sidecar's (proxy_buffering off), no access log.
    let config = format!(
        "daemon off;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream app {{ server 127.0.0.1:{app_port}; keepalive 64; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n\
         {headers}    }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let mut command = Command::new(binary);
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .stderr(Stdio::null());
    Some((port, spawn(&mut command, true)))
}

fn start_haproxy(app_port: u16, dir: &Path, exchanged: &str) -> Option<(u16, Proc)> {
    let binary = installed("haproxy")?;
    let port = free_port();
    let mut headers = String::new();
    for (name, value) in static_headers(exchanged) {
        writeln!(headers, "  http-request set-header {name} \"{value}\"").unwrap();
    }
    // One thread per core (HAProxy's default), keep-alive both ways.
    let config = format!(
        "global\n  maxconn 4096\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  \
         timeout server 60s\n\nfrontend bench\n  bind 127.0.0.1:{port}\n  default_backend app\n\n\
         backend app\n{headers}  server app 127.0.0.1:{app_port}\n"
    );
    std::fs::write(dir.join("haproxy.cfg"), config).unwrap();
    let mut command = Command::new(binary);
    command
        .arg("-db")
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .stderr(Stdio::null());
    Some((port, spawn(&mut command, true)))
}

// ---------------------------------------------------------------------------------------------------
// Load.

async fn one(http: &Http, port: u16, token: &str) -> Duration {
    let request = http::Request::get(format!("http://127.0.0.1:{port}/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .unwrap();
    let started = Instant::now();
    let response = http.request(request).await.unwrap();
    assert_eq!(response.status(), 200, "port {port}");
    response.into_body().collect().await.unwrap();
    started.elapsed()
}

/// Open loop: request `i` is due at `start + i / rate` whatever happened before; latency counts from
/// that time. A pacer thread sleeps until each due time and hands the request to a sender runtime.
fn fixed_rate(port: u16, token: &str, rate: u64, duration: Duration) -> (Vec<Duration>, Vec<Duration>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    let count = (rate as f64 * duration.as_secs_f64()) as usize;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let handle = runtime.handle().clone();
    let token = token.to_string();
    let lateness = {
        let latencies = latencies.clone();
        std::thread::spawn(move || {
            let period = Duration::from_secs(1).div_f64(rate as f64);
            let start = Instant::now() + Duration::from_millis(20);
            let mut lateness = Vec::with_capacity(count);
            for i in 0..count {
                let due = start + period.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                lateness.push(Instant::now() - due);
                let (http, token, latencies, done) =
                    (http.clone(), token.clone(), latencies.clone(), done_tx.clone());
                handle.spawn(async move {
                    let request = http::Request::get(format!("http://127.0.0.1:{port}/mcp"))
                        .header("authorization", format!("Bearer {token}"))
                        .body(Empty::new())
                        .unwrap();
                    let response = http.request(request).await.unwrap();
                    assert_eq!(response.status(), 200, "port {port}");
                    response.into_body().collect().await.unwrap();
                    latencies.lock().unwrap().push(due.elapsed());
                    drop(done);
                });
            }
            lateness
        })
    };
    // The channel closes when the pacer and every request are done.
    runtime.block_on(async move { while done_rx.recv().await.is_some() {} });
    let lateness = lateness.join().unwrap();
    let latencies = std::mem::take(&mut *latencies.lock().unwrap());
    (latencies, lateness)
}

/// `wrk` with `connections` connections for `duration`: requests completed and seconds.
fn saturated(port: u16, token: &str, connections: usize, duration: Duration) -> (f64, f64) {
    let output = Command::new("wrk")
        .arg("-t2")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://127.0.0.1:{port}/mcp"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors on port {port}: {text}");
    // "  123456 requests in 3.00s, 12.34MB read"
    let line = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .unwrap_or_else(|| panic!("wrk: {text}"));
    let mut words = line.split_whitespace();
    let requests: f64 = words.next().unwrap().parse().unwrap();
    let seconds: f64 = words
        .nth(2)
        .unwrap()
        .trim_end_matches(',')
        .trim_end_matches('s')
        .parse()
        .unwrap();
    (requests, seconds)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
}

// ---------------------------------------------------------------------------------------------------
// Rounds and the summary.

#[derive(Default)]
struct Figures {
    fixed_requests: f64,
    fixed_cpu: f64,
    fixed_latencies: Vec<Duration>,
    saturated_requests: f64,
    saturated_seconds: f64,
    saturated_cpu: f64,
    rss_kib: u64,
    rounds: usize,
}

struct Settings {
    rate: u64,
    fixed: Duration,
    saturated: Duration,
    rounds: usize,
    connections: usize,
}

async fn bench_app(
    label: &str,
    service_us: u64,
    dex: &DexDouble,
    tokens: &[String],
    exchanged: &str,
    s: &Settings,
) {
    let dir = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let me = std::env::current_exe().unwrap();
    let _app = spawn(
        Command::new(&me)
            .arg("child-app")
            .arg(app_port.to_string())
            .arg(service_us.to_string()),
        false,
    );
    wait_listening(app_port).await;
    let wanted = std::env::var("BENCH_PATHS").unwrap_or_else(|_| "direct,sidecar,nginx,haproxy".into());
    let mut paths = Vec::new();
    for name in ["direct", "sidecar", "nginx", "haproxy"] {
        if !wanted.split(',').any(|w| w.trim() == name) {
            continue;
        }
        let started = match name {
            "direct" => Some((app_port, None)),
            "sidecar" => Some(start_sidecar(dex, app_port, dir.path())).map(|(p, c)| (p, Some(c))),
            "nginx" => start_nginx(app_port, dir.path(), exchanged).map(|(p, c)| (p, Some(c))),
            _ => start_haproxy(app_port, dir.path(), exchanged).map(|(p, c)| (p, Some(c))),
        };
        match started {
            Some((port, process)) => {
                wait_listening(port).await;
                paths.push(Path_ { name, port, process });
            }
            None => println!("{name}: not installed (apt-get install -y {name}); skipped"),
        }
    }
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build_http();
    // The sidecar's first requests arrive all at once, nothing cached: the exchange count printed at the
    // end shows single flight under load (one exchange per token).
    if let Some(sidecar) = paths.iter().find(|p| p.name == "sidecar") {
        let first = tokens
            .iter()
            .flat_map(|t| std::iter::repeat_n(t, s.connections))
            .map(|t| one(&http, sidecar.port, t));
        futures::future::join_all(first).await;
    }
    // Warm-up: connections, caches, allocators.
    for path in &paths {
        let token = tokens[0].clone();
        let port = path.port;
        tokio::task::spawn_blocking(move || saturated(port, &token, 32, Duration::from_secs(1)))
            .await
            .unwrap();
    }

    println!("== {label}");
    println!(
        "{} rounds; per round and path: {} s at {} req/s offered (open loop, latency from the schedule), then \
         {} s of wrk with {} connections",
        s.rounds,
        s.fixed.as_secs(),
        s.rate,
        s.saturated.as_secs(),
        s.connections
    );
    let mut figures: HashMap<&str, (Figures, Figures)> = HashMap::new(); // (quiet rounds, all rounds)
    for round in 1..=s.rounds {
        for path in &paths {
            let pid = path.process.as_ref().map(|p| p.child.id());
            let (port, token, rate, fixed) = (path.port, tokens[0].clone(), s.rate, s.fixed);
            let before = Snapshot::take(pid);
            let (mut latencies, mut lateness) =
                tokio::task::spawn_blocking(move || fixed_rate(port, &token, rate, fixed))
                    .await
                    .unwrap();
            let (fixed_cpu, fixed_foreign) = Snapshot::take(pid).since(&before);
            let fixed_requests = latencies.len() as f64;

            let (token, connections, duration) = (tokens[0].clone(), s.connections, s.saturated);
            let before = Snapshot::take(pid);
            let (requests, seconds) =
                tokio::task::spawn_blocking(move || saturated(port, &token, connections, duration))
                    .await
                    .unwrap();
            let (saturated_cpu, saturated_foreign) = Snapshot::take(pid).since(&before);
            let rss = pid.map_or(0, tree_rss_kib);

            latencies.sort();
            lateness.sort();
            let foreign = fixed_foreign.max(saturated_foreign);
            let quiet = foreign < QUIET;
            let per = |cpu: f64, n: f64| {
                if pid.is_some() {
                    format!("{:>6.1}", cpu * 1e6 / n)
                } else {
                    "     -".into()
                }
            };
            println!(
                "  round {round} {:<8} @{}/s p50 {:>7.0} µs p99 {:>7.0} µs CPU {} µs/req | {:>7.0} req/s CPU {} µs/req | \
                 other load {:>4.1} % / {:>4.1} %{} | pacer late p99 {:.0} µs",
                path.name,
                s.rate,
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                per(fixed_cpu, fixed_requests),
                requests / seconds,
                per(saturated_cpu, requests),
                fixed_foreign * 100.0,
                saturated_foreign * 100.0,
                if quiet {
                    ""
                } else {
                    " (other load: left out when quiet rounds exist)"
                },
                percentile(&lateness, 0.99),
            );
            let entry = figures.entry(path.name).or_default();
            for (target, take) in [(&mut entry.0, quiet), (&mut entry.1, true)] {
                if take {
                    target.fixed_requests += fixed_requests;
                    target.fixed_cpu += fixed_cpu;
                    target.fixed_latencies.extend(&latencies);
                    target.saturated_requests += requests;
                    target.saturated_seconds += seconds;
                    target.saturated_cpu += saturated_cpu;
                    target.rss_kib = target.rss_kib.max(rss);
                    target.rounds += 1;
                }
            }
        }
    }
    let chosen: HashMap<&str, &Figures> = figures
        .iter()
        .map(|(name, (quiet, all))| (*name, if quiet.rounds > 0 { quiet } else { all }))
        .collect();
    let rps = |f: &Figures| f.saturated_requests / f.saturated_seconds;
    println!("summary ({label}): quiet rounds only where there are any");
    println!(
        "  {:<8} {:>6} {:>10} {:>10} {:>14} {:>10} {:>9} {:>9} {:>14} {:>8}",
        "path", "rounds", "p50", "p99", "CPU µs/req", "req/s", "% direct", "% nginx", "CPU µs/req", "RSS"
    );
    println!(
        "  {:<8} {:>6} {:>10} {:>10} {:>14} {:>10} {:>9} {:>9} {:>14} {:>8}",
        "",
        "",
        format!("@{}/s", s.rate),
        format!("@{}/s", s.rate),
        format!("@{}/s", s.rate),
        format!("{} conns", s.connections),
        "",
        "",
        "saturated",
        "MiB"
    );
    for path in &paths {
        let f = chosen[path.name];
        let mut latencies = f.fixed_latencies.clone();
        latencies.sort();
        let ratio = |other: &str| {
            chosen
                .get(other)
                .map_or("-".to_string(), |o| format!("{:.1}", 100.0 * rps(f) / rps(o)))
        };
        let has_cpu = path.process.is_some();
        let cpu = |cpu: f64, n: f64| {
            if has_cpu {
                format!("{:.1}", cpu * 1e6 / n)
            } else {
                "-".into()
            }
        };
        println!(
            "  {:<8} {:>6} {:>10.0} {:>10.0} {:>14} {:>10.0} {:>9} {:>9} {:>14} {:>8}",
            path.name,
            format!("{}/{}", f.rounds, s.rounds),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            cpu(f.fixed_cpu, f.fixed_requests),
            rps(f),
            ratio("direct"),
            ratio("nginx"),
            cpu(f.saturated_cpu, f.saturated_requests),
            if has_cpu {
                format!("{:.1}", f.rss_kib as f64 / 1024.0)
            } else {
                "-".into()
            },
        );
    }
    drop(paths);
}

async fn parent(s: Settings) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if installed("wrk").is_none() {
        panic!("wrk is needed for the saturated load: apt-get install -y wrk");
    }
    let dex = DexDouble::start().await.unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let tokens: Vec<String> = (0..4)
        .map(|i| unsigned_jwt(&json!({"sub": format!("user-{i}"), "exp": exp, "groups": []})))
        .collect();
    // As long as a Dex ID token, for the static headers of nginx and HAProxy.
    let exchanged =
        unsigned_jwt(&json!({"sub": "exchanged-user", "exp": exp, "aud": "bench", "iss": dex.issuer()}));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "subject tokens: {} bytes each; load average at start: {}",
        tokens[0].len(),
        load.trim()
    );
    let wanted = std::env::var("BENCH_APPS").unwrap_or_else(|_| "trivial,1ms".into());
    for (name, label, service_us) in [
        (
            "trivial",
            "trivial app (answers at once; load generator, proxy and app share 2 cores)",
            0,
        ),
        (
            "1ms",
            "app with 1 ms service time (0.5-1.5 ms, precise wait)",
            1000,
        ),
    ] {
        if wanted.split(',').any(|w| w.trim() == name) {
            bench_app(label, service_us, &dex, &tokens, &exchanged, &s).await;
        }
    }
    println!(
        "exchanges at Dex: {} (target: one per token and sidecar start, each first hit by concurrent requests)",
        dex.exchanges()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
}
