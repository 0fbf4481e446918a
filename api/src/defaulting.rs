//! Defaulting exactly as Muster's CRD schema defaults, as a pure function on the object's JSON.
//!
//! An MCPServer admitted while an older CRD without these defaults was installed ends up identical to one
//! admitted under the current CRD. Working on JSON (not the typed struct) keeps fields we do not know
//! untouched, and makes the admission patch exactly the defaults added. Idempotent.

use serde_json::{Map, Value, json};

use crate::mcpserver::{
    DEFAULT_CLIENT_ID_KEY, DEFAULT_CLIENT_SECRET_KEY, DEFAULT_EXCHANGE_SCOPES, DEFAULT_TIMEOUT_SECONDS,
};

/// Fills in missing defaulted fields of an MCPServer object; returns the paths it set.
///
/// Like the API server, a default applies only inside an object that is present: `scopes` is defaulted
/// when `tokenExchange` exists, the key names when `clientCredentialsSecretRef` exists.
pub fn apply_defaults(object: &mut Value) -> Vec<&'static str> {
    let mut set = Vec::new();
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return set;
    };
    default_field(spec, "autoStart", json!(false), "spec.autoStart", &mut set);
    default_field(
        spec,
        "timeout",
        json!(DEFAULT_TIMEOUT_SECONDS),
        "spec.timeout",
        &mut set,
    );
    let Some(auth) = spec.get_mut("auth").and_then(Value::as_object_mut) else {
        return set;
    };
    default_field(auth, "type", json!("none"), "spec.auth.type", &mut set);
    default_field(
        auth,
        "forwardToken",
        json!(false),
        "spec.auth.forwardToken",
        &mut set,
    );
    let Some(te) = auth.get_mut("tokenExchange").and_then(Value::as_object_mut) else {
        return set;
    };
    default_field(
        te,
        "enabled",
        json!(false),
        "spec.auth.tokenExchange.enabled",
        &mut set,
    );
    default_field(
        te,
        "scopes",
        json!(DEFAULT_EXCHANGE_SCOPES),
        "spec.auth.tokenExchange.scopes",
        &mut set,
    );
    let Some(secret) = te
        .get_mut("clientCredentialsSecretRef")
        .and_then(Value::as_object_mut)
    else {
        return set;
    };
    default_field(
        secret,
        "clientIdKey",
        json!(DEFAULT_CLIENT_ID_KEY),
        "spec.auth.tokenExchange.clientCredentialsSecretRef.clientIdKey",
        &mut set,
    );
    default_field(
        secret,
        "clientSecretKey",
        json!(DEFAULT_CLIENT_SECRET_KEY),
        "spec.auth.tokenExchange.clientCredentialsSecretRef.clientSecretKey",
        &mut set,
    );
    set
}

fn default_field(
    map: &mut Map<String, Value>,
    key: &str,
    value: Value,
    path: &'static str,
    set: &mut Vec<&'static str>,
) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
        set.push(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_token_exchange_like_the_crd_and_is_idempotent() {
        let mut obj = json!({"spec": {"type": "streamable-http", "auth": {"tokenExchange": {
            "dexTokenEndpoint": "https://d/token",
            "clientCredentialsSecretRef": {"name": "s"}
        }}}});
        let set = apply_defaults(&mut obj);
        assert_eq!(set.len(), 8);
        let te = &obj["spec"]["auth"]["tokenExchange"];
        assert_eq!(te["enabled"], json!(false));
        assert_eq!(te["scopes"], json!("openid profile email groups"));
        assert_eq!(
            te["clientCredentialsSecretRef"]["clientIdKey"],
            json!("client-id")
        );
        assert_eq!(
            te["clientCredentialsSecretRef"]["clientSecretKey"],
            json!("client-secret")
        );
        let snapshot = obj.clone();
        assert!(apply_defaults(&mut obj).is_empty());
        assert_eq!(obj, snapshot);
    }

    #[test]
    fn keeps_values_the_user_set_and_adds_nothing_outside_present_objects() {
        let mut obj = json!({"spec": {"type": "stdio", "timeout": 5, "autoStart": true}});
        assert!(apply_defaults(&mut obj).is_empty());
        assert_eq!(
            obj,
            json!({"spec": {"type": "stdio", "timeout": 5, "autoStart": true}})
        );
        let mut obj = json!({"spec": {"auth": {"tokenExchange": {"scopes": "openid"}}, "timeout": 5, "autoStart": true}});
        apply_defaults(&mut obj);
        assert_eq!(obj["spec"]["auth"]["tokenExchange"]["scopes"], json!("openid"));
        assert!(
            obj["spec"]["auth"]["tokenExchange"]
                .get("clientCredentialsSecretRef")
                .is_none()
        );
    }

    #[test]
    fn agrees_with_the_typed_defaults() {
        // Decoding through the Rust types applies serde defaults; both paths must give the same object.
        let mut obj = json!({"apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "a"},
            "spec": {"type": "sse", "url": "https://x", "auth": {"tokenExchange": {"clientCredentialsSecretRef": {"name": "s"}}}}});
        let typed: crate::MCPServer = serde_json::from_value(obj.clone()).unwrap();
        apply_defaults(&mut obj);
        assert_eq!(serde_json::to_value(&typed).unwrap()["spec"], obj["spec"]);
    }
}
