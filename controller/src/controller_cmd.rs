//! The `controller` subcommand: flags and the wiring of caches, loops, leader election and HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::rbac::v1::Subject;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use muster_exchange_dex::{ClientOptions, ExchangeClient};
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::context::{Context, ProbeLoopConfig};
use crate::duration_arg::parse_duration;
use crate::grants::credential_grants::CredentialGrantConfig;
use crate::grants::kubeconfig_grants::KubeconfigGrantConfig;
use crate::grants::rbac_objects::sort_subjects;
use crate::grants::subjects::parse_service_account;
use crate::leader_election::{ElectionConfig, run_elector};
use crate::metrics::Metrics;
use crate::probe::ProbeSettings;

/// `muster-exchange controller`: Secret-read grants and per-cluster MCPServer conditions.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Label selector of organization namespaces (kubeconfig grants are made there).
    #[arg(long, default_value = "giantswarm.io/organization")]
    pub org_namespace_selector: String,
    /// Who may `get` the kubeconfig Secrets, as serviceaccount:NAMESPACE/NAME; repeatable.
    #[arg(long = "grant-subject", value_name = "serviceaccount:NAMESPACE/NAME", value_parser = parse_service_account)]
    pub grant_subjects: Vec<Subject>,
    /// Suffix of kubeconfig Secret names (`<cluster>-kubeconfig`, the Cluster API convention).
    #[arg(long, default_value = "-kubeconfig")]
    pub kubeconfig_secret_suffix: String,
    /// ServiceAccount that reads token-exchange credential Secrets (e.g. Muster's); unset: no credential grants.
    #[arg(long, value_name = "serviceaccount:NAMESPACE/NAME", value_parser = parse_service_account)]
    pub credentials_reader: Option<Subject>,
    /// Namespace of the MCPServers to watch; empty: all namespaces.
    #[arg(long, default_value = "")]
    pub mcpserver_namespace: String,
    /// Interval between probes of one MCPServer (jittered ±10 %).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub probe_interval: Duration,
    /// Deadline for one MCPServer's probe (discovery plus probe exchange).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub probe_timeout: Duration,
    /// Longest delay between probes of a failing MCPServer (exponential backoff from the interval).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub probe_max_backoff: Duration,
    /// Probes in flight at most.
    #[arg(long, default_value_t = 16)]
    pub probe_concurrency: usize,
    /// Send the probe exchange with an invalid subject token (TokenExchangeReady); false skips it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub probe_exchange: bool,
    /// PEM bundle of extra CAs trusted for the remote Dex servers.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// The controller's own namespace: never granted in.
    #[arg(long, env = "POD_NAMESPACE", default_value = "muster-exchange")]
    pub controller_namespace: String,
    /// Elect a leader on a Lease (only the leader writes); false for a single local replica.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "muster-exchange-controller")]
    pub leader_election_lease_name: String,
    /// Namespace of the leader-election Lease; default the controller's namespace.
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// This replica's identity in the Lease; default the pod name.
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Grants are re-checked at least this often even without watch events.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub grants_resync_interval: Duration,
    /// Namespaces synced at once.
    #[arg(long, default_value_t = 8)]
    pub grants_concurrency: usize,
}

/// Why the controller could not start (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A flag combination makes no sense.
    #[error("{0}")]
    Flags(String),
    /// `--ca-file` unreadable.
    #[error("cannot read --ca-file {0}: {1}")]
    CaFile(String, std::io::Error),
    /// Dex client.
    #[error(transparent)]
    Dex(#[from] muster_exchange_dex::BuildError),
    /// No cluster access.
    #[error("cannot connect to the Kubernetes API: {0}; run in-cluster or set a kubeconfig context")]
    Kube(#[from] kube::Error),
    /// The metrics address is taken.
    #[error("cannot listen on --metrics-addr {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

fn validate(args: &ControllerArgs) -> Result<(), StartError> {
    if args.probe_timeout >= args.probe_interval {
        return Err(StartError::Flags(format!(
            "--probe-timeout ({:?}) must be shorter than --probe-interval ({:?})",
            args.probe_timeout, args.probe_interval
        )));
    }
    if args.grant_subjects.is_empty() {
        tracing::warn!("no --grant-subject given: kubeconfig grants are removed, none are made");
    }
    Ok(())
}

/// Entry point: runs until SIGTERM/Ctrl-C; exit 0 after a graceful shutdown, 1 when it cannot start.
pub async fn run_controller(args: ControllerArgs) -> std::process::ExitCode {
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: ControllerArgs) -> Result<(), StartError> {
    validate(&args)?;
    let extra_ca_pem = match &args.ca_file {
        Some(p) => Some(std::fs::read(p).map_err(|e| StartError::CaFile(p.display().to_string(), e))?),
        None => None,
    };
    let exchange = ExchangeClient::new(ClientOptions {
        timeout: args.probe_timeout,
        extra_ca_pem,
    })?;
    let client = Client::try_default().await?;
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| StartError::Listen(args.metrics_addr, e))?;
    let identity = args
        .leader_election_identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("muster-exchange-controller-{}", rand::random::<u32>()));
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let (leader_tx, leader_rx) = watch::channel(!args.leader_election);
    let shutdown = CancellationToken::new();
    let trigger = Arc::new(Notify::new());
    let ctx = Arc::new(context(
        &args,
        client.clone(),
        exchange,
        metrics.clone(),
        leader_rx.clone(),
        &identity,
    ));
    let namespace = (!args.mcpserver_namespace.is_empty()).then_some(args.mcpserver_namespace.as_str());
    let (store, cache) =
        crate::triggers::mcpserver_cache(&client, namespace, trigger.clone(), shutdown.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let app = crate::http::router(crate::http::HttpState {
        registry: Arc::new(registry),
        ready: ready.clone(),
    });
    tracing::info!(identity = %identity, metrics_addr = %args.metrics_addr, "muster-exchange controller starting");

    let election = ElectionConfig {
        lease_name: args.leader_election_lease_name.clone(),
        namespace: args
            .leader_election_namespace
            .clone()
            .unwrap_or_else(|| args.controller_namespace.clone()),
        identity,
        lease_duration: Duration::from_secs(15),
        renew_period: Duration::from_secs(5),
    };
    let elector = {
        let (client, shutdown, enabled) = (client.clone(), shutdown.clone(), args.leader_election);
        async move {
            if enabled {
                run_elector(client, election, leader_tx, shutdown).await;
            }
        }
    };
    let leader_gauge = watch_leader_gauge(leader_rx, metrics.clone(), shutdown.clone());
    let mark_ready = {
        let (store, ready) = (store.clone(), ready.clone());
        async move {
            if store.wait_until_ready().await.is_ok() {
                ready.store(true, Ordering::SeqCst);
            }
        }
    };
    let server = {
        let shutdown = shutdown.clone();
        async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "metrics server stopped");
            }
        }
    };
    tokio::join!(
        wait_for_signal(shutdown.clone()),
        cache,
        crate::triggers::watch_grant_inputs(
            client,
            args.org_namespace_selector.clone(),
            args.kubeconfig_secret_suffix.clone(),
            trigger.clone(),
            shutdown.clone()
        ),
        crate::grants_loop::run_grants_loop(ctx.clone(), store.clone(), trigger, shutdown.clone()),
        crate::probe_loop::run_probe_loop(ctx, store, shutdown.clone()),
        elector,
        leader_gauge,
        mark_ready,
        server,
    );
    tracing::info!("muster-exchange controller stopped");
    Ok(())
}

