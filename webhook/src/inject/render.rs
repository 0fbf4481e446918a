//! What goes into the pod: the native sidecar container, its Secret volumes, and the status annotation.
//! Pure functions of the resolved clusters and the options, so the result is deterministic and the
//! second admission of an injected pod renders exactly what is already there.

use muster_exchange_api::names::{ENDPOINT_CA_KEY, ENDPOINT_SERVER_KEY, SIDECAR_CONFIG_ENV, SIDECAR_UID};
use muster_exchange_api::redact::short_hash;
use muster_exchange_api::sidecar_config::SidecarConfig;
use serde_json::{Value, json};

use super::options::InjectOptions;
use super::resolve::ResolvedCluster;
use crate::inject::layout;

/// Version written into the status annotation.
pub const INJECTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Webhook-wide injection settings (from the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectorSettings {
    /// Image of the sidecar (`--sidecar-image`).
    pub sidecar_image: String,
    /// Namespace to find MCPServers in when the pod does not say (`--mcpserver-namespace`).
    pub default_mcpserver_namespace: Option<String>,
    /// The central Dex's issuer (`--central-issuer`), rendered as the sidecar's `centralIssuer`: the
    /// sidecar then refuses subject tokens of any other issuer before asking Dex.
    pub central_issuer: Option<String>,
}

/// Everything one injection adds to a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// The `token-exchange` init container with `restartPolicy: Always`.
    pub sidecar: Value,
    /// Volumes, in MCPServer order (credentials, then kubeconfig or endpoint, then Dex CA).
    pub volumes: Vec<Value>,
    /// Value of the status annotation.
    pub status: String,
    /// The first-injection patch, base64-encoded as the admission response carries it, per pod shape
    /// (see `patch::plan_encoded`): computed once per render, shared by every review that hits it.
    pub(super) first_patches: [std::sync::OnceLock<std::sync::Arc<str>>; 8],
}

/// Renders the injection for `clusters`; the sidecar configuration is checked with the same rules the
/// sidecar applies at start, so a pod that would crash-loop is refused at admission instead.
pub fn render(
    options: &InjectOptions,
    clusters: &[ResolvedCluster],
    settings: &InjectorSettings,
) -> Result<Injection, String> {
    let config = SidecarConfig {
        listen: muster_exchange_api::sidecar_config::listen_on_all_addresses(options.port),
        upstream: format!("http://127.0.0.1:{}", options.upstream_port),
        header_mode: options.header_mode,
        clusters: clusters.iter().map(|c| c.config.clone()).collect(),
        central_issuer: settings.central_issuer.clone(),
    };
    config.check()?;
    let config_json = serde_json::to_string(&config).map_err(|e| e.to_string())?;
    let status = serde_json::to_string(&json!({
        "version": INJECTOR_VERSION,
        "mcpservers": options.mcpservers,
        "configHash": short_hash(&config_json),
    }))
    .map_err(|e| e.to_string())?;
    Ok(Injection {
        sidecar: sidecar_container(options, clusters, settings, config_json),
        volumes: clusters.iter().flat_map(volumes).collect(),
        status,
        first_patches: Default::default(),
    })
}

fn sidecar_container(
    options: &InjectOptions,
    clusters: &[ResolvedCluster],
    settings: &InjectorSettings,
    config_json: String,
) -> Value {
    let probe = |path: &str, period: u32, failures: u32| json!({"httpGet": {"path": path, "port": options.port}, "periodSeconds": period, "failureThreshold": failures});
    let mut resources = json!({});
    for ((section, resource), quantity) in &options.resources {
        resources[*section][*resource] = json!(quantity);
    }
    json!({
        "name": muster_exchange_api::names::SIDECAR_CONTAINER_NAME,
        "image": settings.sidecar_image,
        "command": ["muster-exchange", "sidecar"],
        // A native sidecar: started before the app containers and kept running alongside them.
        "restartPolicy": "Always",
        // Named, so the monitoring component's PodMonitor finds the sidecars in any pod.
        "ports": [{"name": muster_exchange_api::names::SIDECAR_PORT_NAME, "containerPort": options.port, "protocol": "TCP"}],
        "env": [{"name": SIDECAR_CONFIG_ENV, "value": config_json}],
        // The kubelet starts the next container only once the startup probe passed: the app never
        // receives traffic before the sidecar can exchange tokens.
        "startupProbe": probe("/readyz", 1, 120),
        "readinessProbe": probe("/readyz", 5, 3),
        "livenessProbe": probe("/healthz", 10, 3),
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": SIDECAR_UID,
            "runAsGroup": SIDECAR_UID,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "volumeMounts": clusters.iter().flat_map(volume_mounts).collect::<Vec<_>>(),
    })
}

