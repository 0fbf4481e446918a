//! Reading `request.object` / `request.oldObject` without their `metadata.managedFields`.
//!
//! managedFields is often the largest part of a review (every field of every manager) and no decision
//! reads it, so it is skipped while parsing instead of being built into a JSON tree and dropped.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// `deserialize_with` for an optional object: `null` is `None`, anything but an object is an error.
pub(crate) fn without_managed_fields<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Ok(Option::<ReviewObject<Value>>::deserialize(deserializer)?.map(|object| object.0))
}

/// A JSON object whose `metadata` member is read as `Meta` (all but `managedFields` for [`Metadata`])
/// and whose `spec` member as `Spec` (all of it for [`Value`]; see [`crate::admission::review_pod`] for pods).
pub(crate) struct ReviewObject<Spec, Meta = Metadata>(pub(crate) Value, PhantomData<(Spec, Meta)>);

/// A `metadata` object without `managedFields`.
pub(crate) struct Metadata(Value);

impl From<Metadata> for Value {
    fn from(metadata: Metadata) -> Value {
        metadata.0
    }
}

impl<'de, Spec, Meta> Deserialize<'de> for ReviewObject<Spec, Meta>
where
    Spec: Deserialize<'de> + Into<Value>,
    Meta: Deserialize<'de> + Into<Value>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor::<Spec, Meta>(PhantomData))
            .map(|object| ReviewObject(object, PhantomData))
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MetadataVisitor).map(Metadata)
    }
}

/// Builds the object, reading `metadata` as `Meta` and `spec` as `Spec`.
struct ObjectVisitor<Spec, Meta>(PhantomData<(Spec, Meta)>);

impl<'de, Spec, Meta> Visitor<'de> for ObjectVisitor<Spec, Meta>
where
    Spec: Deserialize<'de> + Into<Value>,
    Meta: Deserialize<'de> + Into<Value>,
{
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = match key.as_str() {
                "metadata" => access
                    .next_value::<Option<Meta>>()?
                    .map_or(Value::Null, Into::into),
                "spec" => access.next_value::<Spec>()?.into(),
                _ => access.next_value::<Value>()?,
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Builds `metadata` without `managedFields`.
struct MetadataVisitor;

impl<'de> Visitor<'de> for MetadataVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if key == "managedFields" {
                access.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = access.next_value::<Value>()?;
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
