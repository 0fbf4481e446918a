//! Soak: the webhook (its own process, started as `muster-exchange webhook --tls-cert-file … --mcpservers
//! FILE` starts it, so its memory is its own) under crafted reviews and slow bodies, next to a
//! legitimate reviewer.
//!
//! At the same time:
//! - CRAFTED pod reviews (default 10 000), 32 at a time: half with a `request.namespace` that is no
//!   namespace name (random, up to 2 000 characters), half with a distinct valid namespace each
//!   (`ns-<i>`): the first must be 400, neither may grow the metrics or the render cache;
//! - SLOW bodies (default 64 connections): a review body of announced size 4 MiB sent at 1 KiB every
//!   100 ms, each must be cut off after the request timeout (10 s);
//! - SILENT connections (default 200) that never send a byte: closed after the header-read timeout;
//! - one legitimate reviewer sends the real pod review one after the other: latency per review;
//! - the webhook's VmRSS is sampled from `/proc/<pid>/status` every 20 ms.
//!
//! `cargo run -p muster-exchange-webhook --example soak_webhook [-- CRAFTED SLOW SILENT]`. Prints
//! figures; asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use muster_exchange_webhook::cli::{WebhookArgs, run_webhook};
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

const SERVICE: &str = "muster-exchange-webhook.muster-exchange.svc";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child-webhook") {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = PathBuf::from(&args[3]);
        let webhook = WebhookArgs {
            listen: args[2].parse().unwrap(),
            sidecar_image: "ghcr.io/giantswarm/muster-exchange:soak".into(),
            mcpserver_namespace: None,
            mcpservers: Some(fixture("mcpservers.yaml").to_string_lossy().into_owned()),
            central_issuer: None,
            tls_cert_file: Some(dir.join("tls.crt")),
            tls_key_file: Some(dir.join("tls.key")),
            tls_reload_interval: Duration::from_secs(10),
            client_ca_file: None,
            self_signed: false,
            service_name: "muster-exchange-webhook".into(),
            service_namespace: "muster-exchange".into(),
            mutating_webhook_configuration: "muster-exchange".into(),
            validating_webhook_configuration: "muster-exchange".into(),
            self_signed_ca_secret: "muster-exchange-webhook-ca".into(),
            self_signed_validity: Duration::from_secs(720 * 3600),
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(1),
        };
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_webhook(webhook));
    }
    let numbers: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let crafted = numbers.first().copied().unwrap_or(10_000);
    let slow = numbers.get(1).copied().unwrap_or(64);
    let silent = numbers.get(2).copied().unwrap_or(200);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(parent(crafted, slow, silent));
    ExitCode::SUCCESS
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A namespace string that is no namespace name, `i`-th of its kind.
fn crafted_namespace(i: usize) -> String {
    match i % 4 {
        0 => format!("Crafted_{i}"),
        1 => format!("ns-{i}-{}", "x".repeat(64 + i % 2000)),
        2 => format!("../{i}"),
        _ => format!("ns {i}\n"),
    }
}

/// A slow body: 4 MiB announced, 1 KiB every 100 ms, until the webhook gives up. How long it lasted
/// and the final status (or transport error).
async fn slow_body(client: reqwest::Client, url: String) -> (Duration, String) {
    let started = Instant::now();
    let chunks = futures::stream::unfold(0usize, |sent| async move {
        if sent >= 4096 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(vec![b' '; 1024]), sent + 1))
    });
    let result = client
        .post(url)
        .header("content-type", "application/json")
        .header("content-length", (4 * 1024 * 1024).to_string())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    let outcome = match result {
        Ok(r) => r.status().as_u16().to_string(),
        Err(_) => "connection closed".into(),
    };
    (started.elapsed(), outcome)
}

