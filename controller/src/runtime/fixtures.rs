//! Test helpers: the controller-rs ApiServerVerifier pattern. A scenario is the exact list of requests the
//! code under test must send (method, URI, body) with the answer to each; any missing, extra or different
//! request fails the test.

use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One expected request and the answer the mock API server gives.
#[derive(Debug, Clone)]
pub struct Expect {
    pub method: &'static str,
    pub uri: String,
    pub body: Option<Value>,
    pub status: u16,
    pub response: Value,
}

impl Expect {
    pub fn get(uri: impl Into<String>, response: Value) -> Self {
        Expect {
            method: "GET",
            uri: uri.into(),
            body: None,
            status: 200,
            response,
        }
    }

    /// A server-side apply; the mock echoes the body back.
    pub fn apply(uri: impl Into<String>, body: Value) -> Self {
        Expect {
            method: "PATCH",
            uri: uri.into(),
            body: Some(body.clone()),
            status: 200,
            response: body,
        }
    }

    pub fn delete(uri: impl Into<String>, body: Value) -> Self {
        let response =
            json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "code": 200});
        Expect {
            method: "DELETE",
            uri: uri.into(),
            body: Some(body),
            status: 200,
            response,
        }
    }

    /// A request whose body is not compared (it carries timestamps).
    pub fn any_body(method: &'static str, uri: impl Into<String>, response: Value) -> Self {
        Expect {
            method,
            uri: uri.into(),
            body: None,
            status: 200,
            response,
        }
    }

    pub fn responding(mut self, response: Value) -> Self {
        self.response = response;
        self
    }

    pub fn failing(mut self, status: u16) -> Self {
        self.status = status;
        self.response = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": "injected failure", "reason": "InternalError", "code": status});
        self
    }
}

/// Runs `scenario` against a client whose API server answers exactly `expected`, in order. Nothing is
/// timed: a request that differs, comes in excess or never comes fails the test as soon as the
/// scenario shows it (the scenario ends, dropping its client).
pub async fn run_scenario<F, Fut, T>(expected: Vec<Expect>, scenario: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T>,
{
    run_scenario_within(None, expected, scenario).await
}

/// [`run_scenario`] for a scenario on paused time that would wait forever after a wrong request: it
/// fails once `limit` of virtual time passed.
pub async fn run_scenario_for<F, Fut, T>(limit: Duration, expected: Vec<Expect>, scenario: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T>,
{
    run_scenario_within(Some(limit), expected, scenario).await
}

async fn run_scenario_within<F, Fut, T>(limit: Option<Duration>, expected: Vec<Expect>, scenario: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T>,
{
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let count = expected.len();
    let verifier = tokio::spawn(async move {
        for (index, expect) in expected.into_iter().enumerate() {
            let Some((request, send)) = handle.next_request().await else {
                panic!(
                    "request {index} never came: expected {} {}",
                    expect.method, expect.uri
                );
            };
            let (method, uri) = (request.method().to_string(), request.uri().to_string());
            assert_eq!(
                (method.as_str(), uri.as_str()),
                (expect.method, expect.uri.as_str()),
                "request {index}"
            );
            let bytes = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if let Some(body) = &expect.body {
                let actual: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                assert_eq!(
                    &actual, body,
                    "body of request {index} ({} {})",
                    expect.method, expect.uri
                );
            }
            let response = Response::builder()
                .status(expect.status)
                .body(Body::from(serde_json::to_vec(&expect.response).unwrap()))
                .unwrap();
            send.send_response(response);
        }
        // Ends when the scenario dropped its client; a request before that is one too many.
        if let Some((request, _)) = handle.next_request().await {
            panic!(
                "unexpected extra request after the {count} expected: {} {}",
                request.method(),
                request.uri()
            );
        }
    });
    let result = match limit {
        None => scenario(client).await,
        Some(limit) => match tokio::time::timeout(limit, scenario(client)).await {
            Ok(result) => result,
            Err(_) => {
                if verifier.is_finished()
                    && let Err(e) = verifier.await
                {
                    std::panic::resume_unwind(e.into_panic());
                }
                panic!("scenario did not finish: it sent more requests than the {count} expected");
            }
        },
    };
    if let Err(e) = verifier.await {
        std::panic::resume_unwind(e.into_panic());
    }
    result
}

/// A list answer.
pub fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A metadata-only list answer for these names in `namespace` (empty for cluster-scoped objects).
pub fn metadata_list(namespace: &str, names: &[&str]) -> Value {
    let items = names
        .iter()
        .map(|name| {
            let mut meta = json!({"name": name, "uid": format!("uid-{name}"), "resourceVersion": "1"});
            if !namespace.is_empty() {
                meta["namespace"] = json!(namespace);
            }
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta})
        })
        .collect();
    list("PartialObjectMetadataList", "meta.k8s.io/v1", items)
}

/// A controller context around `client` for loop tests (no grant subjects, no credentials reader).
pub fn test_context(
    client: Client,
    exchange: muster_exchange_dex::ExchangeClient,
    leader: tokio::sync::watch::Receiver<bool>,
    probe: crate::runtime::context::ProbeConfig,
) -> crate::runtime::context::Context {
    use kube::runtime::events::{Recorder, Reporter};
    crate::runtime::context::Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "test".into(),
                instance: None,
            },
        ),
        client,
        kubeconfig: crate::grants::kubeconfig_grants::KubeconfigGrantConfig {
            namespace_selector: "giantswarm.io/organization".into(),
            subjects: vec![
                crate::grants::subjects::parse_service_account("sa:muster/mcp-kubernetes").unwrap(),
            ],
            secret_suffix: "-kubeconfig".into(),
            controller_namespace: "mx".into(),
        },
        credentials: crate::grants::credential_grants::CredentialGrantConfig {
            reader: None,
            policy: muster_exchange_api::credentials_policy::CredentialsPolicy::for_controller("mx", false),
        },
        probe,
        exchange,
        metrics: std::sync::Arc::new(crate::runtime::metrics::Metrics::default()),
        leader,
        grants_resync: Duration::from_secs(300),
        grants_concurrency: 1,
    }
}

/// A synced, empty-or-filled MCPServer cache.
pub fn synced_store(objects: &[Value]) -> kube::runtime::reflector::Store<kube::api::DynamicObject> {
    synced(
        objects,
        kube::api::ApiResource::erase::<muster_exchange_api::MCPServer>(&()),
    )
}

/// A synced cache of `objects` (JSON as the API server returns them).
pub fn synced<K>(objects: &[Value], dyntype: K::DynamicType) -> kube::runtime::reflector::Store<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    use kube::runtime::watcher::Event;
    let mut writer = kube::runtime::reflector::store::Writer::<K>::new(dyntype);
    writer.apply_watcher_event(&Event::Init);
    for o in objects {
        writer.apply_watcher_event(&Event::InitApply(serde_json::from_value(o.clone()).unwrap()));
    }
    writer.apply_watcher_event(&Event::InitDone);
    let store = writer.as_reader();
    // The store stays readable after the writer is dropped.
    drop(writer);
    store
}

/// Log lines written while the returned guard lives on this thread, as text without colours.
pub(crate) fn capture_logs() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// What [`capture_logs`] collected.
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// The first line containing `needle`; fails the test, showing every line, when there is none.
    pub(crate) fn line_with(&self, needle: &str) -> String {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line containing {needle:?} in: {text}"))
            .to_string()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
