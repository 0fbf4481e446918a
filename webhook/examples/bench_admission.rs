//! Admission benchmark: 64 concurrent keep-alive TLS clients on loopback against the webhook server.
//!
//! Two modes. Saturation (closed loop): every client sends its next review as soon as the previous one
//! is answered, which gives the most reviews per second the server manages and, at 64 clients, mostly
//! queueing latency. Fixed offered rate (open loop): the 64 connections together send a fixed number
//! of reviews per second on a schedule, the way an API server offers them; a review's latency is taken
//! from its scheduled send time whenever its connection was still busy then, so a slow answer also
//! counts against the reviews it delayed (no coordinated omission).
//!
//! Measures a realistic pod review (`/mutate-pods`, a Deployment-created pod with managedFields that
//! gets the sidecar injected) and, as the floor, a no-op route on the same server that reads the review,
//! takes its uid and answers `allowed: true`. The server runs in a child process so its peak RSS
//! (VmHWM) is its own. Run:
//!
//! ```text
//! cargo run --profile perf -p muster-exchange-webhook --example bench_admission [-- SECONDS]
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::routing::post;
use axum_server::tls_rustls::RustlsConfig;
use muster_exchange_api::documents::parse_documents;
use muster_exchange_webhook::inject::InjectorSettings;
use muster_exchange_webhook::mcpservers::StaticMcpServers;
use muster_exchange_webhook::server::AppState;
use muster_exchange_webhook::server::{ADMISSION_BODY_LIMIT, router};
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use serde_json::{Value, json};

type BoxError = Box<dyn Error + Send + Sync>;

const CLIENTS: usize = 64;
/// Offered rates of the open-loop measurement, reviews per second over all 64 connections.
const OFFERED_RATES: [u32; 2] = [2_000, 5_000];
const HOST: &str = "muster-exchange-webhook.muster-exchange.svc";
const POD_REVIEW: &str = include_str!("../tests/fixtures/pod-create-generate-name.json");
const MCPSERVERS: &str = include_str!("../tests/fixtures/mcpservers.yaml");

fn main() -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if std::env::args().nth(1).as_deref() == Some("--serve") {
        return runtime.block_on(serve_until_stdin_closes());
    }
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    runtime.block_on(drive(Duration::from_secs(seconds)))
}

