//! `POST /validate-mcpservers` and `POST /mutate-mcpservers`: the foundation rules and defaults.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use muster_exchange_api::defaulting::apply_defaults;
use muster_exchange_api::validation::validate_value;

use super::handle_review;
use crate::admission::object_json;
use crate::state::AppState;

/// Route name of validation in metrics.
pub const VALIDATE_ROUTE: &str = "validate-mcpservers";
/// Route name of defaulting in metrics.
pub const MUTATE_ROUTE: &str = "mutate-mcpservers";

/// The validating handler.
pub async fn validate_mcpservers(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle_review(&state, VALIDATE_ROUTE, &body, decide_validation)
}

/// The defaulting handler.
pub async fn mutate_mcpservers(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    handle_review(&state, MUTATE_ROUTE, &body, decide_defaults)
}

/// Errors deny with every message; warnings go back to the client as AdmissionResponse warnings.
pub fn decide_validation(
    _state: &AppState,
    request: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, &'static str) {
    let mut response = AdmissionResponse::from(request);
    let object = match changed_object(request) {
        Ok(Some(object)) => object,
        Ok(None) => return (response, "allowed"),
        Err(error) => {
            return (
                response.deny(format!("cannot read the MCPServer: {error}")),
                "denied",
            );
        }
    };
    let report = validate_value(&object);
    if !report.warnings.is_empty() {
        response.warnings = Some(report.warnings.iter().map(ToString::to_string).collect());
    }
    if report.is_valid() {
        return (response, "allowed");
    }
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    let message = format!(
        "MCPServer {} is invalid: {}",
        display_name(request),
        errors.join("; ")
    );
    (response.deny(message), "denied")
}

/// The patch adds exactly the defaults Muster's CRD schema would add.
pub fn decide_defaults(
    _state: &AppState,
    request: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, &'static str) {
    let response = AdmissionResponse::from(request);
    let object = match changed_object(request) {
        Ok(Some(object)) => object,
        Ok(None) => return (response, "allowed"),
        Err(error) => {
            return (
                response.deny(format!("cannot read the MCPServer: {error}")),
                "denied",
            );
        }
    };
    let mut defaulted = object.clone();
    if apply_defaults(&mut defaulted).is_empty() {
        return (response, "allowed");
    }
    match response.clone().with_patch(json_patch::diff(&object, &defaulted)) {
        Ok(patched) => (patched, "patched"),
        Err(error) => (
            response.deny(format!("cannot encode the defaults patch: {error}")),
            "denied",
        ),
    }
}

/// The object of CREATE and UPDATE; nothing to check for DELETE and CONNECT.
fn changed_object(
    request: &AdmissionRequest<DynamicObject>,
) -> Result<Option<serde_json::Value>, serde_json::Error> {
    match request.operation {
        Operation::Create | Operation::Update => object_json(request),
        Operation::Delete | Operation::Connect => Ok(None),
    }
}

fn display_name(request: &AdmissionRequest<DynamicObject>) -> String {
    let namespace = request.namespace.as_deref().unwrap_or_default();
    if namespace.is_empty() {
        request.name.clone()
    } else {
        format!("{namespace}/{}", request.name)
    }
}
