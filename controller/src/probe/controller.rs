//! The probe controller: kube-runtime's `Controller` over MCPServers. Every MCPServer someone exchanges
//! for (topology M: Muster; F: the sidecar; `muster_exchange_api::topology` decides) is probed when it
//! appears (after a short random delay spreading a fleet), when its spec changes, and then on its own
//! schedule: `reconcile` returns `Action::requeue` with the interval after a
//! success and an exponential backoff after failures. At most `concurrency` probes (each with its status
//! write) run at once, each under its own timeout, so a black-holed cluster delays no other cluster.
//!
//! Status writes (ours or Muster's) do not trigger a reconcile: only generation changes do. Only the
//! leader probes and writes; a new leader reconciles every MCPServer at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::{
    CONDITION_DEX_CONNECTED, CONDITION_EXCHANGE_CREDENTIALS_READY, CONDITION_TOKEN_EXCHANGE_VERIFIED,
};
use tracing::Instrument;

use super::events::publish_transitions;
use super::mcpserver::{has_our_conditions, parse_lenient};
use super::outcome::{Check, ProbeOutcome};
use super::probe_one;
use super::read_target::target_from_cluster;
use super::schedule::{initial_delay, next_probe_delay};
use super::status::{ConditionChange, WriteOutcome, plan_status, write_conditions};
use crate::runtime::context::Context;
use crate::runtime::error::Error;
use crate::runtime::metrics::{ErrorLabels, LoopLabels, ProbeLabels};

/// What the probe controller remembers of one MCPServer between reconciles.
#[derive(Debug, Clone, Default)]
struct Memory {
    /// The generation last probed: a new one resets the backoff.
    generation: Option<i64>,
    /// Consecutive probes that were not ready (drives the backoff).
    failures: u32,
    /// When this MCPServer's Dex last answered, for the `Disconnected` message.
    last_answered: Option<Timestamp>,
}

/// The probe controller's context: the shared one, the cache, and the per-object memory.
pub(crate) struct ProbeContext {
    pub(crate) ctx: Arc<Context>,
    store: Store<DynamicObject>,
    memory: Mutex<HashMap<String, Memory>>,
    /// MCPServers in the cache that cannot be read at all (the `mcpservers_unreadable` gauge).
    unreadable: Mutex<std::collections::HashSet<String>>,
    /// A random number in `[0, 1)` for the jitter (fixed in tests, so delays are exact).
    random: fn() -> f64,
}

impl ProbeContext {
    pub(crate) fn new(ctx: Arc<Context>, store: Store<DynamicObject>, random: fn() -> f64) -> Self {
        ProbeContext {
            ctx,
            store,
            memory: Mutex::default(),
            unreadable: Mutex::default(),
            random,
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        self.memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The MCPServer resource, read as dynamic objects so one malformed object never stops the watch.
pub(crate) fn mcpserver_resource() -> ApiResource {
    ApiResource::erase::<MCPServer>(&())
}

/// Runs the probe controller over `objects` (the watch of MCPServers, already reflected into `store`)
/// until `shutdown`; in-flight probes and writes finish first. `leader_gained` reconciles everything.
pub(crate) async fn run(
    ctx: Arc<Context>,
    objects: impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
    store: Store<DynamicObject>,
    leader_gained: impl Stream<Item = ()> + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let concurrency = u16::try_from(ctx.probe.concurrency.max(1)).unwrap_or(u16::MAX);
    let context = Arc::new(ProbeContext::new(ctx, store.clone(), rand::random::<f64>));
    Controller::for_stream_with(objects, store, mcpserver_resource())
        .with_config(Config::default().concurrency(concurrency))
        .reconcile_all_on(leader_gained)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "probe controller");
            }
        })
        .await;
}

fn key_of(object: &DynamicObject) -> String {
    format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any())
}

/// One MCPServer: clear our conditions when nobody exchanges for it, else probe (when due) and write the result.
pub(crate) async fn reconcile(object: Arc<DynamicObject>, p: Arc<ProbeContext>) -> Result<Action, Error> {
    let key = key_of(&object);
    // Every log line of this reconcile carries the object's ids.
    let span = tracing::info_span!("reconcile", controller = "probe", kind = "MCPServer",
        namespace = %object.namespace().unwrap_or_default(), name = %object.name_any());
    reconcile_one(object, p, key).instrument(span).await
}

