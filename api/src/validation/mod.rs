//! Validation of MCPServer objects as pure functions returning field errors and warnings.
//!
//! The rules repeat what Muster's CRD schema and CEL enforce (so `muster-exchange validate` catches the
//! same mistakes offline) and close the gaps Muster leaves open around token exchange, where a
//! misconfiguration would otherwise only show up as a failed exchange at runtime.

mod auth_rules;
mod field_error;
mod spec_rules;
pub mod syntax;

pub use field_error::{ErrorKind, FieldError, Report, Warning};

use crate::mcpserver::MCPServer;

/// Validates a decoded MCPServer.
pub fn validate(mcpserver: &MCPServer) -> Report {
    let mut report = Report::default();
    spec_rules::check(&mcpserver.spec, &mut report);
    auth_rules::check(mcpserver, &mut report);
    report
}

/// Decodes `value` as an MCPServer and validates it. A value that does not decode is reported as an
/// error at the path where decoding stopped, never as a panic.
pub fn validate_value(value: &serde_json::Value) -> Report {
    match decode(value) {
        Ok(mcpserver) => validate(&mcpserver),
        Err(error) => Report {
            errors: vec![error],
            warnings: Vec::new(),
        },
    }
}

/// Decodes an MCPServer, turning a serde failure into a field error with its path.
pub fn decode(value: &serde_json::Value) -> Result<MCPServer, FieldError> {
    serde_path_to_error::deserialize::<_, MCPServer>(value).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { "<root>".to_string() } else { path };
        let detail = err.inner().to_string();
        if detail.starts_with("missing field") {
            FieldError::required(path, detail)
        } else {
            FieldError::invalid(path, "", detail)
        }
    })
}

#[cfg(test)]
mod secret_namespace_tests;
#[cfg(test)]
mod tests;
