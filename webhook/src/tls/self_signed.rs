//! `--self-signed`: serve a certificate of the CA the replicas share, publish that CA, rotate with overlap.
//!
//! - The CA: one per install, in the Secret [`super::ca_secret::DEFAULT_CA_SECRET`] of the webhook's
//!   namespace, created by whichever replica starts first (create-or-get, so replicas starting together
//!   agree). Each replica mints its own serving certificate (and key) from it; the key never leaves the
//!   pod. The caBundle then holds one CA (two during a CA rotation), however many replicas run.
//! - Start: the CAs already in the configurations' `caBundle` that are still valid (published by pods of
//!   an earlier version, which minted one CA per pod) are kept next to ours, so they keep being trusted
//!   during a rollout with `failurePolicy: Fail`. Ready is reported only once the bundle is published and a
//!   propagation delay passed.
//! - Every check interval: the Secret is read (another replica may have rotated the CA), both
//!   configurations are read back and re-applied when any webhook's `caBundle` lacks what we trust (a
//!   configuration re-created by Helm or Argo CD starts empty).
//! - CA rotation, with overlap: when a third of the CA's validity is left, one replica writes a new CA to
//!   the Secret (conditionally on its `resourceVersion`; a replica that loses the race adopts the
//!   winner's). Every replica, on seeing a new CA, first publishes it next to the old one, waits the
//!   propagation delay, and only then serves a certificate of the new CA. The old CA stays in the bundle
//!   until it expires, so a replica that has not switched yet, and an API server with a stale view of the
//!   bundle, still work.
//! - Serving certificates are renewed from the same CA in the last third of their lifetime (no bundle
//!   change).
//! - Every bundle write is read-merge-publish conditional on the `resourceVersion` read; when another
//!   replica wrote in between (409 Conflict) we re-read, merge and retry, so no CA is lost.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use super::TlsError;
use super::authority::{IssuedCertificate, issue_from, mint_ca, rotation_due};
use super::ca_bundle::{CaBundleSink, PublishError};
use super::ca_certs::{BundledCa, certificates};
use super::ca_secret::{CaStore, CaStoreError, StoredCa};
use super::server_config::{ClientVerifier, server_config};

/// Retry interval while the CA bundle has not been published yet.
const PUBLISH_RETRY: Duration = Duration::from_secs(5);
/// Foreign CAs kept from the published bundle at most (newest first): CAs not in our CA Secret, such as
/// the per-pod CAs of an earlier version or of replicas configured with another Secret. Bounds the bundle
/// (about 0.6 KB of PEM per CA). Replicas sharing the Secret never need this: they trust the same CAs.
pub const MAX_INHERITED: usize = 16;
/// Read-merge-publish attempts per check when other replicas keep writing first (409 Conflict); after
/// that the next check tries again.
pub const MAX_PUBLISH_ATTEMPTS: usize = 5;

/// How the self-signed authority behaves.
#[derive(Debug, Clone)]
pub struct SelfSignedSettings {
    /// DNS names of the serving certificate (the Service's names).
    pub dns_names: Vec<String>,
    /// Lifetime of each CA and serving certificate.
    pub validity: Duration,
    /// How often to re-check the published bundle and rotation, and retry a failed publication.
    pub check_interval: Duration,
    /// Wait between publishing a new CA and relying on it (serving its certificate, reporting ready).
    pub propagation_delay: Duration,
    /// Client certificates required (`--client-ca-file`), or `None`.
    pub client_verifier: ClientVerifier,
}

/// The running authority: what is served, what is trusted.
pub struct SelfSigned {
    settings: SelfSignedSettings,
    sink: Arc<dyn CaBundleSink>,
    store: Arc<dyn CaStore>,
    config: RustlsConfig,
    current: IssuedCertificate,
    /// CAs served from before, and the Secret's previous CA: trusted until they expire.
    previous: Vec<BundledCa>,
    /// A serving certificate whose switch failed because publishing its CA failed (possibly after one
    /// configuration took it): the retry uses this one.
    pending: Option<IssuedCertificate>,
    inherited: Vec<BundledCa>,
    published: bool,
    ready: CancellationToken,
}

