//! Credential grants: for every MCPServer in topology M (Muster exchanges, `tokenExchange.enabled: true`),
//! the `--credentials-reader` may `get` exactly the Secret its `clientCredentialsSecretRef` names, in that
//! Secret's namespace (defaulting to the MCPServer's), once that Secret opted in (see
//! [`super::credential_optin`]). In topology F Muster never reads the Secret (only the sidecar mounts
//! it), so no grant is made. Grants no MCPServer needs any more are removed by the grant controller.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::Subject;
use muster_exchange_api::credentials_policy::{CredentialsPolicy, NamespaceRefusal};
use muster_exchange_api::{MCPServer, topology};

use super::rbac_objects::{DesiredGrant, GrantKind};
use crate::probe::target::credentials_secret_of;

/// What the credential-grant reconciler needs to know.
#[derive(Debug, Clone)]
pub(crate) struct CredentialGrantConfig {
    /// The ServiceAccount that reads credential Secrets; `None` manages no credential grants.
    pub(crate) reader: Option<Subject>,
    /// Where credentials Secrets may live (the probe reads by the same rule).
    pub(crate) policy: CredentialsPolicy,
}

/// The desired credential grants for these MCPServers, keyed by namespace, and the refused Secrets.
pub(crate) fn desired_credential_grants(
    servers: &[MCPServer],
    config: &CredentialGrantConfig,
) -> (BTreeMap<String, DesiredGrant>, Vec<(String, NamespaceRefusal)>) {
    let Some(reader) = &config.reader else {
        return (BTreeMap::new(), Vec::new());
    };
    let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut refused = Vec::new();
    for server in servers {
        if !topology::of(server).is_ok_and(topology::Topology::muster_reads_credentials) {
            continue;
        }
        let Some(location) = credentials_secret_of(server, &config.policy) else {
            continue;
        };
        if let Some(refusal) = &location.refused {
            refused.push((format!("{}/{}", location.namespace, location.name), refusal.why));
            continue;
        }
        secrets
            .entry(location.namespace)
            .or_default()
            .insert(location.name);
    }
    let grants = secrets
        .into_iter()
        .map(|(namespace, secret_names)| {
            let grant = DesiredGrant {
                namespace: namespace.clone(),
                kind: GrantKind::Credentials,
                secret_names,
                subjects: vec![reader.clone()],
            };
            (namespace, grant)
        })
        .collect();
    (grants, refused)
}
