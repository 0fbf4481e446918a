//! From MCPServer names to checked sidecar cluster entries, refusing anything that would produce a pod
//! that cannot start or cannot exchange.

use std::sync::Arc;

use muster_exchange_api::MCPServer;
use muster_exchange_api::names::{
    ANNOTATION_DEX_CA_CONFIGMAP, ANNOTATION_ENDPOINT_CONFIGMAP, ANNOTATION_KUBECONFIG_SECRET,
    ANNOTATION_MCPSERVER_NAMESPACE, ANNOTATION_MCPSERVERS, DEX_CA_KEY, ENDPOINT_CA_KEY, ENDPOINT_SERVER_KEY,
    KUBECONFIG_SECRET_SUFFIX,
};
use muster_exchange_api::sidecar_config::{ClusterConfig, HeaderMode};
use muster_exchange_api::validation::syntax::is_dns1123_subdomain;
use muster_exchange_api::validation::validate;

use super::options::InjectOptions;
use super::refusal::Refusal;
use crate::inject::layout;
use crate::mcpservers::McpServerLookup;

/// One MCPServer ready to be injected: its sidecar entry and the Secrets to mount.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCluster {
    /// The sidecar's configuration for this cluster.
    pub config: ClusterConfig,
    /// Secret with the exchange client's credentials (in the pod's namespace).
    pub credentials_secret: String,
    /// Secret with the remote kubeconfig, mounted in `auth-headers` mode only, and only when no
    /// endpoint ConfigMap is named.
    pub kubeconfig_secret: Option<String>,
    /// ConfigMap (pod's namespace) with the remote server URL and CA, from the MCPServer's
    /// [`ANNOTATION_ENDPOINT_CONFIGMAP`]; mounted in `auth-headers` mode instead of the kubeconfig Secret
    /// and rendered as the sidecar's `endpointDir`.
    pub endpoint_configmap: Option<String>,
    /// ConfigMap (pod's namespace) with the Dex CA bundle, from the MCPServer's
    /// [`ANNOTATION_DEX_CA_CONFIGMAP`]; rendered as the sidecar's `caFile`.
    pub dex_ca_configmap: Option<String>,
}

/// Namespace to look MCPServers up in: the pod annotation, else the webhook's default, else the pod's.
pub fn mcpserver_namespace<'a>(
    options: &'a InjectOptions,
    webhook_default: Option<&'a str>,
    pod_namespace: &'a str,
) -> &'a str {
    options
        .mcpserver_namespace
        .as_deref()
        .or(webhook_default)
        .unwrap_or(pod_namespace)
}

/// Looks every MCPServer of `options` up, in order; a refusal names the first one missing.
pub fn lookup_mcpservers(
    options: &InjectOptions,
    lookup_namespace: &str,
    catalog: &dyn McpServerLookup,
) -> Result<Vec<Arc<MCPServer>>, Refusal> {
    options
        .mcpservers
        .iter()
        .map(|name| {
            catalog
                .get(lookup_namespace, name)
                .ok_or_else(|| Refusal::UnknownMcpServer {
                    namespace: lookup_namespace.to_string(),
                    name: name.clone(),
                    annotation: ANNOTATION_MCPSERVERS,
                    namespace_annotation: ANNOTATION_MCPSERVER_NAMESPACE,
                })
        })
        .collect()
}

/// Checks each looked-up MCPServer and turns it into a sidecar cluster entry.
pub fn resolve_clusters(
    options: &InjectOptions,
    mcpservers: &[Arc<MCPServer>],
    lookup_namespace: &str,
    pod_namespace: &str,
) -> Result<Vec<ResolvedCluster>, Refusal> {
    options
        .mcpservers
        .iter()
        .zip(mcpservers)
        .map(|(name, mcpserver)| {
            resolve_one(
                mcpserver,
                name,
                lookup_namespace,
                pod_namespace,
                options.header_mode,
            )
        })
        .collect()
}

