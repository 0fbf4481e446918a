//! Credential grants: for every MCPServer with token exchange enabled, the `--credentials-reader` may
//! `get` exactly the Secret its `clientCredentialsSecretRef` names, in that Secret's namespace (defaulting
//! to the MCPServer's). Grants no MCPServer needs any more are removed by [`sync_grants`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::Subject;
use kube::{Client, ResourceExt};
use muster_exchange_api::MCPServer;

use super::grant_sync::{SyncReport, sync_grants};
use super::namespace_policy::{Refusal, refusal};
use super::rbac_objects::{DesiredGrant, GrantKind};
use crate::error::Error;

/// What the credential-grant reconciler needs to know.
#[derive(Debug, Clone)]
pub struct CredentialGrantConfig {
    /// The ServiceAccount that reads credential Secrets; `None` manages no credential grants.
    pub reader: Option<Subject>,
    /// The controller's own namespace: never granted in.
    pub controller_namespace: String,
    /// Namespaces processed at once.
    pub concurrency: usize,
}

/// Result of a credential-grant sync.
#[derive(Debug, Default)]
pub struct CredentialSyncReport {
    /// The writes and failures.
    pub sync: SyncReport,
    /// `(namespace/secret, why)` for credential Secrets in namespaces that may not be granted in.
    pub refused: Vec<(String, Refusal)>,
}

/// The desired credential grants for these MCPServers, keyed by namespace, and the refused Secrets.
pub fn desired_credential_grants(
    servers: &[MCPServer],
    config: &CredentialGrantConfig,
) -> (BTreeMap<String, DesiredGrant>, Vec<(String, Refusal)>) {
    let Some(reader) = &config.reader else {
        return (BTreeMap::new(), Vec::new());
    };
    let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut refused = Vec::new();
    for server in servers {
        let Some(secret_ref) = server
            .enabled_token_exchange()
            .and_then(|te| te.client_credentials_secret_ref.as_ref())
        else {
            continue;
        };
        let server_ns = server.namespace().unwrap_or_default();
        let namespace = secret_ref.namespace_or(&server_ns).to_string();
        if let Some(why) = refusal(&namespace, &config.controller_namespace) {
            refused.push((format!("{namespace}/{}", secret_ref.name), why));
            continue;
        }
        secrets
            .entry(namespace)
            .or_default()
            .insert(secret_ref.name.clone());
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

/// One full sync of credential grants for the MCPServers given (already listed and parsed).
pub async fn sync_credential_grants(
    client: &Client,
    servers: &[MCPServer],
    config: &CredentialGrantConfig,
) -> Result<CredentialSyncReport, Error> {
    let (desired, refused) = desired_credential_grants(servers, config);
    for (secret, why) in &refused {
        tracing::warn!(secret = %secret, reason = why.reason(), "refusing to grant credential Secret access here");
    }
    let sync = sync_grants(client, GrantKind::Credentials, &desired, config.concurrency).await?;
    Ok(CredentialSyncReport { sync, refused })
}
