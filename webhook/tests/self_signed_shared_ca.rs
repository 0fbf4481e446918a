//! `--self-signed` replicas share one CA kept in a Secret, through the real Secret client against a mock
//! API server: replicas starting together end with one CA (create-or-get), each serves its own
//! certificate of it, and a CA rotation keeps every replica's certificate valid during the overlap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::client::Body;
use muster_exchange_webhook::tls::authority::{IssuedCertificate, service_dns_names};
use muster_exchange_webhook::tls::ca_bundle::{
    CaBundleSink, PublishError, PublishedBundles, ReadConfiguration,
};
use muster_exchange_webhook::tls::ca_certs::certificates;
use muster_exchange_webhook::tls::ca_secret::{CA_CERT_KEY, CA_KEY_KEY, PREVIOUS_CA_CERT_KEY, SecretCaStore};
use muster_exchange_webhook::tls::self_signed::{SelfSigned, SelfSignedSettings};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};

const NAMESPACE: &str = "muster-exchange";
const SECRET: &str = "muster-exchange-webhook-ca";
const SECRET_PATH: &str = "/api/v1/namespaces/muster-exchange/secrets/muster-exchange-webhook-ca";
const SECRETS_PATH: &str = "/api/v1/namespaces/muster-exchange/secrets";

/// The API server's Secrets, as far as the CA store uses them: GET, POST (409 AlreadyExists when it
/// exists), PUT (409 Conflict on a stale resourceVersion). The first `hold_gets` GETs are answered only
/// once all of them arrived, so replicas starting together all see "no Secret" before either creates it.
#[derive(Default)]
struct ApiServer {
    secret: Mutex<Option<Value>>,
    version: AtomicUsize,
    creates: AtomicUsize,
    updates: AtomicUsize,
    refused: AtomicUsize,
}

fn status(code: u16, reason: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{reason} (mock)"), "reason": reason, "code": code});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(code: u16, object: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(object).unwrap()))
        .unwrap()
}

impl ApiServer {
    fn answer(&self, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
        let mut secret = self.secret.lock().unwrap();
        match (method.clone(), path) {
            (Method::GET, SECRET_PATH) => match secret.as_ref() {
                Some(stored) => ok(200, stored),
                None => status(404, "NotFound"),
            },
            (Method::POST, SECRETS_PATH) => {
                self.creates.fetch_add(1, Ordering::SeqCst);
                if secret.is_some() {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    return status(409, "AlreadyExists");
                }
                let mut object: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(
                    object["metadata"]["name"], SECRET,
                    "only the CA Secret is created"
                );
                assert_eq!(object["type"], "Opaque");
                let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                *secret = Some(object.clone());
                ok(201, &object)
            }
            (Method::PUT, SECRET_PATH) => {
                self.updates.fetch_add(1, Ordering::SeqCst);
                let mut object: Value = serde_json::from_slice(body).unwrap();
                let current = secret.as_ref().map(|s| s["metadata"]["resourceVersion"].clone());
                if current.as_ref() != Some(&object["metadata"]["resourceVersion"]) {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    return status(409, "Conflict");
                }
                let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                *secret = Some(object.clone());
                ok(200, &object)
            }
            (method, path) => panic!("unexpected {method} {path}: the webhook touches only its CA Secret"),
        }
    }

    /// A PEM value of the stored Secret.
    fn data(&self, key: &str) -> Option<String> {
        let secret = self.secret.lock().unwrap();
        let encoded = secret.as_ref()?["data"][key].as_str()?.to_string();
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        Some(String::from_utf8(bytes).unwrap())
    }
}

/// Serves `api` on a kube client until the test ends.
fn client(api: Arc<ApiServer>, hold_gets: usize) -> kube::Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut to_hold = hold_gets;
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.unwrap().to_vec();
            let path = parts.uri.path().to_string();
            if to_hold > 0 && parts.method == Method::GET {
                to_hold -= 1;
                held.push((parts.method, path, body, send));
                if to_hold == 0 {
                    for (method, path, body, send) in held.drain(..) {
                        send.send_response(api.answer(&method, &path, &body));
                    }
                }
                continue;
            }
            send.send_response(api.answer(&parts.method, &path, &body));
        }
    });
    kube::Client::new(service, NAMESPACE)
}

