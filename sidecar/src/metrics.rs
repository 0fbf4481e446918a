//! Prometheus metrics (prometheus-client), served on `GET /metrics`. Label values are bounded: cluster
//! names come from the configuration, outcomes and results are fixed strings.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `exchanges_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExchangeLabels {
    /// Cluster (MCPServer) name.
    pub cluster: String,
    /// `success` or the failure class (`credentials_rejected`, `timeout`, `backoff`, ...).
    pub outcome: &'static str,
}

/// Labels of `cache_lookups_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// Cluster name.
    pub cluster: String,
    /// `hit`, `miss` (this request exchanged) or `joined` (waited for another request's exchange).
    pub result: &'static str,
}

/// Labels of per-cluster histograms and request counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// Cluster name.
    pub cluster: String,
}

/// Labels of `requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Cluster name (empty when no cluster was selected).
    pub cluster: String,
    /// Status class: `2xx`, `3xx`, `4xx`, `5xx`.
    pub code: &'static str,
}

type HistogramFamily = Family<ClusterLabels, Histogram, fn() -> Histogram>;

/// Every metric the sidecar exports.
pub struct Metrics {
    registry: Registry,
    /// Exchanges by cluster and outcome.
    pub exchanges: Family<ExchangeLabels, Counter>,
    /// Cache lookups by cluster and result.
    pub cache_lookups: Family<CacheLabels, Counter>,
    /// Background re-exchanges started, by cluster.
    pub background_refreshes: Family<ClusterLabels, Counter>,
    /// Requests retried after the app answered 401, by cluster.
    pub unauthorized_retries: Family<ClusterLabels, Counter>,
    /// Tokens the cluster's own Dex issued, forwarded without an exchange (cache misses only), by cluster.
    pub passthroughs: Family<ClusterLabels, Counter>,
    /// Requests by cluster and status class.
    pub requests: Family<RequestLabels, Counter>,
    /// Time of one exchange at Dex.
    pub exchange_duration: HistogramFamily,
    /// Time from request received to the app's response headers (includes any exchange).
    pub proxy_duration: HistogramFamily,
}

