//! Field errors and warnings in the shape `kubectl` prints them (`path: Required value: detail`).

use std::fmt;

/// The class of a field error, as in Kubernetes' `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A required field is missing.
    Required,
    /// A value is malformed.
    Invalid,
    /// A value appears twice.
    Duplicate,
    /// A field may not be set in this combination.
    Forbidden,
}

/// One problem with one field: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path with camelCase names, e.g. `spec.auth.tokenExchange.connectorId`.
    pub path: String,
    /// The error class.
    pub kind: ErrorKind,
    /// The offending value, for `Invalid` and `Duplicate`.
    pub value: Option<String>,
    /// What is wrong and what to do.
    pub detail: String,
}

/// Something admitted but worth telling the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// JSON path of the field concerned.
    pub path: String,
    /// What will happen and what to do.
    pub message: String,
}

/// The outcome of validating one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Problems that make the object invalid.
    pub errors: Vec<FieldError>,
    /// Admitted, but told.
    pub warnings: Vec<Warning>,
}

impl FieldError {
    /// A missing required field.
    pub fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: ErrorKind::Required,
            value: None,
            detail: detail.into(),
        }
    }
    /// A malformed value.
    pub fn invalid(path: impl Into<String>, value: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: ErrorKind::Invalid,
            value: Some(value.into()),
            detail: detail.into(),
        }
    }
    /// A repeated value.
    pub fn duplicate(path: impl Into<String>, value: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: ErrorKind::Duplicate,
            value: Some(value.into()),
            detail: detail.into(),
        }
    }
    /// A forbidden combination.
    pub fn forbidden(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: ErrorKind::Forbidden,
            value: None,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.value) {
            (ErrorKind::Required, _) => write!(f, "{}: Required value: {}", self.path, self.detail),
            (ErrorKind::Forbidden, _) => write!(f, "{}: Forbidden: {}", self.path, self.detail),
            (ErrorKind::Invalid, v) => {
                write!(
                    f,
                    "{}: Invalid value: {:?}: {}",
                    self.path,
                    v.as_deref().unwrap_or(""),
                    self.detail
                )
            }
            (ErrorKind::Duplicate, v) => {
                write!(
                    f,
                    "{}: Duplicate value: {:?}: {}",
                    self.path,
                    v.as_deref().unwrap_or(""),
                    self.detail
                )
            }
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Report {
    /// True when there is no error (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn error(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.into(),
            message: message.into(),
        });
    }
}
