//! Label and field selectors as the API server reads them from a list or watch query: comma-separated
//! requirements, all of which must hold (`k=v`, `k==v`, `k!=v`, `k`, `!k`). Field selectors name a
//! field path (`metadata.name`, `metadata.namespace`, `type`).

use serde_json::Value;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// A parsed label or field selector; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Selector(Vec<Requirement>);

impl Selector {
    pub(super) fn parse(text: &str) -> Selector {
        let requirements = text
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                if let Some((k, v)) = r.split_once("!=") {
                    Requirement::NotEquals(k.trim().into(), v.trim().into())
                } else if let Some((k, v)) = r.split_once("==").or_else(|| r.split_once('=')) {
                    Requirement::Equals(k.trim().into(), v.trim().into())
                } else if let Some(k) = r.strip_prefix('!') {
                    Requirement::Absent(k.trim().into())
                } else {
                    Requirement::Exists(r.into())
                }
            })
            .collect();
        Selector(requirements)
    }

    /// Whether `value_of(key)` satisfies every requirement.
    fn matches_with(&self, value_of: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => value_of(k).as_deref() == Some(v.as_str()),
            Requirement::NotEquals(k, v) => value_of(k).as_deref() != Some(v.as_str()),
            Requirement::Exists(k) => value_of(k).is_some(),
            Requirement::Absent(k) => value_of(k).is_none(),
        })
    }

    /// Whether the object's labels satisfy this selector.
    pub(super) fn matches_labels(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.matches_with(|k| labels.get(k).and_then(Value::as_str).map(str::to_string))
    }

    /// Whether the object's fields (dotted paths) satisfy this selector.
    pub(super) fn matches_fields(&self, object: &Value) -> bool {
        self.matches_with(|path| {
            let pointer = format!("/{}", path.replace('.', "/"));
            object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn selectors_match_like_the_api_server() {
        let object = json!({"type": "Opaque", "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}});
        for (labels, expected) in [
            ("", true),
            ("x", true),
            ("x=1", true),
            ("x==1,y=2", true),
            ("x!=1", false),
            ("!x", false),
            ("z", false),
            ("!z", true),
            ("x=2", false),
        ] {
            assert_eq!(
                Selector::parse(labels).matches_labels(&object),
                expected,
                "{labels}"
            );
        }
        assert!(Selector::parse("metadata.name=a,type=Opaque").matches_fields(&object));
        assert!(!Selector::parse("metadata.name=b").matches_fields(&object));
    }
}