fn exchange_histogram() -> Histogram {
    // 5 ms .. ~40 s: Dex round trips, up to the exchange timeout.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn proxy_histogram() -> Histogram {
    // 25 µs .. ~13 s: cache hits are tens of microseconds plus the app's own time.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("muster_exchange_sidecar");
        let exchanges = Family::<ExchangeLabels, Counter>::default();
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        let background_refreshes = Family::<ClusterLabels, Counter>::default();
        let unauthorized_retries = Family::<ClusterLabels, Counter>::default();
        let passthroughs = Family::<ClusterLabels, Counter>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let exchange_duration: HistogramFamily = Family::new_with_constructor(exchange_histogram);
        let proxy_duration: HistogramFamily = Family::new_with_constructor(proxy_histogram);
        registry.register(
            "exchanges",
            "Token exchanges at Dex by cluster and outcome",
            exchanges.clone(),
        );
        registry.register(
            "cache_lookups",
            "Exchanged-token cache lookups by cluster and result",
            cache_lookups.clone(),
        );
        registry.register(
            "background_refreshes",
            "Background re-exchanges started",
            background_refreshes.clone(),
        );
        registry.register(
            "unauthorized_retries",
            "Requests retried after the app answered 401",
            unauthorized_retries.clone(),
        );
        registry.register(
            "passthroughs",
            "Tokens issued by the cluster's own Dex (already exchanged, e.g. by Muster), forwarded without an exchange",
            passthroughs.clone(),
        );
        registry.register(
            "requests",
            "Proxied requests by cluster and status class",
            requests.clone(),
        );
        registry.register(
            "exchange_duration_seconds",
            "Duration of one token exchange",
            exchange_duration.clone(),
        );
        registry.register(
            "proxy_duration_seconds",
            "Time to the app's response headers",
            proxy_duration.clone(),
        );
        Self {
            registry,
            exchanges,
            cache_lookups,
            background_refreshes,
            unauthorized_retries,
            passthroughs,
            requests,
            exchange_duration,
            proxy_duration,
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

    /// Counts one proxied request.
    pub fn request(&self, cluster: &str, status: http::StatusCode) {
        let code = match status.as_u16() {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels {
                cluster: cluster.to_string(),
                code,
            })
            .inc();
    }
}

/// Every `outcome` label value of `exchanges_total`, resolved per cluster at start. An outcome missing
/// here (a new failure class) still counts, through the family.
const EXCHANGE_OUTCOMES: &[&str] = &[
    "success",
    "backoff",
    "queue_timeout",
    "credentials_rejected",
    "connector_unknown",
    "connector_not_allowed",
    "access_denied",
    "unreachable",
    "timeout",
    "server_error",
    "issuer_mismatch",
    "invalid_response",
    "invalid_request",
    "other",
    "credentials_unavailable",
    "kubeconfig_unavailable",
    "invalid_headers",
    "aborted",
];

/// One cluster's metric handles, resolved once at start so neither a cache hit nor an exchange builds
/// label strings.
#[derive(Clone)]
pub struct ClusterMetrics {
    /// `exchange_duration_seconds`.
    pub exchange_duration: Histogram,
    exchange_outcomes: Vec<(&'static str, Counter)>,
    exchanges: Family<ExchangeLabels, Counter>,
    cluster: String,
    /// `cache_lookups_total{result="hit"}`.
    pub cache_hit: Counter,
    /// `cache_lookups_total{result="miss"}`.
    pub cache_miss: Counter,
    /// `cache_lookups_total{result="joined"}`.
    pub cache_joined: Counter,
    /// `background_refreshes_total`.
    pub background_refreshes: Counter,
    /// `unauthorized_retries_total`.
    pub unauthorized_retries: Counter,
    /// `passthroughs_total`.
    pub passthrough: Counter,
    /// `proxy_duration_seconds`.
    pub proxy_duration: Histogram,
    requests: [Counter; 4],
}

impl ClusterMetrics {
    /// Counts one exchange `outcome` (`success`, `backoff` or a failure class).
    pub fn exchange(&self, outcome: &'static str) {
        match self.exchange_outcomes.iter().find(|(known, _)| *known == outcome) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let labels = ExchangeLabels {
                    cluster: self.cluster.clone(),
                    outcome,
                };
                self.exchanges.get_or_create(&labels).inc();
            }
        }
    }

    /// Counts one request by status class.
    pub fn request(&self, status: http::StatusCode) {
        let index = match status.as_u16() {
            200..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        };
        self.requests[index].inc();
    }
}

impl Metrics {
    /// The handles for `cluster`.
    pub fn for_cluster(&self, cluster: &str) -> ClusterMetrics {
        let lookup = |result| {
            self.cache_lookups.get_or_create_owned(&CacheLabels {
                cluster: cluster.to_string(),
                result,
            })
        };
        let labels = ClusterLabels {
            cluster: cluster.to_string(),
        };
        let request = |code| {
            self.requests.get_or_create_owned(&RequestLabels {
                cluster: cluster.to_string(),
                code,
            })
        };
        let exchange_outcomes = EXCHANGE_OUTCOMES
            .iter()
            .map(|&outcome| {
                let labels = ExchangeLabels {
                    cluster: cluster.to_string(),
                    outcome,
                };
                (outcome, self.exchanges.get_or_create_owned(&labels))
            })
            .collect();
        ClusterMetrics {
            exchange_duration: self.exchange_duration.get_or_create_owned(&labels),
            exchange_outcomes,
            exchanges: self.exchanges.clone(),
            cluster: cluster.to_string(),
            cache_hit: lookup("hit"),
            cache_miss: lookup("miss"),
            cache_joined: lookup("joined"),
            background_refreshes: self.background_refreshes.get_or_create_owned(&labels),
            unauthorized_retries: self.unauthorized_retries.get_or_create_owned(&labels),
            passthrough: self.passthroughs.get_or_create_owned(&labels),
            proxy_duration: self.proxy_duration.get_or_create_owned(&labels),
            requests: [request("2xx"), request("3xx"), request("4xx"), request("5xx")],
        }
    }
}
