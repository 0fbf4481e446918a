//! Reading a pod review's `request.object` with only what injection reads.
//!
//! Injection looks at the pod's labels, annotations and namespace, `spec.initContainers`,
//! `spec.volumes` and the names of `spec.containers`; a re-injection diffs the pod against a copy that
//! differs only in those parts, so every other member of `metadata` and `spec` (and every other field
//! of an app container) cannot change the answer.
//! Skipping them while parsing saves building most of the pod as a JSON tree. Anything of an
//! unexpected type is kept as it is, so the injector still refuses it with the same message.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::admission::review_object::ReviewObject;

/// `deserialize_with` for a pod review's `object`: like
/// [`crate::admission::review_object::without_managed_fields`], `spec` reduced to what injection reads.
pub(crate) fn pod_for_injection<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Ok(Option::<ReviewObject<PodSpec, PodMetadata>>::deserialize(deserializer)?.map(|object| object.0))
}

/// The pod's `metadata`, reduced to name, generateName, namespace, labels and annotations.
pub(crate) struct PodMetadata(Value);

impl From<PodMetadata> for Value {
    fn from(metadata: PodMetadata) -> Value {
        metadata.0
    }
}

impl<'de> Deserialize<'de> for PodMetadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // An object, as for every other review object (anything else is a malformed review).
        deserializer.deserialize_map(Part::Metadata).map(PodMetadata)
    }
}

/// How a member is read: as `metadata`, as `spec`, as the `containers` list, or as one app container.
#[derive(Clone, Copy)]
enum Part {
    Metadata,
    Spec,
    Containers,
    Container,
}

/// The pod's `spec`, reduced (see the module documentation).
pub(crate) struct PodSpec(pub(crate) Value);

impl From<PodSpec> for Value {
    fn from(spec: PodSpec) -> Value {
        spec.0
    }
}

impl<'de> Deserialize<'de> for PodSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Part::Spec.deserialize(deserializer).map(PodSpec)
    }
}

impl<'de> DeserializeSeed<'de> for Part {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Part {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Part::Metadata => "a JSON object",
            Part::Spec | Part::Containers | Part::Container => "any JSON value",
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = match (self, key.as_str()) {
                (Part::Metadata, "name" | "generateName" | "namespace" | "labels" | "annotations")
                | (Part::Spec, "initContainers" | "volumes")
                | (Part::Container, "name") => access.next_value::<Value>()?,
                (Part::Spec, "containers") => access.next_value_seed(Part::Containers)?,
                (Part::Metadata | Part::Spec | Part::Container, _) => {
                    access.next_value::<IgnoredAny>()?;
                    continue;
                }
                (Part::Containers, _) => access.next_value::<Value>()?,
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        match self {
            Part::Containers => {
                while let Some(item) = access.next_element_seed(Part::Container)? {
                    items.push(item);
                }
            }
            Part::Metadata | Part::Spec | Part::Container => {
                while let Some(item) = access.next_element::<Value>()? {
                    items.push(item);
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "pod_for_injection")]
        object: Option<Value>,
    }

    fn read(object: Value) -> Option<Value> {
        let holder: Holder = serde_json::from_value(json!({ "object": object })).unwrap();
        holder.object
    }

    #[test]
    fn spec_keeps_init_containers_volumes_and_container_names_only() {
        let object = read(json!({
            "metadata": {"name": "p", "managedFields": [{"manager": "m"}], "annotations": {"a": "b"},
                "namespace": "n", "generateName": "p-", "labels": {"l": "v"}, "ownerReferences": [{}], "uid": "u"},
            "spec": {
                "containers": [{"name": "app", "image": "i", "env": [{"name": "X"}]}, {"image": "j"}, 7],
                "initContainers": [{"name": "init", "image": "k"}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "tolerations": [{"key": "t"}],
                "priority": 1
            },
            "status": {}
        }));
        assert_eq!(
            object,
            Some(json!({
                "metadata": {"name": "p", "annotations": {"a": "b"}, "namespace": "n", "generateName": "p-",
                    "labels": {"l": "v"}},
                "spec": {
                    "containers": [{"name": "app"}, {}, 7],
                    "initContainers": [{"name": "init", "image": "k"}],
                    "volumes": [{"name": "v", "emptyDir": {}}]
                },
                "status": {}
            }))
        );
    }

    #[test]
    fn metadata_must_be_an_object_or_null() {
        assert_eq!(read(json!({"metadata": null})), Some(json!({"metadata": null})));
        let error = serde_json::from_str::<Holder>(r#"{"object":{"metadata":5}}"#)
            .err()
            .unwrap();
        assert!(error.to_string().contains("expected a JSON object"), "{error}");
    }

    #[test]
    fn unexpected_types_are_kept_as_they_are() {
        assert_eq!(read(json!({"spec": 5})), Some(json!({"spec": 5})));
        assert_eq!(read(json!({"spec": ["x"]})), Some(json!({"spec": ["x"]})));
        assert_eq!(
            read(json!({"spec": {"containers": "x"}})),
            Some(json!({"spec": {"containers": "x"}}))
        );
        assert_eq!(
            read(json!({"spec": {"containers": {"name": "c", "image": "i"}}})),
            Some(json!({"spec": {"containers": {"name": "c", "image": "i"}}}))
        );
        assert_eq!(read(Value::Null), None);
    }
}
