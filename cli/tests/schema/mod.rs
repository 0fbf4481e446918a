//! Strict schema checks of built manifests: Kubernetes kinds through their k8s-openapi 1.33 types with
//! unknown fields refused (decode, encode again, and every field of the input must have survived); the
//! CRD-defined kinds of cert-manager and the Prometheus Operator through structs of the fields their
//! CRDs define that we use, with `deny_unknown_fields`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use muster_exchange_api::documents::Document;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Checks every object; panics naming the object and the offending field.
pub fn check_all(objects: &[Document]) {
    assert!(!objects.is_empty(), "nothing was built");
    for object in objects {
        if let Err(error) = check(&object.value) {
            panic!("{}: {error}", object.display_name());
        }
    }
}

/// One object against its schema.
pub fn check(value: &Value) -> Result<(), String> {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps, core::v1 as core,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    let kind = value["kind"].as_str().unwrap_or_default();
    match kind {
        "Namespace" => typed::<core::Namespace>(value),
        "ServiceAccount" => typed::<core::ServiceAccount>(value),
        "Service" => typed::<core::Service>(value),
        "ConfigMap" => typed::<core::ConfigMap>(value),
        "Secret" => typed::<core::Secret>(value),
        "Deployment" => typed::<apps::Deployment>(value),
        "PodDisruptionBudget" => typed::<policy::PodDisruptionBudget>(value),
        "NetworkPolicy" => typed::<networking::NetworkPolicy>(value),
        "Role" => typed::<rbac::Role>(value),
        "RoleBinding" => typed::<rbac::RoleBinding>(value),
        "ClusterRole" => typed::<rbac::ClusterRole>(value),
        "ClusterRoleBinding" => typed::<rbac::ClusterRoleBinding>(value),
        "MutatingWebhookConfiguration" => typed::<admission::MutatingWebhookConfiguration>(value),
        "ValidatingWebhookConfiguration" => typed::<admission::ValidatingWebhookConfiguration>(value),
        "ValidatingAdmissionPolicy" => typed::<admission::ValidatingAdmissionPolicy>(value),
        "ValidatingAdmissionPolicyBinding" => typed::<admission::ValidatingAdmissionPolicyBinding>(value),
        "CustomResourceDefinition" => typed::<apiextensions::CustomResourceDefinition>(value),
        "Certificate" => custom::<CertificateSpec>(value, "cert-manager.io/v1"),
        "Issuer" => custom::<IssuerSpec>(value, "cert-manager.io/v1"),
        "ServiceMonitor" => custom::<ServiceMonitorSpec>(value, "monitoring.coreos.com/v1"),
        "PodMonitor" => custom::<PodMonitorSpec>(value, "monitoring.coreos.com/v1"),
        "PrometheusRule" => custom::<PrometheusRuleSpec>(value, "monitoring.coreos.com/v1"),
        other => Err(format!(
            "no schema check for kind {other:?}; add one to cli/tests/schema/mod.rs"
        )),
    }
}

/// Decodes into `T` (apiVersion and kind included) and fails on any field the type does not know.
fn typed<T: DeserializeOwned + serde::Serialize>(value: &Value) -> Result<(), String> {
    let decoded: T = serde_path_to_error::deserialize(value.clone())
        .map_err(|e| format!("does not decode at {}: {}", e.path(), e.inner()))?;
    let encoded = serde_json::to_value(&decoded).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    lost_fields(value, &encoded, "", &mut unknown);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "unknown fields (not in the Kubernetes 1.33 schema): {unknown:?}"
        ))
    }
}

/// Paths present in `input` that `output` lacks.
fn lost_fields(input: &Value, output: &Value, path: &str, lost: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(input), Value::Object(output)) => {
            for (key, value) in input {
                let here = format!("{path}.{key}");
                match output.get(key) {
                    Some(kept) => lost_fields(value, kept, &here, lost),
                    None => lost.push(here),
                }
            }
        }
        (Value::Array(input), Value::Array(output)) => {
            for (index, value) in input.iter().enumerate() {
                let here = format!("{path}[{index}]");
                match output.get(index) {
                    Some(kept) => lost_fields(value, kept, &here, lost),
                    None => lost.push(here),
                }
            }
        }
        _ => {}
    }
}

