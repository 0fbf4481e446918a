//! The caBundle publisher against a mock API server: exact request URIs, methods and apply bodies, the
//! `resourceVersion` precondition and 409 Conflict.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::{Method, Request, Response};
use kube::client::Body;
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use muster_exchange_webhook::tls::ca_bundle::{
    CaBundleSink, PublishError, PublishedBundles, ReadConfiguration, WebhookConfigurationPatcher,
};
use muster_exchange_webhook::tls::ca_certs::certificates;
use muster_exchange_webhook::tls::self_signed::{SelfSigned, SelfSignedSettings};
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
    config_with(kind, name, resource_version, OLD_CA)
}

/// A configuration whose webhook `a.` carries `bundle_pem`, `b.` no bundle yet.
fn config_with(kind: &str, name: &str, resource_version: &str, bundle_pem: &str) -> Value {
    let old = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
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
async fn answer_get(handle: &mut Handle, target: (&str, &str, &str), resource_version: &str) {
    answer_get_with(handle, target, resource_version, OLD_CA).await;
}

/// Answers the GET of `(resource, kind, name)` with [`config_with`] `bundle_pem`.
async fn answer_get_with(
    handle: &mut Handle,
    (resource, kind, name): (&str, &str, &str),
    resource_version: &str,
    bundle_pem: &str,
) {
    let (request, send) = handle.next_request().await.expect("a GET");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().to_string(), format!("{BASE}/{resource}/{name}"));
    send.send_response(Response::new(Body::from(
        serde_json::to_vec(&config_with(kind, name, resource_version, bundle_pem)).unwrap(),
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

/// The API server's answer to an apply whose `resourceVersion` is stale.
fn conflict() -> Response<Body> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Operation cannot be fulfilled on mutatingwebhookconfigurations.admissionregistration.k8s.io \"mx-mutating\": the object has been modified; please apply your changes to the latest version and try again",
        "reason": "Conflict", "code": 409});
    Response::builder()
        .status(409)
        .body(Body::from(serde_json::to_vec(&status).unwrap()))
        .unwrap()
}

/// The certificates of an applied webhook's `caBundle`, as a DER set.
fn applied_ders(body: &Value, webhook: usize) -> BTreeSet<Vec<u8>> {
    let encoded = body["webhooks"][webhook]["clientConfig"]["caBundle"]
        .as_str()
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    certificates(&String::from_utf8(pem).unwrap())
        .into_iter()
        .map(|ca| ca.der)
        .collect()
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
        send.send_response(conflict());
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

#[tokio::test]
async fn self_signed_rereads_after_a_409_and_applies_the_merge_at_the_new_resource_version() {
    common::install_crypto_provider();
    let (patcher, mut handle) = patcher();
    let names = service_dns_names("muster-exchange-webhook", "muster-exchange");
    let other_replica = issue(&names, Duration::from_secs(3600)).unwrap().ca_pem;
    let api_server = tokio::spawn(async move {
        answer_get(&mut handle, MUTATING, "41").await;
        answer_get(&mut handle, VALIDATING, "57").await;
        let (body, send) = take_apply(&mut handle, MUTATING).await;
        assert_eq!(body["metadata"]["resourceVersion"], "41");
        send.send_response(conflict());
        // Meanwhile another replica published its CA.
        answer_get_with(&mut handle, MUTATING, "43", &other_replica).await;
        answer_get_with(&mut handle, VALIDATING, "58", &other_replica).await;
        let mut applied = Vec::new();
        for target in [MUTATING, VALIDATING] {
            let (body, send) = take_apply(&mut handle, target).await;
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&config(target.1, target.2, "99")).unwrap(),
            )));
            applied.push(body);
        }
        (applied, other_replica)
    });
    let settings = SelfSignedSettings {
        dns_names: names,
        validity: Duration::from_secs(3600),
        check_interval: Duration::from_secs(3600),
        propagation_delay: Duration::ZERO,
        client_verifier: None,
    };
    let authority = SelfSigned::start(settings, Arc::new(patcher), common::MemoryCaStore::new())
        .await
        .unwrap();
    let own = certificates(&authority.current().ca_pem).remove(0).der;
    // Dropping the client ends the mock: a request that never came fails instead of hanging.
    drop(authority);
    let (applied, other_replica) = api_server.await.unwrap();
    let other = certificates(&other_replica).remove(0).der;
    let both = BTreeSet::from([own, other]);
    let versions: Vec<&Value> = applied
        .iter()
        .map(|body| &body["metadata"]["resourceVersion"])
        .collect();
    assert_eq!(versions, ["43", "58"]);
    for body in &applied {
        assert_eq!(applied_ders(body, 0), both);
        assert_eq!(applied_ders(body, 1), both);
    }
}
