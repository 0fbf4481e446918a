//! `--self-signed`: mint a CA and serving certificate, publish the CA, rotate before expiry.
//!
//! Rotation order matters: the new CA is published (next to the old one) first, the new serving
//! certificate is switched in only after that succeeded and a propagation delay passed. The old CA stays in
//! the bundle until it expires, so an API server with a stale view of the bundle still trusts us.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use super::TlsError;
use super::authority::{IssuedCertificate, issue, rotation_due};
use super::ca_bundle::CaBundleSink;

/// Retry interval while the CA bundle has not been published yet.
const PUBLISH_RETRY: Duration = Duration::from_secs(5);

/// How the self-signed authority behaves.
#[derive(Debug, Clone)]
pub struct SelfSignedSettings {
    /// DNS names of the serving certificate (the Service's names).
    pub dns_names: Vec<String>,
    /// Lifetime of each CA and serving certificate.
    pub validity: Duration,
    /// How often to check for rotation and retry a failed publication.
    pub check_interval: Duration,
    /// Wait between publishing a new CA and serving the certificate it signed.
    pub propagation_delay: Duration,
}

/// The running authority: what is served, what is trusted.
pub struct SelfSigned {
    settings: SelfSignedSettings,
    sink: Arc<dyn CaBundleSink>,
    config: RustlsConfig,
    current: IssuedCertificate,
    previous: Option<IssuedCertificate>,
    published: bool,
}

impl SelfSigned {
    /// Mints the first generation and tries to publish it; serving starts even if publishing failed
    /// (it is retried), because the API server may already trust an earlier bundle.
    pub async fn start(settings: SelfSignedSettings, sink: Arc<dyn CaBundleSink>) -> Result<Self, TlsError> {
        let current = issue(&settings.dns_names, settings.validity)?;
        let config = RustlsConfig::from_pem(
            current.cert_pem.clone().into_bytes(),
            current.key_pem.clone().into_bytes(),
        )
        .await
        .map_err(|error| TlsError::Load {
            what: "the self-signed certificate".into(),
            error,
        })?;
        let mut authority = Self {
            settings,
            sink,
            config,
            current,
            previous: None,
            published: false,
        };
        authority.publish_current().await;
        Ok(authority)
    }

    /// The rustls configuration to serve with; reloaded in place on rotation.
    pub fn rustls_config(&self) -> RustlsConfig {
        self.config.clone()
    }

    /// The CA certificates to trust now (PEM): the current one, and the previous one until it expires.
    pub fn bundle(&self) -> String {
        let mut bundle = self.current.ca_pem.clone();
        if let Some(previous) = self.previous.as_ref().filter(|p| p.not_after > SystemTime::now()) {
            bundle.push_str(&previous.ca_pem);
        }
        bundle
    }

    /// The generation being served.
    pub fn current(&self) -> &IssuedCertificate {
        &self.current
    }

    async fn publish_current(&mut self) {
        match self.sink.publish(&self.bundle()).await {
            Ok(()) => {
                tracing::info!("published the webhook CA bundle");
                self.published = true;
            }
            Err(error) => tracing::warn!(%error, "cannot publish the webhook CA bundle; will retry"),
        }
    }

    /// Mints a new generation, publishes it next to the current CA, then serves it.
    pub async fn rotate(&mut self) -> Result<(), TlsError> {
        let next = issue(&self.settings.dns_names, self.settings.validity)?;
        let bundle = format!("{}{}", next.ca_pem, self.current.ca_pem);
        self.sink.publish(&bundle).await.map_err(TlsError::Publish)?;
        tokio::time::sleep(self.settings.propagation_delay).await;
        self.config
            .reload_from_pem(
                next.cert_pem.clone().into_bytes(),
                next.key_pem.clone().into_bytes(),
            )
            .await
            .map_err(|error| TlsError::Load {
                what: "the rotated self-signed certificate".into(),
                error,
            })?;
        self.previous = Some(std::mem::replace(&mut self.current, next));
        self.published = true;
        tracing::info!("rotated the self-signed serving certificate");
        Ok(())
    }

    /// Checks on an interval until `stop`: retries publication (every few seconds until it succeeds,
    /// e.g. while the webhook configurations are not applied yet), rotates when due.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            let wait = if self.published {
                self.settings.check_interval
            } else {
                PUBLISH_RETRY.min(self.settings.check_interval)
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if !self.published {
                self.publish_current().await;
            }
            // Wall-clock time, so a suspended node notices expiry on wake-up.
            if rotation_due(&self.current, SystemTime::now())
                && let Err(error) = self.rotate().await
            {
                tracing::warn!(%error, "certificate rotation failed; still serving the current certificate, will retry");
            }
        }
    }
}