/// Child mode: serve the webhook router plus the no-op floor route; print port and CA, then wait.
/// One review POST; true when it succeeded and the whole answer was read.
async fn review(client: &reqwest::Client, url: &str, body: &Bytes) -> bool {
    match client
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
    {
        Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

async fn serve_until_stdin_closes() -> Result<(), BoxError> {
    let catalog = StaticMcpServers::from_documents(parse_documents(MCPSERVERS, "mcpservers.yaml")?)?;
    let settings = InjectorSettings {
        sidecar_image: "ghcr.io/giantswarm/muster-exchange:0.1.0".into(),
        default_mcpserver_namespace: None,
        central_issuer: None,
    };
    let state = Arc::new(AppState::new(settings, Arc::new(catalog)));
    // The floor gets the same layers as the admission routes, so the comparison is the work alone.
    let floor = axum::Router::new()
        .route("/allow-all", post(allow_all))
        .layer(axum::extract::DefaultBodyLimit::max(ADMISSION_BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    let app = router(state).merge(floor);
    let certificate = issue(
        &service_dns_names("muster-exchange-webhook", "muster-exchange"),
        Duration::from_secs(3600),
    )?;
    let tls = RustlsConfig::from_pem(
        certificate.cert_pem.into_bytes(),
        certificate.key_pem.into_bytes(),
    )
    .await?;
    let handle = axum_server::Handle::new();
    let server = tokio::spawn(
        axum_server::bind_rustls("127.0.0.1:0".parse::<SocketAddr>()?, tls)
            .handle(handle.clone())
            .serve(app.into_make_service()),
    );
    let addr = handle.listening().await.ok_or("the server did not start")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", addr.port())?;
    write!(stdout, "{}", certificate.ca_pem)?;
    writeln!(stdout, "END")?;
    stdout.flush()?;
    drop(stdout);
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
    handle.shutdown();
    server.await??;
    Ok(())
}

/// The floor: read the review, echo its uid, allow.
async fn allow_all(body: Bytes) -> Json<Value> {
    #[derive(serde::Deserialize)]
    struct Review {
        request: Request,
    }
    #[derive(serde::Deserialize)]
    struct Request {
        uid: String,
    }
    let uid = serde_json::from_slice::<Review>(&body)
        .map(|r| r.request.uid)
        .unwrap_or_default();
    Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": true}}),
    )
}

struct Figures {
    reviews_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

async fn drive(duration: Duration) -> Result<(), BoxError> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let (port, ca_pem) = read_handshake(&mut child)?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let clients = (0..CLIENTS)
        .map(|_| client(&ca_pem, addr))
        .collect::<Result<Vec<_>, _>>()?;
    let body = Bytes::from_static(POD_REVIEW.as_bytes());
    println!(
        "bench_admission: warming up, then {}s per measurement",
        duration.as_secs()
    );
    check_pod_review_is_patched(&clients[0], port, body.clone()).await?;

    compare(&clients, port, &body, Duration::from_secs(2)).await?; // warm-up
    let (floor, pods) = compare(&clients, port, &body, duration).await?;
    // Unloaded latency: one client, what a single API server request sees on an idle webhook.
    let (floor_single, pods_single) = compare(&clients[..1], port, &body, duration).await?;
    let mut offered = Vec::new();
    for rate in OFFERED_RATES {
        offered.push((
            rate,
            compare_offered(&clients, port, &body, rate, duration).await?,
        ));
    }
    let peak_rss_kib = vm_hwm_kib(child.id())?;
    drop(child.stdin.take());
    child.wait()?;

    println!(
        "bench_admission: up to {CLIENTS} keep-alive TLS clients, {}s per measurement, pod review {} bytes",
        duration.as_secs(),
        POD_REVIEW.len()
    );
    print_figures("64 clients  floor  /allow-all  ", &floor);
    print_figures("64 clients  review /mutate-pods", &pods);
    print_ratio(&pods, &floor);
    print_figures(" 1 client   floor  /allow-all  ", &floor_single);
    print_figures(" 1 client   review /mutate-pods", &pods_single);
    print_ratio(&pods_single, &floor_single);
    for (rate, (floor, pods)) in &offered {
        println!("offered {rate} reviews/s over {CLIENTS} connections (open loop, latency from schedule):");
        print_figures("64 clients  floor  /allow-all  ", floor);
        print_figures("64 clients  review /mutate-pods", pods);
    }
    println!("server peak RSS (VmHWM): {:.1} MiB", peak_rss_kib as f64 / 1024.0);
    Ok(())
}

fn read_handshake(child: &mut Child) -> Result<(u16, String), BoxError> {
    let stdout = child.stdout.take().ok_or("no stdout from the server")?;
    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = lines
        .next()
        .ok_or("the server printed nothing")??
        .trim()
        .parse()?;
    let mut ca_pem = String::new();
    for line in lines {
        let line = line?;
        if line == "END" {
            break;
        }
        ca_pem.push_str(&line);
        ca_pem.push('\n');
    }
    Ok((port, ca_pem))
}

fn client(ca_pem: &str, addr: SocketAddr) -> Result<reqwest::Client, BoxError> {
    let roots = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())?;
    // One HTTP/1.1 keep-alive connection per client, like one API server connection each.
    Ok(reqwest::Client::builder()
        .tls_certs_only(roots)
        .resolve(HOST, addr)
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()?)
}

async fn check_pod_review_is_patched(
    client: &reqwest::Client,
    port: u16,
    body: Bytes,
) -> Result<(), BoxError> {
    let answer: Value = client
        .post(format!("https://{HOST}:{port}/mutate-pods"))
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    if answer["response"]["allowed"] != true || answer["response"]["patch"].is_null() {
        return Err(format!(
            "the pod review was not injected: {}",
            answer["response"]["status"]
        )
        .into());
    }
    Ok(())
}

async fn run(
    path: &str,
    clients: &[reqwest::Client],
    port: u16,
    body: Bytes,
    duration: Duration,
) -> Result<Samples, BoxError> {
    let url = format!("https://{HOST}:{port}{path}");
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .map(|client| {
            let (url, body) = (url.clone(), body.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if review(&client, &url, &body).await {
                        latencies.push(sent.elapsed())
                    } else {
                        errors += 1
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    gather(tasks, started).await
}

/// Measures both routes in alternating slices, so background load on a shared machine hits both alike.
async fn compare(
    clients: &[reqwest::Client],
    port: u16,
    body: &Bytes,
    duration: Duration,
) -> Result<(Figures, Figures), BoxError> {
    const ROUNDS: u32 = 4;
    let (mut floor, mut pods) = (Samples::default(), Samples::default());
    for _ in 0..ROUNDS {
        floor.merge(run("/allow-all", clients, port, body.clone(), duration / ROUNDS).await?);
        pods.merge(run("/mutate-pods", clients, port, body.clone(), duration / ROUNDS).await?);
    }
    Ok((floor.figures(), pods.figures()))
}

/// Open loop: connection `i` sends at `start + offset_i + k * interval`, `interval` = CLIENTS / rate, the
/// offsets spreading the connections evenly over one interval. When a send time comes while the
/// connection is still waiting for its previous answer, the review goes out as soon as it can and its
/// latency counts from the scheduled time (the wait an API server would see). When the connection was
/// idle, latency counts from the actual send, so the client's own timer lateness (tokio timers tick in
/// milliseconds) is not charged to the server.
async fn run_offered(
    path: &str,
    clients: &[reqwest::Client],
    port: u16,
    body: Bytes,
    rate: u32,
    duration: Duration,
) -> Result<Samples, BoxError> {
    let url = format!("https://{HOST}:{port}{path}");
    let interval = Duration::from_secs_f64(clients.len() as f64 / f64::from(rate));
    let started = tokio::time::Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, client)| {
            let (url, body) = (url.clone(), body.clone());
            let offset = interval.mul_f64(i as f64 / clients.len() as f64);
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                let mut scheduled = started + offset;
                while scheduled < deadline {
                    let busy_at_schedule = tokio::time::Instant::now() > scheduled;
                    tokio::time::sleep_until(scheduled).await;
                    let sent = if busy_at_schedule {
                        scheduled
                    } else {
                        tokio::time::Instant::now()
                    };
                    if review(&client, &url, &body).await {
                        latencies.push(sent.elapsed())
                    } else {
                        errors += 1
                    }
                    scheduled += interval;
                }
                (latencies, errors)
            })
        })
        .collect();
    gather(tasks, started.into_std()).await
}

/// [`compare`] at a fixed offered rate.
async fn compare_offered(
    clients: &[reqwest::Client],
    port: u16,
    body: &Bytes,
    rate: u32,
    duration: Duration,
) -> Result<(Figures, Figures), BoxError> {
    const ROUNDS: u32 = 4;
    let (mut floor, mut pods) = (Samples::default(), Samples::default());
    for _ in 0..ROUNDS {
        let slice = duration / ROUNDS;
        floor.merge(run_offered("/allow-all", clients, port, body.clone(), rate, slice).await?);
        pods.merge(run_offered("/mutate-pods", clients, port, body.clone(), rate, slice).await?);
    }
    Ok((floor.figures(), pods.figures()))
}

/// Waits for every client's latencies and error count; `seconds` from `started`.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
    started: Instant,
) -> Result<Samples, BoxError> {
    let mut samples = Samples::default();
    for task in tasks {
        let (latencies, errors) = task.await?;
        samples.latencies.extend(latencies);
        samples.errors += errors;
    }
    samples.seconds = started.elapsed().as_secs_f64();
    Ok(samples)
}

#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    errors: usize,
    seconds: f64,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.seconds += other.seconds;
    }

    fn figures(mut self) -> Figures {
        self.latencies.sort_unstable();
        let count = self.latencies.len();
        let at = |q: f64| {
            self.latencies
                .get(((count as f64 * q) as usize).min(count.saturating_sub(1)))
                .copied()
        };
        Figures {
            reviews_per_second: count as f64 / self.seconds.max(f64::EPSILON),
            p50: at(0.50).unwrap_or_default(),
            p99: at(0.99).unwrap_or_default(),
            errors: self.errors,
        }
    }
}

fn print_ratio(review: &Figures, floor: &Figures) {
    println!(
        "            ratio: throughput {:.1} % of floor, p99 {:.2}x floor",
        100.0 * review.reviews_per_second / floor.reviews_per_second,
        review.p99.as_secs_f64() / floor.p99.as_secs_f64()
    );
}

fn print_figures(label: &str, f: &Figures) {
    println!(
        "{label}: {:>9.0} reviews/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
        f.reviews_per_second,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.errors
    );
}

fn vm_hwm_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc status")?;
    Ok(line.split_whitespace().nth(1).ok_or("malformed VmHWM")?.parse()?)
}
