//! Pure desired-state builders for the Roles and RoleBindings the controller manages, and the comparison
//! that decides whether an observed object already matches (so an unchanged resync writes nothing).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::ObjectMeta;
use muster_exchange_api::names::{DOMAIN, GRANT_KIND_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// The two families of grants, each with one fixed Role/RoleBinding name per namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantKind {
    /// `get` on the `<cluster>-kubeconfig` Secrets of an organization namespace.
    Kubeconfig,
    /// `get` on the token-exchange client-credential Secrets MCPServers name.
    Credentials,
}

impl GrantKind {
    /// Value of [`GRANT_KIND_LABEL`] and metric label.
    pub fn label_value(self) -> &'static str {
        match self {
            GrantKind::Kubeconfig => "kubeconfig",
            GrantKind::Credentials => "credentials",
        }
    }

    /// Name of the Role and the RoleBinding in every namespace holding this grant.
    pub fn object_name(self) -> &'static str {
        match self {
            GrantKind::Kubeconfig => "muster-exchange-kubeconfig-reader",
            GrantKind::Credentials => "muster-exchange-credentials-reader",
        }
    }
}

/// One namespace's grant: these subjects may `get` exactly these Secrets, nothing more.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredGrant {
    /// Namespace the Role and RoleBinding live in.
    pub namespace: String,
    /// Which family of grant.
    pub kind: GrantKind,
    /// Secret names the Role's only rule is restricted to; never empty (an empty list would mean "all").
    pub secret_names: BTreeSet<String>,
    /// Who is bound, sorted and deduplicated.
    pub subjects: Vec<Subject>,
}

/// Labels every managed grant object carries.
pub fn managed_labels(kind: GrantKind) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
        (GRANT_KIND_LABEL.to_string(), kind.label_value().to_string()),
    ])
}

/// True when the object carries the managed-by label with our value; anything else is never touched.
pub fn is_managed(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(MANAGED_BY_VALUE)
}

fn metadata(grant: &DesiredGrant) -> ObjectMeta {
    ObjectMeta {
        name: Some(grant.kind.object_name().to_string()),
        namespace: Some(grant.namespace.clone()),
        labels: Some(managed_labels(grant.kind)),
        annotations: Some(BTreeMap::from([(
            format!("{DOMAIN}/description"),
            "Managed by the muster-exchange controller; edits are overwritten.".to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

/// The single rule: `get` on the named Secrets only (no list, no watch, no other resource).
pub fn secret_get_rule(secret_names: &BTreeSet<String>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["secrets".to_string()]),
        resource_names: Some(secret_names.iter().cloned().collect()),
        verbs: vec!["get".to_string()],
        ..PolicyRule::default()
    }
}

/// The Role for a grant.
pub fn desired_role(grant: &DesiredGrant) -> Role {
    Role {
        metadata: metadata(grant),
        rules: Some(vec![secret_get_rule(&grant.secret_names)]),
    }
}

/// The RoleBinding for a grant, bound to the Role of the same name.
pub fn desired_role_binding(grant: &DesiredGrant) -> RoleBinding {
    RoleBinding {
        metadata: metadata(grant),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "Role".to_string(),
            name: grant.kind.object_name().to_string(),
        },
        subjects: Some(grant.subjects.clone()),
    }
}

fn labels_present(observed: &ObjectMeta, kind: GrantKind) -> bool {
    let labels = observed.labels.clone().unwrap_or_default();
    managed_labels(kind).iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// True when the observed Role already grants exactly what the desired one does.
pub fn role_matches(observed: &Role, desired: &Role, kind: GrantKind) -> bool {
    labels_present(&observed.metadata, kind) && observed.rules == desired.rules
}

/// True when the observed RoleBinding already binds exactly the desired subjects to the desired Role.
pub fn role_binding_matches(observed: &RoleBinding, desired: &RoleBinding, kind: GrantKind) -> bool {
    let mut observed_subjects = observed.subjects.clone().unwrap_or_default();
    sort_subjects(&mut observed_subjects);
    labels_present(&observed.metadata, kind)
        && observed.role_ref == desired.role_ref
        && Some(observed_subjects) == desired.subjects
}

/// Sorts and deduplicates subjects so comparisons do not depend on flag order.
pub fn sort_subjects(subjects: &mut Vec<Subject>) {
    subjects.sort_by(|a, b| {
        (a.kind.as_str(), a.namespace.as_deref(), a.name.as_str()).cmp(&(
            b.kind.as_str(),
            b.namespace.as_deref(),
            b.name.as_str(),
        ))
    });
    subjects.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant() -> DesiredGrant {
        DesiredGrant {
            namespace: "org-acme".into(),
            kind: GrantKind::Kubeconfig,
            secret_names: BTreeSet::from(["b-kubeconfig".to_string(), "a-kubeconfig".to_string()]),
            subjects: vec![Subject {
                kind: "ServiceAccount".into(),
                name: "mcp-kubernetes".into(),
                namespace: Some("muster".into()),
                api_group: None,
            }],
        }
    }

    #[test]
    fn role_grants_get_on_the_named_secrets_only() {
        let role = serde_json::to_value(desired_role(&grant())).unwrap_or_default();
        assert_eq!(
            role["rules"],
            json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a-kubeconfig", "b-kubeconfig"], "verbs": ["get"]}])
        );
        assert_eq!(
            role["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "muster-exchange"
        );
        assert_eq!(role["kind"], "Role");
    }

    #[test]
    fn binding_matches_regardless_of_subject_order() {
        let mut g = grant();
        g.subjects.push(Subject {
            kind: "ServiceAccount".into(),
            name: "aaa".into(),
            namespace: Some("muster".into()),
            api_group: None,
        });
        sort_subjects(&mut g.subjects);
        let desired = desired_role_binding(&g);
        let mut observed = desired.clone();
        observed.subjects.as_mut().unwrap().reverse();
        assert!(role_binding_matches(&observed, &desired, GrantKind::Kubeconfig));
        observed.subjects.as_mut().unwrap().pop();
        assert!(!role_binding_matches(&observed, &desired, GrantKind::Kubeconfig));
    }

    #[test]
    fn role_without_our_labels_does_not_match() {
        let desired = desired_role(&grant());
        let mut observed = desired.clone();
        assert!(role_matches(&observed, &desired, GrantKind::Kubeconfig));
        observed.metadata.labels = None;
        assert!(!role_matches(&observed, &desired, GrantKind::Kubeconfig));
    }
}