/// Two webhook configurations (one webhook each) with conditional writes, like the API server.
#[derive(Default)]
struct Configurations {
    state: Mutex<[(u64, String); 2]>,
}

impl Configurations {
    fn bundles(&self) -> [String; 2] {
        self.state.lock().unwrap().clone().map(|(_, bundle)| bundle)
    }
}

impl CaBundleSink for Configurations {
    fn publish<'a>(
        &'a self,
        bundle_pem: &'a str,
        read: &'a PublishedBundles,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        let mut state = self.state.lock().unwrap();
        let mut outcome = Ok(());
        for (index, (version, bundle)) in state.iter_mut().enumerate() {
            let read_version = read.configurations[index].resource_version.clone();
            if read_version != version.to_string() {
                outcome = Err(PublishError::Conflict {
                    kind: "MutatingWebhookConfiguration",
                    name: "muster-exchange".into(),
                    resource_version: read_version,
                });
                break;
            }
            *bundle = bundle_pem.to_string();
            *version += 1;
        }
        Box::pin(async move { outcome })
    }

    fn current(&self) -> BoxFuture<'_, Result<PublishedBundles, PublishError>> {
        let configurations = self
            .state
            .lock()
            .unwrap()
            .iter()
            .map(|(version, bundle)| ReadConfiguration {
                resource_version: version.to_string(),
                webhooks: vec![("webhook".into(), bundle.clone())],
            })
            .collect();
        Box::pin(async move { Ok(PublishedBundles { configurations }) })
    }
}

fn settings() -> SelfSignedSettings {
    SelfSignedSettings {
        dns_names: service_dns_names("muster-exchange-webhook", NAMESPACE),
        validity: Duration::from_secs(3600),
        check_interval: Duration::from_secs(3600),
        propagation_delay: Duration::ZERO,
        client_verifier: None,
    }
}

fn ders(bundle_pem: &str) -> BTreeSet<Vec<u8>> {
    certificates(bundle_pem).into_iter().map(|ca| ca.der).collect()
}

