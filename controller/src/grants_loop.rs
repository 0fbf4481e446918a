//! The grant loop: on any relevant watch event (debounced), on a periodic resync, and on retry after a
//! failure, it syncs kubeconfig and credential grants. Only the leader writes; errors never end the loop.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::error::Error;
use crate::grants::credential_grants::sync_credential_grants;
use crate::grants::grant_sync::SyncReport;
use crate::grants::kubeconfig_grants::sync_kubeconfig_grants;
use crate::grants::rbac_objects::GrantKind;
use crate::mcpserver_parse::parsed_servers;
use crate::metrics::{ErrorLabels, GrantLabels, LoopLabels, WriteLabels};
use crate::triggers::GrantTriggers;

/// Bursts of watch events within this window cause one sync.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// First retry delay after a failed sync; doubles up to the resync interval.
const RETRY_START: Duration = Duration::from_secs(2);

/// Which grant kinds one pass syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Which {
    /// Kubeconfig grants (lists every organization namespace's Secrets: the expensive one).
    pub kubeconfig: bool,
    /// Credential grants (from the MCPServer cache: two lists).
    pub credentials: bool,
}

impl Which {
    /// Both kinds: resyncs, retries, a new leader.
    pub const BOTH: Which = Which {
        kubeconfig: true,
        credentials: true,
    };
}

/// Runs until `shutdown`: each trigger runs its kind of sync; resyncs, retries and a new leader run both.
pub async fn run_grants_loop(
    ctx: Arc<Context>,
    servers: Store<DynamicObject>,
    triggers: GrantTriggers,
    shutdown: CancellationToken,
) {
    // Credential grants are computed from the MCPServer cache: an empty, unsynced cache would delete them
    // all. So shutdown wins every tie, and a cache that will never be ready (its writer gone) ends the loop.
    tokio::select! {
        biased;
        () = shutdown.cancelled() => return,
        ready = servers.wait_until_ready() => if ready.is_err() { return },
    }
    let mut leader = ctx.leader.clone();
    let mut wait = Duration::ZERO;
    let mut retry = Duration::ZERO;
    loop {
        let mut which = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = triggers.kubeconfig.notified() => Which { kubeconfig: true, credentials: false },
            () = triggers.credentials.notified() => Which { kubeconfig: false, credentials: true },
            () = tokio::time::sleep(wait) => Which::BOTH,
            Ok(()) = leader.changed() => Which::BOTH,
        };
        if which != Which::BOTH {
            tokio::time::sleep(DEBOUNCE).await;
            // Whatever else was triggered meanwhile runs in this pass too (and cannot be starved).
            which.kubeconfig |= triggers.kubeconfig.notified().now_or_never().is_some();
            which.credentials |= triggers.credentials.notified().now_or_never().is_some();
        }
        if !ctx.is_leader() {
            wait = ctx.grants_resync;
            continue;
        }
        retry = match sync(&ctx, &servers, which).await {
            Ok(()) => Duration::ZERO,
            Err(()) => next_retry(retry, ctx.grants_resync),
        };
        wait = if retry.is_zero() { ctx.grants_resync } else { retry };
    }
}

/// Doubles the retry delay from [`RETRY_START`] up to `resync`; never panics, whatever the durations.
fn next_retry(previous: Duration, resync: Duration) -> Duration {
    previous
        .saturating_mul(2)
        .max(RETRY_START)
        .min(resync.max(RETRY_START))
}

fn record(ctx: &Context, kind: GrantKind, report: &SyncReport, refused: usize) {
    let m = &ctx.metrics;
    let k = kind.label_value();
    m.grant_writes
        .get_or_create(&WriteLabels {
            kind: k,
            operation: "apply",
        })
        .inc_by(report.applied as u64);
    m.grant_writes
        .get_or_create(&WriteLabels {
            kind: k,
            operation: "delete",
        })
        .inc_by(report.deleted as u64);
    m.grants_managed
        .get_or_create(&GrantLabels { kind: k })
        .set(report.granted_namespaces as i64);
    m.grants_refused
        .get_or_create(&GrantLabels { kind: k })
        .set(refused as i64);
    for e in &report.errors {
        tracing::warn!(error = %e, grant = k, "grant write failed; retrying");
    }
}

