//! MCPServer manifests (YAML streams, JSON objects, arrays and streams, `kind: List`) through document
//! splitting, decoding, validation and the CRD defaults.
//!
//! Asserts: nothing panics; defaulting is idempotent (a second pass sets nothing and changes nothing)
//! and touches only `spec`; defaults never make a valid object invalid; a decoded MCPServer survives a
//! serialise/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use muster_exchange_api::fuzzing::{apply_defaults, decode, documents, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(objects) = documents(text) else {
        return;
    };
    for object in objects {
        let report = validate(&object);
        for message in report.errors.iter().map(ToString::to_string) {
            assert!(!message.is_empty());
        }
        for message in report.warnings.iter().map(ToString::to_string) {
            assert!(!message.is_empty());
        }
        let mut defaulted = object.clone();
        let set = apply_defaults(&mut defaulted);
        assert_eq!(
            set.is_empty(),
            defaulted == object,
            "paths set {set:?} disagree with the change"
        );
        let mut again = defaulted.clone();
        let set_again = apply_defaults(&mut again);
        assert!(
            set_again.is_empty() && again == defaulted,
            "defaulting is not idempotent: {set_again:?}"
        );
        if let (Some(before), Some(after)) = (object.as_object(), defaulted.as_object()) {
            for (key, value) in before {
                if key != "spec" {
                    assert_eq!(Some(value), after.get(key), "defaulting changed {key}");
                }
            }
        }
        if report.is_valid() {
            let after = validate(&defaulted);
            assert!(
                after.is_valid(),
                "defaults made a valid object invalid: {:?}",
                after.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        }
        if let Ok(mcpserver) = decode(&object) {
            let value = serde_json::to_value(&mcpserver)
                .unwrap_or_else(|e| panic!("a decoded MCPServer does not serialise: {e}"));
            let again = decode(&value)
                .unwrap_or_else(|e| panic!("a serialised MCPServer does not decode: {e}\n{value}"));
            assert_eq!(mcpserver.spec, again.spec, "the round trip changed the spec");
            assert_eq!(
                mcpserver.metadata, again.metadata,
                "the round trip changed the metadata"
            );
        }
    }
});
