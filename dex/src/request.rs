//! What one exchange sends: the form fields and the client authentication header.

use base64::Engine as _;

use crate::{GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ID_TOKEN};

/// One token exchange. Borrowed so the caller keeps ownership of secrets; `Debug` never prints the subject
/// token or the client secret.
#[derive(Clone, Copy)]
pub struct ExchangeRequest<'a> {
    /// The remote Dex token endpoint; must be `https://`.
    pub endpoint: &'a str,
    /// The caller's ID token from the central Dex.
    pub subject_token: &'a str,
    /// The remote Dex connector that trusts the central Dex.
    pub connector_id: &'a str,
    /// The complete `scope` value (configured scopes plus audience scopes); not sent when empty.
    pub scope: &'a str,
    /// The exchange client registered in the remote Dex.
    pub client_id: &'a str,
    /// Its secret.
    pub client_secret: &'a str,
    /// The `iss` the issued token must carry; `None` skips the check (the sidecar always sets it).
    pub expected_issuer: Option<&'a str>,
}

impl std::fmt::Debug for ExchangeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeRequest")
            .field("endpoint", &self.endpoint)
            .field(
                "subject_token",
                &format_args!("<{} bytes>", self.subject_token.len()),
            )
            .field("connector_id", &self.connector_id)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("expected_issuer", &self.expected_issuer)
            .finish()
    }
}

impl ExchangeRequest<'_> {
    /// The form fields, in the order Muster sends them. `client_id` is never in the body: Basic only.
    pub fn form_fields(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![
            ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token", self.subject_token),
            ("subject_token_type", TOKEN_TYPE_ID_TOKEN),
            ("requested_token_type", TOKEN_TYPE_ID_TOKEN),
            ("connector_id", self.connector_id),
        ];
        if !self.scope.is_empty() {
            fields.push(("scope", self.scope));
        }
        fields
    }

    /// The `Authorization` header value, or `None` when either credential is empty (as Muster does; Dex
    /// then answers `invalid_client`, which the hint explains).
    pub fn basic_authorization(&self) -> Option<String> {
        if self.client_id.is_empty() || self.client_secret.is_empty() {
            return None;
        }
        Some(basic_authorization(self.client_id, self.client_secret))
    }
}

/// HTTP Basic per RFC 6749 2.3.1: each part form-urlencoded *before* base64. Without this a secret with
/// `+` reaches Dex as a space (Dex `QueryUnescape`s both parts) and fails as `invalid_client` (pain point P3).
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(client_secret.as_bytes()).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ExchangeRequest<'static> {
        ExchangeRequest {
            endpoint: "https://dex.b/token",
            subject_token: "subject.jwt.token",
            connector_id: "central",
            scope: "openid groups",
            client_id: "exchange client",
            client_secret: "s3cr+t/=x",
            expected_issuer: None,
        }
    }

    #[test]
    fn basic_auth_form_encodes_each_part_first() {
        // "exchange+client:s3cr%2Bt%2F%3Dx" in base64.
        let expected = base64::engine::general_purpose::STANDARD.encode("exchange+client:s3cr%2Bt%2F%3Dx");
        assert_eq!(request().basic_authorization(), Some(format!("Basic {expected}")));
    }

    #[test]
    fn no_basic_auth_without_both_credentials() {
        let mut r = request();
        r.client_secret = "";
        assert_eq!(r.basic_authorization(), None);
    }

    #[test]
    fn form_fields_are_exactly_what_dex_expects() {
        let req = request();
        let fields = req.form_fields();
        assert_eq!(
            fields,
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", "subject.jwt.token"),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:id_token"
                ),
                ("connector_id", "central"),
                ("scope", "openid groups"),
            ]
        );
        let mut r = request();
        r.scope = "";
        assert!(!r.form_fields().iter().any(|(k, _)| *k == "scope"));
    }

    #[test]
    fn debug_hides_token_and_secret() {
        let shown = format!("{:?}", request());
        assert!(!shown.contains("subject.jwt.token"), "{shown}");
        assert!(!shown.contains("s3cr+t"), "{shown}");
        assert!(shown.contains("exchange client"));
    }
}
