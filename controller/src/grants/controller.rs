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
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use muster_exchange_api::credentials_policy::NamespaceRefusal;
use tokio::sync::watch;
use tracing::Instrument;

use super::credential_grants::desired_credential_grants;
use super::credential_optin::{OptedInSecret, opted_in_watch_config, retain_opted_in};
use super::grant_sync::{Observed, SyncReport, sync_namespace};
use super::kubeconfig_grants::desired_kubeconfig_grant;
use super::rbac_objects::GrantKind;
use crate::probe::controller::mcpserver_resource;
use crate::probe::mcpserver::{credentials_namespace, parse_lenient};
use crate::runtime::context::Context;
use crate::runtime::kube_client::watch_config;
use crate::runtime::metrics::{ErrorLabels, GrantLabels, LoopLabels, WriteLabels};

/// How long a namespace's reconcile waits after a change before it runs, restarted by each further
/// change: the Role and RoleBinding a reconcile applies come back on two watches, and a reconcile woken
/// by the first would see the other stale and apply it again.
const DEBOUNCE: Duration = Duration::from_secs(1);

/// First retry delay after a failed reconcile; doubles up to the resync interval.
const RETRY_START: Duration = Duration::from_secs(2);

type NamespaceMeta = PartialObjectMeta<Namespace>;

/// The caches one reconcile reads.
#[derive(Clone)]
pub(crate) struct GrantStores {
    /// Every namespace (the controller's objects).
    pub(crate) namespaces: Store<NamespaceMeta>,
    /// Organization namespaces (label selector).
    pub(crate) organizations: Store<NamespaceMeta>,
    /// Every Secret's metadata.
    pub(crate) secrets: Store<PartialObjectMeta<Secret>>,
    /// Credentials Secrets that opted in (label and type `Opaque`).
    pub(crate) opted_in: Store<OptedInSecret>,
    /// Roles and RoleBindings named like the kubeconfig grant.
    pub(crate) kubeconfig: KindStores,
    /// Roles and RoleBindings named like the credential grant.
    pub(crate) credentials: KindStores,
    /// MCPServers, as dynamic objects (a malformed one is held, not dropped).
    pub(crate) servers: Store<DynamicObject>,
    /// Whether every watch above delivered its first complete list.
    pub(crate) synced: Synced,
}

/// How many of the grant controller's watches delivered their first complete list. A reflector
/// store's own `wait_until_ready` wakes only the last of several waiters (the others would hang and
/// hold a reconcile slot for good), so reconciles and `/readyz` wait on this count instead.
#[derive(Clone)]
pub(crate) struct Synced {
    count: watch::Receiver<usize>,
    expected: usize,
    /// Keeps the count open where no watch feeds it (tests with filled caches).
    _fixed: Option<Arc<watch::Sender<usize>>>,
}

impl Synced {
    /// A count fed by `expected` watches (each marks itself once through [`mark_synced`]).
    fn new(expected: usize) -> (Arc<watch::Sender<usize>>, Synced) {
        let (sender, count) = watch::channel(0);
        let synced = Synced {
            count,
            expected,
            _fixed: None,
        };
        (Arc::new(sender), synced)
    }

    /// Already complete, for caches filled by hand.
    #[cfg(test)]
    pub(crate) fn complete() -> Synced {
        let (sender, count) = watch::channel(1);
        Synced {
            count,
            expected: 1,
            _fixed: Some(Arc::new(sender)),
        }
    }

    /// Never complete while the returned sender lives, for tests of what waits.
    #[cfg(test)]
    pub(crate) fn incomplete() -> (Arc<watch::Sender<usize>>, Synced) {
        Synced::new(1)
    }

    async fn wait(&self) -> Result<(), watch::error::RecvError> {
        let expected = self.expected;
        self.count.clone().wait_for(|n| *n >= expected).await.map(|_| ())
    }
}

/// The number of watches in [`GrantWatches`].
const WATCHES: usize = 9;

/// The Role and RoleBinding caches of one grant kind.
#[derive(Clone)]
pub(crate) struct KindStores {
    pub(crate) roles: Store<Role>,
    pub(crate) bindings: Store<RoleBinding>,
}

impl GrantStores {
    fn of(&self, kind: GrantKind) -> &KindStores {
        match kind {
            GrantKind::Kubeconfig => &self.kubeconfig,
            GrantKind::Credentials => &self.credentials,
        }
    }

    /// Waits until every cache holds a complete list: an empty MCPServer cache would make every
    /// credential grant look unneeded. Any number of reconciles may wait at once; an error means the
    /// watches are gone.
    pub(crate) async fn wait_until_ready(&self) -> Result<(), watch::error::RecvError> {
        self.synced.wait().await
    }

