//! Reading what others own without breaking on what this build does not know yet.
//!
//! Muster owns the MCPServer CRD and may add enum values (5.28.0 added the state `Awaiting Session`) or
//! fields at any time; its API server admits them, so this build must read them. Enums here keep an
//! unknown value as a string (and write it back unchanged) instead of failing the whole object, while the
//! generated CRD schema still lists the known values.

/// Declares a string enum with a catch-all `Unknown(String)` variant that keeps any value this build does
/// not know. Serialises to and from the plain string; its JSON schema is a string with the known values
/// as `enum`.
macro_rules! tolerant_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of muster-exchange does not know (kept as written).
            Unknown(String),
        }

        impl $name {
            /// Every value this version knows, in schema order.
            pub const KNOWN: &'static [&'static str] = &[$($value),+];

            /// The value as written in the object.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }

            /// True for a value this version does not know.
            pub fn is_unknown(&self) -> bool {
                matches!(self, $name::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Ok($name::from(value.as_ref()))
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "enum": $name::KNOWN})
            }
        }
    };
}

pub(crate) use tolerant_enum;

/// Deserialises a field leniently: a value of the wrong shape reads as `None` instead of failing the
/// object. Used for `status`, which Muster owns and this project never judges.
pub(crate) fn lenient<T: serde::de::DeserializeOwned>(value: Option<&serde_json::Value>) -> Option<T> {
    value.and_then(|v| serde_json::from_value(v.clone()).ok())
}

#[cfg(test)]
mod tests {
    use crate::mcpserver::{AuthType, ServerState, ServerType};

    #[test]
    fn unknown_values_are_kept_and_written_back_unchanged() {
        let state: ServerState = serde_json::from_str("\"Awaiting Session\"").unwrap();
        assert_eq!(state, ServerState::AwaitingSession);
        let future: ServerState = serde_json::from_str("\"Hibernating\"").unwrap();
        assert_eq!(future, ServerState::Unknown("Hibernating".into()));
        assert_eq!(serde_json::to_string(&future).unwrap(), "\"Hibernating\"");
        let kind: ServerType = serde_json::from_str("\"websocket\"").unwrap();
        assert!(kind.is_unknown());
        assert_eq!(kind.as_str(), "websocket");
        assert_eq!(
            serde_json::to_string(&ServerType::StreamableHttp).unwrap(),
            "\"streamable-http\""
        );
        assert_eq!(AuthType::default(), AuthType::None);
        assert!(
            serde_json::from_str::<ServerType>("3").is_err(),
            "a non-string is still an error"
        );
    }

    #[test]
    fn the_schema_keeps_the_known_values() {
        let schema = schemars::schema_for!(ServerState);
        assert_eq!(
            schema.get("enum").unwrap(),
            &serde_json::json!([
                "Running",
                "Starting",
                "Stopped",
                "Connected",
                "Auth Required",
                "Awaiting Session",
                "Connecting",
                "Disconnected",
                "Failed"
            ])
        );
    }
}
