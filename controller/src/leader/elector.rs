//! The elector's loop: one round per renew period, each bounded by a timeout; leadership is counted
//! from the moment a successful round *started* (before its GET) and given up at
//! `round start + (lease duration − renew period)` even while a round hangs, so this replica stops
//! writing before any other replica can consider the Lease expired. On shutdown it steps down at once and
//! releases the Lease only after the writers (grant and probe loops) have stopped.

use std::future::Future;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::leader::lease::{ElectionConfig, Observation, release, try_acquire_or_renew};

/// Runs rounds until `shutdown`, publishing leadership on `leader`; after shutdown waits for
/// `writers_stopped` before releasing a Lease it holds.
pub(crate) async fn run_elector(
    client: Client,
    config: ElectionConfig,
    leader: watch::Sender<bool>,
    shutdown: CancellationToken,
    writers_stopped: impl Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let hold = config.lease_duration.saturating_sub(config.renew_period);
    let mut observed: Option<Observation> = None;
    // Leading until this instant (None: not leading).
    let mut until: Option<Instant> = None;
    loop {
        let round_start = Instant::now();
        let round = tokio::time::timeout(
            config.renew_period,
            try_acquire_or_renew(&api, &config, &mut observed),
        );
        let mut round = std::pin::pin!(round);
        let result = loop {
            tokio::select! {
                result = &mut round => break Some(result),
                () = step_down_at(until) => until = publish(&leader, None),
                () = shutdown.cancelled() => break None,
            }
        };
        match result {
            None => break,
            Some(Ok(Ok(true))) => until = publish(&leader, Some(round_start + hold)),
            Some(Ok(Ok(false))) => until = publish(&leader, None),
            Some(Ok(Err(e))) => {
                tracing::warn!(error = %e, lease = %config.lease_name, "leader election round failed; retrying")
            }
            Some(Err(_)) => tracing::warn!(lease = %config.lease_name, timeout = ?config.renew_period,
                "leader election round timed out; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = step_down_at(until) => until = publish(&leader, None),
            () = sleep_until(round_start + config.renew_period) => {}
        }
    }
    // Writers check leadership before each write: stepping down first stops new writes.
    leader.send_replace(false);
    writers_stopped.await;
    // Releases only a Lease still held by this identity (a round may have renewed it after a step-down).
    release(&api, &config).await;
}

/// Publishes leadership valid until `until` (None: not leading) and returns it.
fn publish(leader: &watch::Sender<bool>, until: Option<Instant>) -> Option<Instant> {
    let until = until.filter(|at| *at > Instant::now());
    let leading = until.is_some();
    leader.send_if_modified(|was| std::mem::replace(was, leading) != leading);
    until
}

/// Completes at `until`; never when not leading.
async fn step_down_at(until: Option<Instant>) {
    match until {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
