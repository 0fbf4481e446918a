use serde_json::{Value, json};

use super::*;
use crate::mcpservers::{McpServerLookup, StaticMcpServers};
use muster_exchange_api::documents::parse_documents;
use muster_exchange_api::redact::short_hash;

const MCPSERVERS: &str = include_str!("../../tests/fixtures/mcpservers.yaml");

pub(super) fn catalog() -> StaticMcpServers {
    StaticMcpServers::from_documents(parse_documents(MCPSERVERS, "mcpservers.yaml").unwrap()).unwrap()
}

pub(super) fn settings() -> InjectorSettings {
    InjectorSettings {
        sidecar_image: "ghcr.io/giantswarm/muster-exchange:0.1.0".into(),
        default_mcpserver_namespace: None,
        central_issuer: None,
    }
}

pub(super) fn pod(annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "mcp-kubernetes-7d9f-", "annotations": annotations},
        "spec": {"containers": [{"name": "mcp-kubernetes", "image": "mcp-kubernetes:1", "ports": [{"containerPort": 8080}]}]}
    })
}

pub(super) fn run(pod: &Value) -> Result<Outcome, Refusal> {
    inject_pod(pod, "apps", &settings(), &catalog())
}

pub(super) fn patched(pod: &Value) -> Value {
    let Outcome::Inject(patch) = run(pod).unwrap() else {
        panic!("expected a patch")
    };
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    out
}

fn cluster_a_config() -> String {
    concat!(
        r#"{"listen":"[::]:8090","upstream":"http://127.0.0.1:8080","headerMode":"auth-headers","clusters":[{"#,
        r#""name":"cluster-a","dexTokenEndpoint":"https://dex.cluster-a.example.com/token","connectorId":"central","#,
        r#""scopes":"openid profile email groups","requiredAudiences":["dex-k8s-authenticator"],"#,
        r#""credentialsDir":"/var/run/muster-exchange/clusters/cluster-a/credentials","clientIdKey":"client-id","#,
        r#""clientSecretKey":"client-secret","#,
        r#""kubeconfigFile":"/var/run/muster-exchange/clusters/cluster-a/kubeconfig/value"}]}"#
    )
    .to_string()
}

/// The sidecar injected for `cluster-a` with default annotations.
pub(crate) fn cluster_a_sidecar() -> Value {
    let probe = |path: &str, period: u32, failures: u32| json!({"httpGet": {"path": path, "port": 8090}, "periodSeconds": period, "failureThreshold": failures});
    json!({
        "name": "token-exchange",
        "image": "ghcr.io/giantswarm/muster-exchange:0.1.0",
        "command": ["muster-exchange", "sidecar"],
        "restartPolicy": "Always",
        "ports": [{"name": "token-exchange", "containerPort": 8090, "protocol": "TCP"}],
        "env": [{"name": "MUSTER_EXCHANGE_SIDECAR_CONFIG", "value": cluster_a_config()}],
        "startupProbe": probe("/readyz", 1, 120),
        "readinessProbe": probe("/readyz", 5, 3),
        "livenessProbe": probe("/healthz", 10, 3),
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
        },
        "volumeMounts": [
            {"name": "mx-cred-cluster-a", "mountPath": "/var/run/muster-exchange/clusters/cluster-a/credentials", "readOnly": true},
            {"name": "mx-kcfg-cluster-a", "mountPath": "/var/run/muster-exchange/clusters/cluster-a/kubeconfig", "readOnly": true}
        ]
    })
}

pub(crate) fn cluster_a_volumes() -> Value {
    json!([
        {"name": "mx-cred-cluster-a", "secret": {"secretName": "cluster-a-exchange", "defaultMode": 292,
            "items": [{"key": "client-id", "path": "client-id"}, {"key": "client-secret", "path": "client-secret"}]}},
        {"name": "mx-kcfg-cluster-a", "secret": {"secretName": "cluster-a-kubeconfig", "defaultMode": 292}}
    ])
}

pub(crate) fn cluster_a_status() -> String {
    format!(
        r#"{{"configHash":"{}","mcpservers":["cluster-a"],"version":"{}"}}"#,
        short_hash(&cluster_a_config()),
        INJECTOR_VERSION
    )
}

