//! The committed manifests in `manifests/webhook/` agree with the code: routes, ports, names, selectors,
//! RBAC scope and the restricted security context. (`kubectl apply --dry-run=client` needs a server;
//! this parses them with serde into the typed Kubernetes objects instead.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use std::collections::BTreeMap;

use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use muster_exchange_api::documents::{Document, read_documents};
use muster_exchange_api::names::{
    DEFAULT_SIDECAR_IMAGE, INJECTION_DISABLED, INJECTION_ENABLED, INJECTION_LABEL,
};
use muster_exchange_webhook::admission::SAR_TIMEOUT;
use muster_exchange_webhook::cli::WebhookArgs;
use muster_exchange_webhook::server::{
    MUTATE_MCPSERVERS_PATH, MUTATE_PODS_PATH, VALIDATE_MCPSERVER_CREDENTIALS_PATH, VALIDATE_MCPSERVERS_PATH,
};
use serde::de::DeserializeOwned;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    webhook: WebhookArgs,
}

fn defaults() -> WebhookArgs {
    Cli::parse_from(["muster-exchange"]).webhook
}

fn documents() -> Vec<Document> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/webhook");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| read_documents(f.to_str().unwrap()).unwrap())
        .collect()
}

fn one<T: DeserializeOwned>(kind: &str) -> T {
    let matching: Vec<Document> = documents().into_iter().filter(|d| d.kind() == kind).collect();
    assert_eq!(matching.len(), 1, "exactly one {kind}");
    serde_json::from_value(matching[0].value.clone())
        .unwrap_or_else(|e| panic!("{kind} does not decode: {e}"))
}

fn assert_service(config: &WebhookClientConfig, path: &str, args: &WebhookArgs, service: &Service) {
    let reference = config.service.as_ref().expect("webhooks call the Service");
    assert_eq!(reference.name, args.service_name);
    assert_eq!(reference.namespace, args.service_namespace);
    assert_eq!(reference.path.as_deref(), Some(path));
    let port = service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port;
    assert_eq!(reference.port, Some(port));
    assert!(
        config.ca_bundle.is_none(),
        "the caBundle is published at runtime, not committed"
    );
}

#[test]
fn the_pod_webhook_uses_the_contract_selectors_and_the_mutate_pods_route() {
    let args = defaults();
    let service: Service = one("Service");
    assert_eq!(service.metadata.name.as_deref(), Some(args.service_name.as_str()));
    assert_eq!(
        service.metadata.namespace.as_deref(),
        Some(args.service_namespace.as_str())
    );
    let mutating: MutatingWebhookConfiguration = one("MutatingWebhookConfiguration");
    assert_eq!(
        mutating.metadata.name.as_deref(),
        Some(args.mutating_webhook_configuration.as_str())
    );
    let hooks = mutating.webhooks.unwrap();
    assert_eq!(hooks.len(), 2);
    let pods = &hooks[0];
    assert_service(&pods.client_config, MUTATE_PODS_PATH, &args, &service);
    assert_eq!(
        pods.rules.as_ref().unwrap()[0].resources.as_deref(),
        Some(&["pods".to_string()][..])
    );
    assert_eq!(pods.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(pods.reinvocation_policy.as_deref(), Some("IfNeeded"));
    let namespace_labels = pods
        .namespace_selector
        .as_ref()
        .unwrap()
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(
        namespace_labels,
        BTreeMap::from([(INJECTION_LABEL.to_string(), INJECTION_ENABLED.to_string())])
    );
    let object_rule = &pods
        .object_selector
        .as_ref()
        .unwrap()
        .match_expressions
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (
            object_rule.key.as_str(),
            object_rule.operator.as_str(),
            object_rule.values.clone().unwrap()
        ),
        (INJECTION_LABEL, "NotIn", vec![INJECTION_DISABLED.to_string()])
    );
    for hook in &hooks {
        assert_eq!(hook.side_effects, "None");
        assert_eq!(hook.admission_review_versions, ["v1"]);
        assert!(hook.timeout_seconds.is_some_and(|t| (1..=30).contains(&t)));
    }
}

