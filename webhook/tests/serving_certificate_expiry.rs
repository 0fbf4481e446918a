//! The serving certificate's notAfter is exported as a gauge whenever a certificate is loaded (one test
//! in its own binary: the gauge is process-wide).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::time::{Duration, UNIX_EPOCH};

use muster_exchange_webhook::server::Metrics;
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use muster_exchange_webhook::tls::server_config::server_config;

#[test]
fn every_loaded_serving_certificate_sets_the_expiry_gauge() {
    common::install_crypto_provider();
    let metrics = Metrics::default();
    let names = service_dns_names("muster-exchange-webhook", "muster-exchange");
    for validity in [Duration::from_secs(3600), Duration::from_secs(7200)] {
        let issued = issue(&names, validity).unwrap();
        server_config(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes(), &None).unwrap();
        let expected = issued.not_after.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(&format!(
                "muster_exchange_webhook_serving_certificate_expiry_timestamp_seconds {expected}\n"
            )),
            "{text}"
        );
    }
}
