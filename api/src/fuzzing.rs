//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which
//! cargo-fuzz sets): thin wrappers, so the targets depend on these names and not on the module layout.

use serde_json::Value;

use crate::documents::{DocumentError, parse_documents};
use crate::validation::{FieldError, Report};

/// The objects of a manifest text (YAML stream, JSON object, array or stream), as `validate` reads them.
pub fn documents(text: &str) -> Result<Vec<Value>, DocumentError> {
    parse_documents(text, "fuzz").map(|documents| documents.into_iter().map(|d| d.value).collect())
}

/// Decoding and validation of one object.
pub fn validate(object: &Value) -> Report {
    crate::validation::validate_value(object)
}

/// Decoding alone.
pub fn decode(object: &Value) -> Result<crate::MCPServer, FieldError> {
    crate::validation::decode(object)
}

/// The CRD defaults filled in; returns the paths set.
pub fn apply_defaults(object: &mut Value) -> Vec<&'static str> {
    crate::defaulting::apply_defaults(object)
}
