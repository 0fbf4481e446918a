//! Every label, annotation and well-known name users and the other components rely on, in one place.

/// Prefix of all muster-exchange labels and annotations.
pub const DOMAIN: &str = "exchange.muster.giantswarm.io";

/// Namespace label (`enabled`) and pod label (`disabled`) that opt in to and out of sidecar injection.
pub const INJECTION_LABEL: &str = "exchange.muster.giantswarm.io/injection";
/// Value of [`INJECTION_LABEL`] on a namespace that opts in.
pub const INJECTION_ENABLED: &str = "enabled";
/// Value of [`INJECTION_LABEL`] on a pod that opts out.
pub const INJECTION_DISABLED: &str = "disabled";

/// Pod annotation: comma-separated MCPServers (remote clusters) the pod serves.
pub const ANNOTATION_MCPSERVERS: &str = "exchange.muster.giantswarm.io/mcpservers";
/// Pod annotation: namespace holding those MCPServers.
pub const ANNOTATION_MCPSERVER_NAMESPACE: &str = "exchange.muster.giantswarm.io/mcpserver-namespace";
/// Pod annotation: the app's (mcp-kubernetes') port the sidecar forwards to.
pub const ANNOTATION_UPSTREAM_PORT: &str = "exchange.muster.giantswarm.io/upstream-port";
/// Pod annotation: the sidecar's own port.
pub const ANNOTATION_PORT: &str = "exchange.muster.giantswarm.io/port";
/// Pod annotation: `auth-headers` (default) or `bearer`.
pub const ANNOTATION_HEADER_MODE: &str = "exchange.muster.giantswarm.io/header-mode";
/// Pod annotation: sidecar CPU request.
pub const ANNOTATION_CPU_REQUEST: &str = "exchange.muster.giantswarm.io/cpu-request";
/// Pod annotation: sidecar memory request.
pub const ANNOTATION_MEMORY_REQUEST: &str = "exchange.muster.giantswarm.io/memory-request";
/// Pod annotation: sidecar CPU limit.
pub const ANNOTATION_CPU_LIMIT: &str = "exchange.muster.giantswarm.io/cpu-limit";
/// Pod annotation: sidecar memory limit.
pub const ANNOTATION_MEMORY_LIMIT: &str = "exchange.muster.giantswarm.io/memory-limit";
/// Pod annotation written by the webhook: what was injected (version, MCPServers, config hash).
pub const ANNOTATION_STATUS: &str = "exchange.muster.giantswarm.io/status";

/// MCPServer annotation: the Secret holding the remote cluster's kubeconfig.
pub const ANNOTATION_KUBECONFIG_SECRET: &str = "exchange.muster.giantswarm.io/kubeconfig-secret";
/// MCPServer annotation: a ConfigMap in the pod's namespace whose key [`DEX_CA_KEY`] holds the CA
/// bundle (PEM) the sidecar trusts for the Dex endpoint, in addition to the image's bundle.
pub const ANNOTATION_DEX_CA_CONFIGMAP: &str = "exchange.muster.giantswarm.io/dex-ca-configmap";
/// MCPServer annotation: a ConfigMap in the pod's namespace with keys [`ENDPOINT_SERVER_KEY`] and
/// [`ENDPOINT_CA_KEY`] (the remote API server's URL and CA, nothing secret). In `auth-headers` mode the
/// webhook mounts it instead of the kubeconfig Secret, so the sidecar holds no cluster credentials.
pub const ANNOTATION_ENDPOINT_CONFIGMAP: &str = "exchange.muster.giantswarm.io/endpoint-configmap";
/// Key of the endpoint ConfigMap holding the remote API server URL (`https://`).
pub const ENDPOINT_SERVER_KEY: &str = "server";
/// Key of the endpoint ConfigMap holding the remote API server's CA (PEM).
pub const ENDPOINT_CA_KEY: &str = "ca.crt";
/// Key of the Dex CA ConfigMap.
pub const DEX_CA_KEY: &str = "ca.crt";
/// Suffix of the default kubeconfig Secret name (`<cluster>-kubeconfig`, the Cluster API convention).
pub const KUBECONFIG_SECRET_SUFFIX: &str = "-kubeconfig";
/// Kubeconfig Secret key Cluster API writes.
pub const KUBECONFIG_KEY: &str = "value";
/// Kubeconfig Secret key used when [`KUBECONFIG_KEY`] is absent.
pub const KUBECONFIG_FALLBACK_KEY: &str = "kubeconfig";

