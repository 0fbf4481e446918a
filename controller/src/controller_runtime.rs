//! Wiring of the running controller: caches, watches, the grant and probe loops, leader election and the
//! HTTP server, all stopped together by SIGTERM/Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use kube::api::DynamicObject;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use muster_exchange_dex::{ClientOptions, ExchangeClient};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::context::{Context, ProbeLoopConfig};
use crate::controller_cmd::{ControllerArgs, StartError};
use crate::grants::credential_grants::CredentialGrantConfig;
use crate::grants::kubeconfig_grants::KubeconfigGrantConfig;
use crate::grants::rbac_objects::sort_subjects;
use crate::leader_election::ElectionConfig;
use crate::leader_election_loop::run_elector;
use crate::metrics::Metrics;
use crate::probe::ProbeSettings;
use crate::triggers::GrantTriggers;
use muster_exchange_api::credentials_policy::CredentialsPolicy;

/// Lease validity without renewal.
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// Lease renewal (and follower retry) period.
const RENEW_PERIOD: Duration = Duration::from_secs(5);

/// Shortest `--grants-resync-interval` (the retry backoff starts at 2 s and is capped by it).
const MIN_RESYNC: Duration = Duration::from_secs(2);
/// Longest value of any duration flag: a week. Longer values add nothing and risk overflowing deadlines.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

fn check_range(flag: &str, value: Duration, min: Duration) -> Result<(), StartError> {
    if value < min || value > MAX_DURATION {
        return Err(StartError::Flags(format!(
            "{flag} ({value:?}) must be between {min:?} and {MAX_DURATION:?} (one week)"
        )));
    }
    Ok(())
}

pub(crate) fn validate(args: &ControllerArgs) -> Result<(), StartError> {
    check_range(
        "--grants-resync-interval",
        args.grants_resync_interval,
        MIN_RESYNC,
    )?;
    check_range("--probe-interval", args.probe_interval, Duration::from_secs(1))?;
    check_range("--probe-timeout", args.probe_timeout, Duration::from_millis(100))?;
    check_range("--probe-max-backoff", args.probe_max_backoff, Duration::ZERO)?;
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

fn exchange_client(args: &ControllerArgs) -> Result<ExchangeClient, StartError> {
    let extra_ca_pem = match &args.ca_file {
        Some(p) => Some(std::fs::read(p).map_err(|e| StartError::CaFile(p.display().to_string(), e))?),
        None => None,
    };
    Ok(ExchangeClient::with_resolver(
        ClientOptions {
            timeout: crate::probe::http_client_timeout(args.probe_timeout),
            extra_ca_pem,
        },
        crate::probe::resolve_guard::GuardedResolver::system(),
    )?)
}

fn identity(args: &ControllerArgs) -> String {
    args.leader_election_identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("muster-exchange-controller-{}", rand::random::<u32>()))
}

fn election_config(args: &ControllerArgs, identity: String) -> ElectionConfig {
    ElectionConfig {
        lease_name: args.leader_election_lease_name.clone(),
        namespace: args
            .leader_election_namespace
            .clone()
            .unwrap_or_else(|| args.controller_namespace.clone()),
        identity,
        lease_duration: LEASE_DURATION,
        renew_period: RENEW_PERIOD,
    }
}

/// Runs the controller until SIGTERM/Ctrl-C.
pub(crate) async fn run(args: ControllerArgs) -> Result<(), StartError> {
    validate(&args)?;
    let exchange = exchange_client(&args)?;
    let client = crate::kube_client::client().await?;
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| StartError::Listen(args.metrics_addr, e))?;
    let identity = identity(&args);
    let (metrics, registry) = metrics_registry();
    let (leader_tx, leader_rx) = watch::channel(!args.leader_election);
    let (shutdown, triggers) = (CancellationToken::new(), GrantTriggers::default());
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
        crate::triggers::mcpserver_cache(&client, namespace, triggers.clone(), shutdown.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let app = crate::http::router(crate::http::HttpState {
        registry,
        ready: ready.clone(),
    });
    tracing::info!(identity = %identity, metrics_addr = %args.metrics_addr, "muster-exchange controller starting");
    let inputs = crate::triggers::watch_grant_inputs(
        client.clone(),
        args.org_namespace_selector.clone(),
        args.kubeconfig_secret_suffix.clone(),
        triggers.clone(),
        shutdown.clone(),
    );
    // The Lease is released only once both writers have returned.
    let writers_stopped = CancellationToken::new();
    let writers = run_writers(
        ctx.clone(),
        store.clone(),
        triggers,
        shutdown.clone(),
        writers_stopped.clone(),
    );
    tokio::join!(
        wait_for_signal(shutdown.clone()),
        cache,
        inputs,
        writers,
        elect(
            args.leader_election,
            client,
            election_config(&args, identity),
            leader_tx,
            (shutdown.clone(), writers_stopped),
        ),
        watch_leader_gauge(leader_rx, metrics, shutdown.clone()),
        mark_ready(store, ready),
        serve(listener, app, shutdown),
    );
    tracing::info!("muster-exchange controller stopped");
    Ok(())
}

fn metrics_registry() -> (Arc<Metrics>, Arc<Registry>) {
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    (metrics, Arc::new(registry))
}

/// The grant and probe loops; cancels `stopped` once both returned.
async fn run_writers(
    ctx: Arc<Context>,
    store: Store<DynamicObject>,
    triggers: GrantTriggers,
    shutdown: CancellationToken,
    stopped: CancellationToken,
) {
    tokio::join!(
        crate::grants_loop::run_grants_loop(ctx.clone(), store.clone(), triggers, shutdown.clone()),
        crate::probe_loop::run_probe_loop(ctx, store, shutdown),
    );
    stopped.cancel();
}

async fn elect(
    enabled: bool,
    client: Client,
    config: ElectionConfig,
    leader: watch::Sender<bool>,
    (shutdown, writers_stopped): (CancellationToken, CancellationToken),
) {
    if enabled {
        run_elector(
            client,
            config,
            leader,
            shutdown,
            writers_stopped.cancelled_owned(),
        )
        .await;
    }
}

async fn mark_ready(store: Store<DynamicObject>, ready: Arc<AtomicBool>) {
    if store.wait_until_ready().await.is_ok() {
        ready.store(true, Ordering::SeqCst);
    }
}

async fn serve(listener: tokio::net::TcpListener, app: axum::Router, shutdown: CancellationToken) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    crate::http_server::serve(listener, app, shutdown).await;
    tracing::debug!(?addr, "metrics server stopped");
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
            policy: CredentialsPolicy::for_controller(
                &args.controller_namespace,
                args.allow_cross_namespace_credentials,
            ),
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
