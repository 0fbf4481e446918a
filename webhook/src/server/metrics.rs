//! Prometheus metrics of the webhook (prometheus-client), served on `GET /metrics`.
//!
//! Every label set is bounded: route and outcome are fixed strings, refusal reasons come from
//! [`crate::inject::Refusal::reason`]. No label carries a namespace or any other value a review
//! author chooses, so crafted reviews cannot grow the registry (the logs name the namespace).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `reviews_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// `mutate-pods`, `validate-mcpservers`, `mutate-mcpservers`.
    pub route: &'static str,
    /// `allowed`, `patched`, `denied`, `malformed`.
    pub outcome: &'static str,
}

/// Labels of the duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The admission route.
    pub route: &'static str,
}

/// Labels of `refusals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why the pod was refused.
    pub reason: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric the webhook exports.
pub struct Metrics {
    registry: Registry,
    /// Reviews by route and outcome.
    pub reviews: Family<ReviewLabels, Counter>,
    /// Time from body received to response built, by route.
    pub review_duration: HistogramFamily,
    /// Pods that got the sidecar (new or re-injected).
    pub injections: Counter,
    /// Pods refused, by reason.
    pub refusals: Family<ReasonLabels, Counter>,
    /// MCPServers the cache cannot read at all (left out of it; the log names them).
    pub mcpservers_unreadable: Gauge,
}

fn duration_histogram() -> Histogram {
    // 50 µs .. ~1.6 s: the hot path is sub-millisecond, the apiserver gives up at the webhook timeout.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("muster_exchange_webhook");
        let reviews = Family::<ReviewLabels, Counter>::default();
        let review_duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let injections = Counter::default();
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reviews",
            "Admission reviews by route and outcome",
            reviews.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Time to answer one admission review",
            review_duration.clone(),
        );
        registry.register(
            "injections",
            "Pods the token-exchange sidecar was injected into",
            injections.clone(),
        );
        registry.register("refusals", "Pods refused injection, by reason", refusals.clone());
        registry.register(
            "serving_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use (Unix seconds)",
            crate::tls::expiry::gauge(),
        );
        let mcpservers_unreadable = Gauge::default();
        registry.register(
            "mcpservers_unreadable",
            "MCPServers the cache cannot read at all and leaves out (see the log for their names)",
            mcpservers_unreadable.clone(),
        );
        Self {
            registry,
            reviews,
            review_duration,
            injections,
            refusals,
            mcpservers_unreadable,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Records one review.
    pub fn record_review(&self, route: &'static str, outcome: &'static str, seconds: f64) {
        let labels = ReviewLabels { route, outcome };
        self.reviews.get_or_create(&labels).inc();
        self.review_duration
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// Records one refused pod.
    pub fn record_refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&ReasonLabels { reason }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_counters_by_label() {
        let metrics = Metrics::default();
        metrics.record_review("mutate-pods", "patched", 0.0002);
        metrics.record_refusal("unknown-mcpserver");
        metrics.injections.inc();
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                "muster_exchange_webhook_reviews_total{route=\"mutate-pods\",outcome=\"patched\"} 1"
            )
        );
        assert!(text.contains("muster_exchange_webhook_refusals_total{reason=\"unknown-mcpserver\"} 1"));
        assert!(text.contains("muster_exchange_webhook_injections_total 1"));
        assert!(
            text.contains("muster_exchange_webhook_review_duration_seconds_count{route=\"mutate-pods\"} 1")
        );
        assert!(
            text.contains(
                "# TYPE muster_exchange_webhook_serving_certificate_expiry_timestamp_seconds gauge"
            )
        );
    }
}