#[test]
fn the_mcpserver_webhooks_use_the_defaulting_and_validation_routes() {
    let args = defaults();
    let service: Service = one("Service");
    let mutating: MutatingWebhookConfiguration = one("MutatingWebhookConfiguration");
    assert_service(
        &mutating.webhooks.unwrap()[1].client_config,
        MUTATE_MCPSERVERS_PATH,
        &args,
        &service,
    );
    let validating: ValidatingWebhookConfiguration = one("ValidatingWebhookConfiguration");
    assert_eq!(
        validating.metadata.name.as_deref(),
        Some(args.validating_webhook_configuration.as_str())
    );
    let webhooks = validating.webhooks.unwrap();
    let validate = &webhooks[0];
    assert_service(&validate.client_config, VALIDATE_MCPSERVERS_PATH, &args, &service);
    assert_eq!(validate.side_effects, "None");
    assert_eq!(validate.admission_review_versions, ["v1"]);
    assert!(validate.timeout_seconds.is_some_and(|t| (1..=30).contains(&t)));
    // The credentials Secret access check fails closed, only for MCPServers naming a Secret, and gives
    // up on the API server (SAR_TIMEOUT) before the API server gives up on it.
    let access = &webhooks[1];
    assert_eq!(webhooks.len(), 2);
    assert_service(
        &access.client_config,
        VALIDATE_MCPSERVER_CREDENTIALS_PATH,
        &args,
        &service,
    );
    assert_eq!(access.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(access.side_effects, "None");
    let conditions = access.match_conditions.clone().unwrap();
    assert_eq!(conditions.len(), 1);
    assert!(
        conditions[0]
            .expression
            .contains("has(object.spec.auth.tokenExchange.clientCredentialsSecretRef)")
    );
    assert!(
        access
            .timeout_seconds
            .is_some_and(|t| u64::try_from(t).unwrap() > SAR_TIMEOUT.as_secs())
    );
}

#[test]
fn the_deployment_serves_where_the_service_and_the_default_listen_point() {
    let args = defaults();
    let deployment: Deployment = one("Deployment");
    let service: Service = one("Service");
    let template = deployment.spec.unwrap().template;
    let labels = template.metadata.unwrap().labels.unwrap();
    assert_eq!(
        labels[INJECTION_LABEL], INJECTION_DISABLED,
        "the injector opts itself out"
    );
    let pod = template.spec.unwrap();
    let shutdown = (args.shutdown_delay + args.shutdown_grace).as_secs();
    assert!(
        pod.termination_grace_period_seconds.unwrap() > i64::try_from(shutdown).unwrap(),
        "the kubelet must not kill the webhook before the shutdown delay and drain are over"
    );
    let container = &pod.containers[0];
    let port = &container.ports.as_ref().unwrap()[0];
    assert_eq!(port.container_port, i32::from(args.listen.port()));
    let target = service.spec.unwrap().ports.unwrap()[0].target_port.clone();
    assert_eq!(target, Some(IntOrString::String(port.name.clone().unwrap())));
    let container_args = container.args.clone().unwrap();
    assert_eq!(container_args[0], "webhook");
    assert!(
        !container_args.iter().any(|a| a.starts_with("--listen")),
        "the default listen address ({}) is the one the port names",
        args.listen
    );
    assert!(args.listen.ip().is_unspecified() && args.listen.is_ipv6());
    let probe = container
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(
        (probe.path.as_deref(), probe.scheme.as_deref()),
        (Some("/readyz"), Some("HTTPS"))
    );

    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop.clone().unwrap(),
        ["ALL"]
    );
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("muster-exchange-webhook")
    );
}

#[test]
fn rbac_is_limited_to_watching_mcpservers_and_patching_the_two_configurations() {
    let args = defaults();
    let role: ClusterRole = one("ClusterRole");
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(rules[0].resources.clone().unwrap(), ["mcpservers"]);
    assert_eq!(rules[0].verbs, ["list", "watch"]);
    assert_eq!(
        (rules[3].resources.clone().unwrap(), rules[3].verbs.clone()),
        (
            vec!["subjectaccessreviews".to_string()],
            vec!["create".to_string()]
        )
    );
    for (rule, name) in rules[1..3].iter().zip([
        &args.mutating_webhook_configuration,
        &args.validating_webhook_configuration,
    ]) {
        assert_eq!(rule.verbs, ["get", "patch"]);
        assert_eq!(rule.resource_names.as_deref(), Some(std::slice::from_ref(name)));
    }
    assert!(rules.iter().all(|r| {
        !r.resources
            .clone()
            .unwrap_or_default()
            .contains(&"secrets".to_string())
    }));
}

#[test]
fn the_network_policy_admits_only_the_webhook_port_to_the_webhook_pods() {
    let args = defaults();
    let policy: NetworkPolicy = one("NetworkPolicy");
    let deployment: Deployment = one("Deployment");
    let spec = policy.spec.unwrap();
    assert_eq!(
        spec.pod_selector.unwrap().match_labels,
        deployment.spec.unwrap().selector.match_labels
    );
    assert_eq!(spec.policy_types.unwrap(), ["Ingress"]);
    let rules = spec.ingress.unwrap();
    assert_eq!(rules.len(), 1);
    let ports = rules[0].ports.clone().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(
        ports[0].port,
        Some(IntOrString::Int(i32::from(args.listen.port())))
    );
}

#[test]
fn the_webhook_runs_and_injects_the_image_the_kustomization_sets_once() {
    // The Deployment names a placeholder for both its own image and the sidecar's; the kustomization's
    // one `images:` entry (and its kustomizeconfig.yaml for the env value) replaces both.
    let deployment: Deployment = one("Deployment");
    let container = deployment.spec.unwrap().template.spec.unwrap().containers[0].clone();
    let placeholder = container.image.clone().unwrap();
    let sidecar_image = container
        .env
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.name == "MUSTER_EXCHANGE_SIDECAR_IMAGE")
        .and_then(|e| e.value);
    assert_eq!(sidecar_image.as_deref(), Some(placeholder.as_str()));
    assert!(
        !container
            .args
            .unwrap_or_default()
            .iter()
            .any(|a| a.starts_with("--sidecar-image")),
        "the env value, not a flag, carries the sidecar image"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/kustomization.yaml");
    let kustomization = read_documents(root.to_str().unwrap()).unwrap().remove(0).value;
    let images = kustomization["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["name"], placeholder.as_str());
    // The default sidecar image follows the crate version; a release that bumps it must bump this.
    let image = format!(
        "{}:{}",
        images[0]["newName"].as_str().unwrap(),
        images[0]["newTag"].as_str().unwrap()
    );
    assert_eq!(image, DEFAULT_SIDECAR_IMAGE);
}
