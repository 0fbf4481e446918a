//! Running `muster-exchange webhook`: wire the catalog, TLS and router together, serve over HTTPS, and
//! drain in-flight reviews on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use crate::inject::InjectorSettings;
use crate::limits::{LimitedAcceptor, ServerLimits};
use crate::mcpserver_store::{LoadError, McpServerLookup, StaticMcpServers};
use crate::server::router;
use crate::state::AppState;
use crate::tls::TlsError;
use crate::tls::ca_bundle::WebhookConfigurationPatcher;
use crate::tls::ca_secret::SecretCaStore;
use crate::tls::pem_files::PemFiles;
use crate::tls::self_signed::{SelfSigned, SelfSignedSettings};
use crate::tls::server_config::client_verifier;

/// Where MCPServers come from.
#[derive(Debug, Clone)]
pub enum CatalogSource {
    /// A YAML/JSON file, read once.
    File(String),
    /// A watch on MCPServers in all namespaces: a pod's `mcpserver-namespace` annotation may point
    /// anywhere, so `--mcpserver-namespace` is only the default lookup namespace, never a watch limit.
    Cluster,
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, re-read every `reload_interval`.
    Files {
        /// The files.
        files: PemFiles,
        /// Poll interval.
        reload_interval: Duration,
    },
    /// Minted in process; the CA is applied to the two named webhook configurations.
    SelfSigned {
        /// Names, lifetime and timing.
        settings: SelfSignedSettings,
        /// MutatingWebhookConfiguration name.
        mutating: String,
        /// ValidatingWebhookConfiguration name.
        validating: String,
        /// The Secret holding the CA the replicas share.
        ca_secret: String,
        /// Its namespace (the webhook's own).
        ca_namespace: String,
    },
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct WebhookServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Injection settings.
    pub settings: InjectorSettings,
    /// MCPServer source.
    pub catalog: CatalogSource,
    /// Certificate source.
    pub tls: TlsSource,
    /// CA certificates (PEM) that clients' certificates must chain to; `None` accepts any client.
    pub client_ca_file: Option<std::path::PathBuf>,
    /// How long to keep serving (with `/readyz` failing) after SIGTERM before draining.
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight reviews on shutdown.
    pub shutdown_grace: Duration,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--mcpservers FILE` failed to load.
    #[error(transparent)]
    Catalog(#[from] LoadError),
    /// No Kubernetes client could be built.
    #[error(
        "cannot connect to Kubernetes: {0}; run in a pod with a ServiceAccount, set KUBECONFIG, or use --mcpservers FILE"
    )]
    Kube(#[from] kube::Error),
    /// No certificate could be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listener failed.
    #[error("cannot serve on {listen}: {error}; is the address free and allowed?")]
    Serve {
        /// The address.
        listen: SocketAddr,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// Runs the webhook until SIGTERM or Ctrl-C.
pub async fn run(config: WebhookServerConfig) -> Result<(), RunError> {
    let stop = CancellationToken::new();
    let mut client = None;
    let metrics = crate::metrics::Metrics::default();
    let unreadable = metrics.mcpservers_unreadable.clone();
    let (catalog, catalog_synced) =
        build_catalog(&config.catalog, &mut client, stop.clone(), unreadable).await?;
    let mut state = AppState {
        metrics,
        ..AppState::new(config.settings.clone(), catalog)
    };
    match kube_client(&mut client).await {
        Ok(api) => state = state.with_access_reviewer(api),
        Err(error) => tracing::warn!(
            %error,
            "no Kubernetes client: MCPServers naming a credentials Secret are denied until the webhook runs with API access"
        ),
    }
    let state = Arc::new(state);
    let on_synced = state.clone();
    tokio::spawn(async move {
        catalog_synced.cancelled().await;
        on_synced.readiness.mark_catalog_synced();
    });
    let (tls, certificate_ready) = start_tls(&config, &mut client, stop.clone()).await?;
    let on_certificate = state.clone();
    tokio::spawn(async move {
        certificate_ready.cancelled().await;
        on_certificate.readiness.mark_certificate_loaded();
    });
    let handle = Handle::new();
    let shutdown = Shutdown {
        handle: handle.clone(),
        stop,
        state: state.clone(),
        delay: config.shutdown_delay,
        grace: config.shutdown_grace,
    };
    tokio::spawn(shutdown.after(muster_exchange_ops::shutdown_signal()));
    tracing::info!(listen = %config.listen, "serving admission reviews");
    serve(config.listen, router(state), tls, handle)
        .await
        .map_err(|error| RunError::Serve {
            listen: config.listen,
            error,
        })
}

/// Serves `router` over TLS until `handle` shuts it down, within the default [`ServerLimits`].
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    tls: RustlsConfig,
    handle: Handle<SocketAddr>,
) -> std::io::Result<()> {
    serve_within(listen, router, tls, handle, &ServerLimits::default()).await
}

/// [`serve`] within `limits` (timeouts, connection and in-flight caps; see [`crate::limits`]).
pub async fn serve_within(
    listen: SocketAddr,
    router: Router,
    tls: RustlsConfig,
    handle: Handle<SocketAddr>,
    limits: &ServerLimits,
) -> std::io::Result<()> {
    let mut server = axum_server::bind_rustls(listen, tls).handle(handle);
    crate::limits::configure(limits, server.http_builder());
    let acceptor = LimitedAcceptor::new(limits);
    server
        .map(|rustls| rustls.acceptor(acceptor))
        .serve(crate::limits::layer(limits, router).into_make_service())
        .await
}

/// The catalog, and a token cancelled once it is complete (at once for a file).
async fn build_catalog(
    source: &CatalogSource,
    client: &mut Option<kube::Client>,
    stop: CancellationToken,
    unreadable: prometheus_client::metrics::gauge::Gauge,
) -> Result<(Arc<dyn McpServerLookup>, CancellationToken), RunError> {
    let synced = CancellationToken::new();
    match source {
        CatalogSource::File(path) => {
            let catalog = StaticMcpServers::load(path)?;
            tracing::info!(count = catalog.len(), file = %path, "loaded MCPServers from file");
            synced.cancel();
            Ok((Arc::new(catalog), synced))
        }
        CatalogSource::Cluster => {
            let done = synced.clone();
            let client = kube_client(client).await?;
            let store =
                crate::mcpserver_watch::watch_mcpservers(client, move || done.cancel(), stop, unreadable);
            Ok((Arc::new(store), synced))
        }
    }
}

/// One client for the whole process, built on first need (a file catalog with file TLS needs none).
async fn kube_client(cache: &mut Option<kube::Client>) -> Result<kube::Client, RunError> {
    if let Some(client) = cache {
        return Ok(client.clone());
    }
    let client = kube::Client::try_default().await?;
    *cache = Some(client.clone());
    Ok(client)
}

/// The serving configuration, and a token cancelled once the API server can trust it: at once for
/// files, after the CA bundle is published (plus a propagation delay) for `--self-signed`.
async fn start_tls(
    server: &WebhookServerConfig,
    client: &mut Option<kube::Client>,
    stop: CancellationToken,
) -> Result<(RustlsConfig, CancellationToken), RunError> {
    let verifier = server
        .client_ca_file
        .as_deref()
        .map(client_verifier)
        .transpose()?;
    match server.tls.clone() {
        TlsSource::Files {
            files,
            reload_interval,
        } => {
            let (config, loaded) = files.load(&verifier)?;
            tokio::spawn(files.watch((config.clone(), verifier), loaded, reload_interval, stop));
            let ready = CancellationToken::new();
            ready.cancel();
            Ok((config, ready))
        }
        TlsSource::SelfSigned {
            mut settings,
            mutating,
            validating,
            ca_secret,
            ca_namespace,
        } => {
            settings.client_verifier = verifier;
            let client = kube_client(client).await?;
            let store = SecretCaStore::new(client.clone(), &ca_namespace, &ca_secret);
            let patcher = WebhookConfigurationPatcher::new(client, mutating, validating);
            let authority = SelfSigned::start(settings, Arc::new(patcher), Arc::new(store)).await?;
            let config = authority.rustls_config();
            let ready = authority.ready();
            tokio::spawn(authority.run(stop));
            Ok((config, ready))
        }
    }
}

/// What happens on SIGTERM: `/readyz` fails at once, the server keeps serving for `delay` (the API
/// server keeps sending reviews until the endpoints drop the pod, and a closed listener would fail them
/// under `failurePolicy: Fail`), then background tasks stop and in-flight reviews drain for up to `grace`.
pub struct Shutdown {
    /// The server's handle.
    pub handle: Handle<SocketAddr>,
    /// Stops the background tasks (watch, certificate loops).
    pub stop: CancellationToken,
    /// Whose readiness turns false.
    pub state: Arc<AppState>,
    /// Serving time after the signal.
    pub delay: Duration,
    /// Longest drain.
    pub grace: Duration,
}

impl Shutdown {
    /// Waits for `signal`, then shuts down as described on [`Shutdown`].
    pub async fn after(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.state.readiness.mark_shutting_down();
        tracing::info!(
            delay_seconds = self.delay.as_secs_f64(),
            "shutting down; reporting not ready and serving on until the endpoints drop this pod"
        );
        tokio::time::sleep(self.delay).await;
        tracing::info!(grace_seconds = self.grace.as_secs(), "draining in-flight reviews");
        self.stop.cancel();
        self.handle.graceful_shutdown(Some(self.grace));
    }
}
