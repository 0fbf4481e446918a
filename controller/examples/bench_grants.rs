//! Benchmark: the whole controller (grant controller, probe controller, metrics server; no leader
//! election), built as the binary builds it, against the crate's mock API server on loopback, which
//! counts every request by verb: 1,000 organization namespaces with 5 kubeconfig Secrets each, 2 other
//! Secrets and an opted-in credentials Secret, no MCPServers, no grants yet.
//!
//! Prints the requests per verb and the time taken for the first sync (every namespace gets its Role
//! and RoleBinding) and for one resync of unchanged state (every namespace reconciled again after
//! `--grants-resync-interval`), then peak RSS. Targets: first sync 2 writes per namespace and no list
//! per namespace; resync no request at all.
//!
//! Run: `cargo run --profile perf -p muster-exchange-controller --example bench_grants`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use muster_exchange_controller::cli::{ControllerArgs, run_controller_with};
use muster_exchange_controller::testing::{ListType, MockApiServer, Recorded};
use serde_json::json;

const NAMESPACES: usize = 1_000;
const SECRETS_PER_NAMESPACE: usize = 5;
const RESYNC: Duration = Duration::from_secs(20);
/// How long the reconcile count must stay unchanged before a phase counts as finished.
const QUIET: Duration = Duration::from_secs(2);

fn seed(mock: &MockApiServer) {
    for i in 0..NAMESPACES {
        let ns = format!("org-{i:04}");
        mock.insert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"giantswarm.io/organization": ns}}}));
        let mut secrets: Vec<(String, serde_json::Value)> = (0..SECRETS_PER_NAMESPACE)
            .map(|c| (format!("cluster-{c}-kubeconfig"), json!({})))
            .collect();
        secrets.push(("cluster-0-ca".into(), json!({})));
        secrets.push(("default-token".into(), json!({})));
        secrets.push((
            "dex-credentials".into(),
            json!({"exchange.muster.giantswarm.io/credentials": "true"}),
        ));
        for (name, labels) in secrets {
            mock.insert(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": ns, "labels": labels}}));
        }
    }
}

fn free_port() -> Option<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()
}

/// `muster_exchange_controller_reconciles_total{loop="kubeconfig_grants"}` from `/metrics`.
async fn reconciles(metrics: SocketAddr) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(metrics).await else {
        return 0;
    };
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

/// Waits until at least `at_least` reconciles ran and none followed for [`QUIET`]; returns the count
/// and when the first and the last of them were seen.
async fn settle(metrics: SocketAddr, from: u64, at_least: u64) -> (u64, Instant, Instant) {
    let (mut last_count, mut first_seen, mut last_seen) = (from, None, Instant::now());
    loop {
        let now = reconciles(metrics).await;
        if now != last_count {
            first_seen.get_or_insert_with(Instant::now);
            last_seen = Instant::now();
            last_count = now;
        }
        if now >= at_least && last_seen.elapsed() >= QUIET {
            return (now, first_seen.unwrap_or(last_seen), last_seen);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn summary(requests: &[Recorded]) -> String {
    let mut verbs: BTreeMap<String, usize> = BTreeMap::new();
    for r in requests {
        let verb = match (r.verb, r.namespace()) {
            ("list", Some(_)) => "list (one namespace)",
            ("list", None) => "list (cluster-wide)",
            (verb, _) => verb,
        };
        *verbs.entry(verb.to_string()).or_default() += 1;
    }
    if verbs.is_empty() {
        return "none".into();
    }
    verbs
        .iter()
        .map(|(verb, n)| format!("{verb} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
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
    let mock = MockApiServer::new(ListType::Map);
    seed(&mock);
    let (Ok(url), Some(metrics)) = (mock.serve_loopback().await, free_port()) else {
        eprintln!("cannot listen on loopback");
        return;
    };
    let resync = format!("{}s", RESYNC.as_secs());
    let metrics_addr = metrics.to_string();
    let argv = [
        "controller",
        "--leader-election=false",
        "--grant-subject=serviceaccount:muster/mcp-kubernetes",
        "--credentials-reader=serviceaccount:muster/muster",
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
    let Ok(url) = url.parse() else {
        return;
    };
    println!(
        "bench_grants: {NAMESPACES} organization namespaces x {SECRETS_PER_NAMESPACE} kubeconfig Secrets \
         (+3 other Secrets each), whole controller against the counting mock API server on loopback; \
         resync every {resync}"
    );
    let started = Instant::now();
    tokio::spawn(run_controller_with(args, kube::Config::new(url)));
    let (first, _, last) = settle(metrics, 0, NAMESPACES as u64).await;
    let initial = mock.requests();
    println!(
        "first sync:       {:>7.1} ms to the last reconcile ({first} reconciles); requests: {}",
        (last - started).as_secs_f64() * 1e3,
        summary(&initial)
    );
    let (second, resync_first, resync_last) = settle(metrics, first, first + NAMESPACES as u64).await;
    let resync_requests = mock.requests().split_off(initial.len());
    println!(
        "unchanged resync: {:>7.1} ms first to last reconcile ({} reconciles); requests: {}",
        (resync_last - resync_first).as_secs_f64() * 1e3,
        second - first,
        summary(&resync_requests)
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS (mock and controller): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
    std::process::exit(0);
}
