//! Kubeconfig grants: in every organization namespace, the grant subjects may `get` the
//! `<cluster>-kubeconfig` Secrets there and nothing more. The Role's `resourceNames` follow the Secrets
//! as clusters come and go; Secrets are listed by metadata only, their data is never read.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::Subject;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use muster_exchange_api::credentials_policy::{NamespaceRefusal, protected_namespace};

use super::grant_sync::{SyncLimits, SyncReport, sync_grants};
use super::rbac_objects::{DesiredGrant, GrantKind};
use crate::error::Error;

/// What the kubeconfig-grant reconciler needs to know.
#[derive(Debug, Clone)]
pub struct KubeconfigGrantConfig {
    /// Label selector for organization namespaces.
    pub namespace_selector: String,
    /// Who may read the kubeconfig Secrets (sorted, deduplicated).
    pub subjects: Vec<Subject>,
    /// Suffix of kubeconfig Secret names (`-kubeconfig`).
    pub secret_suffix: String,
    /// The controller's own namespace: never granted in.
    pub controller_namespace: String,
    /// Namespaces processed at once.
    pub concurrency: usize,
}

/// Result of a kubeconfig-grant sync.
#[derive(Debug, Default)]
pub struct KubeconfigSyncReport {
    /// The writes and failures.
    pub sync: SyncReport,
    /// Matching namespaces that were refused, and why.
    pub refused: Vec<(String, NamespaceRefusal)>,
}

/// One full sync: desired grants from the matching namespaces and their Secrets, then [`sync_grants`].
pub async fn sync_kubeconfig_grants(
    client: &Client,
    config: &KubeconfigGrantConfig,
) -> Result<KubeconfigSyncReport, Error> {
    let namespaces = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default().labels(&config.namespace_selector))
        .await
        .map_err(|cause| Error::List {
            what: format!("namespaces ({})", config.namespace_selector),
            cause,
        })?;
    let mut refused = Vec::new();
    let mut candidates = Vec::new();
    for ns in namespaces.items.iter().map(|n| n.name_any()) {
        match protected_namespace(&ns, Some(&config.controller_namespace)) {
            Some(why) => {
                tracing::warn!(namespace = %ns, reason = why.reason(), "refusing to grant kubeconfig access here");
                refused.push((ns, why));
            }
            None => candidates.push(ns),
        }
    }
    let (desired, unreadable) = if config.subjects.is_empty() {
        (BTreeMap::new(), Vec::new())
    } else {
        desired_grants(client, config, candidates).await
    };
    // A namespace whose Secrets could not be listed is left as it is this pass (no apply, no delete);
    // the others sync, and the failure is reported so the loop retries.
    let limits = SyncLimits {
        no_deletes: false,
        frozen_namespaces: unreadable.iter().map(|(ns, _)| ns.clone()).collect(),
    };
    let mut sync = sync_grants(
        client,
        GrantKind::Kubeconfig,
        &desired,
        config.concurrency,
        &limits,
    )
    .await?;
    sync.errors.extend(unreadable.into_iter().map(|(_, e)| e));
    Ok(KubeconfigSyncReport { sync, refused })
}

/// The desired grants, and the namespaces whose Secrets could not be listed (with why).
async fn desired_grants(
    client: &Client,
    config: &KubeconfigGrantConfig,
    namespaces: Vec<String>,
) -> (BTreeMap<String, DesiredGrant>, Vec<(String, Error)>) {
    // Futures are built up front so the sync future stays Send (see grant_sync).
    let pending: Vec<_> = namespaces
        .into_iter()
        .map(|ns| async move {
            let names = kubeconfig_secret_names(client, &ns, &config.secret_suffix).await;
            (ns, names)
        })
        .collect();
    let listed: Vec<(String, Result<BTreeSet<String>, Error>)> = stream::iter(pending)
        .buffered(config.concurrency.max(1))
        .collect()
        .await;
    let mut found = Vec::with_capacity(listed.len());
    let mut unreadable = Vec::new();
    for (ns, names) in listed {
        match names {
            Ok(names) => found.push((ns, names)),
            Err(e) => unreadable.push((ns, e)),
        }
    }
    let desired = found
        .into_iter()
        // No kubeconfig Secret, no grant: an empty resourceNames list would mean every Secret.
        .filter(|(_, names)| !names.is_empty())
        .map(|(namespace, secret_names)| {
            let grant = DesiredGrant {
                namespace: namespace.clone(),
                kind: GrantKind::Kubeconfig,
                secret_names,
                subjects: config.subjects.clone(),
            };
            (namespace, grant)
        })
        .collect();
    (desired, unreadable)
}

/// Names of the Secrets in `namespace` ending in `suffix` (with something before it), by metadata only.
pub async fn kubeconfig_secret_names(
    client: &Client,
    namespace: &str,
    suffix: &str,
) -> Result<BTreeSet<String>, Error> {
    let list = Api::<Secret>::namespaced(client.clone(), namespace)
        .list_metadata(&ListParams::default())
        .await
        .map_err(|cause| Error::List {
            what: format!("secrets in {namespace}"),
            cause,
        })?;
    Ok(list
        .items
        .iter()
        .map(|s| s.name_any())
        .filter(|n| n.len() > suffix.len() && n.ends_with(suffix))
        .collect())
}
