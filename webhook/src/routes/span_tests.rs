//! Every log line of one review carries the review's ids from its span (uid, kind, namespace, name,
//! route), and nothing of the object or the requesting user.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use super::credentials_access::validate_credentials_access;
use super::handle_review_parsed_by;
use super::pods::ROUTE;
use crate::admission::parse_pod_request;
use crate::admission::pods::decide;
use crate::inject::InjectorSettings;
use crate::mcpservers::StaticMcpServers;
use crate::server::AppState;

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }
}

fn subscriber(captured: &Captured) -> impl tracing::Subscriber + Send + Sync + use<> {
    tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish()
}

fn state() -> Arc<AppState> {
    let settings = InjectorSettings {
        sidecar_image: "example.com/sidecar:1".into(),
        default_mcpserver_namespace: None,
        central_issuer: None,
    };
    Arc::new(AppState::new(settings, Arc::new(StaticMcpServers::default())))
}

/// A review of `object` (kind `kind`, name `web-0` in `apps`) by a user named `alice`.
fn review(kind: &str, group: &str, object: serde_json::Value) -> Bytes {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "uid-4711", "kind": {"group": group, "version": "v1", "kind": kind},
        "name": "web-0", "namespace": "apps", "operation": "CREATE",
        "userInfo": {"username": "alice", "extra": {"token": ["s3cr3t-extra"]}},
        "object": object}});
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

fn assert_carries_ids(lines: &[String], message: &str, kind: &str, route: &str) {
    let line = lines
        .iter()
        .find(|l| l.contains(message))
        .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"));
    for field in [
        "admission_review{".to_string(),
        format!("route=\"{route}\""),
        "uid=\"uid-4711\"".to_string(),
        format!("kind=\"{kind}\""),
        "namespace=\"apps\"".to_string(),
        "name=\"web-0\"".to_string(),
    ] {
        assert!(line.contains(&field), "{field} missing from {line}");
    }
}

#[test]
fn every_line_of_a_pod_review_carries_its_ids_and_no_object_contents() {
    let captured = Captured::default();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "apps", "annotations": {
            "exchange.muster.giantswarm.io/mcpservers": "unknown-cluster",
            "example.com/api-key": "s3cr3t-annotation"}},
        "spec": {"containers": [{"name": "app", "image": "app:1",
            "env": [{"name": "TOKEN", "value": "s3cr3t-env"}]}]}});
    let body = review("Pod", "", pod);
    let state = state();
    let response = tracing::subscriber::with_default(subscriber(&captured), || {
        handle_review_parsed_by(&state, ROUTE, &body, parse_pod_request, decide)
    });
    assert_eq!(response.status(), 200);
    let lines = captured.lines();
    assert_carries_ids(&lines, "pod refused", "Pod", ROUTE);
    assert_carries_ids(&lines, "admission review", "Pod", ROUTE);
    let all = lines.join("\n");
    for secret in ["s3cr3t", "alice"] {
        assert!(!all.contains(secret), "{secret} logged: {all}");
    }
}

#[tokio::test]
async fn the_credentials_check_logs_inside_the_span_of_its_review() {
    let captured = Captured::default();
    let _default = tracing::subscriber::set_default(subscriber(&captured));
    let mcpserver = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "web-0", "namespace": "apps"},
        "spec": {"auth": {"tokenExchange": {"clientCredentialsSecretRef": {"name": "creds"}}}}});
    let body = review("MCPServer", "muster.giantswarm.io", mcpserver);
    // No Kubernetes client: the review is denied, and logged.
    let response = validate_credentials_access(State(state()), body).await;
    assert_eq!(response.status(), 200);
    let lines = captured.lines();
    assert_carries_ids(
        &lines,
        "admission review",
        "MCPServer",
        "validate-mcpserver-credentials",
    );
    let all = lines.join("\n");
    for secret in ["s3cr3t", "alice"] {
        assert!(!all.contains(secret), "{secret} logged: {all}");
    }
}