fn record_error(ctx: &Context, r#loop: &'static str, e: &Error) {
    tracing::warn!(error = %e, r#loop, "grant sync failed; retrying");
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels {
            r#loop,
            error: e.category(),
        })
        .inc();
}

/// One sync of the kinds in `which`; `Err(())` when anything failed (already logged and counted).
pub async fn sync(ctx: &Context, servers: &Store<DynamicObject>, which: Which) -> Result<(), ()> {
    let mut ok = true;
    if which.kubeconfig {
        ok &= sync_kubeconfig(ctx).await;
    }
    if which.credentials {
        ok &= sync_credentials(ctx, servers).await;
    }
    if ok { Ok(()) } else { Err(()) }
}

async fn sync_kubeconfig(ctx: &Context) -> bool {
    const LOOP: &str = "kubeconfig_grants";
    count_run(ctx, LOOP);
    let result = sync_kubeconfig_grants(&ctx.client, &ctx.kubeconfig).await;
    record_outcome(
        ctx,
        GrantKind::Kubeconfig,
        LOOP,
        result.map(|r| (r.sync, r.refused.len())),
    )
}

async fn sync_credentials(ctx: &Context, servers: &Store<DynamicObject>) -> bool {
    const LOOP: &str = "credential_grants";
    count_run(ctx, LOOP);
    let parsed = parsed_servers(servers, true);
    ctx.metrics
        .mcpservers_unreadable
        .set(i64::try_from(parsed.malformed).unwrap_or(i64::MAX));
    let incomplete = parsed.malformed > 0;
    let result = sync_credential_grants(&ctx.client, &parsed.servers, &ctx.credentials, incomplete).await;
    record_outcome(
        ctx,
        GrantKind::Credentials,
        LOOP,
        result.map(|r| (r.sync, r.refused.len() + r.not_opted_in.len())),
    )
}

