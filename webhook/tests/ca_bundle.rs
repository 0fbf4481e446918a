//! The caBundle publisher against a mock API server: exact request URIs, methods and apply bodies, the
//! `resourceVersion` precondition and 409 Conflict.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

use base64::Engine;
use http::{Method, Request, Response};
use kube::client::Body;
use muster_exchange_webhook::tls::ca_bundle::{
    CaBundleSink, PublishError, PublishedBundles, ReadConfiguration, WebhookConfigurationPatcher,
};
use serde_json::{Value, json};

const BASE: &str = "/apis/admissionregistration.k8s.io/v1";

const MUTATING: (&str, &str, &str) = (
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    "mx-mutating",
);
const VALIDATING: (&str, &str, &str) = (
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    "mx-validating",
);
const OLD_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIA\n-----END CERTIFICATE-----\n";

/// A configuration as the API server returns it: webhook `a.` carries `OLD_CA`, `b.` no bundle yet.
fn config(kind: &str, name: &str, resource_version: &str) -> Value {
    let old = base64::engine::general_purpose::STANDARD.encode(OLD_CA);
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
    "metadata": {"name": name, "resourceVersion": resource_version},
    "webhooks": [
        {"name": format!("a.{name}"), "sideEffects": "None", "admissionReviewVersions": ["v1"],
         "clientConfig": {"service": {"name": "w", "namespace": "m"}, "caBundle": old}},
        {"name": format!("b.{name}"), "sideEffects": "None", "admissionReviewVersions": ["v1"],
         "clientConfig": {"service": {"name": "w", "namespace": "m"}}}
    ]})
}

fn patcher() -> (WebhookConfigurationPatcher, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let patcher = WebhookConfigurationPatcher::new(client, "mx-mutating".into(), "mx-validating".into());
    (patcher, handle)
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers the GET of `(resource, kind, name)` with [`config`] at `resource_version`.
async fn answer_get(handle: &mut Handle, (resource, kind, name): (&str, &str, &str), resource_version: &str) {
    let (request, send) = handle.next_request().await.expect("a GET");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().to_string(), format!("{BASE}/{resource}/{name}"));
    send.send_response(Response::new(Body::from(
        serde_json::to_vec(&config(kind, name, resource_version)).unwrap(),
    )));
}

/// Takes the apply of `(resource, _, name)`, checks its URI and headers, returns its body.
async fn take_apply(
    handle: &mut Handle,
    (resource, _, name): (&str, &str, &str),
) -> (Value, tower_test::mock::SendResponse<Response<Body>>) {
    let (request, send) = handle.next_request().await.expect("a PATCH");
    assert_eq!(request.method(), Method::PATCH);
    assert_eq!(
        request.uri().to_string(),
        format!("{BASE}/{resource}/{name}?&force=true&fieldManager=muster-exchange-webhook")
    );
    assert_eq!(request.headers()["content-type"], "application/apply-patch+yaml");
    let body = request.into_body().collect_bytes().await.unwrap();
    (serde_json::from_slice(&body).unwrap(), send)
}

#[tokio::test]
async fn reads_resource_versions_and_applies_only_the_ca_bundle_conditionally() {
    let (patcher, mut handle) = patcher();
    let bundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);

    let api_server = tokio::spawn(async move {
        answer_get(&mut handle, MUTATING, "41").await;
        answer_get(&mut handle, VALIDATING, "57").await;
        let mut seen = Vec::new();
        for (target, version) in [(MUTATING, "42"), (VALIDATING, "58")] {
            let (body, send) = take_apply(&mut handle, target).await;
            seen.push(body);
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&config(target.1, target.2, version)).unwrap(),
            )));
        }
        seen
    });

    let read = patcher.current().await.unwrap();
    let webhooks = |name: &str| {
        vec![
            (format!("a.{name}"), OLD_CA.to_string()),
            (format!("b.{name}"), String::new()),
        ]
    };
    assert_eq!(
        read,
        PublishedBundles {
            configurations: vec![
                ReadConfiguration {
                    resource_version: "41".into(),
                    webhooks: webhooks("mx-mutating")
                },
                ReadConfiguration {
                    resource_version: "57".into(),
                    webhooks: webhooks("mx-validating")
                },
            ]
        }
    );
    assert_eq!(read.bundles(), [OLD_CA, "", OLD_CA, ""]);
    patcher.publish(bundle, &read).await.unwrap();
    let applied = api_server.await.unwrap();
    let expected = |kind: &str, name: &str, resource_version: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name, "resourceVersion": resource_version},
        "webhooks": [
            {"name": format!("a.{name}"), "clientConfig": {"caBundle": encoded}},
            {"name": format!("b.{name}"), "clientConfig": {"caBundle": encoded}}
        ]})
    };
    assert_eq!(
        applied,
        [
            expected("MutatingWebhookConfiguration", "mx-mutating", "41"),
            expected("ValidatingWebhookConfiguration", "mx-validating", "57")
        ]
    );
}

#[tokio::test]
async fn a_stale_resource_version_answered_409_is_a_conflict_and_stops_the_publication() {
    let (patcher, mut handle) = patcher();
    let api_server = tokio::spawn(async move {
        answer_get(&mut handle, MUTATING, "41").await;
        answer_get(&mut handle, VALIDATING, "57").await;
        let (body, send) = take_apply(&mut handle, MUTATING).await;
        assert_eq!(
            body["metadata"],
            json!({"name": "mx-mutating", "resourceVersion": "41"})
        );
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Operation cannot be fulfilled on mutatingwebhookconfigurations.admissionregistration.k8s.io \"mx-mutating\": the object has been modified; please apply your changes to the latest version and try again",
            "reason": "Conflict", "code": 409});
        let response = Response::builder()
            .status(409)
            .body(Body::from(serde_json::to_vec(&status).unwrap()))
            .unwrap();
        send.send_response(response);
        // Nothing more: the validating configuration is not written on a stale read.
        assert!(
            handle.next_request().await.is_none(),
            "no request after the conflict"
        );
    });
    let read = patcher.current().await.unwrap();
    let error = patcher.publish("pem", &read).await.unwrap_err();
    assert!(error.is_conflict(), "{error:?}");
    assert!(
        matches!(&error, PublishError::Conflict { kind: "MutatingWebhookConfiguration", name, resource_version }
            if name == "mx-mutating" && resource_version == "41"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "MutatingWebhookConfiguration mx-mutating changed since it was read at resourceVersion \"41\": \
         another replica of the webhook wrote first; re-reading and merging its CAs before publishing again"
    );
    drop(patcher);
    api_server.await.unwrap();
}

#[tokio::test]
async fn a_read_that_lacks_a_configuration_is_treated_as_stale_without_writing() {
    let (patcher, mut handle) = patcher();
    let error = patcher
        .publish("pem", &PublishedBundles::default())
        .await
        .unwrap_err();
    assert!(error.is_conflict(), "{error:?}");
    drop(patcher);
    assert!(handle.next_request().await.is_none(), "nothing was sent");
}

#[tokio::test]
async fn a_missing_configuration_is_reported_with_what_to_check() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let patcher = WebhookConfigurationPatcher::new(client, "gone".into(), "mx-validating".into());
    // The read is where a missing configuration shows up: writes only follow a successful read.
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
    let error = patcher.current().await.unwrap_err();
    assert!(!error.is_conflict(), "{error:?}");
    let error = error.to_string();
    assert!(
        error.starts_with("cannot publish the CA bundle to MutatingWebhookConfiguration gone: "),
        "{error}"
    );
    assert!(
        error.ends_with("check that it exists and that the webhook's ServiceAccount may get and patch it")
    );
}
