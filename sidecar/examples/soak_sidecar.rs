//! Soak: the sidecar (its own process, started as `muster-exchange sidecar --config FILE` starts it, so
//! its memory is its own) under an attack without any valid token, next to one legitimate user.
//!
//! At the same time:
//! - SLOW connections (default 300) send a partial request head and then one more header byte every
//!   second: each must be closed by the sidecar after its header-read timeout (10 s);
//! - GARBAGE requests (default 10 000), 64 at a time, carry a distinct token each: opaque strings,
//!   malformed JWTs, expired JWTs, JWTs without `exp` and JWTs of a foreign issuer (the config names the
//!   central issuer): none may reach the Dex double;
//! - one legitimate user sends requests one after the other with a valid central token (exchanged once,
//!   then cached): its latency is measured per request;
//! - the sidecar's VmRSS is sampled from `/proc/<pid>/status` every 20 ms.
//!
//! `cargo run -p muster-exchange-sidecar --example soak_sidecar [-- SLOW GARBAGE]`. Prints figures; asserts
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use muster_exchange_dex::jwt::unsigned_jwt;
use muster_exchange_dex::test_double::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DexDouble};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const CENTRAL_ISSUER: &str = "https://central.example/dex";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child-sidecar") {
        let _ = rustls::crypto::ring::default_provider().install_default();
        return muster_exchange_sidecar::cli::run(muster_exchange_sidecar::cli::SidecarArgs {
            config: Some(PathBuf::from(&args[2])),
            listen: None,
            exchange_timeout: std::time::Duration::from_secs(10),
            shutdown_grace: std::time::Duration::from_secs(1),
            threads: None,
        });
    }
    let numbers: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let slow = numbers.first().copied().unwrap_or(300);
    let garbage = numbers.get(1).copied().unwrap_or(10_000);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(parent(slow, garbage));
    std::process::ExitCode::SUCCESS
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn epoch() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn start_app() -> u16 {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

fn start_sidecar(dex: &DexDouble, app_port: u16, dir: &Path) -> (u16, Proc) {
    std::fs::write(dir.join("client-id"), DEFAULT_CLIENT_ID).unwrap();
    std::fs::write(dir.join("client-secret"), DEFAULT_CLIENT_SECRET).unwrap();
    std::fs::write(dir.join("ca.pem"), dex.ca_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "upstream": format!("http://127.0.0.1:{app_port}"),
        "headerMode": "bearer",
        "centralIssuer": CENTRAL_ISSUER,
        "clusters": [{"name": "soak", "dexTokenEndpoint": dex.token_endpoint(), "connectorId": "central",
            "credentialsDir": dir, "caFile": dir.join("ca.pem")}],
    });
    let file = dir.join("sidecar.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .arg("child-sidecar")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (port, Proc(child))
}

async fn wait_listening(port: u16) {
    for _ in 0..500 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing listens on port {port}");
}

/// The `i`-th garbage token: five kinds in turn, each distinct.
fn garbage_token(i: usize) -> String {
    let now = epoch();
    match i % 5 {
        0 => format!("opaque-{i:08}-{}", "x".repeat(40)),
        1 => format!("eyJhbGciOiJSUzI1NiJ9.{i}!!not-base64.sig"),
        2 => {
            unsigned_jwt(&json!({"iss": CENTRAL_ISSUER, "sub": format!("u{i}"), "exp": now - 60 - i as i64}))
        }
        3 => unsigned_jwt(&json!({"iss": CENTRAL_ISSUER, "sub": format!("u{i}")})),
        _ => unsigned_jwt(
            &json!({"iss": "https://attacker.example", "sub": format!("u{i}"), "exp": now + 3600}),
        ),
    }
}

/// One slow-header connection: a partial head, then a header byte each second until the sidecar closes
/// it. Returns how long it stayed open.
async fn slow_header(port: u16) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(b"GET /mcp HTTP/1.1\r\nHost: soak\r\nX-Slow: ")
        .await
        .ok()?;
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some(started.elapsed()),
                Ok(_) => {} // a 408 before the close
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b"a").await.is_err() {
                    return Some(started.elapsed());
                }
            }
        }
        if started.elapsed() > Duration::from_secs(120) {
            return None;
        }
    }
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

async fn parent(slow: usize, garbage: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let dex = DexDouble::start().await.unwrap();
    let app_port = start_app().await;
    let (port, sidecar) = start_sidecar(&dex, app_port, dir.path());
    wait_listening(port).await;
    let pid = sidecar.0.id();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let user = unsigned_jwt(&json!({"iss": CENTRAL_ISSUER, "sub": "legit", "exp": epoch() + 3600}));
    let status = http.get(&url).bearer_auth(&user).send().await.unwrap().status();
    let dex_before = dex.token_requests();
    let rss_start = rss_kib(pid).unwrap_or(0);
    println!(
        "sidecar pid {pid}; legitimate user's first request: {status}; Dex requests so far: {dex_before}"
    );
    println!("RSS at start: {:.1} MiB", rss_start as f64 / 1024.0);

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
        let (done, http, url, user) = (done.clone(), http.clone(), url.clone(), user.clone());
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
                    match http.get(&url).bearer_auth(&user).send().await {
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
    let slow_tasks: Vec<_> = (0..slow).map(|_| tokio::spawn(slow_header(port))).collect();
    let statuses = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<String, usize>::new(),
    ));
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, statuses, next) = (http.clone(), url.clone(), statuses.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= garbage {
                        return;
                    }
                    let key = match http.get(&url).bearer_auth(garbage_token(i)).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            format!("{status} {}", body["error"].as_str().unwrap_or("-"))
                        }
                        Err(e) => format!("transport error: {e}"),
                    };
                    *statuses.lock().unwrap().entry(key).or_default() += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let garbage_elapsed = attack_started.elapsed();
    let mut closed = Vec::new();
    let mut never_closed = 0;
    for task in slow_tasks {
        match task.await.unwrap() {
            Some(d) => closed.push(d),
            None => never_closed += 1,
        }
    }
    done.store(true, Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    let (mut latencies, failures) = legit.join().unwrap();
    latencies.sort();
    closed.sort();
    let rss_end = rss_kib(pid).unwrap_or(0);

    println!("\n== garbage and expired tokens ==");
    println!(
        "{garbage} requests, 64 at a time, in {:.2} s",
        garbage_elapsed.as_secs_f64()
    );
    for (answer, count) in statuses.lock().unwrap().iter() {
        println!("  {count:>6}  {answer}");
    }
    println!(
        "Dex token requests caused by the attack: {}",
        dex.token_requests() - dex_before
    );
    println!("\n== slow-header connections ==");
    println!(
        "{} of {slow} closed by the sidecar (never closed within 120 s: {never_closed}); open for min {:.2} s, median {:.2} s, max {:.2} s",
        closed.len(),
        percentile(&closed, 0.0).as_secs_f64(),
        percentile(&closed, 0.5).as_secs_f64(),
        percentile(&closed, 1.0).as_secs_f64(),
    );
    println!("\n== legitimate user during the attack ==");
    println!(
        "{} requests, {failures} failed; p50 {}, p99 {}, max {}",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0)),
    );
    println!("\n== sidecar memory (VmRSS, {samples} samples every 20 ms) ==");
    println!(
        "start {:.1} MiB, max {:.1} MiB, end {:.1} MiB",
        rss_start as f64 / 1024.0,
        max_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    drop(sidecar);
}
