//! The serving certificate's `notAfter`, exported as `muster_exchange_webhook_serving_certificate_expiry_timestamp_seconds`
//! so an alert fires when renewal (self-signed rotation, cert-manager) stops working.
//!
//! Every serving certificate, from files or minted, passes through
//! [`super::server_config::server_config`], which records it here; one process-wide gauge therefore
//! follows every reload and rotation without threading the metrics through each certificate source.

use std::sync::LazyLock;
use std::sync::atomic::AtomicI64;
use std::time::UNIX_EPOCH;

use prometheus_client::metrics::gauge::Gauge;

use super::ca_certs::not_after;

static SERVING_NOT_AFTER: LazyLock<Gauge<i64, AtomicI64>> = LazyLock::new(Gauge::default);

/// The gauge (shared: clones observe the same value), for the metrics registry.
pub fn gauge() -> Gauge<i64, AtomicI64> {
    SERVING_NOT_AFTER.clone()
}

/// Records the `notAfter` of `leaf_der`, the certificate now served; unreadable dates leave it as is.
pub(crate) fn record(leaf_der: &[u8]) {
    let seconds = not_after(leaf_der)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    if let Some(seconds) = seconds {
        SERVING_NOT_AFTER.set(seconds);
    }
}
