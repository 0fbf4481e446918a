//! Reads a JWT's claims without verifying its signature.
//!
//! We are not the token's audience and hold no keys for it: we only need `iss` (to fail closed on a wrong
//! issuer) and `exp` (to know how long a token may be cached). The receiving API server verifies it.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// base64url that accepts payloads with and without `=` padding.
const BASE64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims we read from a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PeekedClaims {
    /// Issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Subject.
    #[serde(default)]
    pub sub: Option<String>,
}

impl PeekedClaims {
    /// `exp` as a wall-clock time: `None` without `exp`, or when it lies beyond what `SystemTime` can
    /// represent (never a panic on hostile input). A negative `exp` is the epoch (long expired).
    pub fn expires_at(&self) -> Option<SystemTime> {
        let seconds = u64::try_from(self.exp?).unwrap_or(0);
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
    }
}

/// True when `token` has the JWT shape: three non-empty dot-separated parts.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts[..2].iter().all(|p| !p.is_empty())
}

/// The payload claims of a JWT-shaped token, or `None` when it is not a JWT or the payload is unreadable.
/// Claims of the wrong JSON type count as unreadable, so a caller never trusts a half-parsed token.
pub fn peek_claims(token: &str) -> Option<PeekedClaims> {
    if !looks_like_jwt(token) {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = BASE64URL_LENIENT.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Encodes bytes as unpadded base64url (the JWT alphabet); used by tests and the Dex double.
pub fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An unsigned JWT-shaped token with `claims` as payload (signature part is a fixed placeholder).
/// For tests and the Dex double only: nothing verifies it.
pub fn unsigned_jwt(claims: &serde_json::Value) -> String {
    let header = base64url(br#"{"alg":"RS256","typ":"JWT","kid":"test"}"#);
    let payload = base64url(claims.to_string().as_bytes());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peeks_iss_exp_and_sub() {
        let token = unsigned_jwt(&json!({"iss": "https://dex.a", "exp": 1_700_000_000, "sub": "u1"}));
        let claims = peek_claims(&token).unwrap();
        assert_eq!(claims.iss.as_deref(), Some("https://dex.a"));
        assert_eq!(claims.exp, Some(1_700_000_000));
        assert_eq!(claims.sub.as_deref(), Some("u1"));
    }

    #[test]
    fn expires_at_converts_exp_without_overflowing() {
        let claims = |exp| PeekedClaims {
            exp,
            ..Default::default()
        };
        assert_eq!(
            claims(Some(1_700_000_000)).expires_at(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(claims(Some(-5)).expires_at(), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(claims(None).expires_at(), None);
        // Representable or not depends on the platform; it must simply not panic.
        let _ = claims(Some(i64::MAX)).expires_at();
    }

    #[test]
    fn accepts_padded_payloads() {
        let payload = base64::engine::general_purpose::URL_SAFE.encode(br#"{"iss":"x"}"#);
        let claims = peek_claims(&format!("a.{payload}.c")).unwrap();
        assert_eq!(claims.iss.as_deref(), Some("x"));
    }

    #[test]
    fn opaque_or_broken_tokens_give_none() {
        assert_eq!(peek_claims("opaque-token"), None);
        assert_eq!(peek_claims("a.b"), None);
        assert_eq!(peek_claims("a.!!!.c"), None);
        assert_eq!(peek_claims(&format!("a.{}.c", base64url(b"not json"))), None);
        assert_eq!(
            peek_claims(&format!("a.{}.c", base64url(br#"{"exp":"soon"}"#))),
            None
        );
    }
}
