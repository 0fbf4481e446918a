//! Offline `inject` across workload kinds, multi-document, with errors naming the object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use common::{SIDECAR_IMAGE, fixture_path};
use muster_exchange_api::documents::parse_documents;
use muster_exchange_webhook::cli::{InjectArgs, inject_to_string};
use serde_json::Value;

fn args(file: &str) -> InjectArgs {
    InjectArgs {
        filename: fixture_path(file).to_string_lossy().into_owned(),
        mcpservers: fixture_path("mcpservers.yaml").to_string_lossy().into_owned(),
        sidecar_image: SIDECAR_IMAGE.into(),
        mcpserver_namespace: None,
        central_issuer: None,
        namespace: "default".into(),
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn injects_pod_templates_of_workloads_and_passes_other_kinds_through() {
    let output = inject_to_string(&args("workloads.yaml")).unwrap();
    let objects: Vec<Value> = parse_documents(&output, "out")
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect();
    let input: Vec<Value> = parse_documents(&common::fixture("workloads.yaml"), "in")
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .collect();
    assert_eq!(objects.len(), 4);

    let deployment = &objects[0]["spec"]["template"];
    assert_eq!(names(&deployment["spec"]["initContainers"]), ["token-exchange"]);
    assert_eq!(
        names(&deployment["spec"]["volumes"]),
        ["mx-cred-cluster-a", "mx-kcfg-cluster-a"]
    );
    assert_eq!(deployment["spec"]["initContainers"][0]["image"], SIDECAR_IMAGE);
    assert!(deployment["metadata"]["annotations"]["exchange.muster.giantswarm.io/status"].is_string());

    assert_eq!(objects[1], input[1], "a Service passes through unchanged");

    let cron = &objects[2]["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(names(&cron["spec"]["initContainers"]), ["token-exchange"]);
    assert_eq!(
        names(&cron["spec"]["volumes"]),
        ["mx-cred-cluster-b"],
        "bearer mode mounts no kubeconfig"
    );
    assert_eq!(
        objects[3], input[3],
        "a workload without the annotation is unchanged"
    );
}

#[test]
fn injecting_twice_changes_nothing() {
    let once = inject_to_string(&args("workloads.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("once.yaml");
    std::fs::write(&path, &once).unwrap();
    let mut again = args("workloads.yaml");
    again.filename = path.to_string_lossy().into_owned();
    assert_eq!(inject_to_string(&again).unwrap(), once);
}

#[test]
fn a_refused_object_is_named_with_file_and_line() {
    let error = inject_to_string(&args("refused-workloads.yaml")).unwrap_err();
    let file = fixture_path("refused-workloads.yaml");
    assert_eq!(
        error,
        format!(
            "{}:6: daemonset/agent: MCPServer apps/cluster-z not found; create it, fix the pod annotation \
             exchange.muster.giantswarm.io/mcpservers, or set exchange.muster.giantswarm.io/mcpserver-namespace \
             to the namespace holding it",
            file.display()
        )
    );
}

#[test]
fn bad_flags_and_files_are_explained() {
    let mut bad_namespace = args("workloads.yaml");
    bad_namespace.namespace = "Not Valid".into();
    assert_eq!(
        inject_to_string(&bad_namespace).unwrap_err(),
        "--namespace \"Not Valid\" is not a namespace name; use e.g. \"muster\""
    );
    let mut missing = args("workloads.yaml");
    missing.filename = "/nonexistent/manifests.yaml".into();
    assert!(
        inject_to_string(&missing)
            .unwrap_err()
            .starts_with("/nonexistent/manifests.yaml: cannot read:")
    );
}

#[test]
fn the_central_issuer_flag_reaches_every_sidecar_config() {
    let config_of = |output: &str| -> Value {
        let objects = parse_documents(output, "out").unwrap();
        let env = &objects[0].value["spec"]["template"]["spec"]["initContainers"][0]["env"];
        let json = env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == muster_exchange_api::names::SIDECAR_CONFIG_ENV)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_str(&json).unwrap()
    };
    let without = config_of(&inject_to_string(&args("workloads.yaml")).unwrap());
    assert!(without.get("centralIssuer").is_none());
    let mut with = args("workloads.yaml");
    with.central_issuer = Some("https://dex.central.example".into());
    let config = config_of(&inject_to_string(&with).unwrap());
    assert_eq!(config["centralIssuer"], "https://dex.central.example");
    with.central_issuer = Some("http://dex.central.example".into());
    assert!(
        inject_to_string(&with)
            .unwrap_err()
            .starts_with("--central-issuer")
    );
}
