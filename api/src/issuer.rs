//! Which `iss` the exchanged token must carry.
//!
//! Muster's rule (docs/facts.md, "Muster: the issuer rule"): `expectedIssuer` when set, else the token
//! endpoint with a trailing `/token` and then a trailing `/` removed. Dex puts its configured issuer into
//! `iss`, not the URL used to reach it, which is why a proxied endpoint needs `expectedIssuer`.

use url::Url;

/// The issuer derived from a token endpoint: `https://dex.x/dex/token` gives `https://dex.x/dex`.
pub fn derive_issuer(token_endpoint: &str) -> String {
    match Url::parse(token_endpoint) {
        Ok(mut url) => {
            let path = url.path().to_string();
            let path = path.strip_suffix("/token").unwrap_or(&path);
            let path = path.strip_suffix('/').unwrap_or(path).to_string();
            url.set_path(&path);
            let rendered = url.to_string();
            rendered.strip_suffix('/').unwrap_or(&rendered).to_string()
        }
        Err(_) => {
            let trimmed = token_endpoint.strip_suffix("/token").unwrap_or(token_endpoint);
            trimmed.strip_suffix('/').unwrap_or(trimmed).to_string()
        }
    }
}

/// The issuer the exchanged token must name: `expected_issuer` when set, else derived from the endpoint.
pub fn expected_issuer(expected_issuer: Option<&str>, token_endpoint: &str) -> String {
    match expected_issuer {
        Some(issuer) if !issuer.is_empty() => normalize_issuer(issuer).to_string(),
        _ => derive_issuer(token_endpoint),
    }
}

/// Issuers compare without a trailing slash, as Muster does.
pub fn normalize_issuer(issuer: &str) -> &str {
    issuer.strip_suffix('/').unwrap_or(issuer)
}

/// True when `actual` names the same issuer as `expected` (trailing slashes ignored).
pub fn issuers_match(expected: &str, actual: &str) -> bool {
    normalize_issuer(expected) == normalize_issuer(actual)
}

/// Where OIDC discovery lives for an endpoint: the endpoint without `/token`, plus
/// `/.well-known/openid-configuration`. That is an address the caller can reach, also behind a proxy.
pub fn discovery_url(token_endpoint: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        derive_issuer(token_endpoint)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_issuer_by_stripping_token_then_slash() {
        assert_eq!(derive_issuer("https://dex.x/dex/token"), "https://dex.x/dex");
        assert_eq!(derive_issuer("https://dex.x/token"), "https://dex.x");
        assert_eq!(derive_issuer("https://dex.x/token/"), "https://dex.x/token");
        assert_eq!(
            derive_issuer("https://dex.x/oauth2/exchange"),
            "https://dex.x/oauth2/exchange"
        );
    }

    #[test]
    fn expected_issuer_prefers_the_configured_one() {
        assert_eq!(
            expected_issuer(Some("https://dex.real/"), "https://proxy/token"),
            "https://dex.real"
        );
        assert_eq!(expected_issuer(None, "https://dex.a/token"), "https://dex.a");
        assert_eq!(expected_issuer(Some(""), "https://dex.a/token"), "https://dex.a");
    }

    #[test]
    fn issuer_comparison_ignores_trailing_slash_only() {
        assert!(issuers_match("https://dex.a/", "https://dex.a"));
        assert!(!issuers_match("https://dex.a", "https://dex.b"));
    }

    #[test]
    fn discovery_sits_beside_the_endpoint() {
        assert_eq!(
            discovery_url("https://p.x/dex/token"),
            "https://p.x/dex/.well-known/openid-configuration"
        );
    }
}
