//! The pod review: token-exchange sidecar injection into a pod being created.

use kube::core::admission::Operation;
use muster_exchange_api::validation::syntax::is_dns1123_label;
use serde_json::Value;

use super::{AdmissionAnswer, AdmissionRequest};
use crate::inject::{EncodedOutcome, inject_pod_encoded};
use crate::server::AppState;

/// The decision for one pod review. Only CREATE is mutated: a pod's containers and volumes cannot
/// change afterwards, so any other operation is admitted untouched. `dryRun` needs no special case:
/// the decision has no side effects.
pub(crate) fn decide(state: &AppState, request: &AdmissionRequest) -> (AdmissionAnswer, &'static str) {
    let response = AdmissionAnswer::allow(request);
    if request.operation != Operation::Create {
        return (response, "allowed");
    }
    let Some(pod) = &request.object else {
        return (response, "allowed");
    };
    let namespace = request
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .or_else(|| pod.pointer("/metadata/namespace").and_then(Value::as_str))
        .unwrap_or("default");
    // The review's own namespace was checked with the body; the pod's is checked here, before it keys
    // the render cache.
    if !is_dns1123_label(namespace) {
        let message = "the pod's metadata.namespace is not a namespace name (a DNS-1123 label)";
        return (response.deny(message.to_string()), "malformed");
    }
    let cache = &state.render_cache;
    match inject_pod_encoded(pod, namespace, &state.settings, state.catalog.as_ref(), cache) {
        Ok(EncodedOutcome::Inject(patch)) => {
            state.metrics.injections.inc();
            (response.with_encoded_patch(patch), "patched")
        }
        Ok(EncodedOutcome::Unchanged(_)) => (response, "allowed"),
        Err(refusal) => {
            state.metrics.record_refusal(refusal.reason());
            tracing::info!(%namespace, reason = refusal.reason(), "pod refused");
            (response.deny(refusal.to_string()), "denied")
        }
    }
}
