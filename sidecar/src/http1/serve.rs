//! One caller connection on the fast path: read a request head, decide (route, caller's token,
//! identity) with the same function as hyper's path, send the rewritten head and the body to a kept-alive
//! connection to the app, and pass the response back as it arrives; then the next request. A head the
//! fast path does not serve hands the connection, with what was read, to hyper's server.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::response::{IntoResponse as _, Response};
use bytes::{Buf as _, Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument as _;

use super::framing::{BodyCursor, Framing};
use super::reply;
use super::request_head::{self, Parsed, RequestHead};
use super::response_head::ResponseHead;
use super::rewind::Rewind;
use super::upstream::{self, SendError, UpstreamConnection, UpstreamPool};
use crate::auth_headers::ForwardAuth;
use crate::errors::ProxyError;
use crate::limits::{BodyStalled, Limiter, MAX_READ_BUFFER};
use crate::proxy;
use crate::routing;
use crate::state::AppState;

/// What the fast path shares across one accept loop's connections.
pub(crate) struct FastPath {
    app: Arc<AppState>,
    limiter: Arc<Limiter>,
    pool: UpstreamPool,
    /// `host:port` of the app, to connect to.
    authority: String,
    /// The `Host` the app gets, as HTTP clients send it (no `:80`).
    host: String,
    /// The upstream URL's path, put before every forwarded path.
    base_path: String,
}

/// How a connection left the fast path.
pub(crate) enum Outcome {
    /// Closed (by either side, a timeout or shutdown).
    Closed,
    /// For hyper's server, with the bytes already read in front; `served` says whether the fast path
    /// answered a request on it before.
    Handoff { io: Rewind, served: bool },
}

/// The caller's side of a connection.
struct Caller {
    tcp: TcpStream,
    /// Read and not yet handled: the current request's body, pipelined requests.
    buf: BytesMut,
}

impl FastPath {
    pub(crate) fn new(app: Arc<AppState>, limiter: Arc<Limiter>) -> Self {
        let authority = app.upstream.authority().to_string();
        let host = app.upstream.host_header().to_string();
        let base_path = app.upstream.base_path().to_string();
        Self {
            app,
            limiter,
            pool: UpstreamPool::default(),
            authority,
            host,
            base_path,
        }
    }

    /// Serves `tcp` (accepted at `accepted`) until it closes or hyper has to take it; between
    /// requests it closes once `stop` turns true.
    pub(crate) async fn serve(
        &self,
        tcp: TcpStream,
        accepted: tokio::time::Instant,
        mut stop: watch::Receiver<bool>,
    ) -> Outcome {
        let mut caller = Caller {
            tcp,
            buf: BytesMut::with_capacity(8 * 1024),
        };
        let limits = self.limiter.limits();
        let mut served = false;
        loop {
            // First request: from connect; later ones: from the end of the previous response.
            let deadline = if served {
                tokio::time::Instant::now() + limits.header_read_timeout
            } else {
                accepted + limits.header_read_timeout
            };
            let head = loop {
                if !caller.buf.is_empty() {
                    match request_head::parse(&caller.buf) {
                        Parsed::Request(head) => break head,
                        Parsed::Other => return caller.handoff(served),
                        // hyper answers an oversized head (431) as it always has.
                        Parsed::Partial if caller.buf.len() >= MAX_READ_BUFFER => {
                            return caller.handoff(served);
                        }
                        Parsed::Partial => {}
                    }
                }
                caller.buf.reserve(8 * 1024);
                let read = tokio::select! {
                    read = tokio::time::timeout_at(deadline, caller.tcp.read_buf(&mut caller.buf)) => read,
                    () = crate::server::stopped(&mut stop), if caller.buf.is_empty() => return Outcome::Closed,
                };
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return Outcome::Closed,
                    Ok(Ok(_)) => {}
                    Err(_) => {
                        if !served {
                            self.limiter.count_idle_closed();
                        }
                        return Outcome::Closed;
                    }
                }
            };
            served = true;
            if !self.request(&mut caller, head).await {
                return Outcome::Closed;
            }
        }
    }

    /// Answers one request; whether the connection stays open.
    async fn request(&self, caller: &mut Caller, head: RequestHead) -> bool {
        let head_bytes = caller.buf.split_to(head.len).freeze();
        // A body left unread cannot be skipped safely: the connection closes after the answer.
        let keep_unread = head.keep_alive && head.framing == Framing::Empty;
        let Some(slot) = self.limiter.request_slot() else {
            return caller.reply(crate::limits::overloaded(), keep_unread).await;
        };
        let app = &self.app;
        let target = std::str::from_utf8(&head_bytes[head.target.clone()]).unwrap_or("/");
        let route = match routing::route(&app.names, target) {
            Ok(route) => route,
            Err(e) => {
                return caller
                    .reply(ProxyError::Route(e).into_response(), keep_unread)
                    .await;
            }
        };
        let cluster = route.cluster;
        let mut out = Vec::with_capacity(head.len + 1024);
        self.write_head(&mut out, &head_bytes, &head, &route.upstream_path_and_query);
        drop(route);
        let started = Instant::now();
        let request = Request {
            fast: self,
            cluster,
            head: &head,
            head_bytes: &head_bytes,
            out,
        };
        // The span exists only when debug logging is on: entering even a disabled span costs a little
        // on every poll.
        let answer = if tracing::level_enabled!(tracing::Level::DEBUG) {
            let method = std::str::from_utf8(&head_bytes[head.method.clone()]).unwrap_or("");
            let span = tracing::debug_span!("proxied request", cluster = %app.names[cluster], method);
            request.forward(caller).instrument(span).await
        } else {
            request.forward(caller).await
        };
        let metrics = &app.cluster_metrics[cluster];
        metrics.proxy_duration.observe(started.elapsed().as_secs_f64());
        match answer {
            Answer::Error(error, body_read) => {
                let response = error.into_response();
                metrics.request(response.status());
                drop(slot);
                caller.reply(response, body_read && head.keep_alive).await
            }
            Answer::Response(connection, response) => {
                metrics.request(StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY));
                drop(slot);
                self.respond(caller, connection, response, head.keep_alive).await
            }
        }
    }

    /// The request line, `Host`, the caller's forwarded headers and `X-Forwarded-*`; the identity's
    /// headers and the blank line follow once decided.
    fn write_head(&self, out: &mut Vec<u8>, buf: &[u8], head: &RequestHead, path: &str) {
        out.extend_from_slice(&buf[head.method.clone()]);
        out.push(b' ');
        out.extend_from_slice(self.base_path.as_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(self.host.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &head.forwarded {
            out.extend_from_slice(&buf[name.clone()]);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&buf[value.clone()]);
            out.extend_from_slice(b"\r\n");
        }
        // The caller's Host moves to X-Forwarded-Host (see `forward::mark_forwarded_host`).
        if let Some(host) = &head.host {
            if !head.has_forwarded_host {
                out.extend_from_slice(b"x-forwarded-host: ");
                out.extend_from_slice(&buf[host.clone()]);
                out.extend_from_slice(b"\r\n");
            }
            if !head.has_forwarded_proto {
                out.extend_from_slice(b"x-forwarded-proto: http\r\n");
            }
        }
    }

    /// Writes the app's response head and body to the caller as they arrive; whether the caller's
    /// connection stays open.
    async fn respond(
        &self,
        caller: &mut Caller,
        mut connection: UpstreamConnection,
        response: ResponseHead,
        keep_alive: bool,
    ) -> bool {
        let mut out = response.for_caller;
        if !keep_alive {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let rechunk = response.framing == Framing::UntilClose;
        let mut cursor = BodyCursor::new(response.framing);
        loop {
            let taken = match cursor.advance(&connection.buf) {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::debug!(error = %e, "the app's response body is malformed; closing");
                    let _ = caller.tcp.write_all(&out).await;
                    return false;
                }
            };
            if taken > 0 {
                if rechunk {
                    // Writing into a Vec cannot fail.
                    let _ = write!(out, "{taken:x}\r\n");
                    out.extend_from_slice(&connection.buf[..taken]);
                    out.extend_from_slice(b"\r\n");
                } else {
                    out.extend_from_slice(&connection.buf[..taken]);
                }
                connection.buf.advance(taken);
            }
            if cursor.is_done() {
                break;
            }
            if !out.is_empty() {
                // Written as it arrives: an SSE event reaches the caller at once.
                if caller.tcp.write_all(&out).await.is_err() {
                    return false;
                }
                out.clear();
            }
            connection.buf.reserve(16 * 1024);
            match connection.stream.read_buf(&mut connection.buf).await {
                Ok(0) if rechunk => {
                    out.extend_from_slice(b"0\r\n\r\n");
                    return caller.tcp.write_all(&out).await.is_ok() && keep_alive;
                }
                // The app ended the response early: the caller can only tell by the connection closing.
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        if response.reusable {
            self.pool.release(connection);
        }
        caller.tcp.write_all(&out).await.is_ok() && keep_alive
    }
}

/// What the app answered, or the sidecar's own error response; `bool`: the request body was read
/// whole, so the connection can carry on after the error.
enum Answer {
    Response(UpstreamConnection, ResponseHead),
    Error(ProxyError, bool),
}

/// One request between the decision and the app's response head.
struct Request<'a> {
    fast: &'a FastPath,
    cluster: usize,
    head: &'a RequestHead,
    head_bytes: &'a Bytes,
    /// The head for the app so far.
    out: Vec<u8>,
}

impl Request<'_> {
    async fn forward(mut self, caller: &mut Caller) -> Answer {
        let app = &self.fast.app;
        let authorization = self.head.authorization.clone().map(|r| &self.head_bytes[r]);
        let (decision, subject) =
            match proxy::decide(app, self.cluster, self.head.header_bytes, authorization).await {
                Ok(decided) => decided,
                Err(error) => return Answer::Error(error, self.head.framing == Framing::Empty),
            };
        let replayable = match self.head.framing {
            Framing::Empty => Some(Bytes::new()),
            Framing::Length(n) if n <= app.replay_limit => match caller.read_body(n, self.fast).await {
                Ok(body) => Some(body),
                Err(cause) => return Answer::Error(self.body_error(cause), false),
            },
            _ => None,
        };
        let Some(body) = replayable else {
            return self.stream(caller, &decision.auth).await;
        };
        let answer = self.send(&decision.auth, &body).await;
        let retry = matches!(&answer, Answer::Response(_, r) if r.status == 401)
            && proxy::retries_unauthorized(app, &decision.auth);
        if !retry {
            return answer;
        }
        // The 401's body is not read: its connection is dropped, not reused.
        drop(answer);
        let fresh = match proxy::refresh_after_unauthorized(app, self.cluster, &decision, subject).await {
            Ok(fresh) => fresh,
            Err(error) => return Answer::Error(error, true),
        };
        self.send(&fresh, &body).await
    }

    /// Sends the head with `auth` and the whole `body`.
    async fn send(&mut self, auth: &ForwardAuth, body: &[u8]) -> Answer {
        let identity_at = self.out.len();
        write_identity(&mut self.out, auth);
        self.out.extend_from_slice(body);
        let method = &self.head_bytes[self.head.method.clone()];
        let idempotent = matches!(
            method,
            b"GET" | b"HEAD" | b"OPTIONS" | b"PUT" | b"DELETE" | b"TRACE"
        );
        let sent = upstream::send_whole(
            &self.fast.pool,
            &self.fast.authority,
            &self.out,
            idempotent,
            self.head.is_head_method,
        )
        .await;
        self.out.truncate(identity_at);
        match sent {
            Ok((connection, head)) => Answer::Response(connection, head),
            Err(e) => Answer::Error(self.upstream_error(e), true),
        }
    }

    /// Sends the head and streams the body as the caller sends it (not replayable, so never retried).
    async fn stream(mut self, caller: &mut Caller, auth: &ForwardAuth) -> Answer {
        write_identity(&mut self.out, auth);
        let mut connection = match self.fast.pool.connection(&self.fast.authority).await {
            Ok(connection) => connection,
            Err(e) => return Answer::Error(self.upstream_error(e), false),
        };
        let mut cursor = BodyCursor::new(self.head.framing);
        let body_timeout = self.fast.limiter.limits().body_timeout;
        loop {
            // Part of the body may have reached the app already: like hyper's client, a body that fails
            // while streaming fails the request to the app (502).
            let taken = match cursor.advance(&caller.buf) {
                Ok(taken) => taken,
                Err(e) => return Answer::Error(self.streaming_body_error(e.to_string()), false),
            };
            self.out.extend_from_slice(&caller.buf[..taken]);
            caller.buf.advance(taken);
            if let Err(e) = connection.write(&self.out).await {
                return Answer::Error(self.upstream_error(e), false);
            }
            self.out.clear();
            if cursor.is_done() {
                break;
            }
            if let Err(cause) = caller.read_more(body_timeout).await {
                return Answer::Error(self.streaming_body_error(cause), false);
            }
        }
        match connection.read_head(self.head.is_head_method).await {
            Ok(head) => Answer::Response(connection, head),
            Err(e) => Answer::Error(self.upstream_error(e), true),
        }
    }

    fn upstream_error(&self, e: SendError) -> ProxyError {
        proxy::upstream_error(&self.fast.app, self.cluster, e.cause)
    }

    fn streaming_body_error(&self, cause: String) -> ProxyError {
        proxy::upstream_error(
            &self.fast.app,
            self.cluster,
            format!("the request body failed while streaming to the app: {cause}"),
        )
    }

    fn body_error(&self, cause: String) -> ProxyError {
        ProxyError::RequestBody {
            cluster: self.fast.app.names[self.cluster].clone(),
            cause,
        }
    }
}

