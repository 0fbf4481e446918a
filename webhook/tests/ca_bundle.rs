//! The caBundle publisher against a mock API server: exact request URIs, methods and apply bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use base64::Engine;
use http::{Method, Request, Response};
use kube::client::Body;
use muster_exchange_webhook::tls::ca_bundle::{CaBundleSink, WebhookConfigurationPatcher};
use serde_json::{Value, json};

const BASE: &str = "/apis/admissionregistration.k8s.io/v1";

fn config(kind: &str, name: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
    "webhooks": [
        {"name": format!("a.{name}"), "sideEffects": "None", "admissionReviewVersions": ["v1"],
         "clientConfig": {"service": {"name": "w", "namespace": "m"}}},
        {"name": format!("b.{name}"), "sideEffects": "None", "admissionReviewVersions": ["v1"],
         "clientConfig": {"service": {"name": "w", "namespace": "m"}}}
    ]})
}

#[tokio::test]
async fn applies_only_the_ca_bundle_of_each_named_configuration() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let patcher = WebhookConfigurationPatcher::new(client, "mx-mutating".into(), "mx-validating".into());
    let bundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);

    let api_server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for (resource, kind, name) in [
            (
                "mutatingwebhookconfigurations",
                "MutatingWebhookConfiguration",
                "mx-mutating",
            ),
            (
                "validatingwebhookconfigurations",
                "ValidatingWebhookConfiguration",
                "mx-validating",
            ),
        ] {
            let (request, send) = handle.next_request().await.expect("a GET");
            assert_eq!(request.method(), Method::GET);
            assert_eq!(request.uri().to_string(), format!("{BASE}/{resource}/{name}"));
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&config(kind, name)).unwrap(),
            )));

            let (request, send) = handle.next_request().await.expect("a PATCH");
            assert_eq!(request.method(), Method::PATCH);
            assert_eq!(
                request.uri().to_string(),
                format!("{BASE}/{resource}/{name}?&force=true&fieldManager=muster-exchange-webhook")
            );
            assert_eq!(request.headers()["content-type"], "application/apply-patch+yaml");
            let body = request.into_body().collect_bytes().await.unwrap();
            seen.push(serde_json::from_slice::<Value>(&body).unwrap());
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&config(kind, name)).unwrap(),
            )));
        }
        seen
    });

    patcher.publish(bundle).await.unwrap();
    let applied = api_server.await.unwrap();
    let expected = |kind: &str, name: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
        "webhooks": [
            {"name": format!("a.{name}"), "clientConfig": {"caBundle": encoded}},
            {"name": format!("b.{name}"), "clientConfig": {"caBundle": encoded}}
        ]})
    };
    assert_eq!(
        applied,
        [
            expected("MutatingWebhookConfiguration", "mx-mutating"),
            expected("ValidatingWebhookConfiguration", "mx-validating")
        ]
    );
}

#[tokio::test]
async fn a_missing_configuration_is_reported_with_what_to_check() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let patcher = WebhookConfigurationPatcher::new(client, "gone".into(), "mx-validating".into());
    tokio::spawn(async move {
        let (_, send) = handle.next_request().await.expect("a GET");
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
            "message": "mutatingwebhookconfigurations.admissionregistration.k8s.io \"gone\" not found", "code": 404});
        let response = Response::builder()
            .status(404)
            .body(Body::from(serde_json::to_vec(&status).unwrap()))
            .unwrap();
        send.send_response(response);
    });
    let error = patcher.publish("pem").await.unwrap_err().to_string();
    assert!(
        error.starts_with("cannot publish the CA bundle to MutatingWebhookConfiguration gone: "),
        "{error}"
    );
    assert!(
        error.ends_with("check that it exists and that the webhook's ServiceAccount may get and patch it")
    );
}
