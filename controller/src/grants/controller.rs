//! The grant controller: kube-runtime's `Controller` keyed by namespace. One reconcile brings one
//! namespace's kubeconfig grant and credential grant in line with what the caches hold; nothing is
//! listed, every input comes from a watch:
//! - namespaces (all, metadata): the controller's own objects; organization namespaces (by the label
//!   selector, metadata): which of them get kubeconfig grants;
//! - Secrets (metadata): a kubeconfig Secret wakes its namespace;
//! - opted-in credentials Secrets (metadata, by label selector and `type=Opaque`): labelling,
//!   unlabelling or deleting one wakes its namespace (credential grants exist only for these);
//! - our Roles and RoleBindings (by name): a change or deletion wakes their namespace;
//! - MCPServers: a change wakes the namespace of its credentials Secret, and the namespace it named
//!   before (so a grant that is no longer needed goes).
//!
//! Every namespace is reconciled again after `--grants-resync-interval` from the caches (no request
//! unless something differs). Only the leader writes; a new leader reconciles every namespace at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::ObjectRef;
use tracing::Instrument;

use super::credential_optin::OptedInSecret;
use super::namespace_sync::{record, sync_namespace_grants};
use super::rbac_objects::GrantKind;
use super::stores::{GrantStores, NamespaceMeta};
use super::watches::{GrantWatches, namespace_ref, server_mapper};
use crate::probe::controller::mcpserver_resource;
use crate::runtime::context::Context;

/// How long a namespace's reconcile waits after a change before it runs, restarted by each further
/// change: the Role and RoleBinding a reconcile applies come back on two watches, and a reconcile woken
/// by the first would see the other stale and apply it again.
const DEBOUNCE: Duration = Duration::from_secs(1);

/// First retry delay after a failed reconcile; doubles up to the resync interval.
const RETRY_START: Duration = Duration::from_secs(2);

/// The grant controller's context: the shared one, the caches, and what the gauges and the retry
/// backoff need between reconciles.
pub(crate) struct GrantContext {
    pub(crate) ctx: Arc<Context>,
    pub(crate) stores: GrantStores,
    failures: Mutex<HashMap<String, u32>>,
    /// Per grant kind: namespaces holding a grant, and refusals by namespace.
    pub(super) gauges: Mutex<BTreeMap<(GrantKind, String), (bool, usize)>>,
}

impl GrantContext {
    pub(crate) fn new(ctx: Arc<Context>, stores: GrantStores) -> Self {
        GrantContext {
            ctx,
            stores,
            failures: Mutex::default(),
            gauges: Mutex::default(),
        }
    }
}

/// Runs the grant controller until `shutdown`; in-flight reconciles finish first.
pub(crate) async fn run(
    context: Arc<GrantContext>,
    watches: GrantWatches,
    leader_gained: impl Stream<Item = ()> + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let concurrency = u16::try_from(context.ctx.grants_concurrency.max(1)).unwrap_or(u16::MAX);
    let suffix_config = context.ctx.kubeconfig.clone();
    let GrantWatches {
        stores,
        namespaces,
        organizations,
        secrets,
        opted_in,
        roles: [kr, cr],
        bindings: [kb, cb],
        servers,
    } = watches;
    Controller::for_stream(namespaces, stores.namespaces.clone())
        .watches_stream(organizations, |ns: NamespaceMeta| {
            Some(ObjectRef::new(&ns.name_any()))
        })
        .watches_stream(secrets, move |secret: PartialObjectMeta<Secret>| {
            suffix_config
                .is_kubeconfig_secret(&secret.name_any())
                .then(|| namespace_ref(&secret))
                .flatten()
        })
        .watches_stream(opted_in, |o: OptedInSecret| namespace_ref(&o))
        .watches_stream(kr, |o: Role| namespace_ref(&o))
        .watches_stream(cr, |o: Role| namespace_ref(&o))
        .watches_stream(kb, |o: RoleBinding| namespace_ref(&o))
        .watches_stream(cb, |o: RoleBinding| namespace_ref(&o))
        .watches_stream_with(
            servers,
            server_mapper(stores.servers.clone()),
            mcpserver_resource(),
        )
        .with_config(Config::default().concurrency(concurrency).debounce(DEBOUNCE))
        .reconcile_all_on(leader_gained)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "grant controller");
            }
        })
        .await;
}

/// The reconcile failed for these reasons (already logged and counted).
#[derive(Debug, thiserror::Error)]
#[error("{} grant write(s) failed; retrying with backoff", .0)]
pub(crate) struct GrantError(usize);

/// One namespace's grants, leader only; requeued after the resync interval.
pub(crate) async fn reconcile(
    namespace: Arc<NamespaceMeta>,
    g: Arc<GrantContext>,
) -> Result<Action, GrantError> {
    let name = namespace.name_any();
    // Every log line of this reconcile carries the namespace it is about.
    let span = tracing::info_span!("reconcile", controller = "grants", kind = "Namespace", namespace = %name);
    async move {
        if !g.ctx.is_leader() {
            return Ok(Action::await_change());
        }
        if g.stores.wait_until_ready().await.is_err() {
            return Ok(Action::await_change());
        }
        let report = sync_namespace_grants(&g, &name).await;
        let failed = record(&g, &name, &report);
        let mut failures = g.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failed == 0 {
            failures.remove(&name);
            Ok(Action::requeue(g.ctx.grants_resync))
        } else {
            *failures.entry(name).or_default() += 1;
            Err(GrantError(failed))
        }
    }
    .instrument(span)
    .await
}

fn error_policy(namespace: Arc<NamespaceMeta>, _error: &GrantError, g: Arc<GrantContext>) -> Action {
    let failures = g
        .failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&namespace.name_any())
        .copied()
        .unwrap_or(1);
    Action::requeue(retry_delay(failures, g.ctx.grants_resync))
}

/// [`RETRY_START`] doubled per consecutive failure, at most `resync`; never panics, whatever the inputs.
fn retry_delay(failures: u32, resync: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    RETRY_START.saturating_mul(factor).min(resync.max(RETRY_START))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_within_bounds_and_never_panics() {
        let resync = Duration::from_secs(300);
        assert_eq!(retry_delay(0, resync), RETRY_START);
        assert_eq!(retry_delay(1, resync), RETRY_START);
        assert_eq!(retry_delay(4, resync), Duration::from_secs(16));
        assert_eq!(retry_delay(9, resync), resync);
        assert_eq!(retry_delay(1, Duration::from_secs(1)), RETRY_START);
        assert_eq!(
            retry_delay(u32::MAX, Duration::MAX),
            RETRY_START.saturating_mul(1 << 16)
        );
    }
}
