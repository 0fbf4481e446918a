//! Credential grants: for every MCPServer in topology M (Muster exchanges, `tokenExchange.enabled: true`),
//! the `--credentials-reader` may `get` exactly the Secret its `clientCredentialsSecretRef` names, in that
//! Secret's namespace (defaulting to the MCPServer's). In topology F Muster never reads the Secret (only
//! the sidecar mounts it), so no grant is made. Grants no MCPServer needs any more are removed by [`sync_grants`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::Subject;
use kube::Client;
use muster_exchange_api::MCPServer;
use muster_exchange_api::credentials_policy::{CredentialsPolicy, NamespaceRefusal};
use muster_exchange_api::topology;

use super::credential_optin::{opted_in_secrets, retain_opted_in};
use super::grant_sync::{SyncLimits, SyncReport, sync_grants};
use super::rbac_objects::{DesiredGrant, GrantKind};
use crate::error::Error;
use crate::probe::target::credentials_secret_of;

/// What the credential-grant reconciler needs to know.
#[derive(Debug, Clone)]
pub struct CredentialGrantConfig {
    /// The ServiceAccount that reads credential Secrets; `None` manages no credential grants.
    pub reader: Option<Subject>,
    /// Where credentials Secrets may live (the probe reads by the same rule).
    pub policy: CredentialsPolicy,
    /// Namespaces processed at once.
    pub concurrency: usize,
}

/// Result of a credential-grant sync.
#[derive(Debug, Default)]
pub struct CredentialSyncReport {
    /// The writes and failures.
    pub sync: SyncReport,
    /// `(namespace/secret, why)` for credential Secrets in namespaces that may not be granted in.
    pub refused: Vec<(String, NamespaceRefusal)>,
    /// `namespace/secret` of credential Secrets not granted because they have not opted in.
    pub not_opted_in: Vec<String>,
}

/// The desired credential grants for these MCPServers, keyed by namespace, and the refused Secrets.
pub fn desired_credential_grants(
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

/// One full sync of credential grants for the MCPServers given (already listed and parsed). With
/// `incomplete` (some MCPServer did not parse) grants are added and updated but none is deleted: the
/// unparsed MCPServer's grant would look unneeded.
pub async fn sync_credential_grants(
    client: &Client,
    servers: &[MCPServer],
    config: &CredentialGrantConfig,
    incomplete: bool,
) -> Result<CredentialSyncReport, Error> {
    let (mut desired, refused) = desired_credential_grants(servers, config);
    for (secret, why) in &refused {
        tracing::warn!(secret = %secret, reason = why.reason(), "refusing to grant credential Secret access here");
    }
    let not_opted_in = if desired.is_empty() {
        Vec::new()
    } else {
        retain_opted_in(&mut desired, &opted_in_secrets(client).await?)
    };
    for secret in &not_opted_in {
        tracing::warn!(secret = %secret, "not granting access to a credentials Secret that has not opted in (label and type Opaque)");
    }
    let limits = SyncLimits {
        no_deletes: incomplete,
        ..SyncLimits::default()
    };
    let sync = sync_grants(
        client,
        GrantKind::Credentials,
        &desired,
        config.concurrency,
        &limits,
    )
    .await?;
    Ok(CredentialSyncReport {
        sync,
        refused,
        not_opted_in,
    })
}
