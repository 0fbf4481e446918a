//! The bounded server for `/healthz`, `/readyz` and `/metrics` on a port of their own (the controller's
//! `--metrics-addr`). Its limits are described on [`serve`].

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Time to send a request head, from connect or from the previous response.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open at once (Prometheus and the kubelet need a handful).
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Most requests answered at once.
pub(crate) const MAX_IN_FLIGHT: usize = 32;
/// Largest HTTP/1 read buffer of one connection.
const MAX_READ_BUFFER: usize = 16 * 1024;
/// Longest wait for open requests after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` is cancelled; then stops accepting, lets open requests
/// finish for up to 5 s and returns.
///
/// Bounded so that whoever reaches the port cannot exhaust the process: at most 64 open connections
/// (further ones wait in the listen backlog), a request head within 10 s of connecting or of the
/// previous response (so silent and idle keep-alive connections close), 16 KiB read buffers, and at
/// most 32 requests at once (further ones get 503 with `Retry-After: 1`). `app` should not read
/// request bodies: nothing here limits their size.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    serve_within(listener, app, shutdown, HEADER_READ_TIMEOUT).await;
}

/// [`serve`] with another header-read timeout, so tests need not wait 10 s.
pub(crate) async fn serve_within(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    header_timeout: Duration,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let requests = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(header_timeout)
        .max_concurrent_streams(8);
    let graceful = GracefulShutdown::new();
    let mut open = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = connections.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            Some(_) = open.join_next(), if !open.is_empty() => continue,
            () = shutdown.cancelled() => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "operations server: accept failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let started = Arc::new(AtomicBool::new(false));
        let (app, requests, mark) = (app.clone(), requests.clone(), started.clone());
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            mark.store(true, Ordering::Release);
            let (app, requests) = (app.clone(), requests.clone());
            async move {
                let Ok(_slot) = requests.try_acquire_owned() else {
                    return Ok::<_, Infallible>(overloaded());
                };
                app.oneshot(request.map(Body::new)).await
            }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service).into_owned());
        open.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = &mut connection => return,
                () = tokio::time::sleep(header_timeout) => {}
            }
            if started.load(Ordering::Acquire) {
                let _ = connection.await;
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
    open.shutdown().await;
}

fn overloaded() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests at once; retry\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_silent_connection_is_closed_and_requests_are_answered() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve_within(
            listener,
            app,
            shutdown.clone(),
            Duration::from_millis(200),
        ));
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut received = Vec::new();
        let _ = silent.read_to_end(&mut received).await;
        assert!(received.is_empty(), "the server closes it without an answer");
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        shutdown.cancel();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn requests_beyond_the_in_flight_limit_get_503_with_retry_after() {
        use std::sync::atomic::AtomicUsize;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let (count, gate) = (started.clone(), release.clone());
        let app = Router::new().route(
            "/slow",
            axum::routing::get(move || {
                let (count, gate) = (count.clone(), gate.clone());
                async move {
                    let released = gate.notified();
                    count.fetch_add(1, Ordering::SeqCst);
                    released.await;
                    "done"
                }
            }),
        );
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, shutdown.clone()));
        let request = |addr| async move {
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            client
                .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            client.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            held.push(tokio::spawn(request(addr)));
        }
        while started.load(Ordering::SeqCst) < MAX_IN_FLIGHT {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = request(addr).await;
        assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
        assert!(
            refused.to_ascii_lowercase().contains("retry-after: 1\r\n"),
            "{refused}"
        );
        release.notify_waiters();
        for answer in held {
            let answer = answer.await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        shutdown.cancel();
        server.await.unwrap();
    }
}
