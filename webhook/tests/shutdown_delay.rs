//! SIGTERM: `/readyz` fails at once, new connections are still served during the delay, then the
//! listener closes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum_server::Handle;
use muster_exchange_webhook::server::Shutdown;
use muster_exchange_webhook::server::router;
use tokio_util::sync::CancellationToken;

/// A fresh connection per request, so "still accepting" is really tested.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), reqwest::Error> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = client.get(format!("http://{addr}{path}")).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn sigterm_fails_readiness_keeps_serving_for_the_delay_then_closes() {
    common::install_crypto_provider();
    let state = common::state();
    state.readiness.mark_catalog_synced();
    state.readiness.mark_certificate_loaded();
    let handle: Handle<SocketAddr> = Handle::new();
    let listener = axum_server::bind("127.0.0.1:0".parse().unwrap()).handle(handle.clone());
    tokio::spawn(listener.serve(router(state.clone()).into_make_service()));
    let addr = handle.listening().await.unwrap();
    assert_eq!(get(addr, "/readyz").await.unwrap(), (200, "ready\n".to_string()));

    let (signal, received) = tokio::sync::oneshot::channel::<()>();
    let stop = CancellationToken::new();
    let delay = Duration::from_millis(800);
    let shutdown = Shutdown {
        handle,
        stop: stop.clone(),
        state,
        delay,
        grace: Duration::from_secs(1),
    };
    tokio::spawn(shutdown.after(async move {
        let _ = received.await;
    }));
    let signalled = Instant::now();
    signal.send(()).unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(addr, "/readyz").await.unwrap();
        if answer == (503, r#"{"problems":["shutting down"],"ready":false}"#.to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "readyz never failed: {answer:?}");
    }
    if signalled.elapsed() < delay {
        assert_eq!(
            get(addr, "/healthz").await.unwrap().0,
            200,
            "new connections are served during the delay"
        );
        assert!(
            !stop.is_cancelled(),
            "background tasks run until the delay passed"
        );
    }
    while get(addr, "/healthz").await.is_ok() {
        assert!(Instant::now() < deadline, "the listener never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        signalled.elapsed() >= delay,
        "closed after {:?}",
        signalled.elapsed()
    );
    assert!(stop.is_cancelled());
}