/// `Authorization` with the exchanged token, the `kubernetes-*` headers, and the blank line.
fn write_identity(out: &mut Vec<u8>, auth: &ForwardAuth) {
    out.extend_from_slice(b"authorization: ");
    out.extend_from_slice(auth.authorization.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &auth.extra {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

impl Caller {
    fn handoff(self, served: bool) -> Outcome {
        Outcome::Handoff {
            io: Rewind::new(self.buf, self.tcp),
            served,
        }
    }

    /// Writes the sidecar's own `response`; whether the connection stays open (`keep`).
    async fn reply(&mut self, response: Response, keep: bool) -> bool {
        let bytes = reply::encode(response, !keep).await;
        self.tcp.write_all(&bytes).await.is_ok() && keep
    }

    /// The whole body of `length` bytes (small enough to keep for a retry).
    async fn read_body(&mut self, length: u64, fast: &FastPath) -> Result<Bytes, String> {
        let length = usize::try_from(length).map_err(|_| "body too large".to_string())?;
        let body_timeout = fast.limiter.limits().body_timeout;
        while self.buf.len() < length {
            self.buf.reserve(length - self.buf.len());
            self.read_more(body_timeout).await?;
        }
        Ok(self.buf.split_to(length).freeze())
    }

    /// Reads more of the request body, waiting at most `timeout` for it.
    async fn read_more(&mut self, timeout: std::time::Duration) -> Result<(), String> {
        self.buf.reserve(16 * 1024);
        match tokio::time::timeout(timeout, self.tcp.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Err("the connection closed before the body was complete".into()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(BodyStalled(timeout).to_string()),
        }
    }
}
