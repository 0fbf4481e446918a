//! The write semantics the mock shares with the real API server: RFC 7386 merge patches, and
//! server-side apply of `status` following the CRD's list type for `status.conditions`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ListType;

/// RFC 7386 JSON merge patch.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(target) = target.as_object_mut() {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Server-side apply of `status`, reduced to what matters here: fields other than `conditions` are set
/// when sent; `conditions` follows the list type.
pub(super) fn apply_status(
    list_type: ListType,
    current: &Value,
    sent: &Value,
    manager: &str,
    owners: &mut BTreeMap<String, String>,
) -> Value {
    let mut status = current.get("status").cloned().unwrap_or_else(|| json!({}));
    let Some(applied) = sent.get("status").and_then(Value::as_object) else {
        return status;
    };
    for (key, value) in applied {
        if key != "conditions" {
            status[key] = value.clone();
        }
    }
    let Some(applied) = applied.get("conditions").and_then(Value::as_array) else {
        return status;
    };
    let type_of = |c: &Value| {
        c.get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match list_type {
        ListType::Atomic => status["conditions"] = Value::Array(applied.clone()),
        ListType::Map => {
            let existing = status["conditions"].as_array().cloned().unwrap_or_default();
            let applied_types: Vec<String> = applied.iter().map(type_of).collect();
            let mut out: Vec<Value> = existing
                .into_iter()
                .filter(|c| {
                    let t = type_of(c);
                    // Entries this manager owned and no longer applies are removed; others stay.
                    !applied_types.contains(&t) && owners.get(&t).is_none_or(|owner| owner != manager)
                })
                .collect();
            owners.retain(|_, owner| owner != manager);
            for condition in applied {
                owners.insert(type_of(condition), manager.to_string());
                out.push(condition.clone());
            }
            status["conditions"] = Value::Array(out);
        }
    }
    status
}
