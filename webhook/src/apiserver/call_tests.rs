//! Every request/response call to the API server has a deadline: against an API server that accepts
//! each request and never answers, each call fails once its deadline has passed (paused time), with
//! an error naming the call and what to check.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::json;
use tokio::time::Instant;

use super::CALL_TIMEOUT;
use crate::admission::credentials_access::decide_secret_access;
use crate::admission::{SAR_TIMEOUT, parse_request};
use crate::tls::authority::mint_ca;
use crate::tls::ca_bundle::{CaBundleSink, PublishedBundles, WebhookConfigurationPatcher};
use crate::tls::ca_secret::{CaStore, SecretCaStore, StoredCa};

/// A client whose API server never answers.
fn silent_api() -> kube::Client {
    let service =
        tower::service_fn(|_: Request<Body>| std::future::pending::<Result<Response<Body>, Infallible>>());
    kube::Client::new(service, "default")
}

/// Runs `call` and returns its error message and how long it took.
async fn timed<T: std::fmt::Debug, E: std::fmt::Display>(
    call: impl Future<Output = Result<T, E>>,
) -> (String, Duration) {
    let started = Instant::now();
    let error = call.await.unwrap_err().to_string();
    (error, started.elapsed())
}

fn assert_timed_out(message: &str, after: Duration, call: &str) {
    assert_eq!(after, CALL_TIMEOUT, "{message}");
    assert!(
        message.contains(&format!("the API server did not answer {call} within 10s")),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_ca_secret_calls_time_out() {
    let store = SecretCaStore::new(silent_api(), "mx", "webhook-ca");
    let (message, after) = timed(store.get()).await;
    assert_timed_out(&message, after, "get Secret mx/webhook-ca");
    assert!(
        message.starts_with("cannot read the CA Secret mx/webhook-ca"),
        "{message}"
    );

    let ca = mint_ca(Duration::from_secs(3600)).unwrap();
    let (message, after) = timed(store.create(&ca)).await;
    assert_timed_out(&message, after, "create Secret mx/webhook-ca");

    let read = StoredCa {
        ca: ca.clone(),
        previous_pem: None,
        resource_version: "1".into(),
    };
    let (message, after) = timed(store.rotate(&read, &ca)).await;
    assert_timed_out(&message, after, "update Secret mx/webhook-ca");
}

#[tokio::test(start_paused = true)]
async fn the_webhook_configuration_calls_time_out() {
    let patcher = WebhookConfigurationPatcher::new(silent_api(), "mx-m".into(), "mx-v".into());
    let (message, after) = timed(patcher.current()).await;
    assert_timed_out(&message, after, "get MutatingWebhookConfiguration mx-m");

    let read = PublishedBundles {
        configurations: vec![Default::default(), Default::default()],
    };
    let (message, after) = timed(patcher.publish("pem", &read)).await;
    assert_timed_out(&message, after, "patch MutatingWebhookConfiguration mx-m");
}

#[tokio::test(start_paused = true)]
async fn the_subject_access_review_times_out_and_denies() {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "name": "a", "namespace": "muster", "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": {"metadata": {"name": "a", "namespace": "muster"}, "spec": {"auth": {"tokenExchange":
            {"clientCredentialsSecretRef": {"name": "creds"}}}}}}});
    let request = parse_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    let client = silent_api();
    let started = Instant::now();
    let (answer, outcome) = decide_secret_access(Some(&client), &request).await;
    assert_eq!(started.elapsed(), SAR_TIMEOUT);
    assert_eq!(outcome, "error");
    let body: serde_json::Value = serde_json::from_slice(&answer.to_body().unwrap()).unwrap();
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("the API server did not answer the SubjectAccessReview within 3s"),
        "{message}"
    );
    assert_eq!(body["response"]["allowed"], false);
}
