//! `--self-signed` publication: retried until the webhook configurations exist, keeping the CAs earlier
//! pods published, reporting ready only once published, and re-applied when a configuration lost it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use muster_exchange_webhook::tls::ca_bundle::{
    CaBundleSink, PublishError, PublishedBundles, ReadConfiguration,
};
use muster_exchange_webhook::tls::ca_certs::certificates;
use muster_exchange_webhook::tls::self_signed::{SelfSigned, SelfSignedSettings};
use tokio_util::sync::CancellationToken;

/// Two webhooks' `caBundle`s, one writer (concurrency is `self_signed_replicas.rs`); fails like a missing
/// configuration for the first `failures` publications, and publication number `half_done_at` (from 0)
/// writes the first configuration and then fails on the second.
struct FakeConfigurations {
    failures: usize,
    half_done_at: Option<usize>,
    attempts: AtomicUsize,
    reads: AtomicUsize,
    webhooks: Mutex<Vec<String>>,
    published: Mutex<Vec<String>>,
}

impl FakeConfigurations {
    fn new(failures: usize, webhooks: [&str; 2]) -> Arc<Self> {
        Arc::new(Self {
            failures,
            half_done_at: None,
            attempts: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
            webhooks: Mutex::new(webhooks.map(str::to_string).to_vec()),
            published: Mutex::default(),
        })
    }
}

fn not_found() -> PublishError {
    let source = kube::Error::Api(
        kube::core::Status::failure("not found", "NotFound")
            .with_code(404)
            .boxed(),
    );
    PublishError::Api {
        kind: "MutatingWebhookConfiguration",
        name: "muster-exchange".into(),
        source,
    }
}

impl CaBundleSink for FakeConfigurations {
    fn publish<'a>(
        &'a self,
        bundle_pem: &'a str,
        _read: &'a PublishedBundles,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
            if attempt < self.failures {
                return Err(not_found());
            }
            if self.half_done_at == Some(attempt) {
                self.webhooks.lock().unwrap()[0] = bundle_pem.to_string();
                return Err(not_found());
            }
            self.published.lock().unwrap().push(bundle_pem.to_string());
            for webhook in self.webhooks.lock().unwrap().iter_mut() {
                *webhook = bundle_pem.to_string();
            }
            Ok(())
        })
    }

    fn current(&self) -> BoxFuture<'_, Result<PublishedBundles, PublishError>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let webhooks = self.webhooks.lock().unwrap().clone();
        let configurations = webhooks
            .into_iter()
            .map(|bundle| ReadConfiguration {
                resource_version: "1".into(),
                webhooks: vec![("webhook".into(), bundle)],
            })
            .collect();
        Box::pin(async move { Ok(PublishedBundles { configurations }) })
    }
}

fn settings() -> SelfSignedSettings {
    SelfSignedSettings {
        dns_names: service_dns_names("muster-exchange-webhook", "muster-exchange"),
        validity: Duration::from_secs(3600),
        check_interval: Duration::from_millis(20),
        propagation_delay: Duration::ZERO,
        client_verifier: None,
    }
}

async fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn publication_is_retried_until_it_succeeds_and_ready_waits_for_it() {
    common::install_crypto_provider();
    let sink = FakeConfigurations::new(3, ["", ""]);
    let authority = SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    let ca = authority.current().ca_pem.clone();
    let ready = authority.ready();
    let stop = CancellationToken::new();
    let running = tokio::spawn(authority.run(stop.clone()));
    poll("ready", || ready.is_cancelled()).await;
    assert_eq!(
        *sink.published.lock().unwrap(),
        [ca],
        "ready only after publication"
    );
    stop.cancel();
    running.await.unwrap();
    assert_eq!(sink.attempts.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn start_keeps_the_still_valid_cas_already_published_and_drops_expired_ones() {
    common::install_crypto_provider();
    let names = settings().dns_names;
    let old_pod = issue(&names, Duration::from_secs(3600)).unwrap();
    let expired = issue(&names, Duration::ZERO).unwrap();
    let existing = format!("{}{}", old_pod.ca_pem, expired.ca_pem);
    let sink = FakeConfigurations::new(0, [&existing, &old_pod.ca_pem]);
    let authority = SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    assert!(
        !authority.ready().is_cancelled(),
        "not ready before run waited the propagation delay"
    );
    let published = sink.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    let ders: Vec<Vec<u8>> = certificates(&published[0]).into_iter().map(|c| c.der).collect();
    let der = |pem: &str| certificates(pem).remove(0).der;
    assert_eq!(ders, [der(&authority.current().ca_pem), der(&old_pod.ca_pem)]);
    assert_eq!(authority.bundle(), published[0]);
}

#[tokio::test]
async fn a_configuration_that_lost_the_bundle_gets_it_again() {
    common::install_crypto_provider();
    let sink = FakeConfigurations::new(0, ["", ""]);
    let authority = SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    let bundle = authority.bundle();
    let stop = CancellationToken::new();
    let running = tokio::spawn(authority.run(stop.clone()));
    let reads = sink.reads.load(Ordering::SeqCst);
    poll("several checks", || {
        sink.reads.load(Ordering::SeqCst) >= reads + 3
    })
    .await;
    assert_eq!(
        sink.published.lock().unwrap().len(),
        1,
        "an intact bundle is not re-applied"
    );

    // Helm re-created the ValidatingWebhookConfiguration: its caBundle is empty again.
    sink.webhooks.lock().unwrap()[1] = String::new();
    poll("the bundle is re-applied", || {
        sink.published.lock().unwrap().len() == 2
    })
    .await;
    stop.cancel();
    running.await.unwrap();
    assert_eq!(*sink.webhooks.lock().unwrap(), [bundle.clone(), bundle]);
}

#[tokio::test]
async fn a_rotation_retried_after_a_half_done_write_publishes_the_ca_it_already_wrote() {
    common::install_crypto_provider();
    let sink = Arc::new(FakeConfigurations {
        half_done_at: Some(1),
        ..Arc::into_inner(FakeConfigurations::new(0, ["", ""])).unwrap()
    });
    let mut authority = SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    let first = authority.current().ca_pem.clone();
    assert!(
        authority.rotate().await.is_err(),
        "the second configuration refused it"
    );
    let written = certificates(&sink.webhooks.lock().unwrap()[0]).remove(0).der;

    // The next check finds the rotated CA in the Secret and retries publishing it.
    authority.follow_ca().await.unwrap();
    let der = |pem: &str| certificates(pem).remove(0).der;
    assert_eq!(
        der(&authority.current().ca_pem),
        written,
        "the retry serves the CA the half-done write already published, not a third one"
    );
    let mut expected = vec![written, der(&first)];
    expected.sort();
    for bundle in sink.webhooks.lock().unwrap().iter() {
        let mut ders: Vec<Vec<u8>> = certificates(bundle).into_iter().map(|c| c.der).collect();
        ders.sort();
        assert_eq!(ders, expected, "exactly the new and the previous CA, each once");
    }
}