/// Name of the injected native sidecar container.
pub const SIDECAR_CONTAINER_NAME: &str = "token-exchange";
/// Name of the injected sidecar's container port (proxy, `/metrics`, `/healthz`, `/readyz`): what the
/// monitoring component's PodMonitor selects (an IANA service name, at most 15 characters).
pub const SIDECAR_PORT_NAME: &str = "token-exchange";
/// Environment variable carrying the sidecar's configuration document (JSON) in the pod spec.
pub const SIDECAR_CONFIG_ENV: &str = "MUSTER_EXCHANGE_SIDECAR_CONFIG";
/// Sidecar image injected when the webhook is given none: this release of the one muster-exchange image
/// (the workspace shares one version, so this is the webhook's and the sidecar's version too).
pub const DEFAULT_SIDECAR_IMAGE: &str =
    concat!("ghcr.io/giantswarm/muster-exchange:", env!("CARGO_PKG_VERSION"));
/// UID/GID the sidecar runs as: the `nonroot` user of distroless images, and the `USER` of the image's
/// Dockerfile (a test reads the Dockerfile so the two cannot drift).
pub const SIDECAR_UID: i64 = 65532;

/// Label a client-credentials Secret must carry (value [`CREDENTIALS_OPT_IN_VALUE`]), besides being of
/// type [`CREDENTIALS_SECRET_TYPE`], before the controller reads it or grants Muster read on it: naming a
/// Secret in an MCPServer is not enough, its owner must opt it in.
pub const CREDENTIALS_OPT_IN_LABEL: &str = "exchange.muster.giantswarm.io/credentials";
/// Value of [`CREDENTIALS_OPT_IN_LABEL`] that opts a Secret in.
pub const CREDENTIALS_OPT_IN_VALUE: &str = "true";
/// The only Secret type the controller reads client credentials from.
pub const CREDENTIALS_SECRET_TYPE: &str = "Opaque";

/// Label on every object the controller manages; it never touches objects without it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "muster-exchange";
/// Label on the controller's grant Roles and RoleBindings: which grant (`kubeconfig` or `credentials`).
pub const GRANT_KIND_LABEL: &str = "exchange.muster.giantswarm.io/grant";

/// MCPServer condition type: the exchange client's credentials Secret exists, may be read, and holds both
/// values.
pub const CONDITION_EXCHANGE_CREDENTIALS_READY: &str = "ExchangeCredentialsReady";
/// MCPServer condition type: the remote Dex answers and names the expected issuer (False with reason
/// [`REASON_DISCONNECTED`] when it does not answer).
pub const CONDITION_DEX_CONNECTED: &str = "DexConnected";
/// MCPServer condition type: a probe exchange shows that the remote Dex accepts the credentials and the
/// connector.
pub const CONDITION_TOKEN_EXCHANGE_VERIFIED: &str = "TokenExchangeVerified";
/// MCPServer condition type: the aggregate of the three above. The CRD's `Exchange` printer column reads it.
pub const CONDITION_TOKEN_EXCHANGE_READY: &str = "TokenExchangeReady";
/// Reason of [`CONDITION_DEX_CONNECTED`]=False when the remote Dex does not answer.
pub const REASON_DISCONNECTED: &str = "Disconnected";

/// Every condition type the muster-exchange controller writes. It changes only entries of these types and
/// keeps every other writer's conditions (Muster documents `Ready`; none of these equals it).
pub const OUR_CONDITION_TYPES: [&str; 4] = [
    CONDITION_EXCHANGE_CREDENTIALS_READY,
    CONDITION_DEX_CONNECTED,
    CONDITION_TOKEN_EXCHANGE_VERIFIED,
    CONDITION_TOKEN_EXCHANGE_READY,
];

/// True for a condition type the muster-exchange controller writes.
pub fn is_our_condition_type(type_: &str) -> bool {
    OUR_CONDITION_TYPES.contains(&type_)
}

/// Namespaces nothing is ever injected or granted in.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// True for `kube-system`, `kube-public` and `kube-node-lease`.
pub fn is_system_namespace(namespace: &str) -> bool {
    SYSTEM_NAMESPACES.contains(&namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_labels_and_annotations_live_under_the_domain() {
        for name in [
            INJECTION_LABEL,
            ANNOTATION_MCPSERVERS,
            ANNOTATION_MCPSERVER_NAMESPACE,
            ANNOTATION_STATUS,
            ANNOTATION_KUBECONFIG_SECRET,
            ANNOTATION_DEX_CA_CONFIGMAP,
            ANNOTATION_ENDPOINT_CONFIGMAP,
            GRANT_KIND_LABEL,
            CREDENTIALS_OPT_IN_LABEL,
        ] {
            assert!(name.starts_with(&format!("{DOMAIN}/")), "{name}");
        }
        assert_eq!(GRANT_KIND_LABEL, "exchange.muster.giantswarm.io/grant");
        assert_eq!(
            CREDENTIALS_OPT_IN_LABEL,
            "exchange.muster.giantswarm.io/credentials"
        );
    }
}
