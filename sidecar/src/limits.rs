//! Bounds on the sidecar's HTTP server, so that callers without a valid token cannot hold its memory or
//! its connections:
//!
//! - **connections**: at most [`ServerLimits::max_connections`] open at once, across all accept loops;
//!   further ones wait in the listen backlog until one closes;
//! - **first request**: a connection that has not sent a complete request head within
//!   [`ServerLimits::header_read_timeout`] is closed (this also covers the bytes hyper reads to tell
//!   HTTP/1 from HTTP/2, which its own header timeout does not);
//! - **headers**: hyper's HTTP/1 header-read timeout (the same duration) for every further request; it
//!   also ends a keep-alive connection idle for that long. Read buffer at most [`MAX_READ_BUFFER`];
//! - **bodies**: a request body that sends nothing for [`ServerLimits::body_timeout`] fails;
//! - **in flight**: at most [`ServerLimits::max_in_flight`] requests wait for their response head at
//!   once; further ones are answered 503 `overloaded` with `Retry-After: 1` at once (load shedding).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Largest HTTP/1 read buffer of one connection: the 96 KiB header budget plus the request line.
pub const MAX_READ_BUFFER: usize = 128 * 1024;

/// The server's bounds (defaults are the production values; tests and the soak shorten them).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time to send a complete request head, from connect (first request) or from the end of the
    /// previous response (keep-alive).
    pub header_read_timeout: Duration,
    /// Longest pause between two pieces of a request body.
    pub body_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most requests waiting for their response head at once.
    pub max_in_flight: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_in_flight: 512,
        }
    }
}

/// The shared state of the bounds, one per sidecar (all accept loops share it).
pub struct Limiter {
    limits: ServerLimits,
    connections: Arc<Semaphore>,
    requests: Arc<Semaphore>,
    shed: Counter,
    idle_closed: Counter,
}

impl Limiter {
    /// Bounds per `limits`; `shed` counts refused requests, `idle_closed` connections closed before
    /// their first request.
    pub fn new(limits: ServerLimits, shed: Counter, idle_closed: Counter) -> Arc<Self> {
        Arc::new(Self {
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            requests: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            limits,
            shed,
            idle_closed,
        })
    }

    /// Applies the header timeout, buffer bound and HTTP/2 keep-alive to `builder`.
    pub fn configure(&self, builder: &mut auto::Builder<TokioExecutor>) {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(MAX_READ_BUFFER);
        // HTTP/2 has no header timeout in hyper; pings find dead peers and the stream cap bounds one
        // connection's share of the in-flight requests.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(self.limits.header_read_timeout)
            .max_concurrent_streams(100);
    }

    /// The bounds.
    pub(crate) fn limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// Counts a connection closed because it sent no complete request head in time.
    pub(crate) fn count_idle_closed(&self) {
        self.idle_closed.inc();
    }

    /// A connection slot; waits while the cap is reached. `None` only if the limiter is gone.
    pub async fn connection_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().acquire_owned().await.ok()
    }

    /// Serves `connection` (holding `slot`), closing it when no request head arrived within the
    /// header-read timeout. `first_request` is set by the connection's service.
    pub async fn serve_connection<F: Future>(
        &self,
        connection: F,
        first_request: Arc<AtomicBool>,
        slot: OwnedSemaphorePermit,
    ) -> Option<F::Output> {
        let _slot = slot;
        let deadline = tokio::time::Instant::now() + self.limits.header_read_timeout;
        self.serve_connection_until(connection, first_request, deadline)
            .await
    }

    /// [`Limiter::serve_connection`] for a connection whose first-request deadline is `deadline` (it
    /// was accepted earlier, by the fast path); the caller holds its slot.
    pub(crate) async fn serve_connection_until<F: Future>(
        &self,
        connection: F,
        first_request: Arc<AtomicBool>,
        deadline: tokio::time::Instant,
    ) -> Option<F::Output> {
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            output = &mut connection => return Some(output),
            () = tokio::time::sleep_until(deadline) => {}
        }
        if !first_request.load(Ordering::Acquire) {
            self.idle_closed.inc();
            return None;
        }
        Some(connection.await)
    }

    /// A slot for one request until its response head; `None` (counted) when the cap is reached: answer
    /// [`overloaded`] at once.
    pub fn request_slot(&self) -> Option<OwnedSemaphorePermit> {
        let slot = self.requests.clone().try_acquire_owned().ok();
        if slot.is_none() {
            self.shed.inc();
        }
        slot
    }

    /// `body` failing when it sends nothing for the body timeout.
    pub fn bound_body(&self, body: Incoming) -> Body {
        Body::new(StallTimeout::new(body, self.limits.body_timeout))
    }
}

