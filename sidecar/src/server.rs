//! The HTTP server: operations endpoints (`/healthz`, `/readyz`, `/metrics`) and the proxy for every
//! other path, with graceful shutdown bounded by a grace period (SSE streams never end on their own).
//! Each connection starts on the HTTP/1.1 fast path ([`crate::http1`]); hyper serves what it hands over
//! (HTTP/1.0, h2c, upgrades, operations paths, heads it does not take).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use futures::FutureExt as _;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use muster_exchange_api::sidecar_config::SidecarConfig;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::http1::rewind::Rewind;
use crate::http1::serve::{FastPath, Outcome};
use crate::limits::Limiter;
use crate::proxy::proxy;
use crate::state::{AppState, SidecarOptions, StateError};

/// Paths the sidecar answers itself; the app's own paths of these names are not reachable through it.
pub const OPERATIONS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The router.
pub fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(proxy)
        .with_state(app)
}

async fn healthz() -> Response {
    muster_exchange_ops::healthz()
}

/// Ready when every cluster's credentials (and, in auth-headers mode, kubeconfig) load.
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    muster_exchange_ops::readyz(&app.readiness_problems())
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    muster_exchange_ops::openmetrics(app.metrics.encode())
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state could not be built.
    #[error(transparent)]
    State(#[from] StateError),
    /// The listen address is unusable.
    #[error("cannot listen on {listen}: {cause}; choose a free address with listen or --listen")]
    Listen {
        /// The address.
        listen: String,
        /// Why.
        cause: String,
    },
}

/// A bound, not yet serving sidecar.
pub struct Sidecar {
    listener: TcpListener,
    app: Arc<AppState>,
    limiter: Arc<Limiter>,
}