    fn observed(&self, kind: GrantKind, namespace: &str) -> Observed {
        let stores = self.of(kind);
        Observed {
            role: stores
                .roles
                .get(&ObjectRef::new(kind.object_name()).within(namespace))
                .map(|r| (*r).clone()),
            binding: stores
                .bindings
                .get(&ObjectRef::new(kind.object_name()).within(namespace))
                .map(|b| (*b).clone()),
        }
    }
}

/// What one namespace's reconcile did, per grant kind.
#[derive(Debug, Default)]
pub(crate) struct NamespaceReport {
    /// Kubeconfig grant writes and failures.
    pub(crate) kubeconfig: SyncReport,
    /// Why the namespace may not hold a kubeconfig grant.
    pub(crate) kubeconfig_refused: Option<NamespaceRefusal>,
    /// Credential grant writes and failures.
    pub(crate) credentials: SyncReport,
    /// `(namespace/secret, why)` for credential Secrets here that may not be granted.
    pub(crate) credentials_refused: Vec<(String, NamespaceRefusal)>,
    /// `namespace/secret` of credentials Secrets here not granted because they have not opted in.
    pub(crate) credentials_not_opted_in: Vec<String>,
}

/// The grant controller's context: the shared one, the caches, and what the gauges and the retry
/// backoff need between reconciles.
pub(crate) struct GrantContext {
    pub(crate) ctx: Arc<Context>,
    pub(crate) stores: GrantStores,
    failures: Mutex<HashMap<String, u32>>,
    /// Per grant kind: namespaces holding a grant, and refusals by namespace.
    gauges: Mutex<BTreeMap<(GrantKind, String), (bool, usize)>>,
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

/// Every watch the grant controller reads, reflected into [`GrantStores`].
pub(crate) struct GrantWatches {
    pub(crate) stores: GrantStores,
    namespaces: Watched<NamespaceMeta>,
    organizations: Watched<NamespaceMeta>,
    secrets: Watched<PartialObjectMeta<Secret>>,
    opted_in: Watched<OptedInSecret>,
    roles: [Watched<Role>; 2],
    bindings: [Watched<RoleBinding>; 2],
    servers: Watched<DynamicObject>,
}

type Watched<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The store of `events` and the stream of objects they touch; the first complete list counts once
/// in `synced`, after the store holds it.
fn reflect<K>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    dyntype: K::DynamicType,
    synced: &Arc<watch::Sender<usize>>,
) -> (Store<K>, Watched<K>)
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let writer = Writer::new(dyntype);
    let store = writer.as_reader();
    let synced = synced.clone();
    let mut counted = false;
    let stream = events
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) && !counted {
                counted = true;
                synced.send_modify(|n| *n += 1);
            }
        })
        .touched_objects()
        .boxed();
    (store, stream)
}

fn by_name(name: &str) -> watcher::Config {
    watch_config().fields(&format!("metadata.name={name}"))
}

impl GrantWatches {
    /// The watches, on `client` (which must have no read timeout: watches are quiet for long).
    pub(crate) fn new(client: &Client, ctx: &Context, servers_namespace: Option<&str>) -> Self {
        let all = watch_config;
        let (count, synced) = Synced::new(WATCHES);
        let (namespaces, ns_stream) = reflect(
            watcher(Api::<NamespaceMeta>::all(client.clone()), all()),
            (),
            &count,
        );
        let org_config = all().labels(&ctx.kubeconfig.namespace_selector);
        let (organizations, org_stream) = reflect(
            watcher(Api::<NamespaceMeta>::all(client.clone()), org_config),
            (),
            &count,
        );
        let (secrets, secret_stream) = reflect(
            watcher(Api::<PartialObjectMeta<Secret>>::all(client.clone()), all()),
            (),
            &count,
        );
        let (opted_in, opted_in_stream) = reflect(
            watcher(Api::<OptedInSecret>::all(client.clone()), opted_in_watch_config()),
            (),
            &count,
        );
        let kind_watch = |kind: GrantKind| {
            let (roles, r) = reflect(
                watcher(Api::<Role>::all(client.clone()), by_name(kind.object_name())),
                (),
                &count,
            );
            let (bindings, b) = reflect(
                watcher(
                    Api::<RoleBinding>::all(client.clone()),
                    by_name(kind.object_name()),
                ),
                (),
                &count,
            );
            (KindStores { roles, bindings }, r, b)
        };
        let (kubeconfig, kr, kb) = kind_watch(GrantKind::Kubeconfig);
        let (credentials, cr, cb) = kind_watch(GrantKind::Credentials);
        let resource = mcpserver_resource();
        let api: Api<DynamicObject> = match servers_namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let (servers, server_stream) = reflect(watcher(api, all()), resource, &count);
        GrantWatches {
            stores: GrantStores {
                namespaces,
                organizations,
                secrets,
                opted_in,
                kubeconfig,
                credentials,
                servers,
                synced,
            },
            namespaces: ns_stream,
            organizations: org_stream,
            secrets: secret_stream,
            opted_in: opted_in_stream,
            roles: [kr, cr],
            bindings: [kb, cb],
            servers: server_stream,
        }
    }
}

