//! The client to the app: HTTP/1 keep-alive connections, each owned by the thread (and so the runtime)
//! that opened it, so a request never wakes another thread to reach the app.
//!
//! A connection goes back to the pool only after its response body ended; a body dropped early (a caller
//! that left an SSE stream) takes its connection down with it, as the app may still be writing.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections kept per client (all threads together); more are closed when their response ends.
const MAX_IDLE: usize = 256;
/// How long opening a connection to the app may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request could not be sent to the app or its response headers not read.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSendError {
    /// No TCP connection.
    #[error("cannot connect to {authority}")]
    Connect {
        /// The app's address.
        authority: String,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
    /// Connecting took longer than the timeout.
    #[error("connecting to {authority} timed out after {}s", CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout {
        /// The app's address.
        authority: String,
    },
    /// The request's URI names no `host:port`.
    #[error("the upstream URL has no usable host")]
    NoAuthority,
    /// The HTTP exchange failed (connection closed, malformed response, ...).
    #[error("request to the app failed")]
    Http(#[source] hyper::Error),
}

struct Idle {
    thread: ThreadId,
    authority: Authority,
    sender: SendRequest<Body>,
}

#[derive(Default)]
struct Shared {
    idle: Mutex<Vec<Idle>>,
}

impl Shared {
    /// The most recently used ready connection to `authority` this thread opened; closed ones are dropped
    /// on the way.
    fn checkout(&self, thread: ThreadId, authority: &Authority) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let mut index = idle.len();
        while index > 0 {
            index -= 1;
            if idle[index].sender.is_closed() {
                idle.swap_remove(index);
                continue;
            }
            let candidate = &idle[index];
            if candidate.thread == thread && candidate.authority == *authority && candidate.sender.is_ready()
            {
                return Some(idle.swap_remove(index).sender);
            }
        }
        None
    }

    fn checkin(&self, idle_connection: Idle) {
        if idle_connection.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(idle_connection);
        }
    }
}

/// The pooled HTTP/1 client to the app (cheap to clone).
#[derive(Clone, Default)]
pub struct UpstreamClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// Sends `request` to its URI's `http://` authority (path and query on the wire; `Host` set to the
    /// authority when absent) on an idle connection of this thread or a new one. A request that an idle
    /// connection closed before taking it is sent again on a new connection.
    pub async fn request(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<PooledBody>, UpstreamSendError> {
        let Some(authority) = request.uri().authority().cloned() else {
            return Err(UpstreamSendError::NoAuthority);
        };
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(path);
        if !request.headers().contains_key(http::header::HOST) {
            request
                .headers_mut()
                .insert(http::header::HOST, host_value(&authority)?);
        }
        let thread = std::thread::current().id();
        if let Some(mut sender) = self.shared.checkout(thread, &authority) {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.lease(thread, authority, sender, response)),
                Err(mut e) => match e.take_message() {
                    // Never written: the app closed the idle connection first.
                    Some(unsent) => request = unsent,
                    None => return Err(UpstreamSendError::Http(e.into_error())),
                },
            }
        }
        let mut sender = connect(&authority).await?;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(self.lease(thread, authority, sender, response)),
            Err(e) => Err(UpstreamSendError::Http(e.into_error())),
        }
    }

    fn lease(
        &self,
        thread: ThreadId,
        authority: Authority,
        sender: SendRequest<Body>,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        response.map(|inner| PooledBody {
            inner,
            lease: Some(Lease {
                shared: self.shared.clone(),
                idle: Idle {
                    thread,
                    authority,
                    sender,
                },
            }),
        })
    }
}

/// `Host` for `authority`: as HTTP clients send it, without the default port 80.
fn host_value(authority: &Authority) -> Result<HeaderValue, UpstreamSendError> {
    let host = match authority.port_u16() {
        Some(80) => authority.host(),
        _ => authority.as_str(),
    };
    HeaderValue::from_str(host).map_err(|_| UpstreamSendError::NoAuthority)
}

async fn connect(authority: &Authority) -> Result<SendRequest<Body>, UpstreamSendError> {
    let authority = authority.as_str();
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| UpstreamSendError::ConnectTimeout {
            authority: authority.to_string(),
        })?
        .map_err(|cause| UpstreamSendError::Connect {
            authority: authority.to_string(),
            cause,
        })?;
    // No Nagle delay: small requests and SSE events leave at once.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on the connection to the app");
    }
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamSendError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection to the app ended with an error");
        }
    });
    Ok(sender)
}

struct Lease {
    shared: Arc<Shared>,
    idle: Idle,
}

/// The app's response body; its connection returns to the pool when the body has ended.
pub struct PooledBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.shared.checkin(lease.idle);
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body dropped before its end leaves the connection mid-response: not reusable.
        if http_body::Body::is_end_stream(&self.inner) {
            self.release();
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
