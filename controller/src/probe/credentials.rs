//! `ExchangeCredentialsReady`: the client-credentials Secret exists, has opted in (labelled and `Opaque`, see
//! [`super::secret_optin`]), and both keys hold non-empty values.

use k8s_openapi::api::core::v1::Secret;
use muster_exchange_api::ClientCredentialsSecretRef;

use super::outcome::Check;
use super::secret_optin::judge;

pub(crate) use muster_exchange_dex::ClientCredentials;

fn value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone()).ok();
    }
    secret.string_data.as_ref().and_then(|d| d.get(key)).cloned()
}

/// Checks the Secret (`None`: not found) against the reference; on success also returns the credentials.
pub(crate) fn check_credentials(
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
    if let Err(refusal) = judge(secret) {
        return (refusal.check(namespace, &secret_ref.name), None);
    }
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
            metadata: kube::api::ObjectMeta {
                labels: Some(BTreeMap::from([(
                    muster_exchange_api::names::CREDENTIALS_OPT_IN_LABEL.to_string(),
                    "true".to_string(),
                )])),
                ..Default::default()
            },
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
    fn an_unlabelled_or_tls_secret_is_refused_with_what_to_do_and_its_values_are_not_returned() {
        let mut unlabelled = secret(&[("client-id", "a"), ("client-secret", "b")]);
        unlabelled.metadata.labels = None;
        let (check, creds) = check_credentials(&secret_ref(), "muster", Some(&unlabelled));
        assert_eq!((check.reason, creds.is_none()), ("SecretNotOptedIn", true));
        assert!(
            check.message.contains(
                "label it: kubectl label secret -n muster dex-creds exchange.muster.giantswarm.io/credentials=true"
            ),
            "{}",
            check.message
        );
        let mut tls = secret(&[("client-id", "tls.crt"), ("client-secret", "tls.key")]);
        tls.type_ = Some("kubernetes.io/tls".into());
        let (check, creds) = check_credentials(&secret_ref(), "muster", Some(&tls));
        assert_eq!((check.reason, creds.is_none()), ("SecretNotOpaque", true));
        assert!(
            check.message.contains("(it is of type \"kubernetes.io/tls\")"),
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
