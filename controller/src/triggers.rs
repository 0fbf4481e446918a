//! Watches that wake the grant loop, and the MCPServer cache shared by both loops. Each runs with
//! kube's default backoff, so an API hiccup delays, never ends, the controller.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Drives `stream`, waking `trigger` for every event `relevant` accepts, until `shutdown`.
async fn drive<S, K>(
    name: &'static str,
    stream: S,
    relevant: impl Fn(&watcher::Event<K>) -> bool,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            next = stream.next() => match next {
                Some(Ok(event)) => if relevant(&event) { trigger.notify_one() },
                Some(Err(e)) => tracing::warn!(watch = name, error = %e, "watch failed; retrying with backoff"),
                None => return,
            },
        }
    }
}

fn changed<K>(event: &watcher::Event<K>, accept: impl Fn(&K) -> bool) -> bool {
    match event {
        watcher::Event::Apply(o) | watcher::Event::Delete(o) => accept(o),
        watcher::Event::InitDone => true,
        watcher::Event::Init | watcher::Event::InitApply(_) => false,
    }
}

/// The MCPServer cache (as dynamic objects, so one malformed object does not stop the watch) and the
/// future that keeps it filled, waking `trigger` on every change.
pub fn mcpserver_cache(
    client: &Client,
    namespace: Option<&str>,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) -> (
    Store<DynamicObject>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let resource = ApiResource::erase::<MCPServer>(&());
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let writer = reflector::store::Writer::new(resource);
    let store = writer.as_reader();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
    (
        store,
        drive("mcpservers", stream, |e| changed(e, |_| true), trigger, shutdown),
    )
}

/// Watches of organization namespaces, kubeconfig Secrets (metadata only) and our own grant objects.
pub async fn watch_grant_inputs(
    client: Client,
    selector: String,
    suffix: String,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let managed = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
    let namespaces = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff();
    let secrets = watcher(
        Api::<PartialObjectMeta<Secret>>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    let roles = watcher(
        Api::<PartialObjectMeta<Role>>::all(client.clone()),
        watcher::Config::default().labels(&managed),
    )
    .default_backoff();
    let bindings = watcher(
        Api::<PartialObjectMeta<RoleBinding>>::all(client),
        watcher::Config::default().labels(&managed),
    )
    .default_backoff();
    tokio::join!(
        drive(
            "namespaces",
            namespaces,
            |e| changed(e, |_| true),
            trigger.clone(),
            shutdown.clone()
        ),
        drive(
            "secrets",
            secrets,
            |e| changed(e, |s| s.name_any().ends_with(&suffix)),
            trigger.clone(),
            shutdown.clone()
        ),
        drive(
            "roles",
            roles,
            |e| changed(e, |_| true),
            trigger.clone(),
            shutdown.clone()
        ),
        drive(
            "rolebindings",
            bindings,
            |e| changed(e, |_| true),
            trigger,
            shutdown
        ),
    );
}
