//! The credentials Secret access check against a mock API server answering SubjectAccessReviews: the
//! review carries the requesting user exactly, the Secret is resolved as Muster resolves it, a denial
//! and a failing API server both deny with what to do, and unchanged references are not re-checked.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

use super::*;
use crate::admission::parse_request;

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Answers `POST .../subjectaccessreviews` with `allowed` for user `alice` only, or always with `status`.
fn mock_api(seen: Seen, status: u16) -> kube::Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let seen = seen.clone();
        async move {
            let path = request.uri().path().to_string();
            let bytes = request.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            seen.lock().unwrap().push((path, body.clone()));
            let answer = if status != 200 {
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
                    "reason": "InternalError", "message": "etcd is on fire"})
            } else if body["spec"]["user"] == "alice" {
                let mut answer = body.clone();
                answer["status"] = json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding"});
                answer
            } else {
                let mut answer = body.clone();
                answer["status"] = json!({"allowed": false, "reason": "no RBAC policy matched"});
                answer
            };
            let response = Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    kube::Client::new(service, "default")
}

fn server(secret_ref: Value) -> Value {
    json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "cluster-a", "namespace": "muster"},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": true, "dexTokenEndpoint": "https://dex.example/token",
                "connectorId": "central", "clientCredentialsSecretRef": secret_ref}}}})
}

fn review(operation: &str, user: &str, object: Value, old: Option<Value>) -> AdmissionRequest {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "name": "cluster-a", "namespace": "muster", "operation": operation,
        "userInfo": {"username": user, "uid": "uid-42", "groups": ["team-a", "system:authenticated"],
            "extra": {"scopes.example/team": ["a", "b"]}},
        "object": object, "oldObject": old}});
    parse_request(&serde_json::to_vec(&body).unwrap()).unwrap()
}

fn answer_json(answer: &AdmissionAnswer) -> Value {
    let body: Value = serde_json::from_slice(&answer.to_body().unwrap()).unwrap();
    body["response"].clone()
}

#[tokio::test]
async fn the_review_asks_about_the_requesting_user_and_the_secret_muster_would_read() {
    let seen = Seen::default();
    let client = mock_api(seen.clone(), 200);
    let request = review("CREATE", "alice", server(json!({"name": "dex-creds"})), None);
    let (answer, outcome) = decide_secret_access(Some(&client), &request).await;
    assert_eq!((answer.allowed(), outcome), (true, "allowed"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "/apis/authorization.k8s.io/v1/subjectaccessreviews");
    assert_eq!(
        seen[0].1["spec"],
        json!({"user": "alice", "uid": "uid-42", "groups": ["team-a", "system:authenticated"],
            "extra": {"scopes.example/team": ["a", "b"]},
            "resourceAttributes": {"namespace": "muster", "verb": "get", "group": "", "resource": "secrets",
                "name": "dex-creds"}})
    );
}

/// An author who may not read the Secret their MCPServer names is denied, with the Secret named and what
/// to do: writing an MCPServer is not a way to reach a Secret.
#[tokio::test]
async fn an_author_who_may_not_get_the_secret_is_denied() {
    let seen = Seen::default();
    let client = mock_api(seen.clone(), 200);
    let request = review(
        "CREATE",
        "mallory",
        server(json!({"name": "ingress-tls", "namespace": "web", "clientSecretKey": "tls.key"})),
        None,
    );
    let (answer, outcome) = decide_secret_access(Some(&client), &request).await;
    assert_eq!((answer.allowed(), outcome), (false, "denied"));
    let response = answer_json(&answer);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "user \"mallory\" may not get Secret web/ingress-tls (the API server says: no RBAC policy matched), which \
         spec.auth.tokenExchange.clientCredentialsSecretRef names; muster-exchange only lets an MCPServer name a \
         credentials Secret its author can read: point the reference at a Secret you may read, or ask someone \
         who may read web/ingress-tls to make this change"
    );
    assert_eq!(
        seen.lock().unwrap()[0].1["spec"]["resourceAttributes"]["namespace"],
        "web"
    );
}

#[tokio::test]
async fn a_failing_api_server_or_no_client_denies_with_what_to_check() {
    let seen = Seen::default();
    let client = mock_api(seen.clone(), 500);
    let request = review("CREATE", "alice", server(json!({"name": "dex-creds"})), None);
    let (answer, outcome) = decide_secret_access(Some(&client), &request).await;
    assert_eq!((answer.allowed(), outcome), (false, "error"));
    let message = answer_json(&answer)["status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("cannot check that the author may get Secret muster/dex-creds"),
        "{message}"
    );
    assert!(
        message.contains("may create subjectaccessreviews.authorization.k8s.io"),
        "{message}"
    );
    let (answer, outcome) = decide_secret_access(None, &request).await;
    assert_eq!((answer.allowed(), outcome), (false, "error"));
}

#[tokio::test]
async fn only_a_new_or_changed_reference_is_checked() {
    let seen = Seen::default();
    let client = mock_api(seen.clone(), 200);
    let old = server(json!({"name": "dex-creds"}));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"a": "b"});
    let cases = [
        // Someone else's MCPServer, edited without touching the reference: not re-checked.
        review("UPDATE", "mallory", relabelled, Some(old.clone())),
        // The same Secret spelled with its namespace: the same Secret.
        review(
            "UPDATE",
            "mallory",
            server(json!({"name": "dex-creds", "namespace": "muster"})),
            Some(old.clone()),
        ),
        review("DELETE", "mallory", Value::Null, Some(old.clone())),
        review(
            "CREATE",
            "mallory",
            json!({"metadata": {"name": "x", "namespace": "muster"}, "spec": {"type": "stdio"}}),
            None,
        ),
    ];
    for request in &cases {
        let (answer, _) = decide_secret_access(Some(&client), request).await;
        assert!(answer.allowed());
    }
    assert!(seen.lock().unwrap().is_empty());
    let changed = review("UPDATE", "mallory", server(json!({"name": "other"})), Some(old));
    let (answer, _) = decide_secret_access(Some(&client), &changed).await;
    assert!(!answer.allowed());
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_route_answers_through_the_router() {
    use tower::ServiceExt as _;

    let seen = Seen::default();
    let state = crate::server::AppState::new(
        crate::inject::InjectorSettings {
            sidecar_image: "sidecar:test".into(),
            default_mcpserver_namespace: None,
            central_issuer: None,
        },
        Arc::new(crate::mcpservers::StaticMcpServers::default()),
    )
    .with_access_reviewer(mock_api(seen, 200));
    let router = crate::server::router(Arc::new(state));
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-2", "name": "cluster-a", "namespace": "muster", "operation": "CREATE",
        "userInfo": {"username": "mallory"}, "object": server(json!({"name": "dex-creds"}))}});
    let response = router
        .oneshot(
            http::Request::post(crate::server::VALIDATE_MCPSERVER_CREDENTIALS_PATH)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let review: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(review["response"]["uid"], "u-2");
    assert_eq!(review["response"]["allowed"], false);
}