fn resolve_one(
    mcpserver: &MCPServer,
    name: &str,
    mcpserver_namespace: &str,
    pod_namespace: &str,
    header_mode: HeaderMode,
) -> Result<ResolvedCluster, Refusal> {
    let unusable = |detail: String| Refusal::TokenExchangeUnusable {
        namespace: mcpserver_namespace.to_string(),
        name: name.to_string(),
        detail,
    };
    // Only `auth-headers` needs the remote server and CA; the endpoint ConfigMap, when named, replaces
    // the kubeconfig Secret so no cluster credentials reach the pod.
    let endpoint_configmap = match header_mode {
        HeaderMode::AuthHeaders => annotation(mcpserver, ANNOTATION_ENDPOINT_CONFIGMAP),
        HeaderMode::Bearer => None,
    };
    if let Some(configmap) = &endpoint_configmap
        && !is_dns1123_subdomain(configmap)
    {
        return Err(unusable(format!(
            "annotation {ANNOTATION_ENDPOINT_CONFIGMAP} is {configmap:?}, not a ConfigMap name; name a \
             ConfigMap in the pod's namespace with keys {ENDPOINT_SERVER_KEY} and {ENDPOINT_CA_KEY}"
        )));
    }
    let kubeconfig_file = (header_mode == HeaderMode::AuthHeaders && endpoint_configmap.is_none())
        .then(|| layout::kubeconfig_file(name));
    let mut config = ClusterConfig::from_mcpserver(mcpserver, layout::credentials_dir(name), kubeconfig_file)
        .map_err(|e| unusable(e.to_string()))?;
    if endpoint_configmap.is_some() {
        config.endpoint_dir = Some(layout::endpoint_dir(name));
    }
    let dex_ca_configmap = annotation(mcpserver, ANNOTATION_DEX_CA_CONFIGMAP);
    if let Some(configmap) = &dex_ca_configmap {
        if !is_dns1123_subdomain(configmap) {
            return Err(unusable(format!(
                "annotation {ANNOTATION_DEX_CA_CONFIGMAP} is {configmap:?}, not a ConfigMap name; name a \
                 ConfigMap in the pod's namespace with key {DEX_CA_KEY}"
            )));
        }
        config.ca_file = Some(layout::dex_ca_file(name));
    }
    let report = validate(mcpserver);
    if !report.is_valid() {
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        return Err(unusable(format!("{}; fix the MCPServer", errors.join("; "))));
    }
    let secret_ref = mcpserver
        .token_exchange()
        .and_then(|te| te.client_credentials_secret_ref.as_ref())
        .ok_or_else(|| unusable("spec.auth.tokenExchange.clientCredentialsSecretRef is not set".into()))?;
    // A Secret volume can only mount from the pod's own namespace. (A Secret in a system namespace was
    // already refused by `validate` above, through the shared credentials policy.)
    let secret_namespace = secret_ref.namespace_or(mcpserver_namespace);
    if secret_namespace != pod_namespace {
        return Err(Refusal::SecretInOtherNamespace {
            mcpserver: name.to_string(),
            secret: secret_ref.name.clone(),
            secret_namespace: secret_namespace.to_string(),
            pod_namespace: pod_namespace.to_string(),
        });
    }
    let kubeconfig_secret = match header_mode {
        HeaderMode::AuthHeaders if endpoint_configmap.is_none() => Some(kubeconfig_secret(
            mcpserver,
            name,
            mcpserver_namespace,
            pod_namespace,
        )?),
        _ => None,
    };
    Ok(ResolvedCluster {
        config,
        credentials_secret: secret_ref.name.clone(),
        kubeconfig_secret,
        endpoint_configmap,
        dex_ca_configmap,
    })
}

/// The kubeconfig Secret to mount (always from the pod's namespace: a Secret volume cannot reach another).
/// Without the annotation, the Cluster API `<name>-kubeconfig` Secret lives next to the MCPServer; when
/// that is another namespace, the pod would hang in ContainerCreating, so it is refused instead.
fn kubeconfig_secret(
    mcpserver: &MCPServer,
    name: &str,
    mcpserver_namespace: &str,
    pod_namespace: &str,
) -> Result<String, Refusal> {
    let annotated = annotated_kubeconfig_secret(mcpserver);
    if annotated.is_none() && mcpserver_namespace != pod_namespace {
        return Err(Refusal::KubeconfigInOtherNamespace {
            mcpserver: name.to_string(),
            secret: format!("{name}{KUBECONFIG_SECRET_SUFFIX}"),
            mcpserver_namespace: mcpserver_namespace.to_string(),
            pod_namespace: pod_namespace.to_string(),
            annotation: ANNOTATION_KUBECONFIG_SECRET,
        });
    }
    Ok(annotated.unwrap_or_else(|| format!("{name}{KUBECONFIG_SECRET_SUFFIX}")))
}

fn annotated_kubeconfig_secret(mcpserver: &MCPServer) -> Option<String> {
    annotation(mcpserver, ANNOTATION_KUBECONFIG_SECRET)
}

/// The MCPServer's annotation `key`, trimmed; `None` when absent or blank.
fn annotation(mcpserver: &MCPServer, key: &str) -> Option<String> {
    mcpserver
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
