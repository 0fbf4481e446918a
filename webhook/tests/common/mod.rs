//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::path::PathBuf;
use std::sync::{Arc, Once};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use muster_exchange_api::documents::read_documents;
use muster_exchange_webhook::inject::InjectorSettings;
use muster_exchange_webhook::mcpservers::StaticMcpServers;
use muster_exchange_webhook::server::AppState;
use serde_json::Value;
use tower::ServiceExt;

pub const SIDECAR_IMAGE: &str = "ghcr.io/giantswarm/muster-exchange:0.1.0";

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

pub fn catalog() -> StaticMcpServers {
    let path = fixture_path("mcpservers.yaml");
    StaticMcpServers::from_documents(read_documents(path.to_str().unwrap()).unwrap()).unwrap()
}

pub fn state() -> Arc<AppState> {
    let settings = InjectorSettings {
        sidecar_image: SIDECAR_IMAGE.into(),
        default_mcpserver_namespace: None,
        central_issuer: None,
    };
    Arc::new(AppState::new(settings, Arc::new(catalog())))
}

pub async fn send(router: &Router, method: &str, path: &str, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, bytes)
}

/// Posts a review and returns the `response` member of the answer.
pub async fn review(router: &Router, path: &str, review: &Value) -> Value {
    let (status, body) = send(router, "POST", path, serde_json::to_vec(review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    answer["response"].clone()
}

/// The JSON Patch of a response (a base64 string, as the API server expects), `None` if absent.
pub fn patch_of(response: &Value) -> Option<Value> {
    use base64::Engine;
    let encoded = response
        .get("patch")?
        .as_str()
        .expect("the patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    assert_eq!(response["patchType"], "JSONPatch");
    Some(serde_json::from_slice(&bytes).unwrap())
}

pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A CA Secret of its own (in memory), for tests of one replica or of replicas that do not share a CA.
#[derive(Default)]
pub struct MemoryCaStore {
    stored: std::sync::Mutex<Option<muster_exchange_webhook::tls::ca_secret::StoredCa>>,
    version: std::sync::atomic::AtomicU64,
}

impl MemoryCaStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl muster_exchange_webhook::tls::ca_secret::CaStore for MemoryCaStore {
    fn get(
        &self,
    ) -> futures::future::BoxFuture<
        '_,
        Result<
            Option<muster_exchange_webhook::tls::ca_secret::StoredCa>,
            muster_exchange_webhook::tls::ca_secret::CaStoreError,
        >,
    > {
        let stored = self.stored.lock().unwrap().clone();
        Box::pin(async move { Ok(stored) })
    }

    fn create<'a>(
        &'a self,
        ca: &'a muster_exchange_webhook::tls::authority::CaKeyPair,
    ) -> futures::future::BoxFuture<
        'a,
        Result<
            muster_exchange_webhook::tls::ca_secret::StoredCa,
            muster_exchange_webhook::tls::ca_secret::CaStoreError,
        >,
    > {
        self.rotate_from(None, ca)
    }

    fn rotate<'a>(
        &'a self,
        read: &'a muster_exchange_webhook::tls::ca_secret::StoredCa,
        next: &'a muster_exchange_webhook::tls::authority::CaKeyPair,
    ) -> futures::future::BoxFuture<
        'a,
        Result<
            muster_exchange_webhook::tls::ca_secret::StoredCa,
            muster_exchange_webhook::tls::ca_secret::CaStoreError,
        >,
    > {
        self.rotate_from(Some(read), next)
    }
}

impl MemoryCaStore {
    fn rotate_from<'a>(
        &'a self,
        read: Option<&'a muster_exchange_webhook::tls::ca_secret::StoredCa>,
        next: &'a muster_exchange_webhook::tls::authority::CaKeyPair,
    ) -> futures::future::BoxFuture<
        'a,
        Result<
            muster_exchange_webhook::tls::ca_secret::StoredCa,
            muster_exchange_webhook::tls::ca_secret::CaStoreError,
        >,
    > {
        use muster_exchange_webhook::tls::ca_secret::{CaStoreError, StoredCa};
        let mut stored = self.stored.lock().unwrap();
        let current_version = stored.as_ref().map(|s| s.resource_version.clone());
        let outcome = if current_version != read.map(|r| r.resource_version.clone()) {
            Err(CaStoreError::Conflict)
        } else {
            let version = self.version.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let new = StoredCa {
                ca: next.clone(),
                previous_pem: read.map(|r| r.ca.cert_pem.clone()),
                resource_version: version.to_string(),
            };
            *stored = Some(new.clone());
            Ok(new)
        };
        Box::pin(async move { outcome })
    }
}