impl SelfSigned {
    /// Reads (or creates) the shared CA, mints a serving certificate from it and tries to publish the CA
    /// with the still-valid CAs already published; serving starts even if publishing failed (it is
    /// retried), but [`Self::ready`] waits for it. Fails when the CA Secret can be neither read nor
    /// created.
    pub async fn start(
        settings: SelfSignedSettings,
        sink: Arc<dyn CaBundleSink>,
        store: Arc<dyn CaStore>,
    ) -> Result<Self, TlsError> {
        let shared = shared_ca(store.as_ref(), settings.validity).await?;
        let current = issue_from(&shared.ca, &settings.dns_names, settings.validity)?;
        let config = server_config(
            current.cert_pem.as_bytes(),
            current.key_pem.as_bytes(),
            &settings.client_verifier,
        )
        .map_err(|error| TlsError::Load {
            what: "the self-signed certificate".into(),
            error,
        })?;
        let config = RustlsConfig::from_config(config);
        let mut authority = Self {
            settings,
            sink,
            store,
            config,
            current,
            previous: Vec::new(),
            pending: None,
            inherited: Vec::new(),
            published: false,
            ready: CancellationToken::new(),
        };
        authority.remember_previous(&shared);
        authority.sync_bundle().await;
        Ok(authority)
    }

    /// The rustls configuration to serve with; reloaded in place on rotation.
    pub fn rustls_config(&self) -> RustlsConfig {
        self.config.clone()
    }

    /// Cancelled once the CA bundle is published and the propagation delay passed (by [`Self::run`]).
    pub fn ready(&self) -> CancellationToken {
        self.ready.clone()
    }

    /// The CA certificates to trust now (PEM), each once: the current CA, the previous ones and those
    /// kept from the published bundle, each until it expires.
    pub fn bundle(&self) -> String {
        let now = SystemTime::now();
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut bundle = String::new();
        let current = certificates(&self.current.ca_pem);
        for ca in current
            .iter()
            .chain(&self.previous)
            .chain(&self.inherited)
            .filter(|ca| ca.not_after > now)
        {
            if !seen.contains(&ca.der.as_slice()) {
                seen.push(&ca.der);
                bundle.push_str(&ca.pem());
            }
        }
        bundle
    }

    /// The generation being served.
    pub fn current(&self) -> &IssuedCertificate {
        &self.current
    }

    /// Reads the published bundles, keeps their still-valid CAs, and publishes when any webhook lacks
    /// (or has more than) what we trust. Failures are logged and retried on the next check.
    pub async fn sync_bundle(&mut self) {
        match self.merge_and_publish(None).await {
            Ok(()) => self.published = true,
            Err(error) if error.is_conflict() => tracing::warn!(
                %error,
                attempts = MAX_PUBLISH_ATTEMPTS,
                "other replicas kept writing the webhook CA bundle first; will retry at the next check"
            ),
            Err(error) => tracing::warn!(%error, "cannot publish the webhook CA bundle; will retry"),
        }
    }

