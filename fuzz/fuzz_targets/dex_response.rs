//! Reading Dex's token-exchange answer (status and body) as the exchange client does, and the error
//! classification callers build on it.
//!
//! Input: byte 0 picks the status, byte 1 the expected issuer (none, `https://dex.b`, with `/`, or
//! `https://dex.b/dex`); the rest is the body.
//!
//! Asserts: only a 200 succeeds, with a non-empty token, a lifetime from `expires_in` (exactly now plus
//! it) or the JWT `exp`, and, when an issuer is expected, a token whose `iss` matches it; every error
//! renders, is classified, and never quotes the `access_token` of the body; excerpts stay within 256
//! characters on one line.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use muster_exchange_api::issuer::issuers_match;
use muster_exchange_dex::fuzzing::{body_excerpt, interpret};
use muster_exchange_dex::jwt::peek_claims;
use serde_json::Value;

const ENDPOINT: &str = "https://dex.b/token";
const STATUSES: [u16; 16] = [
    200, 200, 200, 200, 400, 401, 403, 404, 429, 500, 502, 503, 504, 301, 204, 599,
];
const ISSUERS: [Option<&str>; 4] = [
    None,
    Some("https://dex.b"),
    Some("https://dex.b/"),
    Some("https://dex.b/dex"),
];

fuzz_target!(|data: &[u8]| {
    let [status, issuer, body @ ..] = data else {
        return;
    };
    let status = STATUSES[usize::from(*status) % STATUSES.len()];
    let expected_issuer = ISSUERS[usize::from(*issuer) % ISSUERS.len()];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let excerpt = body_excerpt(body);
    assert!(
        excerpt.chars().count() <= 256 && !excerpt.contains('\n'),
        "excerpt {excerpt:?}"
    );
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match interpret(ENDPOINT, status, body, expected_issuer, now) {
        Ok(token) => {
            assert_eq!(status, 200, "a {status} answer succeeded");
            assert!(!token.access_token.is_empty());
            assert!(
                std::str::from_utf8(body).is_ok(),
                "success from a body that is not UTF-8"
            );
            // Valid JSON that serde_json's Value cannot hold (a number beyond f64) is not compared.
            let Some(parsed) = parsed else {
                return;
            };
            assert_eq!(parsed["access_token"].as_str(), Some(token.access_token.as_str()));
            match parsed["expires_in"].as_u64() {
                Some(seconds) => assert_eq!(token.expires_at, now + Duration::from_secs(seconds)),
                None => {
                    let claims = peek_claims(&token.access_token)
                        .unwrap_or_else(|| panic!("a lifetime without expires_in or readable claims"));
                    assert_eq!(Some(token.expires_at), claims.expires_at());
                }
            }
            if let Some(expected) = expected_issuer {
                let issuer = token
                    .issuer
                    .as_deref()
                    .unwrap_or_else(|| panic!("an expected issuer passed a token without iss"));
                assert!(
                    issuers_match(expected, issuer),
                    "{issuer:?} passed for {expected:?}"
                );
            }
            let shown = format!("{token:?}");
            if token.access_token.len() >= 8 {
                assert!(!shown.contains(&token.access_token), "Debug shows the token");
            }
        }
        Err(error) => {
            let message = error.to_string();
            let class = error.failure_class();
            let _ = (class.as_str(), class.hint(), error.hint(), error.oauth_error());
            let token = parsed.as_ref().and_then(|p| p["access_token"].as_str());
            // Real tokens are base64url and dots: JSON escapes in another member cannot spell one.
            let token_like = |t: &&str| {
                t.len() >= 8
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            };
            if let Some(token) = token.filter(token_like) {
                // Another field of the same body may legitimately carry the same text.
                let elsewhere = String::from_utf8_lossy(body).matches(token).count() > 1;
                // Text of our own messages is not the token: the same answer with the token replaced
                // must still contain it.
                let quoted = |text: &str| text.contains(token);
                if !elsewhere && (quoted(&message) || quoted(&format!("{error:?}"))) {
                    let mut replaced = String::from_utf8_lossy(body).into_owned();
                    replaced = replaced.replace(token, &"Z".repeat(token.len()));
                    let again = interpret(ENDPOINT, status, replaced.as_bytes(), expected_issuer, now)
                        .err()
                        .map(|e| (e.to_string(), format!("{e:?}")));
                    let template = again.is_some_and(|(m, d)| {
                        (!quoted(&message) || quoted(&m)) && (!quoted(&format!("{error:?}")) || quoted(&d))
                    });
                    assert!(template, "the error quotes the access token: {message}");
                }
            }
        }
    }
});
