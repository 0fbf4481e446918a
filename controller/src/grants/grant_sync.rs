//! Brings the managed Roles and RoleBindings of one grant kind in line with the desired grants.
//!
//! Compares with what the caches observed and writes only what differs: server-side apply with one field
//! manager for new or changed grants, deletes (guarded by uid and resourceVersion preconditions) for
//! managed grants no longer wanted. Objects without the managed-by label are never touched, even when
//! they carry our name.

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Client, Resource, ResourceExt};

use super::rbac_objects::{
    DesiredGrant, GrantKind, desired_role, desired_role_binding, is_managed, role_binding_matches,
    role_matches,
};
use crate::runtime::error::Error;

/// Field manager of every grant object.
pub(crate) const GRANTS_FIELD_MANAGER: &str = "muster-exchange-controller";

/// What one namespace's sync of one grant kind did.
#[derive(Debug, Default)]
pub(crate) struct SyncReport {
    /// Server-side applies sent.
    pub(crate) applied: usize,
    /// Deletes sent.
    pub(crate) deleted: usize,
    /// Namespaces where an unmanaged object with our name blocks the grant (left alone).
    pub(crate) unmanaged_conflicts: Vec<String>,
    /// Per-object failures; the rest of the sync went ahead.
    pub(crate) errors: Vec<Error>,
    /// 1 when the namespace holds a managed grant after the sync.
    pub(crate) granted_namespaces: usize,
}

impl SyncReport {
    /// API writes sent (applies plus deletes).
    #[cfg(test)]
    pub(crate) fn writes(&self) -> usize {
        self.applied + self.deleted
    }

    fn absorb(&mut self, other: SyncReport) {
        self.applied += other.applied;
        self.deleted += other.deleted;
        self.unmanaged_conflicts.extend(other.unmanaged_conflicts);
        self.errors.extend(other.errors);
    }
}

/// What the caches show of one grant kind in one namespace: our Role and RoleBinding by name, managed
/// or not (objects with our name that lack the managed-by label are never touched).
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// The Role named like this grant kind's objects.
    pub(crate) role: Option<Role>,
    /// The RoleBinding named like this grant kind's objects.
    pub(crate) binding: Option<RoleBinding>,
}

/// Brings one namespace's Role and RoleBinding of `kind` in line with `desired`: applies what differs,
/// deletes managed objects no longer wanted (unless `may_delete` is false: the view that says they are
/// unneeded is incomplete). Failures are reported, never abort: the next reconcile retries them.
pub(crate) async fn sync_namespace(
    client: &Client,
    kind: GrantKind,
    namespace: &str,
    desired: Option<&DesiredGrant>,
    observed: &Observed,
    may_delete: bool,
) -> SyncReport {
    let mut report = SyncReport {
        granted_namespaces: usize::from(desired.is_some()),
        ..SyncReport::default()
    };
    match desired {
        Some(grant) => {
            report.absorb(apply_one(client, grant, observed.role.as_ref(), observed.binding.as_ref()).await);
        }
        None if may_delete => {
            if let Some(role) = observed.role.as_ref().filter(|r| is_managed(&r.metadata)) {
                delete_guarded(client, role, &mut report).await;
            }
            if let Some(binding) = observed.binding.as_ref().filter(|b| is_managed(&b.metadata)) {
                delete_guarded(client, binding, &mut report).await;
            }
        }
        None => {
            tracing::debug!(
                namespace,
                grant = kind.label_value(),
                "deletes held back: the MCPServer view is incomplete"
            );
        }
    }
    report.granted_namespaces -= report.unmanaged_conflicts.len();
    report
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