    /// Read-merge-publish, with `next` (a CA about to be served) in front of what we trust; on a
    /// conflict re-read and merge again, at most [`MAX_PUBLISH_ATTEMPTS`] times.
    async fn merge_and_publish(&mut self, next: Option<&IssuedCertificate>) -> Result<(), PublishError> {
        let mut attempt = 1;
        loop {
            match self.merge_and_publish_once(next).await {
                Err(error) if error.is_conflict() && attempt < MAX_PUBLISH_ATTEMPTS => {
                    tracing::info!(%error, attempt, "the webhook CA bundle changed under us; merging again");
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// One read, merge and (when any webhook differs from what we trust) conditional publish.
    async fn merge_and_publish_once(&mut self, next: Option<&IssuedCertificate>) -> Result<(), PublishError> {
        let read = self.sink.current().await?;
        let published = read.bundles();
        self.inherit(&published, next);
        let wanted = match next {
            Some(next) => format!("{}{}", next.ca_pem, self.bundle()),
            None => self.bundle(),
        };
        let wanted_set = sorted_ders(&wanted);
        if published.iter().all(|bundle| sorted_ders(bundle) == wanted_set) {
            return Ok(());
        }
        self.sink.publish(&wanted, &read).await?;
        tracing::info!(certificates = wanted_set.len(), "published the webhook CA bundle");
        Ok(())
    }

    /// Remembers the still-valid CAs of `bundles` that are not ours (nor `next`), newest first, at most
    /// [`MAX_INHERITED`].
    fn inherit(&mut self, bundles: &[String], next: Option<&IssuedCertificate>) {
        let now = SystemTime::now();
        let ours: Vec<Vec<u8>> = std::iter::once(&self.current)
            .chain(next)
            .flat_map(|generation| certificates(&generation.ca_pem))
            .chain(self.previous.iter().cloned())
            .map(|ca| ca.der)
            .collect();
        // Ours are never "inherited", even when read back (a pending CA from a half-done write).
        self.inherited.retain(|ca| !ours.contains(&ca.der));
        for ca in bundles.iter().flat_map(|bundle| certificates(bundle)) {
            if !ours.contains(&ca.der) && !self.inherited.iter().any(|kept| kept.der == ca.der) {
                self.inherited.push(ca);
            }
        }
        self.inherited.retain(|ca| ca.not_after > now);
        // Newest first, ties broken by the certificate itself, so replicas that see the same CAs keep the
        // same ones.
        self.inherited
            .sort_by(|a, b| b.not_after.cmp(&a.not_after).then_with(|| a.der.cmp(&b.der)));
        self.inherited.truncate(MAX_INHERITED);
    }

    /// Follows the shared CA: rotates it when due (or adopts another replica's rotation), switches to a
    /// serving certificate of a new CA only after publishing that CA, and renews the serving certificate
    /// in the last third of its lifetime.
    pub async fn follow_ca(&mut self) -> Result<(), TlsError> {
        let shared = shared_ca(self.store.as_ref(), self.settings.validity).await?;
        self.remember_previous(&shared);
        if shared.ca.cert_pem != self.current.ca_pem || rotation_due(&self.current, SystemTime::now()) {
            self.switch_to(&shared).await?;
        }
        Ok(())
    }

    /// Replaces the shared CA now (as [`Self::follow_ca`] does once a third of its validity is left),
    /// then publishes the new CA and switches to a serving certificate of it.
    pub async fn rotate(&mut self) -> Result<(), TlsError> {
        let read = shared_ca(self.store.as_ref(), self.settings.validity).await?;
        let shared = rotate_shared_ca(self.store.as_ref(), &read, self.settings.validity).await?;
        self.remember_previous(&shared);
        self.switch_to(&shared).await
    }

    /// Serves a new certificate of `shared`'s CA, after publishing that CA next to what we trust (read,
    /// merged and published conditionally, like every check) and waiting the propagation delay.
    async fn switch_to(&mut self, shared: &StoredCa) -> Result<(), TlsError> {
        let next = match self.pending.take() {
            Some(pending) if pending.ca_pem == shared.ca.cert_pem => pending,
            _ => issue_from(&shared.ca, &self.settings.dns_names, self.settings.validity)?,
        };
        if let Err(error) = self.merge_and_publish(Some(&next)).await {
            self.pending = Some(next);
            return Err(TlsError::Publish(error));
        }
        tokio::time::sleep(self.settings.propagation_delay).await;
        let rotated = server_config(
            next.cert_pem.as_bytes(),
            next.key_pem.as_bytes(),
            &self.settings.client_verifier,
        )
        .map_err(|error| TlsError::Load {
            what: "the rotated self-signed certificate".into(),
            error,
        })?;
        self.config.reload_from_config(rotated);
        let old = std::mem::replace(&mut self.current, next);
        if old.ca_pem != self.current.ca_pem {
            self.previous.extend(certificates(&old.ca_pem));
            tracing::info!("now serving a certificate of the new shared CA");
        } else {
            tracing::info!("renewed the self-signed serving certificate");
        }
        self.published = true;
        Ok(())
    }

    /// Trusts the Secret's previous CA (a replica may still serve a certificate of it) until it expires;
    /// forgets expired previous CAs.
    fn remember_previous(&mut self, shared: &StoredCa) {
        let now = SystemTime::now();
        for ca in shared
            .previous_pem
            .as_deref()
            .map(certificates)
            .unwrap_or_default()
        {
            if !self.previous.iter().any(|kept| kept.der == ca.der) {
                self.previous.push(ca);
            }
        }
        let current = certificates(&self.current.ca_pem);
        self.previous
            .retain(|ca| ca.not_after > now && !current.iter().any(|c| c.der == ca.der));
    }

    /// Checks on an interval until `stop`: reports ready after the first publication, re-applies the
    /// bundle when a configuration lost it (every few seconds until the first publication succeeds, e.g.
    /// while the configurations are not applied yet), rotates when due.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            if self.published && !self.ready.is_cancelled() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(self.settings.propagation_delay) => {}
                }
                tracing::info!("the CA bundle is published; reporting ready");
                self.ready.cancel();
            }
            let wait = if self.published {
                self.settings.check_interval
            } else {
                PUBLISH_RETRY.min(self.settings.check_interval)
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            // Wall-clock time (in follow_ca), so a suspended node notices expiry on wake-up.
            if let Err(error) = self.follow_ca().await {
                tracing::warn!(%error, "cannot follow the shared CA; still serving the current certificate, will retry");
            }
            self.sync_bundle().await;
        }
    }
}

/// The shared CA: read from the store, created when absent (adopting another replica's when it created
/// it first), rotated when unreadable or due.
async fn shared_ca(store: &dyn CaStore, validity: Duration) -> Result<StoredCa, TlsError> {
    let stored = match store.get().await? {
        Some(stored) => stored,
        None => match store.create(&mint_ca(validity)?).await {
            Ok(created) => {
                tracing::info!("created the shared webhook CA");
                created
            }
            Err(CaStoreError::Conflict) => store.get().await?.ok_or(CaStoreError::Conflict)?,
            Err(error) => return Err(error.into()),
        },
    };
    if stored.ca.rotation_due(validity, SystemTime::now()) {
        return rotate_shared_ca(store, &stored, validity).await;
    }
    Ok(stored)
}

/// Writes a new CA over `read` (which becomes the previous one); when another replica rotated first,
/// adopts its CA instead.
async fn rotate_shared_ca(
    store: &dyn CaStore,
    read: &StoredCa,
    validity: Duration,
) -> Result<StoredCa, TlsError> {
    match store.rotate(read, &mint_ca(validity)?).await {
        Ok(rotated) => {
            tracing::info!("rotated the shared webhook CA");
            Ok(rotated)
        }
        Err(CaStoreError::Conflict) => Ok(store.get().await?.ok_or(CaStoreError::Conflict)?),
        Err(error) => Err(error.into()),
    }
}

/// The certificates of a bundle as a sorted list of DER, to compare bundles regardless of order.
fn sorted_ders(bundle_pem: &str) -> Vec<Vec<u8>> {
    let mut ders: Vec<Vec<u8>> = certificates(bundle_pem).into_iter().map(|ca| ca.der).collect();
    ders.sort();
    ders.dedup();
    ders
}
