//! Router tests with real AdmissionReview v1 JSON: exact patches, apply-then-re-review, refusals,
//! malformed bodies, MCPServer validation and defaulting, operational routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use axum::http::StatusCode;
use common::{fixture_json, patch_of, review, send, state};
use muster_exchange_webhook::server::router;
use serde_json::{Value, json};

/// Applies the patch of `response` to the pod of `review_json` and returns the pod.
fn apply(review_json: &Value, response: &Value) -> Value {
    let mut pod = review_json["request"]["object"].clone();
    let patch: json_patch::Patch = serde_json::from_value(patch_of(response).unwrap()).unwrap();
    json_patch::patch(&mut pod, &patch).unwrap();
    pod
}

fn with_object(review_json: &Value, object: Value) -> Value {
    let mut again = review_json.clone();
    again["request"]["object"] = object;
    again
}

/// Compares with a golden file; `MUSTER_UPDATE_GOLDEN=1` rewrites it (review the diff before committing).
fn assert_golden(actual: &Value, golden: &str) {
    if std::env::var_os("MUSTER_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(common::fixture_path(golden), text).unwrap();
    }
    let expected = fixture_json(golden);
    assert_eq!(
        actual,
        &expected,
        "patch differs from {golden}; actual:\n{}",
        serde_json::to_string_pretty(actual).unwrap()
    );
}

#[tokio::test]
async fn generate_name_pod_gets_the_exact_patch_and_a_second_review_yields_none() {
    let router = router(state());
    let input = fixture_json("pod-create-generate-name.json");
    let response = review(&router, "/mutate-pods", &input).await;
    assert_eq!(response["uid"], "7f0c2a62-4a34-4d4e-9b0e-0c8b1b1f5a01");
    assert_eq!(response["allowed"], true);
    assert_golden(
        &patch_of(&response).unwrap(),
        "pod-create-generate-name.patch.json",
    );

    let pod = apply(&input, &response);
    let sidecar = &pod["spec"]["initContainers"][0];
    assert_eq!(pod["spec"]["initContainers"].as_array().unwrap().len(), 1);
    assert_eq!(sidecar["name"], "token-exchange");
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert_eq!(
        sidecar["startupProbe"]["httpGet"],
        json!({"path": "/readyz", "port": 8090})
    );
    assert_eq!(
        sidecar["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": 8090})
    );
    assert_eq!(
        sidecar["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "allowPrivilegeEscalation": false,
               "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]},
               "seccompProfile": {"type": "RuntimeDefault"}})
    );
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        volumes,
        ["kube-api-access-x7k2p", "mx-cred-cluster-a", "mx-kcfg-cluster-a"]
    );
    let mounts: Vec<&str> = sidecar["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["mx-cred-cluster-a", "mx-kcfg-cluster-a"]);
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "kube-api-access-x7k2p", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]),
        "the app container sees no injected secret"
    );

    let again = review(&router, "/mutate-pods", &with_object(&input, pod)).await;
    assert_eq!(again["allowed"], true);
    assert_eq!(patch_of(&again), None);
}

#[tokio::test]
async fn existing_init_containers_keep_their_place_after_the_sidecar() {
    let router = router(state());
    let input = fixture_json("pod-create-init-containers.json");
    let response = review(&router, "/mutate-pods", &input).await;
    assert_golden(
        &patch_of(&response).unwrap(),
        "pod-create-init-containers.patch.json",
    );
    let pod = apply(&input, &response);
    let init: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(init, ["token-exchange", "wait-for-config"]);
    let again = review(&router, "/mutate-pods", &with_object(&input, pod)).await;
    assert_eq!(patch_of(&again), None);
}

#[tokio::test]
async fn a_pod_without_the_annotation_is_admitted_untouched() {
    let router = router(state());
    let response = review(&router, "/mutate-pods", &fixture_json("pod-create-plain.json")).await;
    assert_eq!(
        response,
        json!({"uid": "7f0c2a62-4a34-4d4e-9b0e-0c8b1b1f5a03", "allowed": true, "status": {}})
    );
}

