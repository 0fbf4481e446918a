//! Running `muster-exchange webhook`: wire the catalog, TLS and router together, serve over HTTPS, and
//! drain in-flight reviews on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use super::shutdown::Shutdown;
use super::{AppState, Metrics, router, serve};
use crate::apiserver::ClientError;
use crate::inject::InjectorSettings;
use crate::mcpservers::{LoadError, McpServerLookup, StaticMcpServers};
use crate::tls::TlsError;
use crate::tls::ca_bundle::WebhookConfigurationPatcher;
use crate::tls::ca_secret::SecretCaStore;
use crate::tls::pem_files::PemFiles;
use crate::tls::self_signed::{SelfSigned, SelfSignedSettings};
use crate::tls::server_config::client_verifier;

/// Where MCPServers come from.
#[derive(Debug, Clone)]
pub(crate) enum CatalogSource {
    /// A YAML/JSON file, read once.
    File(String),
    /// A watch on MCPServers in all namespaces: a pod's `mcpserver-namespace` annotation may point
    /// anywhere, so `--mcpserver-namespace` is only the default lookup namespace, never a watch limit.
    Cluster,
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub(crate) enum TlsSource {
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
pub(crate) struct WebhookServerConfig {
    /// Address to listen on.
    pub(crate) listen: SocketAddr,
    /// Injection settings.
    pub(crate) settings: InjectorSettings,
    /// MCPServer source.
    pub(crate) catalog: CatalogSource,
    /// Certificate source.
    pub(crate) tls: TlsSource,
    /// CA certificates (PEM) that clients' certificates must chain to; `None` accepts any client.
    pub(crate) client_ca_file: Option<std::path::PathBuf>,
    /// How long to keep serving (with `/readyz` failing) after SIGTERM before draining.
    pub(crate) shutdown_delay: Duration,
    /// Longest wait for in-flight reviews on shutdown.
    pub(crate) shutdown_grace: Duration,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// `--mcpservers FILE` failed to load.
    #[error(transparent)]
    Catalog(#[from] LoadError),
    /// No Kubernetes client could be built.
    #[error("cannot connect to Kubernetes: {0}")]
    Kube(#[from] ClientError),
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
pub(crate) async fn run(config: WebhookServerConfig) -> Result<(), RunError> {
    let stop = CancellationToken::new();
    let mut client = None;
    let metrics = Metrics::default();
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
            let store = crate::mcpservers::watch_mcpservers(client, move || done.cancel(), stop, unreadable);
            Ok((Arc::new(store), synced))
        }
    }
}

/// One client for the whole process, built on first need (a file catalog with file TLS needs none).
async fn kube_client(cache: &mut Option<kube::Client>) -> Result<kube::Client, RunError> {
    if let Some(client) = cache {
        return Ok(client.clone());
    }
    let client = crate::apiserver::client().await?;
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
