//! `POST /mutate-pods`: token-exchange sidecar injection.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use super::handle_review;
use crate::admission::object_json;
use crate::inject::{Outcome, inject_pod_cached};
use crate::state::AppState;

/// Route name in metrics.
pub const ROUTE: &str = "mutate-pods";

/// The axum handler.
pub async fn mutate_pods(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle_review(&state, ROUTE, &body, decide)
}

/// The decision for one pod review. Only CREATE is mutated: a pod's containers and volumes cannot
/// change afterwards, so any other operation is admitted untouched. `dryRun` needs no special case:
/// the decision has no side effects.
pub fn decide(
    state: &AppState,
    request: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, &'static str) {
    let response = AdmissionResponse::from(request);
    if request.operation != Operation::Create {
        return (response, "allowed");
    }
    let pod = match object_json(request) {
        Ok(Some(pod)) => pod,
        Ok(None) => return (response, "allowed"),
        Err(error) => return (response.deny(format!("cannot read the pod: {error}")), "denied"),
    };
    let namespace = request
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .or_else(|| pod.pointer("/metadata/namespace").and_then(|v| v.as_str()))
        .unwrap_or("default");
    match inject_pod_cached(
        &pod,
        namespace,
        &state.settings,
        state.catalog.as_ref(),
        Some(&state.render_cache),
    ) {
        Ok(Outcome::Inject(patch)) => match response.clone().with_patch(patch) {
            Ok(patched) => {
                state.metrics.injections.inc();
                (patched, "patched")
            }
            Err(error) => (
                response.deny(format!("cannot encode the injection patch: {error}")),
                "denied",
            ),
        },
        Ok(_) => (response, "allowed"),
        Err(refusal) => {
            state.metrics.record_refusal(refusal.reason());
            tracing::info!(uid = %request.uid, %namespace, reason = refusal.reason(), "pod refused");
            (response.deny(refusal.to_string()), "denied")
        }
    }
}