/// A request body that fails when no frame arrives for `timeout`. Size hint and end of stream are the
/// inner body's, so small bodies of known size stay replayable.
struct StallTimeout<B> {
    inner: B,
    timeout: Duration,
    /// Started on the first poll that found nothing, cleared with each frame.
    sleep: Option<Pin<Box<Sleep>>>,
}

/// The error of a stalled body.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {0:?}; send the body without pauses")]
pub(crate) struct BodyStalled(pub(crate) Duration);

impl<B> StallTimeout<B> {
    fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
        }
    }
}

impl<B> http_body::Body for StallTimeout<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// 503 `overloaded` with `Retry-After: 1`.
pub fn overloaded() -> Response {
    let body = serde_json::json!({
        "error": "overloaded",
        "message": "the sidecar is answering as many requests as it may at once; retry after a second",
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_in_flight: usize) -> Arc<Limiter> {
        Limiter::new(
            ServerLimits {
                max_in_flight,
                header_read_timeout: Duration::from_secs(10),
                ..Default::default()
            },
            Counter::default(),
            Counter::default(),
        )
    }

    /// A body of announced size that sends one frame and then nothing.
    struct Stalling {
        sent: bool,
    }

    impl http_body::Body for Stalling {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.sent {
                return Poll::Pending;
            }
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"0123456789")))))
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(100)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_timeout_and_keeps_its_size_hint() {
        use http_body_util::BodyExt as _;
        let mut body = StallTimeout::new(Stalling { sent: false }, Duration::from_secs(30));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(100));
        assert!(body.frame().await.unwrap().is_ok());
        let started = tokio::time::Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(
            error.to_string(),
            "the request body sent nothing for 30s; send the body without pauses"
        );
    }

    #[test]
    fn beyond_the_in_flight_cap_requests_are_shed_with_503_and_counted() {
        let limiter = limiter(2);
        let first = limiter.request_slot().unwrap();
        let _second = limiter.request_slot().unwrap();
        assert!(limiter.request_slot().is_none(), "a third request must be shed");
        assert_eq!(limiter.shed.get(), 1);
        let refused = overloaded();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        drop(first);
        assert!(limiter.request_slot().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_closed_after_the_header_timeout() {
        let limiter = limiter(1);
        let slot = limiter.connection_slot().await.unwrap();
        let silent = std::future::pending::<()>();
        let started = tokio::time::Instant::now();
        let served = limiter
            .serve_connection(silent, Arc::new(AtomicBool::new(false)), slot)
            .await;
        assert!(served.is_none());
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(limiter.idle_closed.get(), 1);
        assert_eq!(
            limiter.connections.available_permits(),
            1024,
            "the slot is given back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sent_a_request_runs_on_past_the_timeout() {
        let limiter = limiter(1);
        let slot = limiter.connection_slot().await.unwrap();
        let long = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            7
        };
        let served = limiter
            .serve_connection(long, Arc::new(AtomicBool::new(true)), slot)
            .await;
        assert_eq!(served, Some(7));
        assert_eq!(limiter.idle_closed.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_connection_cap_makes_further_connections_wait() {
        let limiter = Limiter::new(
            ServerLimits {
                max_connections: 1,
                ..Default::default()
            },
            Counter::default(),
            Counter::default(),
        );
        let held = limiter.connection_slot().await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_secs(3600), limiter.connection_slot()).await;
        assert!(
            waiting.is_err(),
            "a second connection must wait while one is open"
        );
        drop(held);
        assert!(limiter.connection_slot().await.is_some());
    }
}
