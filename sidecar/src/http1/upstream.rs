//! Keep-alive connections to the app for the fast path, one pool per accept loop (so per thread and
//! runtime): a connection is only ever used by the runtime that opened it, and never by two requests
//! at once. A connection goes back only after its response ended exactly at its framing.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::response_head::{self, ParsedResponse, ResponseHead};
use crate::limits::MAX_READ_BUFFER;

/// Idle connections kept per pool; more are closed when their response ends.
const MAX_IDLE: usize = 256;
/// How long opening a connection to the app may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection to the app, with what was read from it and not yet passed on.
pub(crate) struct UpstreamConnection {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
    /// Taken from the pool (the app may have closed it meanwhile) rather than opened for this request.
    reused: bool,
}

/// The idle connections of one accept loop.
#[derive(Default)]
pub(crate) struct UpstreamPool {
    idle: Mutex<Vec<UpstreamConnection>>,
}

/// Why the app could not be asked, or its response head not read: the text after "cannot reach the
/// app: ".
#[derive(Debug)]
pub(crate) struct SendError {
    pub(crate) cause: String,
    /// Whether a new connection may carry the request again.
    retry: Retry,
}

/// When a failed request may be sent again on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Never,
    /// Writing to a reused connection failed: the app closed it before the request.
    Unsent,
    /// The app closed a reused connection without a byte of answer: it most likely closed it idle
    /// as the request went out, but it may have acted on it.
    Unanswered,
}

impl SendError {
    fn fatal(cause: String) -> Self {
        Self {
            cause,
            retry: Retry::Never,
        }
    }
}

impl UpstreamPool {
    /// The most recently used idle connection the app has not closed, or a new one to `authority`.
    pub(crate) async fn connection(&self, authority: &str) -> Result<UpstreamConnection, SendError> {
        loop {
            let candidate = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(mut connection) = candidate else { break };
            // A readable idle connection is one the app closed (or wrote to out of turn): drop it.
            let mut probe = [0u8; 1];
            match connection.stream.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    connection.reused = true;
                    return Ok(connection);
                }
                _ => continue,
            }
        }
        connect(authority).await
    }

    /// Returns `connection` for another request.
    pub(crate) fn release(&self, mut connection: UpstreamConnection) {
        if !connection.buf.is_empty() {
            // The app sent more than its response: the connection's state is unknown.
            return;
        }
        connection.reused = false;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }
}

/// A new connection to the app, without Nagle delay (small requests and SSE events leave at once).
pub(crate) async fn connect(authority: &str) -> Result<UpstreamConnection, SendError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| {
            SendError::fatal(format!(
                "connecting to {authority} timed out after {}s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| SendError::fatal(format!("cannot connect to {authority}: {e}")))?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on the connection to the app");
    }
    Ok(UpstreamConnection {
        stream,
        buf: BytesMut::with_capacity(16 * 1024),
        reused: false,
    })
}

impl UpstreamConnection {
    /// Writes `bytes` (a request head, possibly with its body).
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.stream.write_all(bytes).await.map_err(|e| SendError {
            cause: format!("writing the request failed: {e}"),
            retry: if self.reused { Retry::Unsent } else { Retry::Never },
        })
    }

    fn unanswered(&self, nothing_yet: bool) -> Retry {
        if self.reused && nothing_yet {
            Retry::Unanswered
        } else {
            Retry::Never
        }
    }

    /// Reads the final response head (skipping 1xx ones); the body's first bytes stay in `buf`.
    pub(crate) async fn read_head(&mut self, head_request: bool) -> Result<ResponseHead, SendError> {
        loop {
            if !self.buf.is_empty() {
                match response_head::parse(&self.buf, head_request) {
                    Ok(ParsedResponse::Head(head)) => {
                        let _ = self.buf.split_to(head.len);
                        return Ok(head);
                    }
                    Ok(ParsedResponse::Informational(len)) => {
                        let _ = self.buf.split_to(len);
                        continue;
                    }
                    Ok(ParsedResponse::Partial) if self.buf.len() >= MAX_READ_BUFFER => {
                        return Err(SendError::fatal("the app's response head is too large".into()));
                    }
                    Ok(ParsedResponse::Partial) => {}
                    Err(e) => return Err(SendError::fatal(e.to_string())),
                }
            }
            let nothing_yet = self.buf.is_empty();
            self.buf.reserve(8 * 1024);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => {
                    return Err(SendError {
                        cause: "the app closed the connection before answering".into(),
                        retry: self.unanswered(nothing_yet),
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(SendError {
                        cause: format!("reading the response failed: {e}"),
                        retry: self.unanswered(nothing_yet),
                    });
                }
            }
        }
    }
}

/// Sends a complete request (`bytes`) and reads the response head. A reused connection the app had
/// closed is replaced by a new one once, when the request cannot have been acted on: the write failed,
/// or (for methods that may be repeated) the app closed before answering.
pub(crate) async fn send_whole(
    pool: &UpstreamPool,
    authority: &str,
    bytes: &[u8],
    idempotent: bool,
    head_request: bool,
) -> Result<(UpstreamConnection, ResponseHead), SendError> {
    let mut connection = pool.connection(authority).await?;
    let first = async {
        connection.write(bytes).await?;
        connection.read_head(head_request).await
    }
    .await;
    match first {
        Ok(head) => return Ok((connection, head)),
        Err(e) if e.retry == Retry::Unsent || (e.retry == Retry::Unanswered && idempotent) => {}
        Err(e) => return Err(e),
    }
    let mut connection = connect(authority).await?;
    connection.write(bytes).await?;
    let head = connection.read_head(head_request).await?;
    Ok((connection, head))
}
