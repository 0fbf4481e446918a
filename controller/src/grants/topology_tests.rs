//! The controller follows the MCPServer's topology: it probes M and F alike (the sidecar depends on the
//! exchange in F as Muster does in M), and grants Muster's ServiceAccount the credentials Secret only in
//! M (in F Muster never reads it; the sidecar mounts it).

use muster_exchange_api::MCPServer;
use muster_exchange_api::credentials_policy::CredentialsPolicy;
use serde_json::json;

use super::credential_grants::desired_credential_grants;
use super::fixtures::credential_config;
use crate::probe::target::ProbeTarget;

/// The fixture MCPServer, typed.
fn mcpserver(ns: &str, name: &str, enabled: bool, secret: serde_json::Value) -> MCPServer {
    serde_json::from_value(super::fixtures::mcpserver(ns, name, enabled, secret)).unwrap()
}

/// `mcpserver` with `forwardToken` set.
fn forwarding(name: &str, enabled: bool, secret: &str) -> MCPServer {
    let mut server = mcpserver("muster", name, enabled, json!({"name": secret}));
    if let Some(auth) = server.spec.auth.as_mut() {
        auth.forward_token = true;
    }
    server
}

#[test]
fn only_topology_m_grants_muster_the_credentials_secret() {
    let servers = vec![
        mcpserver("muster", "m", true, json!({"name": "dex-m"})),
        forwarding("f", false, "dex-f"),
        mcpserver("muster", "neither", false, json!({"name": "dex-n"})),
    ];
    let config = credential_config(Some("serviceaccount:muster/muster"), "muster-exchange", false);
    let (grants, refused) = desired_credential_grants(&servers, &config);
    assert!(refused.is_empty());
    let granted: Vec<(&str, Vec<&str>)> = grants
        .values()
        .map(|g| {
            (
                g.namespace.as_str(),
                g.secret_names.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(granted, [("muster", vec!["dex-m"])]);
}

#[test]
fn topologies_m_and_f_are_probed_and_neither_is_not() {
    let policy = CredentialsPolicy::for_controller("muster-exchange", false);
    let m = mcpserver("muster", "m", true, json!({"name": "dex-m"}));
    let f = forwarding("f", false, "dex-f");
    let neither = mcpserver("muster", "neither", false, json!({"name": "dex-n"}));
    let target = |server: &MCPServer| ProbeTarget::from_server(server, None, &policy);
    assert_eq!(
        target(&m).map(|t| t.endpoint),
        Some("https://dex.example/token".into())
    );
    let f_target = target(&f).expect("topology F is probed");
    assert_eq!(f_target.endpoint, "https://dex.example/token");
    assert_eq!(f_target.connector_id, "local");
    // Its Secret is read by the controller for the probe, like M's (not found here).
    assert_eq!(f_target.credentials_check.reason, "SecretNotFound");
    assert!(target(&neither).is_none());
}