fn context(
    args: &ControllerArgs,
    client: Client,
    exchange: ExchangeClient,
    metrics: Arc<Metrics>,
    leader: watch::Receiver<bool>,
    identity: &str,
) -> Context {
    let mut subjects = args.grant_subjects.clone();
    sort_subjects(&mut subjects);
    let reporter = Reporter {
        controller: "muster-exchange-controller".into(),
        instance: Some(identity.to_string()),
    };
    Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        kubeconfig: KubeconfigGrantConfig {
            namespace_selector: args.org_namespace_selector.clone(),
            subjects,
            secret_suffix: args.kubeconfig_secret_suffix.clone(),
            controller_namespace: args.controller_namespace.clone(),
            concurrency: args.grants_concurrency,
        },
        credentials: CredentialGrantConfig {
            reader: args.credentials_reader.clone(),
            controller_namespace: args.controller_namespace.clone(),
            concurrency: args.grants_concurrency,
        },
        probe: ProbeLoopConfig {
            interval: args.probe_interval,
            max_backoff: args.probe_max_backoff,
            settings: ProbeSettings {
                timeout: args.probe_timeout,
                exchange_probe: args.probe_exchange,
            },
            concurrency: args.probe_concurrency,
        },
        exchange,
        metrics,
        leader,
        grants_resync: args.grants_resync_interval,
    }
}

async fn watch_leader_gauge(
    mut leader: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        let leading = *leader.borrow_and_update();
        metrics.leader.set(i64::from(leading));
        tracing::info!(leader = leading, "leadership");
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = leader.changed() => if changed.is_err() { return },
        }
    }
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C (or when something else cancelled it).
async fn wait_for_signal(shutdown: CancellationToken) {
    let terminate = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still works");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
        () = shutdown.cancelled() => {}
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    #[test]
    fn flags_parse_with_documented_defaults() {
        let cli = Cli::try_parse_from([
            "controller",
            "--grant-subject",
            "serviceaccount:muster/mcp-kubernetes",
            "--grant-subject=sa:muster/other",
            "--credentials-reader",
            "serviceaccount:muster/muster",
            "--controller-namespace",
            "mx",
        ])
        .unwrap();
        let a = cli.args;
        assert_eq!(a.org_namespace_selector, "giantswarm.io/organization");
        assert_eq!(
            a.grant_subjects
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["mcp-kubernetes", "other"]
        );
        assert_eq!(a.credentials_reader.map(|s| s.name), Some("muster".into()));
        assert_eq!(
            (a.probe_interval, a.probe_timeout),
            (Duration::from_secs(60), Duration::from_secs(5))
        );
        assert_eq!(a.kubeconfig_secret_suffix, "-kubeconfig");
        assert_eq!(a.mcpserver_namespace, "");
        assert!(a.leader_election && a.probe_exchange);
        assert_eq!(a.leader_election_lease_name, "muster-exchange-controller");
    }

    #[test]
    fn bad_subjects_and_durations_are_refused_with_a_hint() {
        let err = Cli::try_parse_from(["controller", "--grant-subject", "user:alice"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("serviceaccount:NAMESPACE/NAME"), "{err}");
        let err = Cli::try_parse_from(["controller", "--probe-timeout", "soon"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("use a whole number with ms, s, m or h"), "{err}");
        let cli = Cli::try_parse_from(["controller", "--probe-timeout", "2m"]).unwrap();
        assert!(
            validate(&cli.args)
                .unwrap_err()
                .to_string()
                .starts_with("--probe-timeout (120s) must be shorter")
        );
    }
}
