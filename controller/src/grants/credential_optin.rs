//! Credential grants only for Secrets that opted in (label `exchange.muster.giantswarm.io/credentials:
//! "true"`, type `Opaque`): naming a Secret in an MCPServer must not be enough to have Muster granted
//! read on it. One metadata-only list, filtered by the API server, finds every opted-in Secret.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use muster_exchange_api::names::CREDENTIALS_SECRET_TYPE;

use super::rbac_objects::DesiredGrant;
use crate::error::Error;
use crate::probe::secret_optin::opt_in_label_selector;

/// `(namespace, name)` of every Secret that opted in, by metadata only (no Secret data is read).
pub async fn opted_in_secrets(client: &Client) -> Result<BTreeSet<(String, String)>, Error> {
    let params = ListParams::default()
        .labels(&opt_in_label_selector())
        .fields(&format!("type={CREDENTIALS_SECRET_TYPE}"));
    let list = Api::<Secret>::all(client.clone())
        .list_metadata(&params)
        .await
        .map_err(|cause| Error::List {
            what: format!("secrets labelled {}", opt_in_label_selector()),
            cause,
        })?;
    Ok(list
        .items
        .iter()
        .map(|s| (s.namespace().unwrap_or_default(), s.name_any()))
        .collect())
}

/// Keeps in `desired` only the Secrets in `opted_in`, dropping grants left with none; returns the
/// `namespace/name` of every Secret dropped, sorted.
pub fn retain_opted_in(
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

/// Remembers which Secrets carry the opt-in label, so labelling a Secret, removing its label, or
/// deleting it wakes the credential sync at once (granting or withdrawing Muster's read), while the
/// many other Secret changes do not.
#[derive(Debug, Default)]
pub struct OptInChanges {
    labelled: BTreeSet<(String, String)>,
}

impl OptInChanges {
    /// True for a Secret event that may change the credential grants.
    pub fn relevant<K: ResourceExt>(&mut self, event: &kube::runtime::watcher::Event<K>) -> bool {
        use kube::runtime::watcher::Event;
        let key = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
        let labelled = |o: &K| {
            o.labels()
                .get(muster_exchange_api::names::CREDENTIALS_OPT_IN_LABEL)
                .is_some_and(|v| v == muster_exchange_api::names::CREDENTIALS_OPT_IN_VALUE)
        };
        match event {
            Event::Apply(o) | Event::InitApply(o) => {
                let was = if labelled(o) {
                    !self.labelled.insert(key(o))
                } else {
                    self.labelled.remove(&key(o))
                };
                matches!(event, Event::Apply(_)) && (was || labelled(o))
            }
            Event::Delete(o) => self.labelled.remove(&key(o)),
            Event::Init => {
                self.labelled.clear();
                false
            }
            Event::InitDone => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;
    use kube::core::PartialObjectMeta;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;

    fn secret(labelled: bool) -> PartialObjectMeta<Secret> {
        let labels = if labelled {
            json!({"exchange.muster.giantswarm.io/credentials": "true"})
        } else {
            json!({})
        };
        serde_json::from_value(
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {"name": "creds", "namespace": "muster", "labels": labels}}),
        )
        .unwrap()
    }

    #[test]
    fn labelling_unlabelling_and_deleting_an_opted_in_secret_wake_the_credential_sync() {
        let mut changes = OptInChanges::default();
        let seen: Vec<bool> = [
            Event::Init,
            Event::InitApply(secret(false)),
            Event::InitDone,
            Event::Apply(secret(false)),
            Event::Apply(secret(true)),
            Event::Apply(secret(true)),
            Event::Apply(secret(false)),
            Event::Apply(secret(false)),
            Event::Apply(secret(true)),
            Event::Delete(secret(true)),
        ]
        .iter()
        .map(|e| changes.relevant(e))
        .collect();
        assert_eq!(
            seen,
            [false, false, true, false, true, true, true, false, true, true]
        );
    }

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
