//! The `/metrics` exposition of every component, with one series in each labelled family (a family
//! appears in an exposition only once it has a series). Shared by the tests that check names against it:
//! a family added to a component and not given a series here shows up there as a documented or queried
//! name the code does not export.

/// `(controller, webhook, sidecar)` expositions.
pub fn expositions() -> [String; 3] {
    let controller = {
        use muster_exchange_controller::metrics::{
            ErrorLabels, GrantLabels, LoopLabels, Metrics, ProbeLabels, WriteLabels,
        };
        let metrics = Metrics::default();
        metrics
            .reconciles
            .get_or_create(&LoopLabels { r#loop: "probe" })
            .inc();
        metrics
            .errors
            .get_or_create(&ErrorLabels {
                r#loop: "probe",
                error: "list",
            })
            .inc();
        let probe = ProbeLabels {
            cluster: "org/a".into(),
            condition: "DexConnected",
            reason: "Disconnected",
        };
        metrics.probe_results.get_or_create(&probe).inc();
        metrics
            .grants_managed
            .get_or_create(&GrantLabels { kind: "kubeconfig" })
            .set(1);
        metrics
            .grants_refused
            .get_or_create(&GrantLabels { kind: "kubeconfig" })
            .set(1);
        let write = WriteLabels {
            kind: "kubeconfig",
            operation: "apply",
        };
        metrics.grant_writes.get_or_create(&write).inc();
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        text
    };
    let webhook = {
        let metrics = muster_exchange_webhook::server::Metrics::default();
        metrics.record_review("mutate-pods", "patched", 0.001);
        metrics.record_refusal("unknown-mcpserver");
        metrics.encode().expect("encode")
    };
    let sidecar = {
        use muster_exchange_sidecar::metrics::{
            CacheLabels, ClusterLabels, ExchangeLabels, Metrics, RequestLabels,
        };
        let metrics = Metrics::default();
        let cluster = ClusterLabels { cluster: "a".into() };
        let exchange = ExchangeLabels {
            cluster: "a".into(),
            outcome: "success",
        };
        metrics.exchanges.get_or_create(&exchange).inc();
        let lookup = CacheLabels {
            cluster: "a".into(),
            result: "hit",
        };
        metrics.cache_lookups.get_or_create(&lookup).inc();
        metrics.background_refreshes.get_or_create(&cluster).inc();
        metrics.unauthorized_retries.get_or_create(&cluster).inc();
        metrics.passthroughs.get_or_create(&cluster).inc();
        let request = RequestLabels {
            cluster: "a".into(),
            code: "2xx",
        };
        metrics.requests.get_or_create(&request).inc();
        metrics.exchange_duration.get_or_create(&cluster).observe(0.01);
        metrics.proxy_duration.get_or_create(&cluster).observe(0.01);
        metrics.encode().expect("encode")
    };
    [controller, webhook, sidecar]
}

/// `(name, type)` of every metric family in `exposition`, from its `# TYPE` lines.
pub fn families(exposition: &str) -> Vec<(String, String)> {
    exposition
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some("#") || words.next() != Some("TYPE") {
                return None;
            }
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}
