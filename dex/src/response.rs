//! Turns Dex's answer into an [`ExchangedToken`] or an [`ExchangeError`] (docs/facts.md: Muster's exchange request and issuer rule, Dex's answer).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::error::{ExchangeError, InvalidResponse};
use crate::jwt::{looks_like_jwt, peek_claims};

/// A successfully exchanged token. `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ExchangedToken {
    /// The issued token (Dex puts the ID token into `access_token`).
    pub access_token: String,
    /// When it stops being valid: `now + expires_in`, else the JWT `exp`.
    pub expires_at: SystemTime,
    /// The token's `iss`, when it is a JWT with one.
    pub issuer: Option<String>,
    /// `issued_token_type` as Dex reported it.
    pub issued_token_type: Option<String>,
}

impl std::fmt::Debug for ExchangedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangedToken")
            .field(
                "access_token",
                &format_args!("<{} bytes>", self.access_token.len()),
            )
            .field("expires_at", &self.expires_at)
            .field("issuer", &self.issuer)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    issued_token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Interprets a complete response. `now` is passed in so expiry arithmetic is testable.
pub(crate) fn interpret(
    endpoint: &str,
    status: u16,
    body: &[u8],
    expected_issuer: Option<&str>,
    now: SystemTime,
) -> Result<ExchangedToken, ExchangeError> {
    if status != 200 {
        return Err(error_from_status(endpoint, status, body));
    }
    let invalid = |reason| ExchangeError::InvalidResponse {
        endpoint: endpoint.to_string(),
        reason,
    };
    // serde_json skips unknown members without checking their UTF-8: the whole body is checked first,
    // so an answer that is not JSON is refused whatever part of it is broken.
    let text = std::str::from_utf8(body).map_err(|e| invalid(InvalidResponse::NotJson(e.to_string())))?;
    let parsed: TokenResponse =
        serde_json::from_str(text).map_err(|e| invalid(InvalidResponse::NotJson(e.to_string())))?;
    let access_token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid(InvalidResponse::MissingAccessToken))?;
    let claims = peek_claims(&access_token);
    let issuer = claims.as_ref().and_then(|c| c.iss.clone());
    if let Some(expected) = expected_issuer {
        check_issuer(expected, issuer.as_deref(), looks_like_jwt(&access_token))?;
    }
    let out_of_range = |what: String| invalid(InvalidResponse::LifetimeOutOfRange(what));
    let expires_at = match (parsed.expires_in, claims.as_ref().and_then(|c| c.exp)) {
        // Dex's answer is external input: an absurd lifetime is an invalid response, not a panic.
        (Some(seconds), _) => now
            .checked_add(Duration::from_secs(seconds))
            .ok_or_else(|| out_of_range(format!("expires_in {seconds}")))?,
        (None, Some(exp)) => claims
            .as_ref()
            .and_then(|c| c.expires_at())
            .ok_or_else(|| out_of_range(format!("exp {exp}")))?,
        (None, None) => return Err(invalid(InvalidResponse::NoLifetime)),
    };
    Ok(ExchangedToken {
        access_token,
        expires_at,
        issuer,
        issued_token_type: parsed.issued_token_type,
    })
}

/// Fails closed: a token whose issuer cannot be read does not pass (Muster skipped the check; we do not).
fn check_issuer(expected: &str, actual: Option<&str>, is_jwt: bool) -> Result<(), ExchangeError> {
    let actual_shown = match (actual, is_jwt) {
        (Some(actual), _) if muster_exchange_api::issuer::issuers_match(expected, actual) => return Ok(()),
        (Some(actual), _) => actual.to_string(),
        (None, true) => "<none: the token has no readable iss claim>".to_string(),
        (None, false) => "<none: the token is not a JWT>".to_string(),
    };
    Err(ExchangeError::IssuerMismatch {
        expected: muster_exchange_api::issuer::normalize_issuer(expected).to_string(),
        actual: actual_shown,
    })
}

