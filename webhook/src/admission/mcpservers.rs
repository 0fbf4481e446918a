//! The MCPServer reviews: validation against the foundation rules, and defaulting to what Muster's CRD
//! schema would add.

use kube::core::admission::Operation;
use muster_exchange_api::defaulting::apply_defaults;
use muster_exchange_api::validation::validate_value;

use super::{AdmissionAnswer, AdmissionRequest};
use crate::server::AppState;

/// Errors deny with every message; warnings go back to the client as AdmissionResponse warnings.
///
/// An UPDATE that leaves the spec as it was is never denied (its errors come back as warnings): an object
/// that became invalid under newer rules must still accept labels, annotations and finalizer removal,
/// or it could never finish Terminating. An object being deleted is always admitted.
pub(crate) fn decide_validation(
    _state: &AppState,
    request: &AdmissionRequest,
) -> (AdmissionAnswer, &'static str) {
    let response = AdmissionAnswer::allow(request);
    let Some(object) = changed_object(request) else {
        return (response, "allowed");
    };
    let report = validate_value(object);
    let mut warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    if report.is_valid() {
        return (response.with_warnings(warnings), "allowed");
    }
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    if spec_unchanged(request, object) {
        warnings.extend(errors.iter().map(|e| {
            format!(
                "MCPServer {} is invalid (the spec is unchanged, so this update is admitted): {e}",
                display_name(request)
            )
        }));
        return (response.with_warnings(warnings), "allowed");
    }
    let response = response.with_warnings(warnings);
    let message = format!(
        "MCPServer {} is invalid: {}",
        display_name(request),
        errors.join("; ")
    );
    (response.deny(message), "denied")
}

/// The patch adds exactly the defaults Muster's CRD schema would add.
pub(crate) fn decide_defaults(
    _state: &AppState,
    request: &AdmissionRequest,
) -> (AdmissionAnswer, &'static str) {
    let response = AdmissionAnswer::allow(request);
    let Some(object) = changed_object(request) else {
        return (response, "allowed");
    };
    let mut defaulted = object.clone();
    if apply_defaults(&mut defaulted).is_empty() {
        return (response, "allowed");
    }
    (
        response.with_patch(json_patch::diff(object, &defaulted)),
        "patched",
    )
}

/// The object of CREATE and UPDATE; nothing to check for DELETE and CONNECT, nor for an object being
/// deleted (its finalizers must be removable whatever its spec says).
fn changed_object(request: &AdmissionRequest) -> Option<&serde_json::Value> {
    let object = match request.operation {
        Operation::Create | Operation::Update => request.object.as_ref()?,
        Operation::Delete | Operation::Connect => return None,
    };
    let deleting = object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    (!deleting).then_some(object)
}

/// An UPDATE whose `spec` equals the old object's.
fn spec_unchanged(request: &AdmissionRequest, object: &serde_json::Value) -> bool {
    request.operation == Operation::Update
        && request
            .old_object
            .as_ref()
            .is_some_and(|old| old.get("spec") == object.get("spec"))
}

fn display_name(request: &AdmissionRequest) -> String {
    let namespace = request.namespace.as_deref().unwrap_or_default();
    if namespace.is_empty() {
        request.name.clone()
    } else {
        format!("{namespace}/{}", request.name)
    }
}
