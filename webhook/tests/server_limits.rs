//! The webhook's bounds over real TLS on loopback: a connection that sends nothing (not even a TLS
//! hello) is closed after the header-read timeout, a trickling review body gets 408, and the
//! connection cap closes a connection beyond it while reviews on open ones still succeed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use muster_exchange_webhook::server::ServerLimits;
use muster_exchange_webhook::server::router;
use muster_exchange_webhook::server::serve_within;
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

const SERVICE: &str = "muster-exchange-webhook.muster-exchange.svc";

async fn start(limits: ServerLimits) -> (SocketAddr, reqwest::Client) {
    common::install_crypto_provider();
    let names = service_dns_names("muster-exchange-webhook", "muster-exchange");
    let certificate = issue(&names, Duration::from_secs(3600)).unwrap();
    let tls = RustlsConfig::from_pem(
        certificate.cert_pem.clone().into_bytes(),
        certificate.key_pem.clone().into_bytes(),
    )
    .await
    .unwrap();
    let handle = Handle::new();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let app = router(common::state());
    let server_handle = handle.clone();
    tokio::spawn(async move { serve_within(listen, app, tls, server_handle, &limits).await });
    let addr = handle.listening().await.unwrap();
    let roots = reqwest::Certificate::from_pem_bundle(certificate.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only(roots)
        .resolve(SERVICE, addr)
        .build()
        .unwrap();
    (addr, client)
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_reviews_still_succeed() {
    let (addr, client) = start(ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut received = Vec::new();
    // Ends (EOF or reset) only because the server closes it.
    let _ = silent.read_to_end(&mut received).await;
    assert!(received.is_empty());
    let review = common::fixture("pod-create-generate-name.json");
    let response = client
        .post(format!("https://{SERVICE}:{}/mutate-pods", addr.port()))
        .header("content-type", "application/json")
        .body(review)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_trickling_review_body_is_answered_408_after_the_request_timeout() {
    let (addr, client) = start(ServerLimits {
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    // One byte every 100 ms: never a long pause, but never done either.
    let trickle = tokio::spawn(async move {
        while tx.send(Ok(b" ".to_vec())).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let response = client
        .post(format!("https://{SERVICE}:{}/mutate-pods", addr.port()))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 408);
    trickle.abort();
}

#[tokio::test]
async fn beyond_the_connection_cap_a_new_connection_is_closed() {
    let (addr, client) = start(ServerLimits {
        max_connections: 1,
        ..Default::default()
    })
    .await;
    let _held = TcpStream::connect(addr).await.unwrap();
    // Give the server time to accept the held connection before the next one.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = client
        .get(format!("https://{SERVICE}:{}/healthz", addr.port()))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
}
