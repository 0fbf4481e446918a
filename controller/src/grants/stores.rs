//! The caches a grant reconcile reads (one reflector store per watch) and the count of watches that
//! delivered their first complete list.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;

use super::credential_optin::OptedInSecret;
use super::grant_sync::Observed;
use super::rbac_objects::GrantKind;

/// A namespace as the grant controller sees it: metadata only.
pub(crate) type NamespaceMeta = PartialObjectMeta<Namespace>;

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
    pub(super) fn new(expected: usize) -> (Arc<watch::Sender<usize>>, Synced) {
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

    pub(super) async fn wait(&self) -> Result<(), watch::error::RecvError> {
        let expected = self.expected;
        self.count.clone().wait_for(|n| *n >= expected).await.map(|_| ())
    }
}

/// The number of watches in [`GrantWatches`].
pub(super) const WATCHES: usize = 9;

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

    pub(super) fn observed(&self, kind: GrantKind, namespace: &str) -> Observed {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;

    use super::*;

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
}