async fn reconcile_one(
    object: Arc<DynamicObject>,
    p: Arc<ProbeContext>,
    key: String,
) -> Result<Action, Error> {
    let ctx = &p.ctx;
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    forget_deleted(&p);
    let server = match parse_lenient(&object) {
        Ok(server) => {
            mark_unreadable(&p, &key, false);
            server
        }
        Err(e) => {
            tracing::warn!(error = %e, "a malformed MCPServer: no probe until it is fixed");
            p.memory().remove(&key);
            mark_unreadable(&p, &key, true);
            return Ok(Action::await_change());
        }
    };
    // Topologies M and F are probed alike; only "neither" has its conditions cleared.
    if muster_exchange_api::topology::of(&server).is_err() {
        p.memory().remove(&key);
        if has_our_conditions(&server) {
            // Token exchange switched off: our conditions go, once; the change wakes no probe.
            write(ctx, &server, ConditionChange::Clear).await?;
        }
        return Ok(Action::await_change());
    }
    let generation = server.metadata.generation;
    let remembered = {
        let mut memory = p.memory();
        match memory.get_mut(&key) {
            None => {
                memory.insert(
                    key.clone(),
                    Memory {
                        generation,
                        ..Memory::default()
                    },
                );
                None
            }
            Some(m) => {
                if m.generation != generation {
                    *m = Memory {
                        generation,
                        last_answered: m.last_answered,
                        failures: 0,
                    };
                }
                Some(m.clone())
            }
        }
    };
    let Some(remembered) = remembered else {
        return Ok(Action::requeue(initial_delay(ctx.probe.interval, (p.random)())));
    };
    let outcome = probe_server(ctx, &server, remembered.last_answered).await;
    record_outcome(ctx, &key, &outcome);
    let failures = {
        let mut memory = p.memory();
        let m = memory.entry(key).or_default();
        if !matches!(outcome.connected.reason, "Disconnected" | "InvalidSpec") {
            m.last_answered = Some(Timestamp::now());
        }
        m.failures = if outcome.is_ready() {
            0
        } else {
            m.failures.saturating_add(1)
        };
        m.failures
    };
    if let Some(plan) = plan_status(&server, &outcome, &Time(Timestamp::now())) {
        // A failed write is counted and logged; the next probe writes again.
        // Events carry the flips the write made, as read just before it.
        if let Ok(Some(WriteOutcome::Written(flips))) =
            write(ctx, &server, ConditionChange::Set(&plan.conditions)).await
        {
            publish_transitions(&ctx.recorder, &server, &flips).await;
        }
    }
    let (interval, max_backoff) = (ctx.probe.interval, ctx.probe.max_backoff);
    let delay = next_probe_delay(interval, max_backoff, failures, (p.random)());
    Ok(Action::requeue(delay))
}

/// A failed clear of our conditions is retried after one probe interval.
fn error_policy(_object: Arc<DynamicObject>, _error: &Error, p: Arc<ProbeContext>) -> Action {
    Action::requeue(p.ctx.probe.interval)
}

/// Records whether the MCPServer `key` can be read and sets the `mcpservers_unreadable` gauge.
fn mark_unreadable(p: &ProbeContext, key: &str, unreadable: bool) {
    let mut set = p.unreadable.lock().unwrap_or_else(|e| e.into_inner());
    let changed = if unreadable {
        set.insert(key.to_string())
    } else {
        set.remove(key)
    };
    if changed {
        p.ctx
            .metrics
            .mcpservers_unreadable
            .set(i64::try_from(set.len()).unwrap_or(i64::MAX));
    }
}

/// Drops the memory of MCPServers no longer in the cache (checked only when it may have grown stale).
fn forget_deleted(p: &ProbeContext) {
    let mut memory = p.memory();
    let mut unreadable = p.unreadable.lock().unwrap_or_else(|e| e.into_inner());
    let live = p.store.state();
    if memory.len() + unreadable.len() > live.len() {
        let keys: std::collections::HashSet<String> = live.iter().map(|o| key_of(o)).collect();
        memory.retain(|k, _| keys.contains(k));
        unreadable.retain(|k| keys.contains(k));
        p.ctx
            .metrics
            .mcpservers_unreadable
            .set(i64::try_from(unreadable.len()).unwrap_or(i64::MAX));
    }
}

fn record_outcome(ctx: &Context, key: &str, outcome: &ProbeOutcome) {
    ctx.metrics
        .reconciles
        .get_or_create(&LoopLabels { r#loop: "probe" })
        .inc();
    for (condition, check) in [
        (CONDITION_EXCHANGE_CREDENTIALS_READY, &outcome.credentials),
        (CONDITION_DEX_CONNECTED, &outcome.connected),
        (CONDITION_TOKEN_EXCHANGE_VERIFIED, &outcome.token_exchange),
    ] {
        let labels = ProbeLabels {
            cluster: key.to_string(),
            condition,
            reason: check.reason,
        };
        ctx.metrics.probe_results.get_or_create(&labels).inc();
    }
}

/// Changes our conditions (leader only: leadership may have been lost while the probe ran); every
/// other writer's entries stay. `None` when not the leader.
async fn write(
    ctx: &Context,
    server: &MCPServer,
    change: ConditionChange<'_>,
) -> Result<Option<WriteOutcome>, Error> {
    if !ctx.is_leader() {
        return Ok(None);
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
            Ok(Some(outcome))
        }
        Err(e) => {
            tracing::warn!(error = %e, "status write failed; retrying later");
            ctx.metrics
                .errors
                .get_or_create(&ErrorLabels {
                    r#loop: "probe",
                    error: e.category(),
                })
                .inc();
            Err(e)
        }
    }
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

/// The MCPServer triggers that matter to probes: new objects and spec (generation) changes.
pub(crate) fn spec_changes(
    objects: impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static {
    use kube::runtime::{WatchStreamExt, predicates};
    objects.predicate_filter(predicates::generation, Default::default())
}
