//! Reading MCPServers from the cache tolerantly: the controller needs metadata, spec and the conditions.
//! Muster owns the rest of `status` and may add values this build does not know (a new `state`); such an
//! object must still be probed and keep its credential grant, so the rest of `status` is best effort.

use kube::api::DynamicObject;
use muster_exchange_api::names::{
    CONDITION_CONNECTED, CONDITION_CREDENTIALS_READY, CONDITION_TOKEN_EXCHANGE_READY,
};
use muster_exchange_api::{MCPServer, MCPServerStatus};
use serde_json::{Value, json};

/// Parses metadata and spec strictly, `status` leniently (whole, else conditions only, else none).
pub(crate) fn parse_lenient(object: &DynamicObject) -> Result<MCPServer, serde_json::Error> {
    let mut value = serde_json::to_value(object)?;
    let status = value.as_object_mut().and_then(|o| o.remove("status"));
    let mut server: MCPServer = serde_json::from_value(value)?;
    server.status = status.and_then(lenient_status);
    Ok(server)
}

fn lenient_status(status: Value) -> Option<MCPServerStatus> {
    let conditions_only = json!({"conditions": status.get("conditions").cloned()});
    serde_json::from_value(status)
        .ok()
        .or_else(|| serde_json::from_value(conditions_only).ok())
}

/// The namespace an MCPServer's credentials Secret is in, read from the raw object so it is known even
/// when the object does not parse: the reference's namespace, else the MCPServer's.
pub(crate) fn credentials_namespace(object: &DynamicObject) -> Option<String> {
    let reference = object
        .data
        .pointer("/spec/auth/tokenExchange/clientCredentialsSecretRef/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty());
    reference
        .map(str::to_string)
        .or_else(|| object.metadata.namespace.clone())
}

/// True when `server` carries conditions only this controller writes.
pub(crate) fn has_our_conditions(server: &MCPServer) -> bool {
    server
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                [
                    CONDITION_CREDENTIALS_READY,
                    CONDITION_CONNECTED,
                    CONDITION_TOKEN_EXCHANGE_READY,
                ]
                .contains(&c.type_.as_str())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(status: Value, spec: Value) -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "a", "namespace": "org-a", "resourceVersion": "7"},
            "spec": spec, "status": status}),
        )
        .unwrap()
    }

    fn spec() -> Value {
        json!({"type": "streamable-http", "url": "https://mcp.example/mcp"})
    }

    #[test]
    fn an_unknown_status_state_keeps_the_server_and_its_conditions() {
        let condition = json!({"type": "Connected", "status": "True", "reason": "IssuerMatches", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"});
        let future = object(json!({"state": "Hibernating", "conditions": [condition]}), spec());
        assert!(
            future.clone().try_parse::<MCPServer>().is_err(),
            "the strict parse drops it"
        );
        let server = parse_lenient(&future).unwrap();
        let conditions = server.status.and_then(|s| s.conditions).unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].reason, "IssuerMatches");
        let broken_status = object(json!({"state": "Hibernating", "conditions": "nope"}), spec());
        assert!(parse_lenient(&broken_status).unwrap().status.is_none());
    }

    #[test]
    fn a_broken_spec_is_an_error_whose_credentials_namespace_is_still_known() {
        let broken = object(
            json!({}),
            json!({"type": "carrier-pigeon", "auth": {"tokenExchange": {
                "clientCredentialsSecretRef": {"name": "s", "namespace": "creds"}}}}),
        );
        assert!(parse_lenient(&broken).is_err());
        assert_eq!(credentials_namespace(&broken).as_deref(), Some("creds"));
        assert_eq!(
            credentials_namespace(&object(json!({}), spec())).as_deref(),
            Some("org-a")
        );
    }
}
