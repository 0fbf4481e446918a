//! The grant loop: on any relevant watch event (debounced), on a periodic resync, and on retry after a
//! failure, it syncs kubeconfig and credential grants. Only the leader writes; errors never end the loop.

use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use muster_exchange_api::MCPServer;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::error::Error;
use crate::grants::credential_grants::sync_credential_grants;
use crate::grants::grant_sync::SyncReport;
use crate::grants::kubeconfig_grants::sync_kubeconfig_grants;
use crate::grants::rbac_objects::GrantKind;
use crate::metrics::{ErrorLabels, GrantLabels, LoopLabels, WriteLabels};

/// Bursts of watch events within this window cause one sync.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// First retry delay after a failed sync; doubles up to the resync interval.
const RETRY_START: Duration = Duration::from_secs(2);

/// MCPServers from the store; objects that do not parse are logged when `report` is set (they get no
/// grant and no probe until fixed; the grant loop reports them, the probe loop's frequent ticks do not).
pub fn parsed_servers(store: &Store<DynamicObject>, report: bool) -> Vec<MCPServer> {
    store
        .state()
        .iter()
        .filter_map(|o| match o.as_ref().clone().try_parse::<MCPServer>() {
            Ok(server) => Some(server),
            Err(e) => {
                if report {
                    tracing::warn!(name = ?o.metadata.name, namespace = ?o.metadata.namespace, error = %e,
                        "skipping a malformed MCPServer until it is fixed");
                }
                None
            }
        })
        .collect()
}

/// Runs until `shutdown`.
pub async fn run_grants_loop(
    ctx: Arc<Context>,
    servers: Store<DynamicObject>,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) {
    // Credential grants are computed from the MCPServer cache: an empty, unsynced cache would delete them all.
    tokio::select! {
        _ = servers.wait_until_ready() => {}
        () = shutdown.cancelled() => return,
    }
    let mut leader = ctx.leader.clone();
    let mut wait = Duration::ZERO;
    let mut retry = Duration::ZERO;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = trigger.notified() => tokio::time::sleep(DEBOUNCE).await,
            () = tokio::time::sleep(wait) => {}
            Ok(()) = leader.changed() => {}
        }
        if !ctx.is_leader() {
            wait = ctx.grants_resync;
            continue;
        }
        retry = match sync_all(&ctx, &servers).await {
            Ok(()) => Duration::ZERO,
            Err(()) => (retry * 2).clamp(RETRY_START, ctx.grants_resync),
        };
        wait = if retry.is_zero() { ctx.grants_resync } else { retry };
    }
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

/// One sync of both kinds; `Err(())` when anything failed (already logged and counted).
pub async fn sync_all(ctx: &Context, servers: &Store<DynamicObject>) -> Result<(), ()> {
    let mut ok = true;
    ctx.metrics
        .reconciles
        .get_or_create(&LoopLabels {
            r#loop: "kubeconfig_grants",
        })
        .inc();
    match sync_kubeconfig_grants(&ctx.client, &ctx.kubeconfig).await {
        Ok(report) => {
            record(ctx, GrantKind::Kubeconfig, &report.sync, report.refused.len());
            ok &= report.sync.errors.is_empty();
            report
                .sync
                .errors
                .iter()
                .for_each(|e| record_error(ctx, "kubeconfig_grants", e));
        }
        Err(e) => {
            record_error(ctx, "kubeconfig_grants", &e);
            ok = false;
        }
    }
    ctx.metrics
        .reconciles
        .get_or_create(&LoopLabels {
            r#loop: "credential_grants",
        })
        .inc();
    match sync_credential_grants(&ctx.client, &parsed_servers(servers, true), &ctx.credentials).await {
        Ok(report) => {
            record(ctx, GrantKind::Credentials, &report.sync, report.refused.len());
            ok &= report.sync.errors.is_empty();
            report
                .sync
                .errors
                .iter()
                .for_each(|e| record_error(ctx, "credential_grants", e));
        }
        Err(e) => {
            record_error(ctx, "credential_grants", &e);
            ok = false;
        }
    }
    if ok { Ok(()) } else { Err(()) }
}