fn volumes(cluster: &ResolvedCluster) -> Vec<Value> {
    let name = &cluster.config.name;
    let mut volumes = vec![json!({
        "name": layout::credentials_volume_name(name),
        "secret": {
            "secretName": cluster.credentials_secret,
            // Only the two keys: nothing else the Secret may hold lands in the pod.
            "items": [
                {"key": cluster.config.client_id_key, "path": cluster.config.client_id_key},
                {"key": cluster.config.client_secret_key, "path": cluster.config.client_secret_key}
            ],
            // World-readable inside the sidecar only (mounted nowhere else): the sidecar runs as a
            // non-root UID and the pod may set no fsGroup, so group-only modes would lock it out.
            "defaultMode": 0o444
        }
    })];
    if let Some(secret) = &cluster.kubeconfig_secret {
        // The whole Secret: the webhook cannot know whether it holds `value` or `kubeconfig`.
        volumes.push(json!({
            "name": layout::kubeconfig_volume_name(name),
            "secret": {"secretName": secret, "defaultMode": 0o444}
        }));
    }
    if let Some(configmap) = &cluster.endpoint_configmap {
        // Exactly the two keys: server URL and CA, nothing else the ConfigMap may hold.
        let items: Vec<Value> = [ENDPOINT_SERVER_KEY, ENDPOINT_CA_KEY]
            .iter()
            .map(|key| json!({"key": key, "path": key}))
            .collect();
        volumes.push(json!({
            "name": layout::endpoint_volume_name(name),
            "configMap": {"name": configmap, "items": items, "defaultMode": 0o444}
        }));
    }
    if let Some(configmap) = &cluster.dex_ca_configmap {
        let key = muster_exchange_api::names::DEX_CA_KEY;
        volumes.push(json!({
            "name": layout::dex_ca_volume_name(name),
            "configMap": {"name": configmap, "items": [{"key": key, "path": key}], "defaultMode": 0o444}
        }));
    }
    volumes
}

fn volume_mounts(cluster: &ResolvedCluster) -> Vec<Value> {
    let name = &cluster.config.name;
    let mut mounts = vec![json!({
        "name": layout::credentials_volume_name(name),
        "mountPath": layout::credentials_dir(name),
        "readOnly": true
    })];
    if cluster.kubeconfig_secret.is_some() {
        mounts.push(json!({
            "name": layout::kubeconfig_volume_name(name),
            "mountPath": layout::kubeconfig_dir(name),
            "readOnly": true
        }));
    }
    if cluster.endpoint_configmap.is_some() {
        mounts.push(json!({
            "name": layout::endpoint_volume_name(name),
            "mountPath": layout::endpoint_dir(name),
            "readOnly": true
        }));
    }
    if cluster.dex_ca_configmap.is_some() {
        mounts.push(json!({
            "name": layout::dex_ca_volume_name(name),
            "mountPath": layout::dex_ca_dir(name),
            "readOnly": true
        }));
    }
    mounts
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use muster_exchange_api::sidecar_config::{ClusterConfig, HeaderMode};

    use super::*;
    use crate::inject::Refusal;

    fn cluster(dex_token_endpoint: &str) -> ResolvedCluster {
        ResolvedCluster {
            config: ClusterConfig {
                name: "cluster-a".into(),
                dex_token_endpoint: dex_token_endpoint.into(),
                expected_issuer: None,
                connector_id: "central".into(),
                scopes: "openid".into(),
                required_audiences: vec!["k8s".into()],
                credentials_dir: layout::credentials_dir("cluster-a"),
                client_id_key: "client-id".into(),
                client_secret_key: "client-secret".into(),
                kubeconfig_file: None,
                endpoint_dir: None,
                ca_file: None,
            },
            credentials_secret: "cluster-a-exchange".into(),
            kubeconfig_secret: None,
            endpoint_configmap: None,
            dex_ca_configmap: None,
        }
    }

    #[test]
    fn a_configuration_the_sidecar_would_reject_is_a_render_failure() {
        let options = InjectOptions {
            mcpservers: vec!["cluster-a".into()],
            mcpserver_namespace: None,
            upstream_port: 8080,
            port: 8090,
            header_mode: HeaderMode::Bearer,
            resources: BTreeMap::new(),
        };
        let settings = InjectorSettings {
            sidecar_image: "img".into(),
            default_mcpserver_namespace: None,
            central_issuer: None,
        };
        assert!(render(&options, &[cluster("https://dex.example.com/token")], &settings).is_ok());
        let error = render(&options, &[cluster("http://dex.example.com/token")], &settings).unwrap_err();
        assert_eq!(
            error,
            "cluster \"cluster-a\": dexTokenEndpoint must be an https:// URL"
        );
        let refusal = Refusal::RenderFailed(error);
        assert_eq!(refusal.reason(), "render-failed");
        assert!(refusal.to_string().starts_with(
            "cannot build the token-exchange sidecar configuration: cluster \"cluster-a\": dexTokenEndpoint"
        ));
    }
}
