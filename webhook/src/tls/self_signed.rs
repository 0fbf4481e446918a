//! `--self-signed`: mint a CA and serving certificate, publish the CA, rotate before expiry.
//!
//! - Start: the CAs already in the configurations' `caBundle` that are still valid (published by the pod
//!   this one replaces) are kept next to the new CA, so the old pod keeps being trusted during a rollout
//!   with `failurePolicy: Fail`. Ready is reported only once the bundle is published and a propagation
//!   delay passed.
//! - Every check interval: both configurations are read back and re-applied when any webhook's
//!   `caBundle` lacks what we trust (a configuration re-created by Helm or Argo CD starts empty).
//! - Rotation: the new CA is published next to the old one first; the new serving certificate is
//!   switched in only after that succeeded and a propagation delay passed. The old CA stays in the bundle
//!   until it expires, so an API server with a stale view of the bundle still trusts us.
//! - Several replicas: each mints its own CA, and the published bundle is the union of every replica's
//!   still-valid CAs. Every write is read-merge-publish conditional on the `resourceVersion` read; when
//!   another replica wrote in between (409 Conflict) we re-read, merge its CAs and retry, so no replica's
//!   CA is lost. Replicas that trust the same set find the bundle intact and write nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use super::TlsError;
use super::authority::{IssuedCertificate, issue, rotation_due};
use super::ca_bundle::{CaBundleSink, PublishError};
use super::ca_certs::{BundledCa, certificates};
use super::server_config::{ClientVerifier, server_config};

/// Retry interval while the CA bundle has not been published yet.
const PUBLISH_RETRY: Duration = Duration::from_secs(5);
/// CAs kept from other replicas and earlier pods at most (newest first): bounds the bundle (about 0.6 KB
/// of PEM per CA) across many restarts. Every pod start mints a CA valid for the whole validity, so more
/// than this many CAs of other pods can be valid at once (several replicas with frequent rollouts, or a
/// crash-looping replica); then each replica drops the oldest, which can be a live replica's current CA,
/// and that replica puts it back: the two keep rewriting the bundle and the older one is untrusted part
/// of the time until the newer CAs expire. Hence one replica by default (its own CAs are always kept).
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
    config: RustlsConfig,
    current: IssuedCertificate,
    previous: Option<IssuedCertificate>,
    /// A generation minted by a rotation whose publication failed (possibly after one configuration took
    /// it): the retry publishes this one, so a half-done write leaves no unused CA in the bundle.
    pending: Option<IssuedCertificate>,
    inherited: Vec<BundledCa>,
    published: bool,
    ready: CancellationToken,
}

impl SelfSigned {
    /// Mints the first generation and tries to publish it with the still-valid CAs already published;
    /// serving starts even if publishing failed (it is retried), but [`Self::ready`] waits for it.
    pub async fn start(settings: SelfSignedSettings, sink: Arc<dyn CaBundleSink>) -> Result<Self, TlsError> {
        let current = issue(&settings.dns_names, settings.validity)?;
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
            config,
            current,
            previous: None,
            pending: None,
            inherited: Vec::new(),
            published: false,
            ready: CancellationToken::new(),
        };
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

    /// The CA certificates to trust now (PEM): the current one, the previous one and those kept from
    /// earlier pods, each until it expires.
    pub fn bundle(&self) -> String {
        let now = SystemTime::now();
        let mut bundle = self.current.ca_pem.clone();
        if let Some(previous) = self.previous.as_ref().filter(|p| p.not_after > now) {
            bundle.push_str(&previous.ca_pem);
        }
        for ca in self.inherited.iter().filter(|ca| ca.not_after > now) {
            bundle.push_str(&ca.pem());
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
            .chain(self.previous.as_ref())
            .chain(next)
            .flat_map(|generation| certificates(&generation.ca_pem))
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

    /// Mints a new generation, publishes it next to what we and the other replicas trust (read, merged
    /// and published conditionally, like every check), then serves it.
    pub async fn rotate(&mut self) -> Result<(), TlsError> {
        let next = match self.pending.take() {
            Some(pending) => pending,
            None => issue(&self.settings.dns_names, self.settings.validity)?,
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
        self.previous = Some(std::mem::replace(&mut self.current, next));
        self.published = true;
        tracing::info!("rotated the self-signed serving certificate");
        Ok(())
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
            self.sync_bundle().await;
            // Wall-clock time, so a suspended node notices expiry on wake-up.
            if rotation_due(&self.current, SystemTime::now())
                && let Err(error) = self.rotate().await
            {
                tracing::warn!(%error, "certificate rotation failed; still serving the current certificate, will retry");
            }
        }
    }
}

/// The certificates of a bundle as a sorted list of DER, to compare bundles regardless of order.
fn sorted_ders(bundle_pem: &str) -> Vec<Vec<u8>> {
    let mut ders: Vec<Vec<u8>> = certificates(bundle_pem).into_iter().map(|ca| ca.der).collect();
    ders.sort();
    ders.dedup();
    ders
}
