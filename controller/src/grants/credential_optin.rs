//! Credential grants only for Secrets that opted in (label `exchange.muster.giantswarm.io/credentials:
//! "true"`, type `Opaque`): naming a Secret in an MCPServer must not be enough to have Muster granted
//! read on it. A metadata-only watch, filtered by the API server on that label and type, holds every
//! opted-in Secret; labelling, unlabelling or deleting one wakes its namespace's reconcile.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::watcher;
use muster_exchange_api::names::CREDENTIALS_SECRET_TYPE;

use super::rbac_objects::DesiredGrant;
use crate::probe::secret_optin::opt_in_label_selector;

/// The watch of opted-in Secrets: label selector and `type=Opaque`, so nothing else is listed.
pub(crate) fn opted_in_watch_config() -> watcher::Config {
    crate::runtime::kube_client::watch_config()
        .labels(&opt_in_label_selector())
        .fields(&format!("type={CREDENTIALS_SECRET_TYPE}"))
}

/// Keeps in `desired` only the Secrets in `opted_in` (`(namespace, name)`), dropping grants left with
/// none; returns the `namespace/name` of every Secret dropped, sorted.
pub(crate) fn retain_opted_in(
    desired: &mut BTreeMap<String, DesiredGrant>,
    opted_in: &BTreeSet<(String, String)>,
) -> Vec<String> {
    let mut dropped = Vec::new();
    for (namespace, grant) in desired.iter_mut() {
        grant.secret_names.retain(|name| {
            let keep = opted_in.contains(&(namespace.clone(), name.clone()));
            if !keep {
                dropped.push(format!("{namespace}/{name}"));
            }
            keep
        });
    }
    desired.retain(|_, grant| !grant.secret_names.is_empty());
    dropped
}

/// An opted-in Secret, by metadata only (no Secret data is ever read for grants).
pub(crate) type OptedInSecret = kube::api::PartialObjectMeta<Secret>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_opted_in_secrets_stay_in_the_desired_grants() {
        use super::super::rbac_objects::GrantKind;
        let grant = |names: &[&str]| DesiredGrant {
            namespace: "muster".into(),
            kind: GrantKind::Credentials,
            secret_names: names.iter().map(|n| n.to_string()).collect(),
            subjects: vec![],
        };
        let mut desired = BTreeMap::from([
            ("muster".to_string(), grant(&["a", "b"])),
            ("other".to_string(), grant(&["c"])),
        ]);
        let opted_in = BTreeSet::from([("muster".to_string(), "a".to_string())]);
        let dropped = retain_opted_in(&mut desired, &opted_in);
        assert_eq!(dropped, ["muster/b", "other/c"]);
        assert_eq!(desired.len(), 1);
        assert_eq!(desired["muster"].secret_names, BTreeSet::from(["a".to_string()]));
    }
}