/// The answer to `input` with `dryRun` set to `dry_run`.
async fn answer_with_dry_run(router: &axum::Router, input: &Value, dry_run: bool) -> Value {
    let mut input = input.clone();
    input["request"]["dryRun"] = json!(dry_run);
    review(router, "/mutate-pods", &input).await
}

#[tokio::test]
async fn dry_run_reviews_are_answered_exactly_like_real_ones() {
    let router = router(state());
    let injected = fixture_json("pod-create-generate-name.json");
    let real = answer_with_dry_run(&router, &injected, false).await;
    assert!(patch_of(&real).is_some(), "a successful injection");
    assert_eq!(answer_with_dry_run(&router, &injected, true).await, real);
    let refused = fixture_json("pod-create-dry-run-unknown.json");
    let real = answer_with_dry_run(&router, &refused, false).await;
    assert_eq!(real["allowed"], false);
    assert_eq!(answer_with_dry_run(&router, &refused, true).await, real);
}

#[tokio::test]
async fn dry_run_reviews_are_refused_like_real_ones() {
    let state = state();
    let router = router(state.clone());
    let response = review(
        &router,
        "/mutate-pods",
        &fixture_json("pod-create-dry-run-unknown.json"),
    )
    .await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        "MCPServer apps/cluster-z not found; create it, fix the pod annotation exchange.muster.giantswarm.io/mcpservers, \
         or set exchange.muster.giantswarm.io/mcpserver-namespace to the namespace holding it"
    );
    assert_eq!(patch_of(&response), None);
    let metrics = state.metrics.encode().unwrap();
    assert!(
        metrics.contains("muster_exchange_webhook_refusals_total{reason=\"unknown-mcpserver\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn updates_are_admitted_without_a_patch() {
    let router = router(state());
    let response = review(&router, "/mutate-pods", &fixture_json("pod-update.json")).await;
    assert_eq!(
        response,
        json!({"uid": "7f0c2a62-4a34-4d4e-9b0e-0c8b1b1f5a05", "allowed": true, "status": {}})
    );
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_reason() {
    let router = router(state());
    let mut no_request = fixture_json("pod-create-plain.json");
    no_request.as_object_mut().unwrap().remove("request");
    let mut wrong_version = fixture_json("pod-create-plain.json");
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut bad_object = fixture_json("pod-create-plain.json");
    bad_object["request"]["object"] = json!(5);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "the body is not an AdmissionReview"),
        (b"not json".to_vec(), "the body is not an AdmissionReview"),
        (b"{}".to_vec(), "the body is not an AdmissionReview"),
        (
            serde_json::to_vec(&no_request).unwrap(),
            "the AdmissionReview has no request",
        ),
        (
            serde_json::to_vec(&wrong_version).unwrap(),
            "unsupported \"admission.k8s.io/v1beta1\"",
        ),
        (
            serde_json::to_vec(&bad_object).unwrap(),
            "the body is not an AdmissionReview",
        ),
    ];
    for path in ["/mutate-pods", "/validate-mcpservers", "/mutate-mcpservers"] {
        for (body, reason) in &cases {
            let (status, text) = send(&router, "POST", path, body.clone()).await;
            let text = String::from_utf8(text).unwrap();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {text}");
            assert!(text.starts_with(reason), "{path}: {text}");
        }
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_early() {
    let router = router(state());
    let body = vec![b' '; muster_exchange_webhook::server::ADMISSION_BODY_LIMIT + 1];
    let (status, _) = send(&router, "POST", "/mutate-pods", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn invalid_mcpservers_are_denied_with_every_error() {
    let router = router(state());
    let response = review(
        &router,
        "/validate-mcpservers",
        &fixture_json("mcpserver-create-invalid.json"),
    )
    .await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("MCPServer apps/cluster-c is invalid: "),
        "{message}"
    );
    assert!(
        message.contains("spec.auth.tokenExchange.dexTokenEndpoint: Invalid value: \"http://"),
        "{message}"
    );
    assert!(
        message.contains("spec.auth.tokenExchange.connectorId: Required value"),
        "{message}"
    );
}

#[tokio::test]
async fn valid_mcpservers_are_admitted_with_warnings() {
    let router = router(state());
    let response = review(
        &router,
        "/validate-mcpservers",
        &fixture_json("mcpserver-create-needs-defaults.json"),
    )
    .await;
    assert_eq!(response["allowed"], true);
    let warnings = response["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("spec.auth.tokenExchange.scopes: no audience:server:client_id:")
    );
}

#[tokio::test]
async fn mcpserver_defaulting_patch_is_exactly_the_crd_defaults() {
    let router = router(state());
    let input = fixture_json("mcpserver-create-needs-defaults.json");
    let response = review(&router, "/mutate-mcpservers", &input).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        patch_of(&response).unwrap(),
        json!([
            {"op": "add", "path": "/spec/auth/forwardToken", "value": false},
            {"op": "add", "path": "/spec/auth/tokenExchange/clientCredentialsSecretRef/clientIdKey", "value": "client-id"},
            {"op": "add", "path": "/spec/auth/tokenExchange/clientCredentialsSecretRef/clientSecretKey", "value": "client-secret"},
            {"op": "add", "path": "/spec/auth/tokenExchange/scopes", "value": "openid profile email groups"},
            {"op": "add", "path": "/spec/autoStart", "value": false},
            {"op": "add", "path": "/spec/timeout", "value": 30}
        ])
    );
    let mut defaulted = input["request"]["object"].clone();
    let patch: json_patch::Patch = serde_json::from_value(patch_of(&response).unwrap()).unwrap();
    json_patch::patch(&mut defaulted, &patch).unwrap();
    let again = review(&router, "/mutate-mcpservers", &with_object(&input, defaulted)).await;
    assert_eq!(patch_of(&again), None);
}

#[tokio::test]
async fn operational_routes_report_health_readiness_and_metrics() {
    let state = state();
    let router = router(state.clone());
    assert_eq!(
        send(&router, "GET", "/healthz", "").await,
        (StatusCode::OK, b"ok\n".to_vec())
    );
    let (status, body) = send(&router, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"ready": false,
            "problems": ["the MCPServer cache has not finished its first list yet"]})
    );
    state.readiness.mark_catalog_synced();
    state.readiness.mark_certificate_loaded();
    assert_eq!(
        send(&router, "GET", "/readyz", "").await,
        (StatusCode::OK, b"ready\n".to_vec())
    );

    review(
        &router,
        "/mutate-pods",
        &fixture_json("pod-create-generate-name.json"),
    )
    .await;
    let (status, body) = send(&router, "GET", "/metrics", "").await;
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("muster_exchange_webhook_reviews_total{route=\"mutate-pods\",outcome=\"patched\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("muster_exchange_webhook_injections_total 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_review_namespace_that_is_no_namespace_name_is_malformed_and_no_label_grows() {
    let router = router(state());
    let input = fixture_json("pod-create-generate-name.json");
    for crafted in ["Not_A_Namespace", &"a".repeat(64), "../x", "ns\n"] {
        let mut bad = input.clone();
        bad["request"]["namespace"] = json!(crafted);
        let (status, text) = send(&router, "POST", "/mutate-pods", serde_json::to_vec(&bad).unwrap()).await;
        let text = String::from_utf8(text).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{crafted:?}: {text}");
        assert!(
            text.starts_with("request.namespace is not a namespace name"),
            "{text}"
        );
    }
    let mut long = input.clone();
    long["request"]["namespace"] = json!("x".repeat(10_000));
    let (_, text) = send(
        &router,
        "POST",
        "/mutate-pods",
        serde_json::to_vec(&long).unwrap(),
    )
    .await;
    assert!(text.len() < 300, "the answer must not echo the whole value");
    // Valid but distinct namespaces are reviewed normally and add no label values.
    for i in 0..50 {
        let mut other = input.clone();
        other["request"]["namespace"] = json!(format!("ns-{i}"));
        other["request"]["object"]["metadata"]["namespace"] = json!(format!("ns-{i}"));
        send(
            &router,
            "POST",
            "/mutate-pods",
            serde_json::to_vec(&other).unwrap(),
        )
        .await;
    }
    let (_, body) = send(&router, "GET", "/metrics", "").await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("muster_exchange_webhook_reviews_total{route=\"mutate-pods\",outcome=\"malformed\"} 5"),
        "{text}"
    );
    assert!(!text.contains("namespace="), "{text}");
}
