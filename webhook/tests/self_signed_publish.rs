//! `--self-signed` keeps retrying the caBundle publication until the webhook configurations exist.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use muster_exchange_webhook::tls::authority::service_dns_names;
use muster_exchange_webhook::tls::ca_bundle::{CaBundleSink, PublishError};
use muster_exchange_webhook::tls::self_signed::{SelfSigned, SelfSignedSettings};
use tokio_util::sync::CancellationToken;

/// Fails like a missing MutatingWebhookConfiguration for the first `failures` attempts.
struct NotYetApplied {
    failures: usize,
    attempts: AtomicUsize,
    published: Mutex<Vec<String>>,
}

impl CaBundleSink for NotYetApplied {
    fn publish<'a>(&'a self, bundle_pem: &'a str) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            if self.attempts.fetch_add(1, Ordering::SeqCst) < self.failures {
                let source = kube::Error::Api(
                    kube::core::Status::failure("not found", "NotFound")
                        .with_code(404)
                        .boxed(),
                );
                return Err(PublishError {
                    kind: "MutatingWebhookConfiguration",
                    name: "muster-exchange".into(),
                    source,
                });
            }
            self.published.lock().unwrap().push(bundle_pem.to_string());
            Ok(())
        })
    }
}

#[tokio::test]
async fn publication_is_retried_until_it_succeeds() {
    common::install_crypto_provider();
    let sink = Arc::new(NotYetApplied {
        failures: 3,
        attempts: AtomicUsize::new(0),
        published: Mutex::default(),
    });
    let settings = SelfSignedSettings {
        dns_names: service_dns_names("muster-exchange-webhook", "muster-exchange"),
        validity: Duration::from_secs(3600),
        check_interval: Duration::from_millis(20),
        propagation_delay: Duration::ZERO,
    };
    let authority = SelfSigned::start(settings, sink.clone()).await.unwrap();
    let ca = authority.current().ca_pem.clone();
    let stop = CancellationToken::new();
    let running = tokio::spawn(authority.run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.published.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the CA bundle was never published");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    running.await.unwrap();
    assert_eq!(sink.attempts.load(Ordering::SeqCst), 4);
    assert_eq!(*sink.published.lock().unwrap(), [ca]);
}