/// Verifies `served` for the webhook Service's name the way the API server does, trusting only
/// `bundle_pem` (the published caBundle).
fn verifies(served: &IssuedCertificate, bundle_pem: &str) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(bundle_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let leaf = CertificateDer::from_pem_slice(served.cert_pem.as_bytes()).unwrap();
    let name = ServerName::try_from("muster-exchange-webhook.muster-exchange.svc").unwrap();
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

fn store(client: &kube::Client) -> Arc<SecretCaStore> {
    Arc::new(SecretCaStore::new(client.clone(), NAMESPACE, SECRET))
}

#[tokio::test]
async fn two_replicas_starting_together_end_with_one_ca_and_both_certificates_verify() {
    common::install_crypto_provider();
    let api = Arc::new(ApiServer::default());
    let client = client(api.clone(), 2);
    let sink = Arc::new(Configurations::default());
    let (a, b) = tokio::join!(
        SelfSigned::start(settings(), sink.clone(), store(&client)),
        SelfSigned::start(settings(), sink.clone(), store(&client)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    // Both saw no Secret and created one; the API server took the first and refused the second, whose
    // replica read and adopted the winner's CA.
    assert_eq!(api.creates.load(Ordering::SeqCst), 2);
    assert_eq!(api.refused.load(Ordering::SeqCst), 1);
    let ca = api.data(CA_CERT_KEY).unwrap();
    assert!(api.data(CA_KEY_KEY).unwrap().contains("PRIVATE KEY"));
    assert_eq!(api.data(PREVIOUS_CA_CERT_KEY), None);
    assert_eq!(a.current().ca_pem, ca);
    assert_eq!(b.current().ca_pem, ca);
    assert_ne!(
        a.current().cert_pem,
        b.current().cert_pem,
        "each replica mints its own"
    );
    assert_ne!(a.current().key_pem, b.current().key_pem);

    let published = sink.bundles();
    assert_eq!(ders(&published[0]), ders(&ca), "one CA in the bundle");
    assert_eq!(ders(&published[1]), ders(&ca));
    verifies(a.current(), &published[0]).unwrap();
    verifies(b.current(), &published[1]).unwrap();
}

#[tokio::test]
async fn a_ca_rotation_keeps_every_replica_valid_during_the_overlap() {
    common::install_crypto_provider();
    let api = Arc::new(ApiServer::default());
    let client = client(api.clone(), 0);
    let sink = Arc::new(Configurations::default());
    let mut a = SelfSigned::start(settings(), sink.clone(), store(&client))
        .await
        .unwrap();
    let mut b = SelfSigned::start(settings(), sink.clone(), store(&client))
        .await
        .unwrap();
    let old_ca = a.current().ca_pem.clone();
    assert_eq!(b.current().ca_pem, old_ca);

    // A rotates: the new CA is in the Secret and published next to the old one before A serves it.
    a.rotate().await.unwrap();
    let new_ca = api.data(CA_CERT_KEY).unwrap();
    assert_ne!(new_ca, old_ca);
    assert_eq!(api.data(PREVIOUS_CA_CERT_KEY).as_deref(), Some(old_ca.as_str()));
    assert_eq!(a.current().ca_pem, new_ca);
    assert_eq!(b.current().ca_pem, old_ca, "B has not looked yet");
    let both: BTreeSet<Vec<u8>> = ders(&old_ca).into_iter().chain(ders(&new_ca)).collect();
    for bundle in sink.bundles() {
        assert_eq!(ders(&bundle), both);
        verifies(a.current(), &bundle).unwrap();
        verifies(b.current(), &bundle).unwrap();
    }

    // B's next check follows: it serves the new CA; the old one stays trusted until it expires.
    let b_before = b.current().clone();
    b.follow_ca().await.unwrap();
    assert_eq!(b.current().ca_pem, new_ca);
    for bundle in sink.bundles() {
        assert_eq!(ders(&bundle), both);
        verifies(a.current(), &bundle).unwrap();
        verifies(b.current(), &bundle).unwrap();
    }
    assert_eq!(ders(&a.bundle()), both);
    assert_eq!(ders(&b.bundle()), both);

    // Each CA alone would have failed one replica: the overlap is what kept both valid.
    assert!(verifies(&b_before, &new_ca).is_err());
    assert!(verifies(a.current(), &old_ca).is_err());
    assert_eq!(api.updates.load(Ordering::SeqCst), 1, "one rotation written");
    assert_eq!(api.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn two_replicas_rotating_at_once_agree_on_the_winners_ca() {
    common::install_crypto_provider();
    let api = Arc::new(ApiServer::default());
    let client = client(api.clone(), 0);
    let sink = Arc::new(Configurations::default());
    let mut a = SelfSigned::start(settings(), sink.clone(), store(&client))
        .await
        .unwrap();
    let mut b = SelfSigned::start(settings(), sink.clone(), store(&client))
        .await
        .unwrap();
    // B read the Secret before A's rotation; its own rotation based on that read is refused.
    let stale = muster_exchange_webhook::tls::ca_secret::CaStore::get(store(&client).as_ref())
        .await
        .unwrap()
        .unwrap();
    a.rotate().await.unwrap();
    let winner = api.data(CA_CERT_KEY).unwrap();
    let refused = muster_exchange_webhook::tls::ca_secret::CaStore::rotate(
        store(&client).as_ref(),
        &stale,
        &muster_exchange_webhook::tls::authority::mint_ca(Duration::from_secs(3600)).unwrap(),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(muster_exchange_webhook::tls::ca_secret::CaStoreError::Conflict)
        ),
        "{refused:?}"
    );
    assert_eq!(
        api.data(CA_CERT_KEY).unwrap(),
        winner,
        "the stale write changed nothing"
    );
    b.follow_ca().await.unwrap();
    assert_eq!(b.current().ca_pem, winner);
    assert_eq!(a.current().ca_pem, winner);
}