fn error_from_status(endpoint: &str, status: u16, body: &[u8]) -> ExchangeError {
    let oauth: Option<OAuthErrorBody> = serde_json::from_slice(body).ok();
    match (status, oauth) {
        (500..=599, Some(o)) => ExchangeError::ServerError {
            endpoint: endpoint.to_string(),
            status,
            detail: format!(
                "{} - {}",
                capped(&o.error),
                capped(&o.error_description.unwrap_or_default())
            ),
        },
        (500..=599, None) => ExchangeError::ServerError {
            endpoint: endpoint.to_string(),
            status,
            detail: body_excerpt(body),
        },
        (_, Some(o)) => ExchangeError::Rejected {
            status,
            error: capped(&o.error),
            description: capped(&o.error_description.unwrap_or_default()),
        },
        (_, None) => ExchangeError::UnexpectedStatus {
            endpoint: endpoint.to_string(),
            status,
            body: body_excerpt(body),
        },
    }
}

/// Most bytes of Dex's `error` or `error_description` kept in an error: enough for any message Dex
/// writes, bounded so that a hostile or broken endpoint cannot fill logs and conditions.
pub const MAX_DEX_TEXT_BYTES: usize = 1024;

/// `text` cut to [`MAX_DEX_TEXT_BYTES`] on a character boundary, marked with `…` when cut.
pub(crate) fn capped(text: &str) -> String {
    if text.len() <= MAX_DEX_TEXT_BYTES {
        return text.to_string();
    }
    let mut end = MAX_DEX_TEXT_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Members of a JSON body that hold credentials; an excerpt never quotes their values.
const CREDENTIAL_MEMBERS: [&str; 4] = ["access_token", "id_token", "refresh_token", "subject_token"];

/// The first 256 characters of a body, on one line, for error messages (which reach logs and
/// conditions), with the values of [`CREDENTIAL_MEMBERS`] of a JSON object replaced.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let redacted = redact_credentials(body);
    let text = String::from_utf8_lossy(redacted.as_deref().unwrap_or(body));
    let one_line: String = text
        .chars()
        .take(256)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.trim().is_empty() {
        "<empty body>".to_string()
    } else {
        one_line
    }
}

