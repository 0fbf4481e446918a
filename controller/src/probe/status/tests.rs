//! The pure merge of our conditions into a list other writers share.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::*;
use crate::probe::outcome::Check;

fn server(conditions: Value) -> MCPServer {
    serde_json::from_value(json!({
        "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "cluster-a", "namespace": "muster", "generation": 4},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp"},
        "status": {"state": "Connected", "conditions": conditions}
    }))
    .unwrap()
}

fn disconnected() -> ProbeOutcome {
    ProbeOutcome {
        credentials: Check::ok("SecretFound", "s"),
        connected: Check::fail("Disconnected", "d"),
        token_exchange: Check::unknown("NotProbed", "n"),
    }
}

fn cond(type_: &str, status: &str, reason: &str, message: &str, at: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": 4,
        "lastTransitionTime": at})
}

/// Muster's own condition, written with a timestamp format our types would not write back unchanged.
fn musters_ready() -> Value {
    json!({"type": "Ready", "status": "True", "reason": "Reachable", "message": "tcp ok",
        "lastTransitionTime": "2023-01-01T00:00:00.000000+00:00", "extra": {"kept": true}})
}

const OLD: &str = "2023-01-01T00:00:00Z";
const NEW: &str = "2023-11-14T22:13:20Z";

fn now() -> Time {
    Time(Timestamp::from_second(1_700_000_000).unwrap())
}

#[test]
fn only_our_types_change_everything_else_keeps_its_place_and_bytes() {
    let observed = json!([
        cond("ExchangeCredentialsReady", "True", "SecretFound", "s", OLD),
        musters_ready(),
        cond("DexConnected", "True", "DexAnswered", "ok", OLD),
    ]);
    let plan = plan_status(&server(observed.clone()), &disconnected(), &now()).unwrap();
    let (list, flips) = merged_conditions(Some(&observed), ConditionChange::Set(&plan.conditions)).unwrap();
    assert_eq!(
        list,
        json!([
            cond("ExchangeCredentialsReady", "True", "SecretFound", "s", OLD),
            musters_ready(),
            cond("DexConnected", "False", "Disconnected", "d", NEW),
            cond("TokenExchangeVerified", "Unknown", "NotProbed", "n", NEW),
            cond(
                "TokenExchangeReady",
                "False",
                "ChecksFailing",
                "not ready: DexConnected, TokenExchangeVerified",
                NEW
            ),
        ])
    );
    let flipped: Vec<_> = flips
        .iter()
        .map(|(c, old)| (c.type_.as_str(), old.as_deref()))
        .collect();
    assert_eq!(
        flipped,
        [
            ("DexConnected", Some("True")),
            ("TokenExchangeVerified", None),
            ("TokenExchangeReady", None)
        ]
    );
    // The same outcome again against what was written: nothing to write, from the cache or the read.
    assert_eq!(plan_status(&server(list.clone()), &disconnected(), &now()), None);
    assert_eq!(
        merged_conditions(Some(&list), ConditionChange::Set(&plan.conditions)),
        None
    );
}

#[test]
fn clearing_removes_only_ours_and_an_empty_list_becomes_null() {
    let ours = cond("DexConnected", "True", "DexAnswered", "ok", OLD);
    let observed = json!([ours.clone(), musters_ready(), ours.clone()]);
    let (list, flips) = merged_conditions(Some(&observed), ConditionChange::Clear).unwrap();
    assert_eq!(list, json!([musters_ready()]));
    assert!(flips.is_empty());
    assert_eq!(merged_conditions(Some(&list), ConditionChange::Clear), None);
    let (list, _) = merged_conditions(Some(&json!([ours])), ConditionChange::Clear).unwrap();
    assert_eq!(list, Value::Null);
    assert_eq!(merged_conditions(None, ConditionChange::Clear), None);
}

#[test]
fn the_patch_carries_the_version_read_and_nothing_but_the_conditions() {
    assert_eq!(
        status_patch("42", &json!([musters_ready()])),
        json!({"metadata": {"resourceVersion": "42"}, "status": {"conditions": [musters_ready()]}})
    );
}
