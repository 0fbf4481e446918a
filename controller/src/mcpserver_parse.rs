//! Reading MCPServers from the cache leniently: the controller needs metadata, spec and the conditions.
//! Muster owns the rest of `status` and may add values this build does not know (a new `state`); such an
//! object must still be probed and keep its credential grant. Objects are parsed one by one, so one that
//! cannot be read at all costs only itself (logged, counted in `mcpservers_unreadable`).

use std::collections::HashMap;

use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use muster_exchange_api::MCPServer;

/// MCPServers as read from the cache, and how many objects did not parse (spec or metadata broken).
#[derive(Debug, Default)]
pub struct ParsedServers {
    /// The MCPServers that parsed.
    pub servers: Vec<MCPServer>,
    /// Objects that did not parse: the view is incomplete, so nothing may be deleted on its basis.
    pub malformed: usize,
}

/// Parses an object from the cache. `status` never fails it (the api types read it field by field, and
/// enums keep values this build does not know), so an error means metadata or spec cannot be read.
pub fn parse_lenient(object: &DynamicObject) -> Result<MCPServer, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(object)?)
}

/// Every MCPServer in the store; objects that do not parse are counted and, with `report`, logged.
pub fn parsed_servers(store: &Store<DynamicObject>, report: bool) -> ParsedServers {
    let mut parsed = ParsedServers::default();
    for object in store.state() {
        match parse_lenient(&object) {
            Ok(server) => parsed.servers.push(server),
            Err(e) => {
                parsed.malformed += 1;
                if report {
                    tracing::warn!(name = ?object.metadata.name, namespace = ?object.metadata.namespace,
                        error = %e, "a malformed MCPServer: no probe until it is fixed, and no credential \
                        grant is deleted meanwhile");
                }
            }
        }
    }
    parsed
}

/// Parse results remembered by `namespace/name` and resourceVersion, so the probe loop's frequent ticks
/// parse an object again only when it changed.
#[derive(Default)]
pub struct ParseCache {
    entries: HashMap<String, (Option<String>, Option<MCPServer>)>,
}

impl ParseCache {
    /// The MCPServers in `store` that parse (unchanged objects are not parsed again).
    pub fn servers(&mut self, store: &Store<DynamicObject>) -> Vec<MCPServer> {
        let mut seen = HashMap::with_capacity(self.entries.len());
        for object in store.state() {
            let key = format!(
                "{}/{}",
                object.metadata.namespace.as_deref().unwrap_or_default(),
                object.metadata.name.as_deref().unwrap_or_default()
            );
            let version = object.metadata.resource_version.clone();
            let entry = match self.entries.remove(&key) {
                Some(entry) if entry.0 == version && version.is_some() => entry,
                _ => (version, parse_lenient(&object).ok()),
            };
            seen.insert(key, entry);
        }
        self.entries = seen;
        self.entries.values().filter_map(|(_, s)| s.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn object(name: &str, status: Value, spec: Value) -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": name, "namespace": "org-a", "resourceVersion": "7"},
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
            "a",
            json!({"state": "Awaiting Session", "conditions": [condition], "newField": {"x": 1}}),
            spec(),
        );
        let server = parse_lenient(&future).unwrap();
        let status = server.status.unwrap();
        assert_eq!(
            status.state,
            Some(muster_exchange_api::ServerState::AwaitingSession)
        );
        let conditions = status.conditions.unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].reason, "IssuerMatches");
        let broken_status = object("a", json!({"state": 7, "conditions": "nope"}), spec());
        let status = parse_lenient(&broken_status).unwrap().status.unwrap();
        assert_eq!((status.state, status.conditions), (None, None));
    }

    #[test]
    fn an_unknown_spec_type_is_read_and_an_unreadable_spec_is_counted() {
        let future_type = object(
            "future",
            json!({}),
            json!({"type": "websocket", "url": "wss://x"}),
        );
        assert!(parse_lenient(&future_type).unwrap().spec.server_type.is_unknown());
        let broken = object("broken", json!({}), json!({"type": ["carrier-pigeon"]}));
        assert!(parse_lenient(&broken).is_err());
        let store = crate::fixtures::synced_store(&[
            serde_json::to_value(broken).unwrap(),
            serde_json::to_value(future_type).unwrap(),
            serde_json::to_value(object("a", json!({"state": "Hibernating"}), spec())).unwrap(),
        ]);
        let parsed = parsed_servers(&store, false);
        assert_eq!((parsed.servers.len(), parsed.malformed), (2, 1));
    }
}
