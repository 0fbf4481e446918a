//! Brings the managed Roles and RoleBindings of one grant kind in line with the desired grants.
//!
//! Reads first (two cluster-wide lists by name), writes only what differs: server-side apply with one
//! field manager for new or changed grants, deletes (guarded by uid and resourceVersion preconditions)
//! for managed grants no longer wanted. Objects without the managed-by label are never touched, even when
//! they carry our name.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, stream};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Client, Resource, ResourceExt};

use super::rbac_objects::{
    DesiredGrant, GrantKind, desired_role, desired_role_binding, is_managed, role_binding_matches,
    role_matches,
};
use crate::error::Error;

/// Field manager of every grant object.
pub const GRANTS_FIELD_MANAGER: &str = "muster-exchange-controller";

/// What one sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Server-side applies sent.
    pub applied: usize,
    /// Deletes sent.
    pub deleted: usize,
    /// Namespaces where an unmanaged object with our name blocks the grant (left alone).
    pub unmanaged_conflicts: Vec<String>,
    /// Per-object failures; the rest of the sync went ahead.
    pub errors: Vec<Error>,
    /// Namespaces holding a managed grant after the sync.
    pub granted_namespaces: usize,
}

impl SyncReport {
    /// API writes sent (applies plus deletes).
    pub fn writes(&self) -> usize {
        self.applied + self.deleted
    }

    fn absorb(&mut self, other: SyncReport) {
        self.applied += other.applied;
        self.deleted += other.deleted;
        self.unmanaged_conflicts.extend(other.unmanaged_conflicts);
        self.errors.extend(other.errors);
    }
}

/// What one sync may not touch, when the view it was computed from is incomplete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncLimits {
    /// Delete nothing this pass (e.g. an MCPServer did not parse: its grant would look unneeded).
    pub no_deletes: bool,
    /// Namespaces whose inputs could not be read: neither applied to nor deleted from this pass.
    pub frozen_namespaces: BTreeSet<String>,
}

impl SyncLimits {
    fn may_delete_in(&self, namespace: &str) -> bool {
        !self.no_deletes && !self.frozen_namespaces.contains(namespace)
    }
}

/// Applies `desired` (keyed by namespace) for `kind` and deletes managed grants of `kind` elsewhere.
/// `concurrency` bounds the namespaces written at once. Lists failing abort the sync (nothing is
/// deleted on a partial view); single writes failing are reported and retried next sync.
pub async fn sync_grants(
    client: &Client,
    kind: GrantKind,
    desired: &BTreeMap<String, DesiredGrant>,
    concurrency: usize,
    limits: &SyncLimits,
) -> Result<SyncReport, Error> {
    let by_name = ListParams::default().fields(&format!("metadata.name={}", kind.object_name()));
    let roles = list_by_namespace::<Role>(client, &by_name, "roles").await?;
    let bindings = list_by_namespace::<RoleBinding>(client, &by_name, "rolebindings").await?;

    let mut report = SyncReport {
        granted_namespaces: desired.len(),
        ..SyncReport::default()
    };
    // Futures are built up front: a closure inside the stream type would make the future !Send
    // (rustc's higher-ranked lifetime limitation), and the CLI may spawn it.
    let pending: Vec<_> = desired
        .values()
        .filter(|grant| !limits.frozen_namespaces.contains(&grant.namespace))
        .map(|grant| {
            apply_one(
                client,
                grant,
                roles.get(&grant.namespace),
                bindings.get(&grant.namespace),
            )
        })
        .collect();
    let writes = stream::iter(pending)
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    writes.into_iter().for_each(|r| report.absorb(r));

    for role in roles
        .values()
        .filter(|r| is_managed(&r.metadata) && !desired.contains_key(&ns_of(*r)))
        .filter(|r| limits.may_delete_in(&ns_of(*r)))
    {
        delete_guarded(client, role, &mut report).await;
    }
    for binding in bindings
        .values()
        .filter(|b| is_managed(&b.metadata) && !desired.contains_key(&ns_of(*b)))
        .filter(|b| limits.may_delete_in(&ns_of(*b)))
    {
        delete_guarded(client, binding, &mut report).await;
    }
    report.granted_namespaces -= report.unmanaged_conflicts.len();
    Ok(report)
}

async fn list_by_namespace<K>(
    client: &Client,
    lp: &ListParams,
    what: &str,
) -> Result<BTreeMap<String, K>, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let list = Api::<K>::all(client.clone())
        .list(lp)
        .await
        .map_err(|cause| Error::List {
            what: format!("{what} ({})", lp.field_selector.clone().unwrap_or_default()),
            cause,
        })?;
    Ok(list.items.into_iter().map(|o| (ns_of(&o), o)).collect())
}

fn ns_of<K: Resource>(o: &K) -> String {
    o.meta().namespace.clone().unwrap_or_default()
}

async fn apply_one(
    client: &Client,
    grant: &DesiredGrant,
    observed_role: Option<&Role>,
    observed_binding: Option<&RoleBinding>,
) -> SyncReport {
    let mut report = SyncReport::default();
    let unmanaged = observed_role.is_some_and(|r| !is_managed(&r.metadata))
        || observed_binding.is_some_and(|b| !is_managed(&b.metadata));
    if unmanaged {
        tracing::warn!(namespace = %grant.namespace, name = grant.kind.object_name(),
            "an unmanaged Role or RoleBinding carries our name; leaving it alone and granting nothing here");
        report.unmanaged_conflicts.push(grant.namespace.clone());
        // Our half must go too: a managed binding would bind our subjects to someone else's Role, and a
        // managed Role would wait for whoever binds it.
        if let Some(binding) = observed_binding.filter(|b| is_managed(&b.metadata)) {
            delete_guarded(client, binding, &mut report).await;
        }
        if let Some(role) = observed_role.filter(|r| is_managed(&r.metadata)) {
            delete_guarded(client, role, &mut report).await;
        }
        return report;
    }
    let role = desired_role(grant);
    if !observed_role.is_some_and(|o| role_matches(o, &role, grant.kind)) {
        match apply(client, &grant.namespace, &role).await {
            Ok(()) => report.applied += 1,
            Err(e) => {
                // Without the Role the binding would point at nothing useful; retry both next sync.
                report.errors.push(e);
                return report;
            }
        }
    }
    let binding = desired_role_binding(grant);
    if !observed_binding.is_some_and(|o| role_binding_matches(o, &binding, grant.kind)) {
        match apply(client, &grant.namespace, &binding).await {
            Ok(()) => report.applied += 1,
            Err(e) => report.errors.push(e),
        }
    }
    report
}

async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = object.name_any();
    let params = PatchParams::apply(GRANTS_FIELD_MANAGER).force();
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(&name, &params, &Patch::Apply(object))
        .await
        .map(|_| ())
        .map_err(|cause| Error::Apply {
            what: format!("{} {namespace}/{name}", K::kind(&K::DynamicType::default())),
            cause,
        })
}

async fn delete_guarded<K>(client: &Client, object: &K, report: &mut SyncReport)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let namespace = ns_of(object);
    let name = object.name_any();
    // Preconditions make the API server refuse the delete if the object was replaced since we listed it.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.meta().uid.clone(),
            resource_version: object.meta().resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match Api::<K>::namespaced(client.clone(), &namespace)
        .delete(&name, &params)
        .await
    {
        Ok(_) => report.deleted += 1,
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(cause) => report.errors.push(Error::Delete {
            what: format!("{} {namespace}/{name}", K::kind(&K::DynamicType::default())),
            cause,
        }),
    }
}