impl Sidecar {
    /// Builds the state and binds `config.listen`.
    pub async fn bind(config: &SidecarConfig, options: &SidecarOptions) -> Result<Self, StartError> {
        let app = Arc::new(AppState::new(config, options)?);
        let listen_error = |cause: String| StartError::Listen {
            listen: config.listen.clone(),
            cause,
        };
        let addr = crate::config::listen_addr(&config.listen).map_err(listen_error)?;
        // A plain bind first, so an address another process holds fails here as it always did (sockets
        // that set SO_REUSEPORT could otherwise join another process's group on that address).
        let addr = std::net::TcpListener::bind(addr)
            .and_then(|probe| probe.local_addr())
            .map_err(|e| listen_error(e.to_string()))?;
        let listener = shared_listener(addr).map_err(|e| listen_error(e.to_string()))?;
        let limiter = Limiter::new(
            options.limits.clone(),
            app.metrics.shed_requests.clone(),
            app.metrics.idle_connections_closed.clone(),
        );
        Ok(Self {
            listener,
            app,
            limiter,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (metrics, cache), for tests and embedding.
    pub fn state(&self) -> Arc<AppState> {
        self.app.clone()
    }

    /// Serves on the calling runtime until `shutdown` completes, then lets in-flight requests finish for
    /// at most `grace`.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()> {
        self.serve_with_workers(0, shutdown, grace).await
    }

    /// Like [`Sidecar::serve`], with `workers` more threads, each running its own single-threaded runtime
    /// that accepts from its own socket on the same address (see [`shared_listener`]) and serves its
    /// connections start to finish (its requests, its connections to the app): no request wakes another
    /// thread.
    pub async fn serve_with_workers(
        self,
        workers: usize,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut done = Vec::with_capacity(workers);
        let listener = if workers == 0 {
            self.listener
        } else {
            let addr = self.listener.local_addr()?;
            for index in 0..workers {
                let (app, stop) = (self.app.clone(), stop_rx.clone());
                let limiter = self.limiter.clone();
                let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                std::thread::Builder::new()
                    .name(format!("sidecar-worker-{index}"))
                    .spawn(move || {
                        let result = runtime.block_on(async move {
                            let listener = shared_listener(addr)?;
                            accept_loop(listener, app, limiter, stop, grace).await;
                            Ok(())
                        });
                        let _ = done_tx.send(result);
                    })?;
                done.push(done_rx);
            }
            self.listener
        };
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        accept_loop(listener, self.app, self.limiter, stop_rx, grace).await;
        for worker in done {
            // A worker whose runtime could not take the socket failed at once: report it.
            if let Ok(Err(e)) = worker.await {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A listening socket on `addr` (with the thread's runtime) that each thread's own socket joins
/// (SO_REUSEPORT): the kernel spreads new connections evenly over the threads by address hash. Threads
/// accepting from one shared socket all wake for each connection and whichever runs first takes it, so
/// a burst of connections could land on one thread while the other idles.
fn shared_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts until `stop`, then closes the socket, asks open connections to finish and aborts what is left
/// after `grace` (SSE streams never end on their own). Every connection holds one of `limiter`'s slots.
/// Connections start on the HTTP/1.1 fast path ([`crate::http1`]); what it does not serve goes to hyper.
async fn accept_loop(
    listener: TcpListener,
    app: Arc<AppState>,
    limiter: Arc<Limiter>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let router = router(app.clone());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // CONNECT protocol for HTTP/2 websockets, as the axum server it replaces offered.
    builder.http2().enable_connect_protocol();
    limiter.configure(&mut builder);
    let builder = Arc::new(builder);
    let fast = Arc::new(FastPath::new(app.clone(), limiter.clone()));
    loop {
        // At the connection cap, stop accepting (the backlog holds new ones) until one closes.
        let slot = tokio::select! {
            slot = limiter.connection_slot() => match slot {
                Some(slot) => slot,
                None => break,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = stopped(&mut stop) => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let accepted = tokio::time::Instant::now();
                    // No Nagle delay: SSE events and small MCP responses must leave as soon as written.
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
                    }
                    let hyper_path = HyperPath {
                        app: app.clone(),
                        router: router.clone(),
                        limiter: limiter.clone(),
                        builder: builder.clone(),
                        graceful: graceful.watcher(),
                    };
                    let (fast, stop) = (fast.clone(), stop.clone());
                    connections.spawn(async move {
                        let _slot = slot;
                        if let Outcome::Handoff { io, served } = fast.serve(tcp, accepted, stop).await {
                            hyper_path.serve(io, served, accepted).await;
                        }
                    });
                }
                Err(e) => accept_error(e).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    let drained = async {
        // Hyper's connections are asked to finish; the fast path's close between requests on `stop`.
        tokio::join!(graceful.shutdown(), async {
            while connections.join_next().await.is_some() {}
        });
    };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "shutdown grace period over; closing open streams");
        }
    }
    connections.shutdown().await;
}

/// What a connection the fast path hands over needs to be served by hyper.
struct HyperPath {
    app: Arc<AppState>,
    router: Router,
    limiter: Arc<Limiter>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: hyper_util::server::graceful::Watcher,
}

impl HyperPath {
    /// Serves `io` with hyper (HTTP/1, h2c, upgrades); `served`: the fast path already answered a
    /// request on it, so the first-request deadline (from `accepted`) no longer applies.
    async fn serve(self, io: Rewind, served: bool, accepted: tokio::time::Instant) {
        let first_request = Arc::new(AtomicBool::new(served));
        let service = SidecarService {
            app: self.app,
            router: self.router,
            limiter: self.limiter.clone(),
            first_request: first_request.clone(),
        };
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = self.graceful.watch(connection);
        let deadline = accepted + self.limiter.limits().header_read_timeout;
        match self
            .limiter
            .serve_connection_until(connection, first_request, deadline)
            .await
        {
            Some(Err(e)) => tracing::trace!(error = %e, "connection ended with an error"),
            Some(Ok(())) => {}
            None => tracing::trace!("closed a connection that sent no request in time"),
        }
    }
}

/// Waits until `stop` turns true.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens once the server stops anyway.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// A connection reset before it was accepted is the caller's business; anything else (out of file
/// descriptors) is logged and retried after a pause so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection's service: the proxy directly for every path but the operations endpoints, which the
/// router answers.
#[derive(Clone)]
struct SidecarService {
    app: Arc<AppState>,
    router: Router,
    limiter: Arc<Limiter>,
    /// Set on the connection's first request (see [`Limiter::serve_connection`]).
    first_request: Arc<AtomicBool>,
}

impl hyper::service::Service<Request<Incoming>> for SidecarService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.first_request.store(true, Ordering::Release);
        let request = request.map(|body| self.limiter.bound_body(body));
        // Probes and scrapes are never shed: a sidecar under attack must not look dead.
        if OPERATIONS_PATHS.contains(&request.uri().path()) {
            let router = self.router.clone();
            return Box::pin(router.oneshot(request));
        }
        let Some(slot) = self.limiter.request_slot() else {
            return Box::pin(std::future::ready(Ok(crate::limits::overloaded())));
        };
        Box::pin(proxy(State(self.app.clone()), request).map(move |response| {
            drop(slot);
            Ok(response)
        }))
    }
}
