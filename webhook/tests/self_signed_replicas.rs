//! `--self-signed` replicas that do NOT share a CA (each has its own CA Secret here: pods of an earlier
//! version that minted a CA per pod, or replicas configured with different `--self-signed-ca-secret`)
//! publishing into the same webhook configurations: every replica's CA ends up published, however their
//! reads and writes interleave, and replicas that agree stop writing. Replicas sharing one CA Secret are
//! `self_signed_shared_ca.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use muster_exchange_webhook::tls::ca_bundle::{
    CaBundleSink, PublishError, PublishedBundles, ReadConfiguration,
};
use muster_exchange_webhook::tls::ca_certs::certificates;
use muster_exchange_webhook::tls::self_signed::{
    MAX_INHERITED, MAX_PUBLISH_ATTEMPTS, SelfSigned, SelfSignedSettings,
};
use tokio::sync::Barrier;

const KINDS: [&str; 2] = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

/// Two configurations of one webhook each that behave like the API server towards a conditional apply:
/// every write bumps the `resourceVersion`, a write based on an older one is refused with a conflict.
#[derive(Default)]
struct VersionedConfigurations {
    /// `(resourceVersion, caBundle)` per configuration.
    state: Mutex<[(u64, String); 2]>,
    /// The first this many `publish` calls wait for each other, so all of them read before any writes.
    held: AtomicUsize,
    barrier: Option<Barrier>,
    /// CAs "another replica" adds right before each of our next `publish` calls, one per call.
    intruders: Mutex<Vec<String>>,
    publish_calls: AtomicUsize,
    writes: AtomicUsize,
    conflicts: AtomicUsize,
}

impl VersionedConfigurations {
    fn holding_first_writes(count: usize) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(count),
            barrier: Some(Barrier::new(count)),
            ..Self::default()
        })
    }

    fn with_intruders(intruders: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            intruders: Mutex::new(intruders),
            ..Self::default()
        })
    }

    /// The sorted DER set of each configuration's bundle.
    fn published(&self) -> [BTreeSet<Vec<u8>>; 2] {
        self.state
            .lock()
            .unwrap()
            .clone()
            .map(|(_, bundle)| ders(&bundle))
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.writes.load(Ordering::SeqCst),
            self.conflicts.load(Ordering::SeqCst),
        )
    }

    /// Another writer adds `ca_pem` to both configurations, bumping their versions.
    fn intrude(&self, ca_pem: &str) {
        for (version, bundle) in self.state.lock().unwrap().iter_mut() {
            bundle.push_str(ca_pem);
            *version += 1;
        }
    }

    /// Applies `bundle_pem` configuration by configuration, refusing a stale one like the API server.
    fn apply(&self, bundle_pem: &str, read: &PublishedBundles) -> Result<(), PublishError> {
        for (index, (version, bundle)) in self.state.lock().unwrap().iter_mut().enumerate() {
            let read_version = read.configurations[index].resource_version.clone();
            if read_version != version.to_string() {
                self.conflicts.fetch_add(1, Ordering::SeqCst);
                return Err(PublishError::Conflict {
                    kind: KINDS[index],
                    name: "muster-exchange".into(),
                    resource_version: read_version,
                });
            }
            *bundle = bundle_pem.to_string();
            *version += 1;
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl CaBundleSink for VersionedConfigurations {
    fn publish<'a>(
        &'a self,
        bundle_pem: &'a str,
        read: &'a PublishedBundles,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            self.publish_calls.fetch_add(1, Ordering::SeqCst);
            let hold = self
                .held
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if let (true, Some(barrier)) = (hold, &self.barrier) {
                barrier.wait().await;
            }
            let intruder = self.intruders.lock().unwrap().pop();
            if let Some(ca_pem) = intruder {
                self.intrude(&ca_pem);
            }
            self.apply(bundle_pem, read)
        })
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

fn ders(bundle_pem: &str) -> BTreeSet<Vec<u8>> {
    certificates(bundle_pem).into_iter().map(|ca| ca.der).collect()
}

fn union<'a>(bundles: impl IntoIterator<Item = &'a str>) -> BTreeSet<Vec<u8>> {
    bundles.into_iter().flat_map(ders).collect()
}

fn settings() -> SelfSignedSettings {
    SelfSignedSettings {
        dns_names: service_dns_names("muster-exchange-webhook", "muster-exchange"),
        validity: Duration::from_secs(3600),
        check_interval: Duration::from_secs(3600),
        propagation_delay: Duration::ZERO,
        client_verifier: None,
    }
}