#[test]
fn first_injection_is_exactly_three_adds() {
    let pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
    let Outcome::Inject(patch) = run(&pod).unwrap() else {
        panic!("expected a patch")
    };
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([
            {"op": "add", "path": "/metadata/annotations/exchange.muster.giantswarm.io~1status", "value": cluster_a_status()},
            {"op": "add", "path": "/spec/initContainers", "value": [cluster_a_sidecar()]},
            {"op": "add", "path": "/spec/volumes", "value": cluster_a_volumes()}
        ])
    );
}

#[test]
fn a_patched_pod_yields_no_second_patch() {
    let once = patched(&pod(
        json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}),
    ));
    assert_eq!(once["spec"]["initContainers"], json!([cluster_a_sidecar()]));
    assert_eq!(once["spec"]["containers"][0]["name"], "mcp-kubernetes");
    assert!(
        once["spec"]["containers"][0].get("volumeMounts").is_none(),
        "secrets reach the sidecar only"
    );
    assert_eq!(run(&once).unwrap(), Outcome::UpToDate);
}

#[test]
fn existing_init_containers_and_volumes_are_kept_and_the_sidecar_goes_first() {
    let mut pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a", "team": "x"}));
    pod["spec"]["initContainers"] = json!([{"name": "migrate", "image": "migrate:1"}]);
    pod["spec"]["volumes"] = json!([{"name": "cache", "emptyDir": {}}]);
    let Outcome::Inject(patch) = run(&pod).unwrap() else {
        panic!("expected a patch")
    };
    let paths: Vec<String> = serde_json::to_value(&patch)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|op| format!("{} {}", op["op"].as_str().unwrap(), op["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        paths,
        [
            "add /metadata/annotations/exchange.muster.giantswarm.io~1status",
            "add /spec/initContainers/0",
            "add /spec/volumes/-",
            "add /spec/volumes/-",
        ]
    );
    let once = patched(&pod);
    // The whole sidecar (mounts, security context, probes, resources) and every volume, exactly.
    assert_eq!(
        once["spec"]["initContainers"],
        json!([cluster_a_sidecar(), {"name": "migrate", "image": "migrate:1"}])
    );
    let mut volumes = vec![json!({"name": "cache", "emptyDir": {}})];
    volumes.extend(cluster_a_volumes().as_array().unwrap().iter().cloned());
    assert_eq!(once["spec"]["volumes"], Value::Array(volumes));
    assert_eq!(once["metadata"]["annotations"]["team"], "x");
    assert_eq!(run(&once).unwrap(), Outcome::UpToDate);
}

#[test]
fn a_changed_mcpserver_list_reinjects_without_duplicates_or_leftovers() {
    let once = patched(&pod(
        json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}),
    ));
    let mut changed = once.clone();
    changed["metadata"]["annotations"]["exchange.muster.giantswarm.io/mcpservers"] = json!("cluster-b");
    let twice = patched(&changed);
    let fresh = patched(&pod(
        json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-b"}),
    ));
    assert_eq!(twice["spec"], fresh["spec"]);
    assert_eq!(twice["metadata"]["annotations"], fresh["metadata"]["annotations"]);
    let volumes: Vec<&str> = twice["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["mx-cred-cluster-b", "mx-kcfg-cluster-b"]);
    assert_eq!(
        twice["spec"]["volumes"][1]["secret"]["secretName"],
        "b-admin-kubeconfig"
    );
    assert_eq!(run(&twice).unwrap(), Outcome::UpToDate);
}

