//! Status writes of the probe loop, each in its own task with a bounded number in flight, so a slow or
//! hung API server never stalls the scheduling of probes.

use std::sync::Arc;

use kube::ResourceExt;
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::is_our_condition_type;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::context::Context;
use crate::events::publish_transitions;
use crate::metrics::ErrorLabels;
use crate::status_writer::{ConditionChange, StatusPlan, WriteOutcome, write_conditions};

/// Status writes in flight at most.
pub const WRITE_CONCURRENCY: usize = 8;

/// Longest wait for status writes in flight at shutdown.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Spawns and tracks status writes.
pub struct StatusWrites {
    tasks: JoinSet<()>,
    permits: Arc<Semaphore>,
}

impl Default for StatusWrites {
    fn default() -> Self {
        StatusWrites {
            tasks: JoinSet::new(),
            permits: Arc::new(Semaphore::new(WRITE_CONCURRENCY)),
        }
    }
}

impl StatusWrites {
    /// Writes `plan` to `server`'s status (leader only), then publishes the flips the write made as Events.
    pub fn spawn_plan(&mut self, ctx: &Arc<Context>, server: MCPServer, plan: StatusPlan) {
        let (ctx, permits) = (ctx.clone(), self.permits.clone());
        self.tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            if let Some(WriteOutcome::Written(flips)) =
                write(&ctx, &server, ConditionChange::Set(&plan.conditions)).await
            {
                publish_transitions(&ctx.recorder, &server, &flips).await;
            }
        });
    }

    /// Removes our conditions from `server` (token exchange switched off); every other writer's entries
    /// stay.
    pub fn spawn_clear(&mut self, ctx: &Arc<Context>, server: MCPServer) {
        let (ctx, permits) = (ctx.clone(), self.permits.clone());
        self.tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            write(&ctx, &server, ConditionChange::Clear).await;
        });
    }

    /// Waits for one finished write (pending forever when none runs, for `select!`).
    pub async fn join_next(&mut self) {
        match self.tasks.join_next().await {
            Some(Err(e)) => tracing::error!(error = %e, "a status write task failed"),
            Some(Ok(())) => {}
            None => std::future::pending().await,
        }
    }

    /// On shutdown: lets writes in flight finish (their results are current) for at most `DRAIN`, then
    /// stops the rest. Writes not yet started skip themselves once leadership is given up.
    pub async fn shutdown(&mut self) {
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN, drain).await.is_err() {
            tracing::warn!("status writes still running after {DRAIN:?}; stopping them");
        }
        self.tasks.shutdown().await;
    }
}

/// True when `server` carries conditions only this controller writes.
pub fn has_our_conditions(server: &MCPServer) -> bool {
    server
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| is_our_condition_type(&c.type_)))
}

async fn write(ctx: &Context, server: &MCPServer, change: ConditionChange<'_>) -> Option<WriteOutcome> {
    // Leadership may have been lost while this write waited for a permit.
    if !ctx.is_leader() {
        return None;
    }
    let (ns, name) = (server.namespace().unwrap_or_default(), server.name_any());
    let conflicts = &ctx.metrics.status_write_conflicts;
    match write_conditions(&ctx.client, &ns, &name, change, || {
        conflicts.inc();
    })
    .await
    {
        Ok(outcome) => {
            if matches!(outcome, WriteOutcome::Written(_)) {
                ctx.metrics.status_writes.inc();
            }
            Some(outcome)
        }
        Err(e) => {
            tracing::warn!(error = %e, mcpserver = %format!("{ns}/{name}"), "status write failed; the next probe retries");
            ctx.metrics
                .errors
                .get_or_create(&ErrorLabels {
                    r#loop: "probe",
                    error: e.category(),
                })
                .inc();
            None
        }
    }
}
