//! The probe loop: every MCPServer with token exchange enabled is probed on its own schedule (interval
//! with jitter, exponential backoff after failures), at most `concurrency` at once, each under its own
//! timeout; results are written as they arrive, so a black-holed cluster delays no other cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use muster_exchange_api::MCPServer;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::{initial_delay, next_probe_delay};
use crate::conditions::{CONNECTED, CREDENTIALS_READY, TOKEN_EXCHANGE_READY};
use crate::context::Context;
use crate::events::publish_transitions;
use crate::grants_loop::parsed_servers;
use crate::metrics::{ErrorLabels, LoopLabels, ProbeLabels};
use crate::probe::outcome::{Check, ProbeOutcome};
use crate::probe::probe_one;
use crate::probe::target::{ProbeTarget, credentials_secret_of};
use crate::sources::get_secret;
use crate::status_writer::{plan_status, write_conditions};

/// How often due probes are looked for.
const TICK: Duration = Duration::from_millis(500);

#[cfg(test)]
#[path = "probe_loop_tests.rs"]
mod tests;

#[derive(Debug)]
struct Schedule {
    next_due: Instant,
    /// Generation last scheduled: a spec change is probed right away, not one interval later.
    generation: Option<i64>,
    failures: u32,
    last_answered: Option<Timestamp>,
    in_flight: bool,
}

struct Done {
    key: String,
    server: MCPServer,
    outcome: ProbeOutcome,
}

/// Runs until `shutdown`. Followers do not probe (only the leader writes the results).
pub async fn run_probe_loop(ctx: Arc<Context>, servers: Store<DynamicObject>, shutdown: CancellationToken) {
    tokio::select! {
        _ = servers.wait_until_ready() => {}
        () = shutdown.cancelled() => return,
    }
    let mut schedules: HashMap<String, Schedule> = HashMap::new();
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(ctx.probe.concurrency.max(1)));
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => start_due(&ctx, &servers, &mut schedules, &mut tasks, &permits),
            Some(joined) = tasks.join_next() => match joined {
                Ok(done) => finish(&ctx, &mut schedules, done).await,
                Err(e) => tracing::error!(error = %e, "a probe task failed; it is rescheduled"),
            },
        }
    }
    tasks.shutdown().await;
}

fn start_due(
    ctx: &Arc<Context>,
    store: &Store<DynamicObject>,
    schedules: &mut HashMap<String, Schedule>,
    tasks: &mut JoinSet<Done>,
    permits: &Arc<tokio::sync::Semaphore>,
) {
    let servers: Vec<MCPServer> = parsed_servers(store, false)
        .into_iter()
        .filter(|s| s.enabled_token_exchange().is_some())
        .collect();
    let live: std::collections::HashSet<String> = servers.iter().map(key_of).collect();
    schedules.retain(|k, s| live.contains(k) || s.in_flight);
    if !ctx.is_leader() {
        return;
    }
    let now = Instant::now();
    for server in servers {
        let key = key_of(&server);
        let schedule = schedules.entry(key.clone()).or_insert_with(|| Schedule {
            next_due: now + initial_delay(ctx.probe.interval, rand::random()),
            generation: server.metadata.generation,
            failures: 0,
            last_answered: None,
            in_flight: false,
        });
        if schedule.generation != server.metadata.generation {
            schedule.generation = server.metadata.generation;
            schedule.next_due = now;
            schedule.failures = 0;
        }
        if schedule.in_flight || schedule.next_due > now {
            continue;
        }
        schedule.in_flight = true;
        let (ctx, permits, last_answered) = (ctx.clone(), permits.clone(), schedule.last_answered);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = probe_server(&ctx, &server, last_answered).await;
            Done { key, server, outcome }
        });
    }
}

fn key_of(server: &MCPServer) -> String {
    format!(
        "{}/{}",
        server.metadata.namespace.as_deref().unwrap_or_default(),
        server.metadata.name.as_deref().unwrap_or_default()
    )
}

async fn probe_server(ctx: &Context, server: &MCPServer, last_answered: Option<Timestamp>) -> ProbeOutcome {
    let secret = match credentials_secret_of(server) {
        Some((ns, name)) => get_secret(&ctx.client, &ns, &name).await,
        None => Ok(None),
    };
    let unreadable = secret.as_ref().err().map(ToString::to_string);
    let Some(mut target) = ProbeTarget::from_server(server, secret.ok().flatten().as_ref()) else {
        return ProbeOutcome {
            credentials: Check::unknown("NotProbed", "token exchange is not enabled"),
            connected: Check::unknown("NotProbed", "token exchange is not enabled"),
            token_exchange: Check::unknown("NotProbed", "token exchange is not enabled"),
        };
    };
    if let Some(error) = unreadable {
        target.credentials_check = Check::unknown("SecretUnreadable", error);
    }
    target.last_answered = last_answered;
    probe_one(&ctx.exchange, &target, &ctx.probe.settings).await
}

async fn finish(ctx: &Context, schedules: &mut HashMap<String, Schedule>, done: Done) {
    ctx.metrics
        .reconciles
        .get_or_create(&LoopLabels { r#loop: "probe" })
        .inc();
    for (condition, check) in [
        (CREDENTIALS_READY, &done.outcome.credentials),
        (CONNECTED, &done.outcome.connected),
        (TOKEN_EXCHANGE_READY, &done.outcome.token_exchange),
    ] {
        let labels = ProbeLabels {
            cluster: done.key.clone(),
            condition,
            reason: check.reason,
        };
        ctx.metrics.probe_results.get_or_create(&labels).inc();
    }
    if let Some(schedule) = schedules.get_mut(&done.key) {
        schedule.in_flight = false;
        schedule.failures = if done.outcome.is_ready() {
            0
        } else {
            schedule.failures.saturating_add(1)
        };
        if !matches!(done.outcome.connected.reason, "Disconnected" | "InvalidSpec") {
            schedule.last_answered = Some(Timestamp::now());
        }
        let delay = next_probe_delay(
            ctx.probe.interval,
            ctx.probe.max_backoff,
            schedule.failures,
            rand::random(),
        );
        schedule.next_due = Instant::now() + delay;
    }
    if !ctx.is_leader() {
        return;
    }
    let Some(plan) = plan_status(&done.server, &done.outcome, &Time(Timestamp::now())) else {
        return;
    };
    let (ns, name) = done.key.split_once('/').unwrap_or_default();
    match write_conditions(&ctx.client, ns, name, &plan.conditions).await {
        Ok(()) => {
            ctx.metrics.status_writes.inc();
            publish_transitions(&ctx.recorder, &done.server, &plan.transitions).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, mcpserver = %done.key, "status write failed; the next probe retries");
            ctx.metrics
                .errors
                .get_or_create(&ErrorLabels {
                    r#loop: "probe",
                    error: e.category(),
                })
                .inc();
        }
    }
}
