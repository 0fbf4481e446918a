//! Parsing `--grant-subject serviceaccount:NAMESPACE/NAME` into RBAC subjects.

use k8s_openapi::api::rbac::v1::Subject;
use muster_exchange_api::validation::syntax::{is_dns1123_label, is_dns1123_subdomain};

/// Why a `--grant-subject` or `--credentials-reader` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid subject {value:?}: {reason}; write it as serviceaccount:NAMESPACE/NAME \
     (for example serviceaccount:muster/mcp-kubernetes)"
)]
pub struct SubjectError {
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `serviceaccount:NAMESPACE/NAME` (the prefix is case-insensitive; `sa:` is accepted too).
pub fn parse_service_account(value: &str) -> Result<Subject, SubjectError> {
    let err = |reason| SubjectError {
        value: value.to_string(),
        reason,
    };
    let (kind, rest) = value
        .split_once(':')
        .ok_or_else(|| err("missing the serviceaccount: prefix"))?;
    if !matches!(kind.to_ascii_lowercase().as_str(), "serviceaccount" | "sa") {
        return Err(err("only ServiceAccount subjects are supported"));
    }
    let (namespace, name) = rest
        .split_once('/')
        .ok_or_else(|| err("missing the / between namespace and name"))?;
    if !is_dns1123_label(namespace) {
        return Err(err("the namespace is not a valid DNS label"));
    }
    if !is_dns1123_subdomain(name) {
        return Err(err("the name is not a valid DNS subdomain"));
    }
    Ok(Subject {
        kind: "ServiceAccount".to_string(),
        name: name.to_string(),
        namespace: Some(namespace.to_string()),
        api_group: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_accounts() {
        let s = parse_service_account("serviceaccount:muster/mcp-kubernetes").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.namespace.as_deref(), s.name.as_str()),
            ("ServiceAccount", Some("muster"), "mcp-kubernetes")
        );
        assert!(parse_service_account("sa:muster/x").is_ok());
    }

    #[test]
    fn refuses_malformed_subjects_with_a_hint() {
        let e = parse_service_account("user:alice").unwrap_err();
        assert_eq!(e.reason, "only ServiceAccount subjects are supported");
        assert!(e.to_string().contains("serviceaccount:NAMESPACE/NAME"));
        assert_eq!(
            parse_service_account("serviceaccount:muster").unwrap_err().reason,
            "missing the / between namespace and name"
        );
        assert_eq!(
            parse_service_account("serviceaccount:Muster/x")
                .unwrap_err()
                .reason,
            "the namespace is not a valid DNS label"
        );
        assert_eq!(
            parse_service_account("serviceaccount:m/").unwrap_err().reason,
            "the name is not a valid DNS subdomain"
        );
    }
}