#[test]
fn bearer_mode_mounts_no_kubeconfig_and_annotations_reach_the_sidecar() {
    let once = patched(&pod(json!({
        "exchange.muster.giantswarm.io/mcpservers": "cluster-a,cluster-b",
        "exchange.muster.giantswarm.io/header-mode": "bearer",
        "exchange.muster.giantswarm.io/port": "9443",
        "exchange.muster.giantswarm.io/upstream-port": "3000",
        "exchange.muster.giantswarm.io/cpu-limit": "200m",
    })));
    let sidecar = &once["spec"]["initContainers"][0];
    let config: Value = serde_json::from_str(sidecar["env"][0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(config["listen"], "[::]:9443");
    assert_eq!(config["upstream"], "http://127.0.0.1:3000");
    assert_eq!(config["headerMode"], "bearer");
    assert_eq!(
        config["clusters"][1]["expectedIssuer"],
        "https://dex.cluster-b.example.com/dex"
    );
    assert_eq!(config["clusters"][1]["clientIdKey"], "id");
    assert!(config["clusters"][0].get("kubeconfigFile").is_none());
    assert_eq!(sidecar["startupProbe"]["httpGet"]["port"], 9443);
    assert_eq!(
        sidecar["resources"]["limits"],
        json!({"cpu": "200m", "memory": "128Mi"})
    );
    let volumes: Vec<&str> = once["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["mx-cred-cluster-a", "mx-cred-cluster-b"]);
    assert_eq!(
        once["spec"]["volumes"][1]["secret"]["items"],
        json!([{"key": "id", "path": "id"}, {"key": "secret", "path": "secret"}])
    );
}

#[test]
fn pods_without_the_annotation_or_opted_out_are_left_alone() {
    assert_eq!(run(&pod(json!({"other": "x"}))).unwrap(), Outcome::NotRequested);
    let mut opted_out = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "nope"}));
    opted_out["metadata"]["labels"] = json!({"exchange.muster.giantswarm.io/injection": "disabled"});
    assert_eq!(run(&opted_out).unwrap(), Outcome::OptedOut);
    let unannotated_system = inject_pod(&pod(json!({})), "kube-system", &settings(), &catalog());
    assert_eq!(unannotated_system.unwrap(), Outcome::NotRequested);
}

