//! The sidecar's kubeconfig reading (current context → cluster → server and CA) on arbitrary text.
//!
//! Asserts: an endpoint's CA is base64, of a PEM block (`-----BEGIN`) when it came from
//! `certificate-authority-data`; an error never
//! quotes a credential of the file (`token`, `password`, `client-key-data`, `client-certificate-data`
//! values that occur nowhere else in it).
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use muster_exchange_sidecar::fuzzing::kubeconfig_endpoint;

const CREDENTIAL_KEYS: [&str; 4] = [
    "token:",
    "password:",
    "client-key-data:",
    "client-certificate-data:",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match kubeconfig_endpoint(text) {
        Ok(endpoint) => {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(&endpoint.ca_data_base64)
                .unwrap_or_else(|e| panic!("the CA is not base64: {e}"));
            // Only inline data can be the CA when no file key can be spelled (no quoting or escapes);
            // a file CA is passed on as read.
            let inline_only = text.matches("certificate-authority").count()
                == text.matches("certificate-authority-data").count()
                && !text.contains(['"', '\\', '\'']);
            if inline_only {
                assert!(pem.starts_with(b"-----BEGIN"), "the CA is not PEM");
            }
        }
        Err(message) => {
            for line in text.lines() {
                let trimmed = line.trim_start().trim_start_matches("- ");
                for key in CREDENTIAL_KEYS {
                    let Some(value) = trimmed.strip_prefix(key) else {
                        continue;
                    };
                    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                    if value.len() >= 8 && text.matches(value).count() == 1 && message.contains(value) {
                        // Text of our own messages is not the credential: the same file with the value
                        // replaced must still give a message containing it.
                        let replaced = text.replace(value, &"Z".repeat(value.len()));
                        let again = kubeconfig_endpoint(&replaced).err().unwrap_or_default();
                        assert!(
                            again.contains(value),
                            "the error quotes the {key} value: {message}"
                        );
                    }
                }
            }
        }
    }
});