/// A JSON object body re-serialised with its credential members' values replaced; `None` when it is not
/// one or has none.
fn redact_credentials(body: &[u8]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object_mut()?;
    let mut redacted = false;
    for name in CREDENTIAL_MEMBERS {
        if let Some(member) = object.get_mut(name) {
            *member = serde_json::Value::String("<redacted>".into());
            redacted = true;
        }
    }
    if !redacted {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_40k_character_dex_error_description_is_capped_on_a_char_boundary() {
        let description = "é".repeat(40_000);
        let body = serde_json::to_vec(
            &serde_json::json!({"error": "invalid_client", "error_description": description}),
        )
        .unwrap();
        for status in [401, 503] {
            let error = error_from_status("https://dex.example/token", status, &body);
            let text = error.to_string();
            assert!(text.len() < 2 * MAX_DEX_TEXT_BYTES + 200, "{} bytes", text.len());
            assert!(text.ends_with('…'), "{status}");
        }
        let short = capped("short");
        assert_eq!(short, "short");
        let cut = capped(&"é".repeat(600));
        assert!(cut.len() <= MAX_DEX_TEXT_BYTES && cut.ends_with('…'));
    }
    use crate::jwt::unsigned_jwt;
    use serde_json::json;

    const EP: &str = "https://dex.b/token";

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }

    fn ok_body(token: &str, expires_in: Option<u64>) -> Vec<u8> {
        let mut body = json!({"access_token": token, "token_type": "bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:id_token"});
        if let Some(e) = expires_in {
            body["expires_in"] = json!(e);
        }
        body.to_string().into_bytes()
    }

    #[test]
    fn lifetime_from_expires_in_else_exp() {
        let token = unsigned_jwt(&json!({"iss": "https://dex.b", "exp": 1_000_500}));
        let t = interpret(EP, 200, &ok_body(&token, Some(60)), Some("https://dex.b/"), now()).unwrap();
        assert_eq!(t.expires_at, now() + Duration::from_secs(60));
        assert_eq!(t.issuer.as_deref(), Some("https://dex.b"));
        let t = interpret(EP, 200, &ok_body(&token, None), Some("https://dex.b"), now()).unwrap();
        assert_eq!(
            t.expires_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_500)
        );
    }

    #[test]
    fn absurd_expires_in_is_an_invalid_response_not_a_panic() {
        let token = unsigned_jwt(&json!({"iss": "https://dex.b", "exp": 1_000_500}));
        let e = interpret(
            EP,
            200,
            &ok_body(&token, Some(u64::MAX)),
            Some("https://dex.b"),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "invalid token exchange response from https://dex.b/token: the token lifetime (expires_in {}) \
                 is out of range; check what answers at dexTokenEndpoint",
                u64::MAX
            )
        );
    }

    #[test]
    fn missing_token_and_lifetime_are_invalid() {
        let e = interpret(EP, 200, br#"{"token_type":"bearer"}"#, None, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid token exchange response from https://dex.b/token: token exchange response missing access_token"
        );
        let e = interpret(EP, 200, &ok_body("opaque", None), None, now()).unwrap_err();
        assert!(matches!(
            e,
            ExchangeError::InvalidResponse {
                reason: InvalidResponse::NoLifetime,
                ..
            }
        ));
    }

    #[test]
    fn issuer_check_fails_closed() {
        let token = unsigned_jwt(&json!({"iss": "https://other", "exp": 1}));
        let e = interpret(EP, 200, &ok_body(&token, Some(5)), Some("https://dex.b"), now()).unwrap_err();
        assert!(matches!(e, ExchangeError::IssuerMismatch { ref actual, .. } if actual == "https://other"));
        let e = interpret(EP, 200, &ok_body("opaque", Some(5)), Some("https://dex.b"), now()).unwrap_err();
        assert!(matches!(e, ExchangeError::IssuerMismatch { .. }));
    }

    #[test]
    fn an_error_answer_carrying_a_token_is_quoted_without_it() {
        let token = unsigned_jwt(&json!({"iss": "https://dex.b", "exp": 1_000_500}));
        for status in [400, 404, 502] {
            let body = json!({"access_token": token, "id_token": "id-token-value", "expires_in": 60});
            let e = interpret(EP, status, body.to_string().as_bytes(), None, now()).unwrap_err();
            let message = e.to_string();
            assert!(!message.contains(&token), "{message}");
            assert!(!message.contains("id-token-value"), "{message}");
            assert!(message.contains(r#""access_token":"<redacted>""#), "{message}");
            assert!(message.contains(r#""expires_in":60"#), "{message}");
        }
        assert_eq!(body_excerpt(b"not json"), "not json");
    }

    #[test]
    fn a_success_body_that_is_not_utf8_is_not_json_even_in_unknown_members() {
        let token = unsigned_jwt(&json!({"iss": "https://dex.b", "exp": 1_000_500}));
        let body = |unknown: &[u8]| {
            let mut body =
                format!(r#"{{"access_token":"{token}","expires_in":60,"token_tye":""#).into_bytes();
            body.extend_from_slice(unknown);
            body.extend_from_slice(br#""}"#);
            body
        };
        assert!(interpret(EP, 200, &body(b"id"), None, now()).is_ok());
        let e = interpret(EP, 200, &body(b"\xa1\x8b"), None, now()).unwrap_err();
        assert!(
            matches!(
                e,
                ExchangeError::InvalidResponse {
                    reason: InvalidResponse::NotJson(_),
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn error_bodies_map_to_variants() {
        let e = interpret(EP, 401, br#"{"error":"access_denied"}"#, None, now()).unwrap_err();
        assert_eq!(e.oauth_error(), Some(("access_denied", "")));
        let e = interpret(
            EP,
            500,
            br#"{"error":"server_error","error_description":"peer (x) does not trust client"}"#,
            None,
            now(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dex at https://dex.b/token failed with status 500: server_error - peer (x) does not trust client"
        );
        let e = interpret(EP, 404, b"404 page not found\n", None, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dex at https://dex.b/token answered status 404 without an OAuth error: 404 page not found ; check dexTokenEndpoint"
        );
    }
}
