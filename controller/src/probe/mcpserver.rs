//! Reading MCPServers from the cache tolerantly: the controller needs metadata, spec and the conditions.
//! Muster owns the rest of `status` and may add values this build does not know (a new `state`); such an
//! object must still be probed and keep its credential grant. Objects are parsed one by one, so one that
//! cannot be read at all costs only itself (logged, counted in `mcpservers_unreadable`).

use kube::api::DynamicObject;
use muster_exchange_api::MCPServer;
use muster_exchange_api::names::is_our_condition_type;
use serde_json::Value;

/// Parses an object from the cache. `status` never fails it (the api types read it field by field, and
/// enums keep values this build does not know), so an error means metadata or spec cannot be read.
pub(crate) fn parse_lenient(object: &DynamicObject) -> Result<MCPServer, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(object)?)
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
        .is_some_and(|conditions| conditions.iter().any(|c| is_our_condition_type(&c.type_)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
        let condition = json!({"type": "DexConnected", "status": "True", "reason": "IssuerMatches", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"});
        let future = object(
            json!({"state": "Awaiting Session", "conditions": [condition], "newField": {"x": 1}}),
            spec(),
        );
        let status = parse_lenient(&future).unwrap().status.unwrap();
        assert_eq!(
            status.state,
            Some(muster_exchange_api::ServerState::AwaitingSession)
        );
        let conditions = status.conditions.unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].reason, "IssuerMatches");
        let broken_status = object(json!({"state": 7, "conditions": "nope"}), spec());
        let status = parse_lenient(&broken_status).unwrap().status.unwrap();
        assert_eq!((status.state, status.conditions), (None, None));
    }

    #[test]
    fn an_unknown_spec_type_is_read() {
        let future_type = object(json!({}), json!({"type": "websocket", "url": "wss://x"}));
        assert!(parse_lenient(&future_type).unwrap().spec.server_type.is_unknown());
    }

    #[test]
    fn a_broken_spec_is_an_error_whose_credentials_namespace_is_still_known() {
        let broken = object(
            json!({}),
            json!({"type": ["carrier-pigeon"], "auth": {"tokenExchange": {
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
