//! Where the credentials Secret may live, as validation reports it: the shared
//! [`crate::credentials_policy`] with exact paths, kinds and messages.

use serde_json::{Value, json};

use super::tests::{set, valid, with};
use super::*;

const SECRET_NS: &str = "/spec/auth/tokenExchange/clientCredentialsSecretRef/namespace";
const PATH: &str = "spec.auth.tokenExchange.clientCredentialsSecretRef.namespace";

fn in_namespace(mcpserver_namespace: Option<&str>, secret_namespace: Option<&str>) -> Report {
    let mut obj = valid();
    set(
        &mut obj,
        "/metadata/namespace",
        mcpserver_namespace.map_or(Value::Null, |ns| json!(ns)),
    );
    if let Some(ns) = secret_namespace {
        set(&mut obj, SECRET_NS, json!(ns));
    }
    validate_value(&obj)
}

#[test]
fn a_secret_next_to_its_mcpserver_is_clean() {
    for report in [
        in_namespace(Some("muster"), None),
        in_namespace(Some("muster"), Some("muster")),
        in_namespace(None, Some("org-acme")),
        in_namespace(None, None),
    ] {
        assert_eq!(report.errors, Vec::new());
        assert_eq!(report.warnings, Vec::new());
    }
}

#[test]
fn a_secret_in_a_system_namespace_is_forbidden_with_where_to_put_it() {
    let report = validate_value(&with(SECRET_NS, json!("kube-system")));
    assert_eq!(
        report.errors,
        [FieldError::forbidden(
            PATH,
            "Secret kube-system/cluster-a-token-exchange-credentials is in a system namespace; muster-exchange \
             never reads or grants access to credentials there: create the Secret in the MCPServer's namespace \
             \"muster\" and point clientCredentialsSecretRef at it"
        )]
    );
}

#[test]
fn an_implied_system_namespace_is_forbidden_too() {
    // The reference names no namespace, so the Secret is the MCPServer's: in kube-system here. The
    // controller always judged this effective namespace; validation used to judge only an explicit one.
    let report = in_namespace(Some("kube-public"), None);
    assert_eq!(
        report.errors,
        [FieldError::forbidden(
            PATH,
            "Secret kube-public/cluster-a-token-exchange-credentials is in a system namespace; \
             muster-exchange never reads or grants access to credentials there: move the MCPServer out of \
             \"kube-public\" into an application namespace and create the Secret next to it"
        )]
    );
}

#[test]
fn a_system_namespace_is_forbidden_even_when_the_mcpserver_has_no_namespace() {
    let report = in_namespace(None, Some("kube-node-lease"));
    assert_eq!(
        report.errors,
        [FieldError::forbidden(
            PATH,
            "Secret kube-node-lease/cluster-a-token-exchange-credentials is in a system namespace; \
             muster-exchange never reads or grants access to credentials there: create the Secret in the \
             MCPServer's namespace and point clientCredentialsSecretRef at it"
        )]
    );
}

#[test]
fn another_namespace_is_a_warning_naming_the_controller_flag_and_the_pod_namespace_rule() {
    let report = validate_value(&with(SECRET_NS, json!("org-acme")));
    assert_eq!(report.errors, Vec::new());
    assert_eq!(
        report.warnings,
        [Warning {
            path: PATH.into(),
            message:
                "Secret org-acme/cluster-a-token-exchange-credentials is not in the MCPServer's namespace; \
                      create the Secret in the MCPServer's namespace \"muster\" and point \
                      clientCredentialsSecretRef at it (or, if every MCPServer author may use Secrets in \
                      \"org-acme\", start the controller with --allow-cross-namespace-credentials=true); an \
                      injected sidecar can only mount a Secret from its pod's namespace either way"
                    .into()
        }]
    );
}
