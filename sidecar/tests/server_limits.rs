//! The server's bounds on a real socket: connections that send no request (or only part of the head)
//! are closed after the header-read timeout, a stalled request body fails, and beyond the in-flight cap
//! requests are shed with 503 while probes still answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Harness, HarnessOptions, subject_token};
use muster_exchange_sidecar::SidecarOptions;
use muster_exchange_sidecar::limits::ServerLimits;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn options(limits: ServerLimits) -> HarnessOptions {
    let mut options = HarnessOptions::default();
    options.sidecar = SidecarOptions {
        limits,
        ..options.sidecar
    };
    options
}

/// Reads until the server closes the connection; what it sent before.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received).await;
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn silent_and_slow_header_connections_are_closed_after_the_header_timeout() {
    let h = Harness::start_with(options(ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..Default::default()
    }))
    .await;
    let mut silent = TcpStream::connect(h.addr).await.unwrap();
    let mut partial = TcpStream::connect(h.addr).await.unwrap();
    partial
        .write_all(b"GET /mcp HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Hyper answers a head cut off by its own timeout with 408 or just closes; either way it ends.
    until_closed(&mut silent).await;
    let partial_answer = until_closed(&mut partial).await;
    assert!(
        partial_answer.is_empty() || partial_answer.starts_with("HTTP/1.1 408"),
        "{partial_answer}"
    );
    // The silent one is closed by the sidecar's first-request deadline (hyper's own header timeout
    // starts only once the first bytes told HTTP/1 from HTTP/2); the partial one by whichever fires first.
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("muster_exchange_sidecar_idle_connections_closed_total 1")
            || metrics.contains("muster_exchange_sidecar_idle_connections_closed_total 2"),
        "{metrics}"
    );
    assert_eq!(h.dex().token_requests(), 0);
    // A connection that does send its request is served.
    assert_eq!(h.get("/mcp", &subject_token("alice")).await.status(), 200);
}

#[tokio::test]
async fn a_stalled_request_body_fails_after_the_body_timeout() {
    let h = Harness::start_with(options(ServerLimits {
        body_timeout: Duration::from_millis(300),
        ..Default::default()
    }))
    .await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n0123456789",
        subject_token("alice")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buffer = vec![0; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    let answer = String::from_utf8_lossy(&buffer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(answer.contains("request_body_unreadable"), "{answer}");
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_in_flight_cap_requests_are_shed_and_probes_still_answer() {
    let h = Harness::start_with(options(ServerLimits {
        max_in_flight: 1,
        ..Default::default()
    }))
    .await;
    h.dex().update(|b| b.delay = Duration::from_millis(500));
    let (http, url, token) = (h.http.clone(), h.url("/mcp"), subject_token("slow"));
    let held = tokio::spawn(async move { http.get(url).bearer_auth(token).send().await.unwrap().status() });
    common::eventually("the first request reaches Dex", || h.dex().token_requests() == 1).await;
    let shed = h.get("/mcp", &subject_token("bob")).await;
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.json::<Value>().await.unwrap()["error"], "overloaded");
    let ready = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "probes are never shed");
    assert_eq!(held.await.unwrap(), 200);
    h.assert_metric("muster_exchange_sidecar_shed_requests_total 1")
        .await;
    assert_eq!(h.get("/mcp", &subject_token("bob")).await.status(), 200);
}
