//! The probe loop: every MCPServer with token exchange enabled is probed on its own schedule (interval
//! with jitter, exponential backoff after failures), at most `concurrency` at once, each under its own
//! timeout; results are written as they arrive, in their own tasks, so neither a black-holed cluster nor
//! a slow API server delays any other cluster.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::{
    CONDITION_DEX_CONNECTED, CONDITION_EXCHANGE_CREDENTIALS_READY, CONDITION_TOKEN_EXCHANGE_VERIFIED,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::initial_delay;
use crate::context::Context;
use crate::mcpserver_parse::ParseCache;
use crate::metrics::{LoopLabels, ProbeLabels};
use crate::probe::outcome::{Check, ProbeOutcome};
use crate::probe::probe_one;
use crate::probe::read_target::target_from_cluster;
use crate::probe_schedule::{ProbeResult, Schedule, after_probe};
use crate::probe_writes::{StatusWrites, has_our_conditions};
use crate::status_writer::plan_status;

/// How often due probes are looked for.
const TICK: Duration = Duration::from_millis(500);

#[cfg(test)]
#[path = "probe_loop_review_tests.rs"]
mod review_tests;
#[cfg(test)]
#[path = "probe_loop_tests.rs"]
mod tests;

struct Done {
    key: String,
    server: MCPServer,
    outcome: ProbeOutcome,
}

/// Everything the loop keeps between ticks.
struct ProbeLoop {
    schedules: HashMap<String, Schedule>,
    probes: JoinSet<Done>,
    permits: Arc<Semaphore>,
    writes: StatusWrites,
    parsed: ParseCache,
    /// Clears of our conditions sent, by key: `(resourceVersion, when)`, so each is sent once.
    clears: HashMap<String, (Option<String>, Instant)>,
}

/// Runs until `shutdown`. Followers do not probe (only the leader writes the results). Returns only
/// after every status write stopped, so leadership may be released safely afterwards.
pub async fn run_probe_loop(ctx: Arc<Context>, servers: Store<DynamicObject>, shutdown: CancellationToken) {
    tokio::select! {
        biased;
        () = shutdown.cancelled() => return,
        ready = servers.wait_until_ready() => if ready.is_err() { return },
    }
    let mut state = ProbeLoop {
        schedules: HashMap::new(),
        probes: JoinSet::new(),
        permits: Arc::new(Semaphore::new(ctx.probe.concurrency.max(1))),
        writes: StatusWrites::default(),
        parsed: ParseCache::default(),
        clears: HashMap::new(),
    };
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(joined) = state.probes.join_next() => match joined {
                Ok(done) => state.finish(&ctx, done),
                Err(e) => tracing::error!(error = %e, "a probe task failed; it is rescheduled"),
            },
            () = state.writes.join_next() => {}
            _ = tick.tick() => state.start_due(&ctx, &servers),
        }
    }
    state.probes.shutdown().await;
    state.writes.shutdown().await;
}

impl ProbeLoop {
    fn start_due(&mut self, ctx: &Arc<Context>, store: &Store<DynamicObject>) {
        let (enabled, disabled): (Vec<MCPServer>, Vec<MCPServer>) = self
            .parsed
            .servers(store)
            .into_iter()
            .partition(|s| muster_exchange_api::topology::of(s).is_ok());
        let live: HashSet<String> = enabled.iter().map(key_of).collect();
        self.schedules.retain(|k, s| live.contains(k) || s.in_flight);
        if !ctx.is_leader() {
            return;
        }
        let now = Instant::now();
        self.clear_conditions(ctx, disabled, now);
        for server in enabled {
            self.start_if_due(ctx, server, now);
        }
    }

    fn start_if_due(&mut self, ctx: &Arc<Context>, server: MCPServer, now: Instant) {
        let key = key_of(&server);
        let schedule = self.schedules.entry(key.clone()).or_insert_with(|| Schedule {
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
            return;
        }
        schedule.in_flight = true;
        let (ctx, permits, last_answered) = (ctx.clone(), self.permits.clone(), schedule.last_answered);
        self.probes.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = probe_server(&ctx, &server, last_answered).await;
            Done { key, server, outcome }
        });
    }

    /// Token exchange switched off: our conditions are removed once (again after an interval if the
    /// removal did not show up, e.g. because the write failed).
    fn clear_conditions(&mut self, ctx: &Arc<Context>, disabled: Vec<MCPServer>, now: Instant) {
        let stale: Vec<MCPServer> = disabled.into_iter().filter(has_our_conditions).collect();
        let keys: HashSet<String> = stale.iter().map(key_of).collect();
        self.clears.retain(|k, _| keys.contains(k));
        for server in stale {
            let (key, version) = (key_of(&server), server.metadata.resource_version.clone());
            let recent = self.clears.get(&key).is_some_and(|(sent_version, at)| {
                *sent_version == version && now.duration_since(*at) < ctx.probe.interval
            });
            if !recent {
                self.clears.insert(key, (version, now));
                self.writes.spawn_clear(ctx, server);
            }
        }
    }

    fn finish(&mut self, ctx: &Arc<Context>, done: Done) {
        record_outcome(ctx, &done);
        if let Some(schedule) = self.schedules.get_mut(&done.key) {
            let result = ProbeResult {
                generation: done.server.metadata.generation,
                ready: done.outcome.is_ready(),
                answered: !matches!(done.outcome.connected.reason, "Disconnected" | "InvalidSpec"),
            };
            let times = (ctx.probe.interval, ctx.probe.max_backoff);
            after_probe(schedule, result, times, Instant::now(), rand::random());
        }
        if !ctx.is_leader() {
            return;
        }
        if let Some(plan) = plan_status(&done.server, &done.outcome, &Time(Timestamp::now())) {
            self.writes.spawn_plan(ctx, done.server, plan);
        }
    }
}

fn record_outcome(ctx: &Context, done: &Done) {
    ctx.metrics
        .reconciles
        .get_or_create(&LoopLabels { r#loop: "probe" })
        .inc();
    for (condition, check) in [
        (CONDITION_EXCHANGE_CREDENTIALS_READY, &done.outcome.credentials),
        (CONDITION_DEX_CONNECTED, &done.outcome.connected),
        (CONDITION_TOKEN_EXCHANGE_VERIFIED, &done.outcome.token_exchange),
    ] {
        let labels = ProbeLabels {
            cluster: done.key.clone(),
            condition,
            reason: check.reason,
        };
        ctx.metrics.probe_results.get_or_create(&labels).inc();
    }
}

fn key_of(server: &MCPServer) -> String {
    format!(
        "{}/{}",
        server.metadata.namespace.as_deref().unwrap_or_default(),
        server.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Reads the credentials Secret (only where the policy allows and the Secret opted in, bounded by the
/// probe timeout) and probes.
async fn probe_server(ctx: &Context, server: &MCPServer, last_answered: Option<Timestamp>) -> ProbeOutcome {
    let policy = &ctx.credentials.policy;
    let timeout = ctx.probe.settings.timeout;
    let Some(mut target) = target_from_cluster(&ctx.client, server, policy, timeout).await else {
        return ProbeOutcome {
            credentials: Check::unknown("NotProbed", "token exchange is not enabled"),
            connected: Check::unknown("NotProbed", "token exchange is not enabled"),
            token_exchange: Check::unknown("NotProbed", "token exchange is not enabled"),
        };
    };
    target.last_answered = last_answered;
    probe_one(&ctx.exchange, &target, &ctx.probe.settings).await
}