/// A custom resource: `apiVersion` must be `api_version`, metadata a valid ObjectMeta, spec `S` exactly.
fn custom<S: DeserializeOwned>(value: &Value, api_version: &str) -> Result<(), String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Object<S> {
        api_version: String,
        #[allow(dead_code)]
        kind: String,
        metadata: Value,
        #[allow(dead_code)]
        spec: S,
    }
    let object: Object<S> = serde_path_to_error::deserialize(value.clone())
        .map_err(|e| format!("does not match its CRD at {}: {}", e.path(), e.inner()))?;
    if object.api_version != api_version {
        return Err(format!("apiVersion {} is not {api_version}", object.api_version));
    }
    typed_metadata(&object.metadata)
}

fn typed_metadata(metadata: &Value) -> Result<(), String> {
    let decoded: ObjectMeta = serde_path_to_error::deserialize(metadata.clone())
        .map_err(|e| format!("metadata does not decode at {}: {}", e.path(), e.inner()))?;
    let mut unknown = Vec::new();
    lost_fields(
        metadata,
        &serde_json::to_value(decoded).unwrap(),
        ".metadata",
        &mut unknown,
    );
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!("unknown metadata fields: {unknown:?}"))
    }
}

// cert-manager.io/v1 (the fields of cert-manager's CRDs that the component uses; unknown ones refused).

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    dns_names: Vec<String>,
    issuer_ref: IssuerRef,
    duration: Option<String>,
    renew_before: Option<String>,
    private_key: Option<PrivateKey>,
    usages: Option<Vec<Usage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerRef {
    name: String,
    kind: Option<IssuerKind>,
    group: Option<String>,
}

#[derive(Deserialize)]
enum IssuerKind {
    Issuer,
    ClusterIssuer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateKey {
    algorithm: Option<KeyAlgorithm>,
    size: Option<u32>,
    rotation_policy: Option<RotationPolicy>,
}

#[derive(Deserialize)]
enum KeyAlgorithm {
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "ECDSA")]
    Ecdsa,
    Ed25519,
}

#[derive(Deserialize)]
enum RotationPolicy {
    Never,
    Always,
}

#[derive(Deserialize)]
enum Usage {
    #[serde(rename = "server auth")]
    ServerAuth,
    #[serde(rename = "client auth")]
    ClientAuth,
    #[serde(rename = "digital signature")]
    DigitalSignature,
    #[serde(rename = "key encipherment")]
    KeyEncipherment,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    self_signed: Option<EmptyObject>,
    ca: Option<CaIssuer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyObject {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaIssuer {
    secret_name: String,
}

// monitoring.coreos.com/v1 (Prometheus Operator CRDs).

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    namespace_selector: Option<NamespaceSelector>,
    endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodMonitorSpec {
    selector: LabelSelector,
    namespace_selector: Option<NamespaceSelector>,
    pod_metrics_endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NamespaceSelector {
    any: Option<bool>,
    match_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Endpoint {
    port: String,
    path: Option<String>,
    scheme: Option<Scheme>,
    interval: Option<String>,
    tls_config: Option<TlsConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scheme {
    Http,
    Https,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TlsConfig {
    insecure_skip_verify: Option<bool>,
    server_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    interval: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_is_refused_with_its_path() {
        let mut service = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s"}, "spec": {"ports": [{"port": 1, "tragetPort": 2}]}});
        let error = check(&service).unwrap_err();
        assert!(error.contains(".spec.ports[0].tragetPort"), "{error}");
        service["spec"]["ports"][0] = serde_json::json!({"port": 1, "targetPort": 2});
        check(&service).unwrap();
        let wrong_version = serde_json::json!({"apiVersion": "apps/v1beta1", "kind": "Deployment",
            "metadata": {"name": "d"}});
        assert!(check(&wrong_version).is_err());
        let monitor = serde_json::json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "m"}, "spec": {"selector": {}, "podMetricsEndpoints": [{"prot": "x"}]}});
        let error = check(&monitor).unwrap_err();
        assert!(error.contains("prot"), "{error}");
    }
}
