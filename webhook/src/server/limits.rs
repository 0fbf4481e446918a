//! Bounds on the webhook's HTTPS server, so that crafted or slow clients cannot grow its memory on the
//! single `failurePolicy: Fail` replica:
//!
//! - **connections**: at most [`ServerLimits::max_connections`] open at once; a further one is closed
//!   at once, before the TLS handshake (the API server retries);
//! - **first request**: a connection that has not sent a request head within
//!   [`ServerLimits::header_read_timeout`] of connecting (TLS handshake included) is closed;
//! - **headers**: hyper's HTTP/1 header-read timeout (the same duration) for every further request; it
//!   also ends a keep-alive connection idle for that long. Read buffer at most [`MAX_READ_BUFFER`];
//! - **requests**: a request not answered within [`ServerLimits::request_timeout`] (body read
//!   included) gets 408, so a slow or trickling body holds its memory for at most that long;
//! - **in flight**: at most [`ServerLimits::max_in_flight`] requests at once; further ones get 503 with
//!   `Retry-After: 1` at once (`/healthz`, `/readyz` and `/metrics` are never refused).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tower_http::timeout::TimeoutLayer;

/// Largest HTTP/1 read buffer of one connection (headers; bodies stream into the 4 MiB body limit).
pub(crate) const MAX_READ_BUFFER: usize = 64 * 1024;

/// The server's bounds (defaults are the production values; tests and the soak shorten them).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time from connect to a complete first request head, and from a response to the next head.
    pub header_read_timeout: Duration,
    /// Longest time for one request, from its head to the answer (the API server sends a review at
    /// once; only a trickling client needs longer).
    pub request_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most requests handled at once.
    pub max_in_flight: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_in_flight: 128,
        }
    }
}

/// Applies the header timeout, buffer bound and HTTP/2 keep-alive to the server's `builder`.
pub(crate) fn configure(limits: &ServerLimits, builder: &mut auto::Builder<TokioExecutor>) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(limits.header_read_timeout)
        .max_concurrent_streams(32);
}

/// The request timeout and the in-flight cap around `router`.
pub(crate) fn layer(limits: &ServerLimits, router: Router) -> Router {
    let slots = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(slots, shed))
}

/// Probes and scrapes, never shed: a webhook under attack must not look dead to the kubelet.
const OPERATIONS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

async fn shed(State(slots): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    if OPERATIONS_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_slot) = slots.try_acquire_owned() else {
        tracing::warn!("in-flight cap reached; answering 503");
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            "the webhook is answering as many requests as it may at once; retry after a second\n",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// An acceptor (run before TLS) that enforces the connection cap and the first-request deadline.
#[derive(Clone)]
pub(crate) struct LimitedAcceptor {
    connections: Arc<Semaphore>,
    first_request_timeout: Duration,
}

impl LimitedAcceptor {
    /// The acceptor for `limits`.
    pub(crate) fn new(limits: &ServerLimits) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            first_request_timeout: limits.header_read_timeout,
        }
    }
}

impl<I, S> axum_server::accept::Accept<I, S> for LimitedAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = Guarded<I>;
    type Service = MarkFirstRequest<S>;
    type Future = std::future::Ready<io::Result<(Guarded<I>, MarkFirstRequest<S>)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(slot) = self.connections.clone().try_acquire_owned() else {
            tracing::warn!("connection cap reached; closing a new connection");
            return std::future::ready(Err(io::Error::other("connection cap reached")));
        };
        let started = Arc::new(AtomicBool::new(false));
        let stream = Guarded {
            inner: stream,
            _slot: slot,
            started: started.clone(),
            deadline: Some(Box::pin(tokio::time::sleep(self.first_request_timeout))),
        };
        std::future::ready(Ok((
            stream,
            MarkFirstRequest {
                inner: service,
                started,
            },
        )))
    }
}

/// A connection holding one slot of the cap, whose reads fail once the first-request deadline passed
/// without a request.
pub(crate) struct Guarded<I> {
    inner: I,
    _slot: OwnedSemaphorePermit,
    started: Arc<AtomicBool>,
    /// Dropped once a request started.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<I> Guarded<I> {
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.started.load(Ordering::Acquire) {
            self.deadline = None;
        }
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request within the header-read timeout",
            ));
        }
        Ok(())
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.check_deadline(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection's service, noting that a request arrived (ends the first-request deadline).
#[derive(Clone)]
pub(crate) struct MarkFirstRequest<S> {
    inner: S,
    started: Arc<AtomicBool>,
}

impl<S, R> tower::Service<R> for MarkFirstRequest<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.started.store(true, Ordering::Release);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum_server::accept::Accept as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn limits(max_connections: usize) -> ServerLimits {
        ServerLimits {
            max_connections,
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_fail_after_the_deadline_until_a_request_started() {
        let acceptor = LimitedAcceptor::new(&limits(4));
        let (client, server) = tokio::io::duplex(64);
        let (mut stream, _service) = acceptor.accept(server, ()).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 8];
        let error = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_connection_reads_on_past_the_deadline() {
        let acceptor = LimitedAcceptor::new(&limits(4));
        let (mut client, server) = tokio::io::duplex(64);
        let (mut stream, mut service) = acceptor
            .accept(server, tower::service_fn(|()| async { Ok::<_, io::Error>(()) }))
            .await
            .unwrap();
        tower::Service::call(&mut service, ()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"late").await.unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late");
    }

    #[tokio::test]
    async fn beyond_the_connection_cap_a_connection_is_refused_until_one_closes() {
        let acceptor = LimitedAcceptor::new(&limits(1));
        let (_a, server_a) = tokio::io::duplex(64);
        let (_b, server_b) = tokio::io::duplex(64);
        let first = acceptor.accept(server_a, ()).await.unwrap();
        assert!(acceptor.accept(server_b, ()).await.is_err());
        drop(first);
        let (_c, server_c) = tokio::io::duplex(64);
        assert!(acceptor.accept(server_c, ()).await.is_ok());
    }

    #[tokio::test]
    async fn beyond_the_in_flight_cap_requests_get_503() {
        use tower::ServiceExt as _;
        let (entered, release) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let (on_enter, wait) = (entered.clone(), release.clone());
        let router = Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route(
                "/slow",
                axum::routing::get(move || {
                    let (on_enter, wait) = (on_enter.clone(), wait.clone());
                    async move {
                        on_enter.notify_one();
                        wait.notified().await;
                        "done"
                    }
                }),
            );
        let router = layer(
            &ServerLimits {
                max_in_flight: 1,
                ..Default::default()
            },
            router,
        );
        let request = || {
            Request::builder()
                .uri("/slow")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let held = tokio::spawn(router.clone().oneshot(request()));
        entered.notified().await;
        let shed = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        let probe = Request::builder()
            .uri("/healthz")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(
            router.clone().oneshot(probe).await.unwrap().status(),
            StatusCode::OK,
            "probes are never shed"
        );
        release.notify_one();
        assert_eq!(held.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}