#[test]
fn refusals_say_what_to_do() {
    let refuse = |mcpservers: &str, namespace: &str| {
        let pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": mcpservers}));
        inject_pod(&pod, namespace, &settings(), &catalog()).unwrap_err()
    };
    let unknown = refuse("cluster-z", "apps");
    assert_eq!(unknown.reason(), "unknown-mcpserver");
    assert!(
        unknown
            .to_string()
            .starts_with("MCPServer apps/cluster-z not found; create it"),
        "{unknown}"
    );
    // Neither topology, with or without a tokenExchange block: the refusal names both ways.
    for (name, why) in [
        (
            "switched-off",
            "tokenExchange.enabled is false and spec.auth.forwardToken is false",
        ),
        ("no-exchange", "spec.auth.tokenExchange is not set"),
    ] {
        let off = refuse(name, "apps");
        assert_eq!(off.reason(), "token-exchange-unusable");
        let message = off.to_string();
        assert!(
            message.starts_with(&format!(
                "MCPServer apps/{name} cannot be used for token exchange: "
            )),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
        assert!(
            message.contains("tokenExchange.enabled: true (Muster exchanges, topology M)"),
            "{message}"
        );
        assert!(
            message.contains("forwardToken: true (the sidecar exchanges, topology F)"),
            "{message}"
        );
    }
    let foreign = refuse("foreign-secret", "apps");
    assert_eq!(foreign.reason(), "secret-in-other-namespace");
    assert!(
        foreign
            .to_string()
            .contains("Secret muster/d-exchange, but the pod runs in namespace apps"),
        "{foreign}"
    );
    let system = refuse("cluster-a", "kube-system");
    assert_eq!(system.reason(), "system-namespace");
    assert!(system.to_string().contains("kube-system"));
}

#[test]
fn topology_f_is_injected_like_m() {
    let pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "sidecar-exchanges"}));
    let out = patched(&pod);
    let sidecar = &out["spec"]["initContainers"][0];
    assert_eq!(sidecar["name"], "token-exchange");
    let config = sidecar["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "MUSTER_EXCHANGE_SIDECAR_CONFIG")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    let config: Value = serde_json::from_str(config).unwrap();
    assert_eq!(config["clusters"][0]["name"], "sidecar-exchanges");
    assert_eq!(
        config["clusters"][0]["dexTokenEndpoint"],
        "https://dex.cluster-f.example.com/token"
    );
    let volumes: Vec<&str> = out["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(volumes.contains(&"mx-cred-sidecar-exchanges"), "{volumes:?}");
}

#[test]
fn lookup_namespace_comes_from_the_annotation_then_the_webhook_default() {
    let pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
    let elsewhere = InjectorSettings {
        default_mcpserver_namespace: Some("muster".into()),
        ..settings()
    };
    let err = inject_pod(&pod, "apps", &elsewhere, &catalog()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("MCPServer muster/cluster-a not found"),
        "{err}"
    );
    let mut pointed = pod.clone();
    pointed["metadata"]["annotations"]["exchange.muster.giantswarm.io/mcpserver-namespace"] = json!("apps");
    assert!(matches!(
        inject_pod(&pointed, "apps", &elsewhere, &catalog()),
        Ok(Outcome::Inject(_))
    ));
}

#[test]
fn names_taken_by_the_user_are_refused_not_overwritten() {
    let base = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
    let mut app_named_like_us = base.clone();
    app_named_like_us["spec"]["containers"][0]["name"] = json!("token-exchange");
    let mut foreign_init = base.clone();
    foreign_init["spec"]["initContainers"] = json!([{"name": "token-exchange", "image": "other"}]);
    let mut foreign_volume = base.clone();
    foreign_volume["spec"]["volumes"] = json!([{"name": "mx-cred-cluster-a", "emptyDir": {}}]);
    for (pod, what) in [
        (app_named_like_us, "container"),
        (foreign_init, "container"),
        (foreign_volume, "volume"),
    ] {
        let err = run(&pod).unwrap_err();
        assert_eq!(err.reason(), "name-collision");
        assert!(
            err.to_string()
                .starts_with(&format!("the pod already has a {what} named")),
            "{err}"
        );
    }
}

#[test]
fn a_non_pod_is_refused_not_panicked_on() {
    let err = run(&json!({"metadata": {}, "spec": "nope"})).unwrap_err();
    assert_eq!(err.reason(), "not-a-pod");
}

#[test]
fn the_render_cache_gives_the_same_answers_and_sees_changed_mcpservers() {
    let cache = RenderCache::default();
    let pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
    let mut catalog = catalog();
    let uncached = inject_pod(&pod, "apps", &settings(), &catalog).unwrap();
    for _ in 0..2 {
        assert_eq!(
            inject_pod_cached(&pod, "apps", &settings(), &catalog, Some(&cache)).unwrap(),
            uncached
        );
    }
    let refused = pod_with_mcpservers("switched-off");
    for _ in 0..2 {
        let err = inject_pod_cached(&refused, "apps", &settings(), &catalog, Some(&cache)).unwrap_err();
        assert_eq!(err.reason(), "token-exchange-unusable");
    }
    // A changed MCPServer is a new object in the catalog: the cache must not serve the old render.
    let mut changed = (*catalog.get("apps", "cluster-a").unwrap()).clone();
    changed
        .spec
        .auth
        .as_mut()
        .unwrap()
        .token_exchange
        .as_mut()
        .unwrap()
        .connector_id = Some("other".into());
    catalog.insert(changed);
    let Outcome::Inject(patch) =
        inject_pod_cached(&pod, "apps", &settings(), &catalog, Some(&cache)).unwrap()
    else {
        panic!("expected a patch")
    };
    assert!(
        serde_json::to_string(&patch)
            .unwrap()
            .contains(r#"\"connectorId\":\"other\""#)
    );
}

fn pod_with_mcpservers(list: &str) -> Value {
    pod(json!({"exchange.muster.giantswarm.io/mcpservers": list}))
}

#[test]
fn a_dex_ca_configmap_annotation_is_mounted_and_becomes_the_ca_file() {
    let annotate = |value: &str| {
        let yaml = MCPSERVERS.replacen(
            "  name: cluster-a\n  namespace: apps\n",
            &format!(
                "  name: cluster-a\n  namespace: apps\n  annotations:\n    exchange.muster.giantswarm.io/dex-ca-configmap: \"{value}\"\n"
            ),
            1,
        );
        StaticMcpServers::from_documents(parse_documents(&yaml, "mcpservers.yaml").unwrap()).unwrap()
    };
    let pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
    let Outcome::Inject(patch) = inject_pod(&pod, "apps", &settings(), &annotate("dex-ca")).unwrap() else {
        panic!("expected a patch");
    };
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    let volume = out["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "mx-dexca-cluster-a")
        .unwrap()
        .clone();
    assert_eq!(
        volume["configMap"],
        json!({"name": "dex-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}], "defaultMode": 0o444})
    );
    let sidecar = &out["spec"]["initContainers"][0];
    assert!(
        sidecar["volumeMounts"].as_array().unwrap().contains(&json!({
            "name": "mx-dexca-cluster-a",
            "mountPath": "/var/run/muster-exchange/clusters/cluster-a/dex-ca",
            "readOnly": true
        })),
        "{sidecar}"
    );
    let config: Value = serde_json::from_str(sidecar["env"][0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["clusters"][0]["caFile"],
        "/var/run/muster-exchange/clusters/cluster-a/dex-ca/ca.crt"
    );
    // Injecting again changes nothing: the volume is recognised as ours.
    assert!(matches!(
        inject_pod(&out, "apps", &settings(), &annotate("dex-ca")).unwrap(),
        Outcome::UpToDate
    ));
    let err = inject_pod(&pod, "apps", &settings(), &annotate("Not A Name")).unwrap_err();
    assert!(err.to_string().contains("not a ConfigMap name"), "{err}");
}

fn with_mcpserver_annotation(key: &str, value: &str) -> StaticMcpServers {
    let yaml = MCPSERVERS.replacen(
        "  name: cluster-a\n  namespace: apps\n",
        &format!("  name: cluster-a\n  namespace: apps\n  annotations:\n    {key}: \"{value}\"\n"),
        1,
    );
    StaticMcpServers::from_documents(parse_documents(&yaml, "mcpservers.yaml").unwrap()).unwrap()
}

#[test]
fn an_endpoint_configmap_replaces_the_kubeconfig_secret() {
    let catalog = with_mcpserver_annotation(
        "exchange.muster.giantswarm.io/endpoint-configmap",
        "cluster-a-endpoint",
    );
    let pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
    let Outcome::Inject(patch) = inject_pod(&pod, "apps", &settings(), &catalog).unwrap() else {
        panic!("expected a patch");
    };
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    assert_eq!(
        out["spec"]["volumes"],
        json!([
            {"name": "mx-cred-cluster-a", "secret": {"secretName": "cluster-a-exchange", "items": [
                {"key": "client-id", "path": "client-id"},
                {"key": "client-secret", "path": "client-secret"}], "defaultMode": 0o444}},
            {"name": "mx-endp-cluster-a", "configMap": {"name": "cluster-a-endpoint", "items": [
                {"key": "server", "path": "server"},
                {"key": "ca.crt", "path": "ca.crt"}], "defaultMode": 0o444}}
        ])
    );
    let sidecar = &out["spec"]["initContainers"][0];
    assert_eq!(
        sidecar["volumeMounts"],
        json!([
            {"name": "mx-cred-cluster-a", "mountPath": "/var/run/muster-exchange/clusters/cluster-a/credentials", "readOnly": true},
            {"name": "mx-endp-cluster-a", "mountPath": "/var/run/muster-exchange/clusters/cluster-a/endpoint", "readOnly": true}
        ])
    );
    // The app container gets nothing.
    assert_eq!(out["spec"]["containers"][0].get("volumeMounts"), None);
    let expected = cluster_a_config().replace(
        r#""kubeconfigFile":"/var/run/muster-exchange/clusters/cluster-a/kubeconfig/value""#,
        r#""endpointDir":"/var/run/muster-exchange/clusters/cluster-a/endpoint""#,
    );
    assert_ne!(expected, cluster_a_config());
    assert_eq!(sidecar["env"][0]["value"], expected);
    // Injecting again changes nothing: the volume is recognised as ours.
    assert!(matches!(
        inject_pod(&out, "apps", &settings(), &catalog).unwrap(),
        Outcome::UpToDate
    ));
    // Without the annotation the same pod gets the kubeconfig Secret, as before.
    let plain = patched(&pod);
    let names: Vec<&str> = plain["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mx-cred-cluster-a", "mx-kcfg-cluster-a"]);
    assert_eq!(
        plain["spec"]["initContainers"][0]["env"][0]["value"],
        cluster_a_config()
    );
    let err = inject_pod(
        &pod,
        "apps",
        &settings(),
        &with_mcpserver_annotation("exchange.muster.giantswarm.io/endpoint-configmap", "Not A Name"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a ConfigMap name"), "{err}");
}

#[test]
fn bearer_mode_mounts_no_endpoint_configmap() {
    let catalog = with_mcpserver_annotation(
        "exchange.muster.giantswarm.io/endpoint-configmap",
        "cluster-a-endpoint",
    );
    let pod = pod(json!({
        "exchange.muster.giantswarm.io/mcpservers": "cluster-a",
        "exchange.muster.giantswarm.io/header-mode": "bearer"
    }));
    let Outcome::Inject(patch) = inject_pod(&pod, "apps", &settings(), &catalog).unwrap() else {
        panic!("expected a patch");
    };
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    let text = out.to_string();
    assert!(!text.contains("mx-endp-"), "{text}");
    assert!(!text.contains("endpointDir"), "{text}");
    assert!(!text.contains("mx-kcfg-"), "{text}");
}
