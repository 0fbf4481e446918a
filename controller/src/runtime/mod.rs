//! The running controller: the watches and their caches, the grant and probe controllers
//! (kube-runtime), leader election, and the `/healthz` `/readyz` `/metrics` server, all stopped together
//! by SIGTERM/Ctrl-C. Also what they share: context, API clients, metrics, errors.

pub(crate) mod context;
pub(crate) mod error;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod http;
pub(crate) mod kube_client;
#[cfg(test)]
mod manifest_tests;
pub mod metrics;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod mock_apiserver;
#[cfg(test)]
mod quiet_watch_tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::Stream;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use muster_exchange_dex::{ClientOptions, ExchangeClient};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::context::{Context, ProbeConfig};
use self::metrics::Metrics;
use crate::cli::{ControllerArgs, StartError};
use crate::grants::controller::GrantContext;
use crate::grants::credential_grants::CredentialGrantConfig;
use crate::grants::kubeconfig_grants::KubeconfigGrantConfig;
use crate::grants::rbac_objects::sort_subjects;
use crate::grants::stores::GrantStores;
use crate::grants::watches::GrantWatches;
use crate::leader::elector::run_elector;
use crate::leader::lease::ElectionConfig;
use crate::probe::ProbeSettings;
use crate::probe::controller::{mcpserver_resource, spec_changes};
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

/// Runs the controller until SIGTERM/Ctrl-C, against the API server of the inferred configuration.
pub(crate) async fn run(args: ControllerArgs) -> Result<(), StartError> {
    validate(&args)?;
    start(args, kube_client::clients().await?).await
}

/// Runs the controller until SIGTERM/Ctrl-C with these clients.
pub(crate) async fn run_with(args: ControllerArgs, clients: kube_client::Clients) -> Result<(), StartError> {
    validate(&args)?;
    start(args, clients).await
}

async fn start(args: ControllerArgs, clients: kube_client::Clients) -> Result<(), StartError> {
    let exchange = exchange_client(&args)?;
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| StartError::Listen(args.metrics_addr, e))?;
    let identity = identity(&args);
    let (metrics, registry) = metrics_registry();
    let (leader_tx, leader_rx) = watch::channel(!args.leader_election);
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(context(
        &args,
        clients.call.clone(),
        exchange,
        metrics.clone(),
        leader_rx.clone(),
        &identity,
    ));
    let namespace = (!args.mcpserver_namespace.is_empty()).then_some(args.mcpserver_namespace.as_str());
    let watches = GrantWatches::new(&clients.watch, &ctx, namespace);
    let stores = watches.stores.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let app = http::router(http::HttpState {
        registry,
        ready: ready.clone(),
    });
    tracing::info!(identity = %identity, metrics_addr = %args.metrics_addr, "muster-exchange controller starting");
    // The Lease is released only once both controllers have returned.
    let writers_stopped = CancellationToken::new();
    let writers = run_controllers(
        ctx,
        clients.watch.clone(),
        namespace.map(str::to_string),
        watches,
        (leader_rx.clone(), shutdown.clone(), writers_stopped.clone()),
    );
    tokio::join!(
        wait_for_signal(shutdown.clone()),
        writers,
        elect(
            args.leader_election,
            clients.call,
            election_config(&args, identity),
            leader_tx,
            (shutdown.clone(), writers_stopped),
        ),
        watch_leader_gauge(leader_rx, metrics, shutdown.clone()),
        mark_ready(stores, ready),
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

/// One `()` each time this replica becomes the leader (not for the initial state).
pub(crate) fn leader_gained(leader: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send + Sync + 'static {
    futures::stream::unfold(leader, |mut leader| async move {
        loop {
            leader.changed().await.ok()?;
            if *leader.borrow_and_update() {
                return Some(((), leader));
            }
        }
    })
}

/// The grant and probe controllers; cancels `stopped` once both returned (after `shutdown`, with their
/// in-flight reconciles finished).
async fn run_controllers(
    ctx: Arc<Context>,
    watch_client: Client,
    namespace: Option<String>,
    watches: GrantWatches,
    (leader, shutdown, stopped): (watch::Receiver<bool>, CancellationToken, CancellationToken),
) {
    let grants = GrantContext::new(ctx.clone(), watches.stores.clone());
    let resource = mcpserver_resource();
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(watch_client, ns, &resource),
        None => Api::all_with(watch_client, &resource),
    };
    let writer = Writer::new(resource);
    let store = writer.as_reader();
    let objects = watcher(api, kube_client::watch_config())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    tokio::join!(
        crate::grants::controller::run(
            Arc::new(grants),
            watches,
            leader_gained(leader.clone()),
            shutdown.clone().cancelled_owned(),
        ),
        crate::probe::controller::run(
            ctx,
            spec_changes(objects),
            store,
            leader_gained(leader),
            shutdown.cancelled_owned(),
        ),
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

async fn mark_ready(stores: GrantStores, ready: Arc<AtomicBool>) {
    if stores.wait_until_ready().await.is_ok() {
        ready.store(true, Ordering::SeqCst);
    }
}

async fn serve(listener: tokio::net::TcpListener, app: axum::Router, shutdown: CancellationToken) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    muster_exchange_ops::serve(listener, app, shutdown).await;
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
        },
        credentials: CredentialGrantConfig {
            reader: args.credentials_reader.clone(),
            policy: CredentialsPolicy::for_controller(
                &args.controller_namespace,
                args.allow_cross_namespace_credentials,
            ),
        },
        probe: ProbeConfig {
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
        grants_concurrency: args.grants_concurrency,
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

/// Cancels `shutdown` on SIGTERM or Ctrl-C (or returns when something else cancelled it).
async fn wait_for_signal(shutdown: CancellationToken) {
    tokio::select! {
        () = muster_exchange_ops::shutdown_signal() => {}
        () = shutdown.cancelled() => {}
    }
    shutdown.cancel();
}
