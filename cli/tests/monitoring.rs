//! The monitoring component against the code: every metric the Grafana dashboard and the alert rules
//! query is one the webhook, the sidecar or the controller registers, and the rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`, with a firing and a quiet case for
//! every alert). The promtool part skips, saying why, where promtool is not installed (`.ci/run`
//! installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use muster_exchange_api::documents::{Document, read_documents};
use serde_json::Value;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/components/monitoring")
}

/// Every series name the components expose, from their registries' exposition (`# TYPE` lines):
/// counters as `<name>_total`, histograms as `_bucket`, `_sum` and `_count`. A labelled family appears in
/// the exposition only once it has a series, so the test gives each family one.
fn exported() -> BTreeSet<String> {
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
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    };
    let webhook = {
        let metrics = muster_exchange_webhook::metrics::Metrics::default();
        metrics.record_review("mutate-pods", "patched", "apps", 0.001);
        metrics.record_refusal("unknown-mcpserver");
        metrics.encode().unwrap()
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
        let request = RequestLabels {
            cluster: "a".into(),
            code: "2xx",
        };
        metrics.requests.get_or_create(&request).inc();
        metrics.exchange_duration.get_or_create(&cluster).observe(0.01);
        metrics.proxy_duration.get_or_create(&cluster).observe(0.01);
        metrics.encode().unwrap()
    };
    let mut names = BTreeSet::new();
    for text in [controller, webhook, sidecar] {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("#") || words.next() != Some("TYPE") {
                continue;
            }
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

/// The `muster_exchange_*` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("muster_exchange_"))
        .map(str::to_string)
        .collect()
}

fn dashboard_queries() -> Vec<String> {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(monitoring().join("dashboard.json")).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    queries
}

fn rule_document() -> Document {
    let path = monitoring().join("prometheusrule.yaml");
    read_documents(path.to_str().unwrap()).unwrap().remove(0)
}

fn rules() -> Vec<Value> {
    rule_document().value["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn every_metric_the_dashboard_and_the_alerts_query_is_exported() {
    let exported = exported();
    for expected in [
        "muster_exchange_controller_probe_results_total",
        "muster_exchange_webhook_review_duration_seconds_bucket",
        "muster_exchange_webhook_serving_certificate_expiry_timestamp_seconds",
        "muster_exchange_sidecar_exchanges_total",
    ] {
        assert!(exported.contains(expected), "{expected} in {exported:?}");
    }
    let queries: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .map(|q| ("dashboard".to_string(), q))
        .chain(rules().iter().map(|r| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["expr"].as_str().unwrap().to_string(),
            )
        }))
        .collect();
    let mut queried = BTreeSet::new();
    for (source, query) in &queries {
        let names = metric_names(query);
        assert!(
            !names.is_empty() || query.contains("up{"),
            "{source}: {query} names no metric"
        );
        for name in names {
            assert!(
                exported.contains(&name),
                "{source} queries {name}, which no component exports: {query}"
            );
            queried.insert(name);
        }
    }
    // The dashboard covers every component.
    for component in ["webhook", "sidecar", "controller"] {
        let prefix = format!("muster_exchange_{component}_");
        assert!(
            queried.iter().any(|name| name.starts_with(&prefix)),
            "{component}"
        );
    }
}

#[test]
fn the_disconnected_alert_selects_the_condition_and_reason_the_controller_records() {
    use muster_exchange_api::names::{CONDITION_DEX_CONNECTED, REASON_DISCONNECTED};
    let rule = rules()
        .into_iter()
        .find(|r| r["alert"] == "MusterExchangeClusterDisconnected")
        .unwrap();
    let expr = rule["expr"].as_str().unwrap();
    assert!(
        expr.contains(&format!("condition=\"{CONDITION_DEX_CONNECTED}\"")),
        "{expr}"
    );
    assert!(
        expr.contains(&format!("reason=\"{REASON_DISCONNECTED}\"")),
        "{expr}"
    );
    assert!(
        expr.contains(&format!("reason!=\"{REASON_DISCONNECTED}\"")),
        "{expr}"
    );
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test_and_a_runbook() {
    let tests = read_documents(monitoring().join("tests/rules_test.yaml").to_str().unwrap())
        .unwrap()
        .remove(0)
        .value;
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for test in tests["tests"].as_array().unwrap() {
        for case in test["alert_rule_test"].as_array().unwrap() {
            let entry = cases
                .entry(case["alertname"].as_str().unwrap().to_string())
                .or_default();
            if case["exp_alerts"].as_array().unwrap().is_empty() {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
    }
    let operations =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md")).unwrap();
    for rule in rules() {
        let alert = rule["alert"].as_str().unwrap();
        let (firing, quiet) = cases.get(alert).copied().unwrap_or_default();
        assert!(
            firing >= 1 && quiet >= 1,
            "{alert}: {firing} firing and {quiet} quiet cases"
        );
        let runbook = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = runbook.rsplit_once('#').unwrap().1;
        assert_eq!(anchor, alert.to_lowercase());
        assert!(
            operations.contains(&format!("### {alert}")),
            "docs/operations.md has no runbook section for {alert}"
        );
    }
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!(
            "skipped promtool_checks_and_unit_tests_the_rules: promtool is not installed (Debian package \
             `prometheus`; .ci/run installs it)"
        );
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("promtool");
    std::fs::create_dir_all(&dir).unwrap();
    // JSON is YAML: the PrometheusRule's spec is a plain rules file.
    let spec = serde_json::to_string_pretty(&rule_document().value["spec"]).unwrap();
    std::fs::write(dir.join("rules.yaml"), spec).unwrap();
    std::fs::copy(
        monitoring().join("tests/rules_test.yaml"),
        dir.join("rules_test.yaml"),
    )
    .unwrap();
    for args in [
        ["check", "rules", "rules.yaml"],
        ["test", "rules", "rules_test.yaml"],
    ] {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        println!("promtool {}:\n{printed}", args.join(" "));
        assert!(
            output.status.success(),
            "promtool {} failed:\n{printed}",
            args.join(" ")
        );
        assert!(printed.contains("SUCCESS"), "{printed}");
    }
}
