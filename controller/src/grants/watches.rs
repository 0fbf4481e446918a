//! Every watch the grant controller reads: each fills a reflector store and yields the objects it
//! touched, which the controller maps to the namespaces they concern.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

use super::credential_optin::{OptedInSecret, opted_in_watch_config};
use super::rbac_objects::GrantKind;
use super::stores::{GrantStores, KindStores, NamespaceMeta, Synced, WATCHES};
use crate::probe::controller::mcpserver_resource;
use crate::probe::mcpserver::credentials_namespace;
use crate::runtime::context::Context;
use crate::runtime::kube_client::watch_config;

/// Every watch the grant controller reads, reflected into [`GrantStores`].
pub(crate) struct GrantWatches {
    pub(crate) stores: GrantStores,
    pub(super) namespaces: Watched<NamespaceMeta>,
    pub(super) organizations: Watched<NamespaceMeta>,
    pub(super) secrets: Watched<PartialObjectMeta<Secret>>,
    pub(super) opted_in: Watched<OptedInSecret>,
    pub(super) roles: [Watched<Role>; 2],
    pub(super) bindings: [Watched<RoleBinding>; 2],
    pub(super) servers: Watched<DynamicObject>,
}

pub(super) type Watched<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The store of `events` and the stream of objects they touch; the first complete list counts once
/// in `synced`, after the store holds it.
pub(super) fn reflect<K>(
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

pub(super) fn namespace_ref<K: Resource>(object: &K) -> Option<ObjectRef<NamespaceMeta>> {
    object.meta().namespace.as_deref().map(ObjectRef::new)
}

/// Maps an MCPServer to the namespace of its credentials Secret and the one it named before.
pub(super) fn server_mapper(
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
}
