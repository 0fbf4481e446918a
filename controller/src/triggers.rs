//! Watches that wake the grant loop, and the MCPServer cache shared by both loops. Each runs with
//! kube's default backoff, so an API hiccup delays, never ends, the controller.
//!
//! Two triggers, so no event costs more than its kind of sync: namespaces, kubeconfig Secrets and our
//! kubeconfig grants wake the kubeconfig sync; MCPServer spec changes and deletions (not status writes,
//! ours or Muster's) and our credential grants wake the credential sync.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::{GRANT_KIND_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::grants::credential_optin::OptInChanges;
use crate::grants::rbac_objects::GrantKind;

/// What wakes which sync of the grant loop.
#[derive(Clone, Default)]
pub struct GrantTriggers {
    /// Kubeconfig grants' inputs changed.
    pub kubeconfig: Arc<Notify>,
    /// Credential grants' inputs changed.
    pub credentials: Arc<Notify>,
}

/// Which sync an event wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Neither.
    Nothing,
    /// The kubeconfig sync.
    Kubeconfig,
    /// The credential sync.
    Credentials,
    /// Both.
    Both,
}

impl GrantTriggers {
    fn wake(&self, wake: Wake) {
        if matches!(wake, Wake::Kubeconfig | Wake::Both) {
            self.kubeconfig.notify_one();
        }
        if matches!(wake, Wake::Credentials | Wake::Both) {
            self.credentials.notify_one();
        }
    }
}

/// Drives `stream`, waking what `route` says for every event, until `shutdown`.
async fn drive<S, K>(
    name: &'static str,
    stream: S,
    mut route: impl FnMut(&watcher::Event<K>) -> Wake,
    triggers: GrantTriggers,
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            next = stream.next() => match next {
                Some(Ok(event)) => triggers.wake(route(&event)),
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

/// Remembers each MCPServer's generation so only spec changes and deletions count as changes.
#[derive(Default)]
pub struct SpecChanges {
    generations: HashMap<String, Option<i64>>,
}

impl SpecChanges {
    /// True for an event that may change the credential grants.
    pub fn relevant(&mut self, event: &watcher::Event<DynamicObject>) -> bool {
        let key = |o: &DynamicObject| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
        match event {
            watcher::Event::Apply(o) => {
                self.generations.insert(key(o), o.metadata.generation) != Some(o.metadata.generation)
            }
            watcher::Event::InitApply(o) => {
                self.generations.insert(key(o), o.metadata.generation);
                false
            }
            watcher::Event::Delete(o) => {
                self.generations.remove(&key(o));
                true
            }
            watcher::Event::InitDone => true,
            watcher::Event::Init => false,
        }
    }
}

/// The MCPServer cache (as dynamic objects, so one malformed object does not stop the watch) and the
/// future that keeps it filled, waking the credential sync on spec changes and deletions.
pub fn mcpserver_cache(
    client: &Client,
    namespace: Option<&str>,
    triggers: GrantTriggers,
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
    let mut changes = SpecChanges::default();
    let route = move |e: &watcher::Event<DynamicObject>| {
        if changes.relevant(e) {
            Wake::Credentials
        } else {
            Wake::Nothing
        }
    };
    (store, drive("mcpservers", stream, route, triggers, shutdown))
}

/// Which sync a change of one of our grant objects wakes (by its grant-kind label).
fn grant_object_wake<K: ResourceExt>(event: &watcher::Event<K>) -> Wake {
    match event {
        watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
            match o.labels().get(GRANT_KIND_LABEL).map(String::as_str) {
                Some(v) if v == GrantKind::Kubeconfig.label_value() => Wake::Kubeconfig,
                Some(v) if v == GrantKind::Credentials.label_value() => Wake::Credentials,
                _ => Wake::Both,
            }
        }
        watcher::Event::InitDone => Wake::Both,
        watcher::Event::Init | watcher::Event::InitApply(_) => Wake::Nothing,
    }
}

fn kubeconfig_if(relevant: bool) -> Wake {
    if relevant { Wake::Kubeconfig } else { Wake::Nothing }
}

/// Watches of organization namespaces, kubeconfig Secrets (metadata only) and our own grant objects.
pub async fn watch_grant_inputs(
    client: Client,
    selector: String,
    suffix: String,
    triggers: GrantTriggers,
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
    let mut opt_in = OptInChanges::default();
    let t = || (triggers.clone(), shutdown.clone());
    let ((t1, s1), (t2, s2), (t3, s3), (t4, s4)) = (t(), t(), t(), t());
    tokio::join!(
        drive(
            "namespaces",
            namespaces,
            |e| kubeconfig_if(changed(e, |_| true)),
            t1,
            s1
        ),
        drive(
            "secrets",
            secrets,
            move |e| {
                let credentials = opt_in.relevant(e);
                match (changed(e, |s| s.name_any().ends_with(&suffix)), credentials) {
                    (true, true) => Wake::Both,
                    (true, false) => Wake::Kubeconfig,
                    (false, true) => Wake::Credentials,
                    (false, false) => Wake::Nothing,
                }
            },
            t2,
            s2
        ),
        drive("roles", roles, grant_object_wake, t3, s3),
        drive("rolebindings", bindings, grant_object_wake, t4, s4),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn server(generation: i64, state: &str) -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "a", "namespace": "org-a", "generation": generation},
            "spec": {}, "status": {"state": state}}),
        )
        .unwrap()
    }

    /// Finding: every MCPServer event, our own status writes and Muster's included, resynced all grants.
    #[test]
    fn only_spec_changes_and_deletions_wake_the_credential_sync() {
        let mut changes = SpecChanges::default();
        let seen: Vec<bool> = [
            watcher::Event::Init,
            watcher::Event::InitApply(server(1, "Running")),
            watcher::Event::InitDone,
            watcher::Event::Apply(server(1, "Failed")),
            watcher::Event::Apply(server(2, "Failed")),
            watcher::Event::Apply(server(2, "Running")),
            watcher::Event::Delete(server(2, "Running")),
        ]
        .iter()
        .map(|e| changes.relevant(e))
        .collect();
        assert_eq!(seen, [false, false, true, false, true, false, true]);
    }

    #[test]
    fn our_grant_objects_wake_the_sync_of_their_kind() {
        let object = |kind: &str| -> PartialObjectMeta<Role> {
            serde_json::from_value(
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                "metadata": {"name": "x", "namespace": "n", "labels": {GRANT_KIND_LABEL: kind}}}),
            )
            .unwrap()
        };
        let wakes: Vec<Wake> = ["kubeconfig", "credentials", "other"]
            .iter()
            .map(|k| grant_object_wake(&watcher::Event::Apply(object(k))))
            .collect();
        assert_eq!(wakes, [Wake::Kubeconfig, Wake::Credentials, Wake::Both]);
    }
}
