//! `CredentialsReady`: the client-credentials Secret exists and both keys hold non-empty values.

use k8s_openapi::api::core::v1::Secret;
use muster_exchange_api::ClientCredentialsSecretRef;

use super::outcome::Check;

pub use muster_exchange_dex::ClientCredentials;

fn value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone()).ok();
    }
    secret.string_data.as_ref().and_then(|d| d.get(key)).cloned()
}

/// Checks the Secret (`None`: not found) against the reference; on success also returns the credentials.
pub fn check_credentials(
    secret_ref: &ClientCredentialsSecretRef,
    namespace: &str,
    secret: Option<&Secret>,
) -> (Check, Option<ClientCredentials>) {
    let Some(secret) = secret else {
        let message = format!(
            "Secret {namespace}/{} not found; create it with keys {} and {} (clientCredentialsSecretRef)",
            secret_ref.name, secret_ref.client_id_key, secret_ref.client_secret_key
        );
        return (Check::fail("SecretNotFound", message), None);
    };
    let id = value(secret, &secret_ref.client_id_key).filter(|v| !v.is_empty());
    let secret_value = value(secret, &secret_ref.client_secret_key).filter(|v| !v.is_empty());
    let missing: Vec<&str> = [
        (id.is_none(), secret_ref.client_id_key.as_str()),
        (secret_value.is_none(), secret_ref.client_secret_key.as_str()),
    ]
    .into_iter()
    .filter_map(|(missing, key)| missing.then_some(key))
    .collect();
    match (id, secret_value) {
        (Some(client_id), Some(client_secret)) => (
            Check::ok(
                "SecretFound",
                format!("Secret {namespace}/{} holds both keys", secret_ref.name),
            ),
            Some(ClientCredentials {
                client_id,
                client_secret,
            }),
        ),
        _ => {
            let message = format!(
                "Secret {namespace}/{} has no non-empty {}; add the key(s) or fix clientIdKey/clientSecretKey",
                secret_ref.name,
                missing.join(" and ")
            );
            (Check::fail("KeyMissing", message), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret_ref() -> ClientCredentialsSecretRef {
        serde_json::from_value(serde_json::json!({"name": "dex-creds"})).unwrap()
    }

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        let data = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect::<BTreeMap<_, _>>();
        Secret {
            data: Some(data),
            ..Secret::default()
        }
    }

    #[test]
    fn reports_missing_secret_and_missing_or_empty_keys() {
        let (check, creds) = check_credentials(&secret_ref(), "muster", None);
        assert_eq!((check.reason, creds), ("SecretNotFound", None));
        assert_eq!(
            check.message,
            "Secret muster/dex-creds not found; create it with keys client-id and client-secret (clientCredentialsSecretRef)"
        );
        let (check, _) = check_credentials(
            &secret_ref(),
            "muster",
            Some(&secret(&[("client-id", "a"), ("client-secret", "")])),
        );
        assert_eq!(check.reason, "KeyMissing");
        assert!(
            check.message.contains("no non-empty client-secret;"),
            "{}",
            check.message
        );
    }

    #[test]
    fn returns_credentials_when_both_keys_are_set() {
        let (check, creds) = check_credentials(
            &secret_ref(),
            "muster",
            Some(&secret(&[("client-id", "a"), ("client-secret", "b")])),
        );
        assert_eq!(check.reason, "SecretFound");
        assert_eq!(
            creds.map(|c| (c.client_id, c.client_secret)),
            Some(("a".into(), "b".into()))
        );
    }
}