fn count_run(ctx: &Context, r#loop: &'static str) {
    ctx.metrics.reconciles.get_or_create(&LoopLabels { r#loop }).inc();
}

/// Records one sync's writes, refusals and failures; true when nothing failed.
fn record_outcome(
    ctx: &Context,
    kind: GrantKind,
    r#loop: &'static str,
    result: Result<(SyncReport, usize), Error>,
) -> bool {
    match result {
        Ok((sync, refused)) => {
            record(ctx, kind, &sync, refused);
            sync.errors.iter().for_each(|e| record_error(ctx, r#loop, e));
            sync.errors.is_empty()
        }
        Err(e) => {
            record_error(ctx, r#loop, &e);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use http::{Request, Response};
    use kube::Client;
    use kube::client::Body;
    use serde_json::json;

    use super::*;
    use crate::context::ProbeLoopConfig;
    use crate::fixtures::{list, synced_store, test_context};
    use crate::probe::ProbeSettings;

    fn counting_client() -> (Client, Arc<AtomicUsize>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let service = tower::service_fn(move |_request: Request<Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            let empty = list("List", "v1", vec![]);
            async move { Ok::<_, Infallible>(Response::new(Body::from(serde_json::to_vec(&empty).unwrap()))) }
        });
        (Client::new(service, "default"), requests)
    }

    /// A context whose replica is already the leader.
    fn leader_context(client: Client) -> Arc<Context> {
        let (_tx, leader) = tokio::sync::watch::channel(true);
        grants_context(client, leader)
    }

    /// A context for the grants loop only: its probe settings and exchange client go unused.
    fn grants_context(client: Client, leader: tokio::sync::watch::Receiver<bool>) -> Arc<Context> {
        crate::probe::tests::install_crypto();
        let probe = ProbeLoopConfig {
            interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(600),
            settings: ProbeSettings {
                timeout: Duration::from_secs(1),
                exchange_probe: true,
            },
            concurrency: 1,
        };
        let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
        Arc::new(test_context(client, exchange, leader, probe))
    }

    /// Finding: a shutdown racing the first sync could sync (and delete grants) anyway, and a cache that
    /// never became ready was treated as ready (empty: every credential grant looked unneeded).
    #[tokio::test]
    async fn shutdown_and_an_unready_cache_sync_nothing() {
        let (client, requests) = counting_client();
        let ctx = leader_context(client);
        for _ in 0..20 {
            let shutdown = CancellationToken::new();
            shutdown.cancel();
            run_grants_loop(ctx.clone(), synced_store(&[]), GrantTriggers::default(), shutdown).await;
        }
        let resource = kube::api::ApiResource::erase::<muster_exchange_api::MCPServer>(&());
        let writer = kube::runtime::reflector::store::Writer::<DynamicObject>::new(resource);
        let never_ready = writer.as_reader();
        drop(writer);
        let returned = tokio::time::timeout(
            Duration::from_secs(5),
            run_grants_loop(
                ctx,
                never_ready,
                GrantTriggers::default(),
                CancellationToken::new(),
            ),
        )
        .await;
        assert!(
            returned.is_ok(),
            "the loop ends when its cache can never be ready"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 0);
    }

    /// Finding: every MCPServer event resynced everything (a LIST per organization namespace). The
    /// credential trigger runs the credential sync alone: two lists, no namespace or Secret list.
    #[tokio::test]
    async fn an_mcpserver_change_runs_only_the_credential_sync() {
        let (client, requests) = counting_client();
        let ctx = leader_context(client);
        let (triggers, shutdown) = (GrantTriggers::default(), CancellationToken::new());
        let store = synced_store(&[]);
        let checks = async {
            // The first pass (resync at start) syncs both kinds: namespaces, roles, bindings x2.
            poll_until(&requests, 5).await;
            triggers.credentials.notify_one();
            poll_until(&requests, 7).await;
            // Longer than the debounce: nothing else follows.
            tokio::time::sleep(DEBOUNCE * 3).await;
            assert_eq!(requests.load(Ordering::SeqCst), 7);
            shutdown.cancel();
        };
        tokio::join!(
            run_grants_loop(ctx, store, triggers.clone(), shutdown.clone()),
            checks
        );
    }

    async fn poll_until(requests: &AtomicUsize, at_least: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while requests.load(Ordering::SeqCst) < at_least && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(requests.load(Ordering::SeqCst), at_least);
    }

    /// Finding: `Duration::clamp` panicked for a resync interval under 2 s.
    #[test]
    fn the_retry_delay_doubles_within_bounds_and_never_panics() {
        let resync = Duration::from_secs(300);
        assert_eq!(next_retry(Duration::ZERO, resync), RETRY_START);
        assert_eq!(
            next_retry(Duration::from_secs(8), resync),
            Duration::from_secs(16)
        );
        assert_eq!(next_retry(Duration::from_secs(200), resync), resync);
        assert_eq!(next_retry(Duration::ZERO, Duration::from_secs(1)), RETRY_START);
        assert_eq!(next_retry(Duration::MAX, Duration::MAX), Duration::MAX);
    }

    #[tokio::test]
    async fn followers_send_nothing_and_a_new_leader_syncs_at_once() {
        let (client, requests) = counting_client();
        let (leader_tx, leader_rx) = tokio::sync::watch::channel(false);
        let ctx = grants_context(client, leader_rx);
        let (triggers, shutdown) = (GrantTriggers::default(), CancellationToken::new());
        let store = synced_store(&[json!({
            "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "a", "namespace": "muster"}, "spec": {"type": "stdio", "command": "x"}})]);
        let checks = async {
            triggers.kubeconfig.notify_one();
            // Longer than the debounce: a leader would have listed namespaces by now.
            tokio::time::sleep(DEBOUNCE * 3).await;
            assert_eq!(
                requests.load(Ordering::SeqCst),
                0,
                "a follower must not talk to the API"
            );
            leader_tx.send_replace(true);
            // Kubeconfig grants: namespaces + roles + rolebindings; credential grants: roles + rolebindings.
            poll_until(&requests, 5).await;
            shutdown.cancel();
        };
        tokio::join!(
            run_grants_loop(ctx.clone(), store, triggers.clone(), shutdown.clone()),
            checks
        );
    }
}
