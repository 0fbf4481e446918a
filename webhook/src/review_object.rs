//! Reading `request.object` / `request.oldObject` without their `metadata.managedFields`.
//!
//! managedFields is often the largest part of a review (every field of every manager) and no decision
//! reads it, so it is skipped while parsing instead of being built into a JSON tree and dropped.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// `deserialize_with` for an optional object: `null` is `None`, anything but an object is an error.
pub fn without_managed_fields<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Ok(Option::<Object>::deserialize(deserializer)?.map(|object| object.0))
}

/// A JSON object whose `metadata` member loses `managedFields`.
struct Object(Value);

/// A `metadata` object without `managedFields`.
struct Metadata(Value);

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor { skip: "" })
            .map(Object)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor {
                skip: "managedFields",
            })
            .map(Metadata)
    }
}

/// Builds a JSON object, skipping the member `skip` and reading `metadata` as [`Metadata`] at the top.
struct ObjectVisitor {
    skip: &'static str,
}

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if key == self.skip {
                access.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = if self.skip.is_empty() && key == "metadata" {
                access
                    .next_value::<Option<Metadata>>()?
                    .map_or(Value::Null, |m| m.0)
            } else {
                access.next_value::<Value>()?
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "without_managed_fields")]
        object: Option<Value>,
    }

    #[test]
    fn managed_fields_are_dropped_and_everything_else_kept() {
        let holder: Holder = serde_json::from_value(json!({"object": {
            "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}], "labels": {"a": "b"}},
            "spec": {"managedFields": "kept: only metadata's is dropped"}
        }}))
        .unwrap();
        assert_eq!(
            holder.object,
            Some(json!({"metadata": {"name": "p", "labels": {"a": "b"}},
                "spec": {"managedFields": "kept: only metadata's is dropped"}}))
        );
    }

    #[test]
    fn null_and_missing_are_none_and_other_types_are_errors() {
        assert_eq!(
            serde_json::from_str::<Holder>(r#"{"object":null}"#)
                .unwrap()
                .object,
            None
        );
        assert_eq!(serde_json::from_str::<Holder>("{}").unwrap().object, None);
        let error = serde_json::from_str::<Holder>(r#"{"object":"x"}"#).err().unwrap();
        assert!(error.to_string().contains("expected a JSON object"), "{error}");
        let metadata_null: Holder = serde_json::from_str(r#"{"object":{"metadata":null}}"#).unwrap();
        assert_eq!(metadata_null.object, Some(json!({"metadata": null})));
    }
}