#[tokio::test]
async fn two_replicas_that_read_before_either_writes_both_get_their_ca_published_then_go_quiet() {
    common::install_crypto_provider();
    let sink = VersionedConfigurations::holding_first_writes(2);
    let (a, b) = tokio::join!(
        SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new()),
        SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
    );
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    let both = union([a.current().ca_pem.as_str(), b.current().ca_pem.as_str()]);
    assert_eq!(both.len(), 2);
    assert_eq!(
        sink.published(),
        [both.clone(), both.clone()],
        "neither CA was lost"
    );
    // Both read version 0; the first write won, the second was refused once, merged and written.
    assert_eq!(sink.counts(), (4, 1));
    assert_eq!(sink.publish_calls.load(Ordering::SeqCst), 3);

    for _ in 0..2 {
        a.sync_bundle().await;
        b.sync_bundle().await;
    }
    assert_eq!(
        sink.counts(),
        (4, 1),
        "replicas that trust the same CAs do not ping-pong writes"
    );
    assert_eq!(ders(&a.bundle()), both);
    assert_eq!(ders(&b.bundle()), both);
}

#[tokio::test]
async fn a_rotation_keeps_the_cas_other_replicas_published_before_and_during_it() {
    common::install_crypto_provider();
    let third_replica = issue(&settings().dns_names, Duration::from_secs(3600)).unwrap();
    let sink = VersionedConfigurations::with_intruders(Vec::new());
    let mut a = SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    let b = SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    let a_first = a.current().ca_pem.clone();
    // B wrote after A's last read; a third replica writes between A's rotation read and its write.
    sink.intruders.lock().unwrap().push(third_replica.ca_pem.clone());
    a.rotate().await.unwrap();

    let expected = union([
        a.current().ca_pem.as_str(),
        a_first.as_str(),
        b.current().ca_pem.as_str(),
        third_replica.ca_pem.as_str(),
    ]);
    assert_eq!(expected.len(), 4);
    assert_eq!(sink.published(), [expected.clone(), expected.clone()]);
    assert_eq!(ders(&a.bundle()), expected);
    assert_eq!(sink.counts().1, 1, "the rotation's first write was refused once");
}

#[tokio::test]
async fn conflicts_are_retried_a_bounded_number_of_times_per_check_then_at_the_next_check() {
    common::install_crypto_provider();
    let other = issue(&settings().dns_names, Duration::from_secs(3600)).unwrap();
    let sink = VersionedConfigurations::with_intruders(vec![other.ca_pem.clone(); MAX_PUBLISH_ATTEMPTS]);
    let mut authority = SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    assert_eq!(MAX_PUBLISH_ATTEMPTS, 5);
    assert_eq!(sink.counts(), (0, 5), "gave up after five refused writes");

    authority.sync_bundle().await;
    let expected = union([authority.current().ca_pem.as_str(), other.ca_pem.as_str()]);
    assert_eq!(sink.published(), [expected.clone(), expected]);
    assert_eq!(sink.counts(), (2, 5));
}

#[tokio::test]
async fn as_many_replicas_as_the_bundle_holds_each_with_current_and_previous_ca_converge_and_go_quiet() {
    common::install_crypto_provider();
    let sink = VersionedConfigurations::with_intruders(Vec::new());
    // Each replica trusts its own current and previous CA plus at most MAX_INHERITED others.
    let replicas = MAX_INHERITED / 2 + 1;
    assert_eq!(replicas, 9);
    let mut authorities = Vec::new();
    for _ in 0..replicas {
        authorities.push(
            SelfSigned::start(settings(), sink.clone(), common::MemoryCaStore::new())
                .await
                .unwrap(),
        );
    }
    let mut all = BTreeSet::new();
    for authority in &mut authorities {
        all.extend(ders(&authority.current().ca_pem));
        authority.rotate().await.unwrap();
        all.extend(ders(&authority.current().ca_pem));
    }
    assert_eq!(all.len(), 2 * replicas);
    assert_eq!(
        sink.published(),
        [all.clone(), all.clone()],
        "no replica's CA was dropped"
    );

    let before = sink.counts();
    for authority in &mut authorities {
        authority.sync_bundle().await;
    }
    assert_eq!(sink.counts(), before, "converged replicas write nothing");
    for authority in &authorities {
        assert_eq!(ders(&authority.bundle()), all);
    }
}
