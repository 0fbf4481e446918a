//! Re-admission of pods that already carry the injection: API-server defaults, reinvocation after other
//! webhooks, and merge patches that keep the defaults.

use serde_json::{Value, json};

use super::tests::{catalog, cluster_a_sidecar, patched, pod, run, settings};
use super::*;

fn injected_pod() -> Value {
    patched(&pod(
        json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}),
    ))
}

/// What the API server adds to the pod between admissions (defaulting and the ServiceAccount plugin).
fn with_api_server_defaults(mut pod: Value) -> Value {
    let sidecar = &mut pod["spec"]["initContainers"][0];
    sidecar["terminationMessagePath"] = json!("/dev/termination-log");
    sidecar["terminationMessagePolicy"] = json!("File");
    sidecar["imagePullPolicy"] = json!("IfNotPresent");
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        sidecar[probe]["timeoutSeconds"] = json!(1);
        sidecar[probe]["successThreshold"] = json!(1);
        sidecar[probe]["httpGet"]["scheme"] = json!("HTTP");
    }
    sidecar["volumeMounts"].as_array_mut().unwrap().push(json!({
        "name": "kube-api-access-5x2k9", "readOnly": true,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"
    }));
    pod["spec"]["volumes"].as_array_mut().unwrap().push(json!({
        "name": "kube-api-access-5x2k9", "projected": {"defaultMode": 420, "sources": []}
    }));
    pod["spec"]["containers"][0]["terminationMessagePolicy"] = json!("File");
    pod["spec"]["restartPolicy"] = json!("Always");
    pod
}

#[test]
fn a_pod_carrying_api_server_defaults_gets_no_patch() {
    let defaulted = with_api_server_defaults(injected_pod());
    assert_eq!(run(&defaulted).unwrap(), Outcome::UpToDate);
}

#[test]
fn canonical_quantities_written_by_the_api_server_count_as_equal() {
    let mut annotated = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a",
        "exchange.muster.giantswarm.io/cpu-request": "0.01"}));
    annotated = patched(&annotated);
    annotated["spec"]["initContainers"][0]["resources"]["requests"]["cpu"] = json!("10m");
    assert_eq!(run(&annotated).unwrap(), Outcome::UpToDate);
}

#[test]
fn a_changed_image_is_merged_into_the_defaulted_sidecar() {
    let defaulted = with_api_server_defaults(injected_pod());
    let newer = InjectorSettings {
        sidecar_image: "ghcr.io/giantswarm/muster-exchange:0.2.0".into(),
        ..settings()
    };
    let Outcome::Inject(patch) = inject_pod(&defaulted, "apps", &newer, &catalog()).unwrap() else {
        panic!("expected a patch")
    };
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([{"op": "replace", "path": "/spec/initContainers/0/image",
            "value": "ghcr.io/giantswarm/muster-exchange:0.2.0"}])
    );
}

#[test]
fn reinvocation_after_another_webhook_added_an_init_container_and_a_volume_is_clean() {
    let mut pod = injected_pod();
    pod["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "istio-init", "image": "proxyv2:1"}));
    pod["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "vault-agent", "image": "vault:1", "restartPolicy": "Always"}));
    pod["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "vault-secrets", "emptyDir": {"medium": "Memory"}}));
    assert_eq!(run(&pod).unwrap(), Outcome::UpToDate);
    assert_eq!(pod["spec"]["initContainers"][1], cluster_a_sidecar());
}

#[test]
fn a_sidecar_missing_a_rendered_field_is_repaired_in_place() {
    let mut pod = with_api_server_defaults(injected_pod());
    pod["spec"]["initContainers"][0]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("readOnlyRootFilesystem");
    let Outcome::Inject(patch) = run(&pod).unwrap() else {
        panic!("expected a patch")
    };
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([{"op": "add", "path": "/spec/initContainers/0/securityContext/readOnlyRootFilesystem",
            "value": true}])
    );
}

#[test]
fn the_encoded_patch_equals_the_planned_one_for_every_shape_and_is_shared() {
    let cache = RenderCache::default();
    let catalog = catalog(); // one catalog: the cache keys on the MCPServer objects
    // A pod asking for injection always has annotations, so the shapes vary init containers and volumes.
    for shape in 0..8u8 {
        let mut pod = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
        if shape & 1 != 0 {
            pod["metadata"]["labels"] = json!({"app": "x"});
        }
        if shape & 2 != 0 {
            pod["spec"]["initContainers"] = json!([{"name": "migrate", "image": "migrate:1"}]);
        }
        if shape & 4 != 0 {
            pod["spec"]["volumes"] = json!([{"name": "cache", "emptyDir": {}}]);
        }
        let Outcome::Inject(patch) = run(&pod).unwrap() else {
            panic!("expected a patch")
        };
        let encoded = |pod: &Value| match inject_pod_encoded(pod, "apps", &settings(), &catalog, &cache) {
            Ok(EncodedOutcome::Inject(encoded)) => encoded,
            other => panic!("expected a patch, got {other:?}"),
        };
        let first = encoded(&pod);
        assert_eq!(*first, encode_patch(&patch).unwrap(), "shape {shape}");
        assert!(
            std::sync::Arc::ptr_eq(&first, &encoded(&pod)),
            "a cache hit shares the encoding"
        );
    }
    assert_eq!(
        inject_pod_encoded(&injected_pod(), "apps", &settings(), &catalog, &cache).unwrap(),
        EncodedOutcome::Unchanged("up-to-date")
    );
}

#[test]
fn a_pod_read_for_injection_gets_the_same_patch_as_the_whole_pod() {
    #[derive(serde::Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "crate::admission::review_pod::pod_for_injection")]
        object: Option<Value>,
    }
    let mut repaired = with_api_server_defaults(injected_pod());
    repaired["spec"]["initContainers"][0]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("readOnlyRootFilesystem");
    let newer = InjectorSettings {
        sidecar_image: "ghcr.io/giantswarm/muster-exchange:0.2.0".into(),
        ..settings()
    };
    let first = pod(json!({"exchange.muster.giantswarm.io/mcpservers": "cluster-a"}));
    for whole in [first, with_api_server_defaults(injected_pod()), repaired] {
        let reduced = serde_json::from_value::<Holder>(json!({ "object": whole }))
            .unwrap()
            .object
            .unwrap();
        assert_ne!(reduced, whole, "the reading must leave something out");
        let expected = inject_pod(&whole, "apps", &newer, &catalog()).unwrap();
        assert!(matches!(expected, Outcome::Inject(_)), "{expected:?}");
        assert_eq!(
            inject_pod(&reduced, "apps", &newer, &catalog()).unwrap(),
            expected
        );
    }
}