fn namespace_ref<K: Resource>(object: &K) -> Option<ObjectRef<NamespaceMeta>> {
    object.meta().namespace.as_deref().map(ObjectRef::new)
}

/// Maps an MCPServer to the namespace of its credentials Secret and the one it named before.
fn server_mapper(
    store: Store<DynamicObject>,
) -> impl Fn(DynamicObject) -> Vec<ObjectRef<NamespaceMeta>> + Send + Sync {
    let previous: Mutex<HashMap<String, String>> = Mutex::default();
    move |server: DynamicObject| {
        let key = format!("{}/{}", server.namespace().unwrap_or_default(), server.name_any());
        let now = credentials_namespace(&server);
        let mut previous = previous.lock().unwrap_or_else(|p| p.into_inner());
        let before = match (
            &now,
            store.get(&ObjectRef::from_obj_with(&server, mcpserver_resource())),
        ) {
            // Still in the cache: remember where its Secret is now.
            (Some(ns), Some(_)) => previous.insert(key, ns.clone()),
            _ => previous.remove(&key),
        };
        let mut refs: Vec<_> = now
            .into_iter()
            .chain(before)
            .map(|ns| ObjectRef::new(&ns))
            .collect();
        refs.dedup();
        refs
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

/// Both grant kinds of `namespace`, from the caches.
pub(crate) async fn sync_namespace_grants(g: &GrantContext, namespace: &str) -> NamespaceReport {
    let ctx = &g.ctx;
    let stores = &g.stores;
    let mut report = NamespaceReport::default();

    let organization = stores.organizations.get(&ObjectRef::new(namespace)).is_some();
    let secret_names = stores
        .secrets
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .map(|s| s.name_any());
    let kubeconfig = match desired_kubeconfig_grant(namespace, organization, secret_names, &ctx.kubeconfig) {
        Ok(grant) => grant,
        Err(why) => {
            tracing::warn!(reason = why.reason(), "refusing to grant kubeconfig access here");
            report.kubeconfig_refused = Some(why);
            None
        }
    };
    let observed = stores.observed(GrantKind::Kubeconfig, namespace);
    report.kubeconfig = sync_namespace(
        &ctx.client,
        GrantKind::Kubeconfig,
        namespace,
        kubeconfig.as_ref(),
        &observed,
        true,
    )
    .await;

    // Only MCPServers whose credentials Secret is here; one that does not parse holds back deletes.
    let mut incomplete = false;
    let servers: Vec<_> = stores
        .servers
        .state()
        .into_iter()
        .filter(|o| credentials_namespace(o).is_none_or(|ns| ns == namespace))
        .filter_map(|o| match parse_lenient(&o) {
            Ok(server) => Some(server),
            Err(e) => {
                incomplete = true;
                tracing::warn!(name = ?o.metadata.name, mcpserver_namespace = ?o.metadata.namespace, error = %e,
                    "a malformed MCPServer: no credential grant is deleted here until it is fixed");
                None
            }
        })
        .collect();
    let (mut desired, refused) = desired_credential_grants(&servers, &ctx.credentials);
    for (secret, why) in &refused {
        tracing::warn!(secret = %secret, reason = why.reason(), "refusing to grant credential Secret access here");
    }
    report.credentials_refused = refused;
    let opted_in = stores
        .opted_in
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .map(|s| (namespace.to_string(), s.name_any()))
        .collect();
    let mut here: BTreeMap<_, _> = desired
        .remove(namespace)
        .map(|g| (namespace.to_string(), g))
        .into_iter()
        .collect();
    report.credentials_not_opted_in = retain_opted_in(&mut here, &opted_in);
    for secret in &report.credentials_not_opted_in {
        tracing::warn!(secret = %secret,
            "not granting access to a credentials Secret that has not opted in (label and type Opaque)");
    }
    let credentials = here.remove(namespace);
    let observed = stores.observed(GrantKind::Credentials, namespace);
    report.credentials = sync_namespace(
        &ctx.client,
        GrantKind::Credentials,
        namespace,
        credentials.as_ref(),
        &observed,
        !incomplete,
    )
    .await;
    report
}

/// Counts writes, refusals and failures; returns the number of failures.
fn record(g: &GrantContext, namespace: &str, report: &NamespaceReport) -> usize {
    let m = &g.ctx.metrics;
    let kinds = [
        (
            GrantKind::Kubeconfig,
            &report.kubeconfig,
            usize::from(report.kubeconfig_refused.is_some()),
        ),
        (
            GrantKind::Credentials,
            &report.credentials,
            report.credentials_refused.len() + report.credentials_not_opted_in.len(),
        ),
    ];
    let mut failed = 0;
    let mut gauges = g.gauges.lock().unwrap_or_else(|p| p.into_inner());
    for (kind, sync, refused) in kinds {
        let k = kind.label_value();
        let r#loop = match kind {
            GrantKind::Kubeconfig => "kubeconfig_grants",
            GrantKind::Credentials => "credential_grants",
        };
        m.reconciles.get_or_create(&LoopLabels { r#loop }).inc();
        for (operation, count) in [("apply", sync.applied), ("delete", sync.deleted)] {
            m.grant_writes
                .get_or_create(&WriteLabels { kind: k, operation })
                .inc_by(count as u64);
        }
        for e in &sync.errors {
            tracing::warn!(error = %e, grant = k, "grant write failed; retrying");
            m.errors
                .get_or_create(&ErrorLabels {
                    r#loop,
                    error: e.category(),
                })
                .inc();
        }
        failed += sync.errors.len();
        let entry = (sync.granted_namespaces > 0, refused);
        if entry == (false, 0) {
            gauges.remove(&(kind, namespace.to_string()));
        } else {
            gauges.insert((kind, namespace.to_string()), entry);
        }
        let of_kind = gauges.iter().filter(|((k2, _), _)| *k2 == kind);
        let (granted, refused) = of_kind.fold((0i64, 0i64), |(g, r), (_, (granted, refused))| {
            (g + i64::from(*granted), r + *refused as i64)
        });
        m.grants_managed
            .get_or_create(&GrantLabels { kind: k })
            .set(granted);
        m.grants_refused
            .get_or_create(&GrantLabels { kind: k })
            .set(refused);
    }
    failed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The watch of opted-in Secrets is filtered by the API server: a Secret labelled (or created
    /// labelled) arrives as an apply, one that lost its label or was deleted as a delete; each wakes its
    /// namespace, so its credential grant is made or withdrawn at once.
    #[tokio::test]
    async fn labelling_unlabelling_or_deleting_an_opted_in_secret_wakes_its_namespace() {
        let config = opted_in_watch_config();
        assert_eq!(
            config.label_selector.as_deref(),
            Some("exchange.muster.giantswarm.io/credentials=true")
        );
        assert_eq!(config.field_selector.as_deref(), Some("type=Opaque"));
        let secret = |ns: &str| -> OptedInSecret {
            serde_json::from_value(
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                "metadata": {"name": "creds", "namespace": ns}}),
            )
            .unwrap()
        };
        let events = futures::stream::iter(vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(secret("org-a"))),
            Ok(watcher::Event::Delete(secret("org-b"))),
        ]);
        let (count, synced) = Synced::new(1);
        let (store, stream) = reflect(events, (), &count);
        let woken: Vec<_> = stream
            .filter_map(|o| async move { o.ok().and_then(|s| namespace_ref(&s)) })
            .collect()
            .await;
        assert_eq!(woken, [ObjectRef::new("org-a"), ObjectRef::new("org-b")]);
        let held: Vec<_> = store.state().iter().map(|s| s.namespace()).collect();
        assert_eq!(held, [Some("org-a".to_string())]);
        synced.wait().await.unwrap();
    }

    /// Every reconcile waiting for the caches goes on once they are synced, however many wait.
    #[tokio::test]
    async fn every_waiting_reconcile_goes_on_once_the_caches_are_synced() {
        let (count, synced) = Synced::new(1);
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let synced = synced.clone();
                tokio::spawn(async move { synced.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        count.send_modify(|n| *n += 1);
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }
    }

    /// Why [`Synced`] exists: a reflector store's `wait_until_ready` wakes only the last of several
    /// waiters. Should kube fix that, this fails, and the stores' own readiness would do.
    #[tokio::test(start_paused = true)]
    async fn a_store_wakes_only_the_last_of_several_waiters() {
        let mut writer = Writer::<NamespaceMeta>::new(());
        let store = writer.as_reader();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.wait_until_ready().await })
            })
            .collect();
        tokio::task::yield_now().await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let mut woken = 0;
        for waiter in waiters {
            if tokio::time::timeout(Duration::from_secs(60), waiter)
                .await
                .is_ok()
            {
                woken += 1;
            }
        }
        assert_eq!(woken, 1);
    }

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