async fn parent(crafted: usize, slow: usize, silent: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let names = service_dns_names("muster-exchange-webhook", "muster-exchange");
    let certificate = issue(&names, Duration::from_secs(3600)).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &certificate.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &certificate.key_pem).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .arg("child-webhook")
        .arg(addr.to_string())
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let webhook = Proc(child);
    let pid = webhook.0.id();
    // One client (connection pool) per attacker and one for the legitimate reviewer, so nobody shares an
    // HTTP/2 connection and its stream limit with anyone else.
    let new_client = || {
        let roots = reqwest::Certificate::from_pem_bundle(certificate.ca_pem.as_bytes()).unwrap();
        reqwest::Client::builder()
            .tls_certs_only(roots)
            .resolve(SERVICE, addr)
            .build()
            .unwrap()
    };
    let client = new_client();
    let base = format!("https://{SERVICE}:{port}");
    for _ in 0..500 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let review: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("pod-create-generate-name.json")).unwrap())
            .unwrap();
    let url = format!("{base}/mutate-pods");
    let first = client.post(&url).json(&review).send().await.unwrap();
    println!("webhook pid {pid}; legitimate review: {}", first.status());
    let rss_start = rss_kib(pid).unwrap_or(0);

    let done = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(rss_start));
    let sampler = {
        let (done, max_rss) = (done.clone(), max_rss.clone());
        tokio::spawn(async move {
            let mut samples = 0u64;
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    max_rss.fetch_max(kib, Ordering::Relaxed);
                    samples += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        })
    };
    let legit = {
        let (done, client, url, review) = (done.clone(), new_client(), url.clone(), review.clone());
        // Its own thread and runtime: its latency is the server's, not this process's attack tasks'.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut latencies = Vec::new();
                let mut failures = 0usize;
                while !done.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match client.post(&url).json(&review).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            latencies.push(started.elapsed());
                        }
                        _ => failures += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (latencies, failures)
            })
        })
    };

    let attack_started = Instant::now();
    let silent_tasks: Vec<_> = (0..silent)
        .map(|_| {
            tokio::spawn(async move {
                let started = Instant::now();
                let mut stream = TcpStream::connect(addr).await.ok()?;
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf).await;
                Some(started.elapsed())
            })
        })
        .collect();
    let slow_tasks: Vec<_> = (0..slow)
        .map(|_| tokio::spawn(slow_body(new_client(), url.clone())))
        .collect();
    let statuses = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<String, usize>::new(),
    ));
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (client, url, review, statuses, next) = (
                client.clone(),
                url.clone(),
                review.clone(),
                statuses.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= crafted {
                        return;
                    }
                    let mut body = review.clone();
                    let (kind, namespace) = if i.is_multiple_of(2) {
                        ("crafted namespace", crafted_namespace(i))
                    } else {
                        ("distinct valid namespace", format!("ns-{i}"))
                    };
                    body["request"]["namespace"] = json!(namespace);
                    body["request"]["object"]["metadata"]["namespace"] = json!(namespace);
                    body["request"]["uid"] = json!(format!("soak-{i}"));
                    let key = match client.post(&url).json(&body).send().await {
                        Ok(r) => format!("{kind}: {}", r.status().as_u16()),
                        Err(_) => format!("{kind}: transport error"),
                    };
                    *statuses.lock().unwrap().entry(key).or_default() += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let crafted_elapsed = attack_started.elapsed();
    let mut slow_durations = Vec::new();
    let mut slow_outcomes = std::collections::BTreeMap::<String, usize>::new();
    for task in slow_tasks {
        let (d, outcome) = task.await.unwrap();
        slow_durations.push(d);
        *slow_outcomes.entry(outcome).or_default() += 1;
    }
    let mut silent_closed: Vec<Duration> = Vec::new();
    for task in silent_tasks {
        if let Some(d) = task.await.unwrap() {
            silent_closed.push(d);
        }
    }
    done.store(true, Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    let (mut latencies, failures) = legit.join().unwrap();
    latencies.sort();
    slow_durations.sort();
    silent_closed.sort();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("muster_exchange_webhook_reviews_total"))
        .count();

    println!("\n== crafted reviews ==");
    println!(
        "{crafted} reviews, 32 at a time, in {:.2} s",
        crafted_elapsed.as_secs_f64()
    );
    for (answer, count) in statuses.lock().unwrap().iter() {
        println!("  {count:>6}  {answer}");
    }
    println!("reviews_total series afterwards: {series}");
    println!("\n== slow bodies (4 MiB announced, 1 KiB per 100 ms) ==");
    for (outcome, count) in &slow_outcomes {
        println!("  {count:>6}  {outcome}");
    }
    println!(
        "cut off after min {:.2} s, median {:.2} s, max {:.2} s",
        percentile(&slow_durations, 0.0).as_secs_f64(),
        percentile(&slow_durations, 0.5).as_secs_f64(),
        percentile(&slow_durations, 1.0).as_secs_f64()
    );
    println!("\n== silent connections ==");
    println!(
        "{} of {silent} closed by the webhook; after min {:.2} s, median {:.2} s, max {:.2} s",
        silent_closed.len(),
        percentile(&silent_closed, 0.0).as_secs_f64(),
        percentile(&silent_closed, 0.5).as_secs_f64(),
        percentile(&silent_closed, 1.0).as_secs_f64()
    );
    println!("\n== legitimate reviewer during the attack ==");
    println!(
        "{} reviews, {failures} failed; p50 {}, p99 {}, max {}",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );
    println!("\n== webhook memory (VmRSS, {samples} samples every 20 ms) ==");
    println!(
        "start {:.1} MiB, max {:.1} MiB, end {:.1} MiB",
        rss_start as f64 / 1024.0,
        max_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        rss_kib(pid).unwrap_or(0) as f64 / 1024.0
    );
    drop(webhook);
}
