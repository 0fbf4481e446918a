//! Comparing and merging what we render with what a pod already carries.
//!
//! The API server defaults fields of the containers and volumes we inject (`terminationMessagePath`,
//! `imagePullPolicy`, probe `timeoutSeconds`/`successThreshold`/`httpGet.scheme`, ...) and writes
//! quantities in canonical form (`0.5` → `500m`). So "already injected" means every field we render is
//! present with an equal value ("rendered ⊆ existing"), and a re-injection merges our fields into the
//! existing item, keeping the defaults, instead of replacing it (which would be undone by defaulting and
//! give a patch on every admission).

use serde_json::Value;

use super::quantity::quantity_value;
use crate::inject::layout::is_injected_volume_name;

/// Fields we own whole: merged by replacement, so a quantity the user removed from the annotations
/// does not linger. The API server defaults nothing inside them that we do not render ourselves.
const OWNED_WHOLE: [&str; 1] = ["resources"];

/// Lists of named items that others add to (the ServiceAccount admission plugin mounts its token into
/// every container, ours included): compared and merged by `name`, keeping items that are not ours.
const KEYED_BY_NAME: [&str; 2] = ["volumeMounts", "env"];

/// True when every field of `rendered` is in `existing` with an equal value. Arrays must have the same
/// length and match item by item; under `resources`, quantities compare by value.
pub fn is_rendered_in(rendered: &Value, existing: &Value) -> bool {
    contains(rendered, existing, false)
}

fn contains(rendered: &Value, existing: &Value, quantities: bool) -> bool {
    match (rendered, existing) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, value)| {
            let Some(found) = have.get(key) else {
                return false;
            };
            match (value, found) {
                (Value::Array(w), Value::Array(h)) if KEYED_BY_NAME.contains(&key.as_str()) => {
                    contains_by_name(w, h)
                }
                _ => contains(value, found, quantities || key == "resources"),
            }
        }),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contains(w, h, quantities))
        }
        (Value::String(want), Value::String(have)) if quantities && want != have => {
            quantity_value(want).is_some_and(|w| Some(w) == quantity_value(have))
        }
        _ => rendered == existing,
    }
}

/// Every rendered item is there (by name, with equal fields) and no injected item we no longer render.
fn contains_by_name(want: &[Value], have: &[Value]) -> bool {
    let stale = have
        .iter()
        .any(|h| is_injected_volume_name(name(h)) && !want.iter().any(|w| name(w) == name(h)));
    !stale
        && want
            .iter()
            .all(|w| have.iter().any(|h| name(h) == name(w) && contains(w, h, false)))
}

/// `existing` with every field of `rendered` written into it: objects merge key by key, arrays of the
/// same length item by item, anything else (and [`OWNED_WHOLE`] fields) is replaced by `rendered`.
pub fn merge_rendered(existing: &Value, rendered: &Value) -> Value {
    match (existing, rendered) {
        (Value::Object(have), Value::Object(want)) => {
            let mut merged = have.clone();
            for (key, value) in want {
                let slot = match (have.get(key), value) {
                    (Some(Value::Array(found)), Value::Array(items))
                        if KEYED_BY_NAME.contains(&key.as_str()) =>
                    {
                        merge_by_name(found, items)
                    }
                    (Some(found), _) if !OWNED_WHOLE.contains(&key.as_str()) => merge_rendered(found, value),
                    _ => value.clone(),
                };
                merged.insert(key.clone(), slot);
            }
            Value::Object(merged)
        }
        (Value::Array(have), Value::Array(want)) if have.len() == want.len() => {
            Value::Array(have.iter().zip(want).map(|(h, w)| merge_rendered(h, w)).collect())
        }
        _ => rendered.clone(),
    }
}

/// Others' items kept in place, ours merged or appended, injected items we no longer render dropped.
fn merge_by_name(have: &[Value], want: &[Value]) -> Value {
    let mut merged: Vec<Value> = have
        .iter()
        .filter(|h| !is_injected_volume_name(name(h)) || want.iter().any(|w| name(w) == name(h)))
        .cloned()
        .collect();
    for item in want {
        match merged.iter_mut().find(|m| name(m) == name(item)) {
            Some(slot) => *slot = merge_rendered(slot, item),
            None => merged.push(item.clone()),
        }
    }
    Value::Array(merged)
}

fn name(item: &Value) -> &str {
    item["name"].as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_added_by_the_api_server_still_count_as_injected() {
        let rendered = json!({"name": "s", "probe": {"httpGet": {"path": "/readyz", "port": 8090}},
            "resources": {"requests": {"cpu": "0.5"}}, "args": ["a"]});
        let existing = json!({"name": "s", "imagePullPolicy": "IfNotPresent",
            "probe": {"httpGet": {"path": "/readyz", "port": 8090, "scheme": "HTTP"}, "timeoutSeconds": 1},
            "resources": {"requests": {"cpu": "500m"}}, "args": ["a"]});
        assert!(is_rendered_in(&rendered, &existing));
        let mounts = json!({"volumeMounts": [{"name": "mx-cred-a", "readOnly": true}]});
        let with_token = json!({"volumeMounts": [{"name": "kube-api-access-x", "readOnly": true},
            {"name": "mx-cred-a", "readOnly": true, "mountPath": "/p"}]});
        assert!(is_rendered_in(&mounts, &with_token), "others' mounts are allowed");
        let stale = json!({"volumeMounts": [{"name": "mx-cred-a", "readOnly": true}, {"name": "mx-cred-b"}]});
        assert!(
            !is_rendered_in(&mounts, &stale),
            "a mount we no longer render is stale"
        );
        assert_eq!(
            merge_rendered(&stale, &json!({"volumeMounts": [{"name": "mx-cred-c"}]}))["volumeMounts"],
            json!([{"name": "mx-cred-c"}])
        );
        assert_eq!(
            merge_rendered(&with_token, &mounts)["volumeMounts"],
            with_token["volumeMounts"]
        );
        assert!(!is_rendered_in(&json!({"args": ["a", "b"]}), &existing));
        assert!(!is_rendered_in(
            &json!({"probe": {"httpGet": {"port": 8091}}}),
            &existing
        ));
        assert!(
            !is_rendered_in(&json!({"name": "0.5"}), &json!({"name": "500m"})),
            "quantities only under resources"
        );
    }

    #[test]
    fn merging_keeps_defaults_and_replaces_resources_whole() {
        let existing = json!({"image": "old", "imagePullPolicy": "IfNotPresent",
            "probe": {"httpGet": {"port": 1, "scheme": "HTTP"}},
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}, "ports": [{"containerPort": 1, "protocol": "TCP"}]});
        let rendered = json!({"image": "new", "probe": {"httpGet": {"port": 2}},
            "resources": {"limits": {"memory": "2Gi"}}, "ports": [{"containerPort": 2}]});
        assert_eq!(
            merge_rendered(&existing, &rendered),
            json!({"image": "new", "imagePullPolicy": "IfNotPresent",
                "probe": {"httpGet": {"port": 2, "scheme": "HTTP"}},
                "resources": {"limits": {"memory": "2Gi"}}, "ports": [{"containerPort": 2, "protocol": "TCP"}]})
        );
    }
}
