//! Kubeconfig grants: in every organization namespace, the grant subjects may `get` the
//! `<cluster>-kubeconfig` Secrets there and nothing more. The Role's `resourceNames` follow the Secrets
//! as clusters come and go; Secrets are watched by metadata only, their data is never read.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::Subject;
use muster_exchange_api::credentials_policy::{NamespaceRefusal, protected_namespace};

use super::rbac_objects::{DesiredGrant, GrantKind};

/// What the kubeconfig-grant reconciler needs to know.
#[derive(Debug, Clone)]
pub(crate) struct KubeconfigGrantConfig {
    /// Label selector for organization namespaces.
    pub(crate) namespace_selector: String,
    /// Who may read the kubeconfig Secrets (sorted, deduplicated).
    pub(crate) subjects: Vec<Subject>,
    /// Suffix of kubeconfig Secret names (`-kubeconfig`).
    pub(crate) secret_suffix: String,
    /// The controller's own namespace: never granted in.
    pub(crate) controller_namespace: String,
}

impl KubeconfigGrantConfig {
    /// True for a Secret name ending in the suffix with something before it.
    pub(crate) fn is_kubeconfig_secret(&self, name: &str) -> bool {
        name.len() > self.secret_suffix.len() && name.ends_with(&self.secret_suffix)
    }
}

/// The kubeconfig grant `namespace` should hold: none outside organization namespaces, none without
/// subjects or kubeconfig Secrets (an empty `resourceNames` would mean every Secret), and a refusal for
/// system namespaces and the controller's own.
pub(crate) fn desired_kubeconfig_grant(
    namespace: &str,
    organization: bool,
    secret_names: impl IntoIterator<Item = String>,
    config: &KubeconfigGrantConfig,
) -> Result<Option<DesiredGrant>, NamespaceRefusal> {
    if !organization {
        return Ok(None);
    }
    if let Some(why) = protected_namespace(namespace, Some(&config.controller_namespace)) {
        return Err(why);
    }
    let secret_names: BTreeSet<String> = secret_names
        .into_iter()
        .filter(|name| config.is_kubeconfig_secret(name))
        .collect();
    if config.subjects.is_empty() || secret_names.is_empty() {
        return Ok(None);
    }
    Ok(Some(DesiredGrant {
        namespace: namespace.to_string(),
        kind: GrantKind::Kubeconfig,
        secret_names,
        subjects: config.subjects.clone(),
    }))
}
