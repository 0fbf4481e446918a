//! Syntax checks shared by the rules: DNS names, Secret keys, OAuth scope tokens, URLs.

use url::Url;

/// DNS-1123 label: at most 63 lowercase alphanumerics or `-`, alphanumeric at both ends (namespaces).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// DNS-1123 subdomain: dot-separated labels, at most 253 characters (Secret names).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A Secret data key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`.
pub fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// RFC 6749 3.3 scope-token: `1*( %x21 / %x23-5B / %x5D-7E )` (no space, `"` or `\`).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Muster's identifier pattern `^[a-zA-Z][a-zA-Z0-9_-]*$`.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `family.instanceArg`: `^[a-zA-Z][a-zA-Z0-9_]*$` (no hyphen: it becomes a tool parameter name).
pub fn is_instance_arg(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A Dex cross-client audience as mcp-oauth accepts it: `^[a-zA-Z0-9_-]{1,256}$`.
pub fn is_audience(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Which URL parts a field refuses.
#[derive(Clone, Copy)]
pub struct UrlRules {
    /// Refuse a query string (token endpoints: Dex would see parameters twice).
    pub allow_query: bool,
}

/// Checks an absolute `https://` URL with a host, no user-info and no fragment.
/// Returns what is wrong, phrased as advice.
pub fn check_https_url(raw: &str, rules: UrlRules) -> Result<Url, String> {
    if raw.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".into());
    }
    // Muster's CRD pattern `^https://[^\s/$.?#].[^\s]*$`: the WHATWG parser would read `https:///x` as host
    // `x`, so look at the raw text first.
    if let Some(rest) = raw.strip_prefix("https://")
        && rest.chars().next().is_none_or(|c| "/$.?#".contains(c))
    {
        return Err(
            "must name a host right after https://, e.g. https://dex.cluster-a.example.com/token".into(),
        );
    }
    let url = Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e}); use https://host/path"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "must use https:// (got {}://); Dex exchanges carry tokens and secrets",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host, e.g. https://dex.cluster-a.example.com/token".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry user-info (user:password@); put client credentials in the Secret".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment; remove it".into());
    }
    if !rules.allow_query && url.query().is_some() {
        return Err("must not have a ?query; Dex reads parameters from the form body only".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns1123_label("org-acme"));
        assert!(!is_dns1123_label("Org"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("cluster-a.token-exchange"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a"));
    }

    #[test]
    fn secret_keys_and_scopes() {
        assert!(is_secret_key("client-id"));
        assert!(is_secret_key("tls.crt"));
        assert!(!is_secret_key(".."));
        assert!(!is_secret_key("a/b"));
        assert!(is_scope_token("audience:server:client_id:dex-k8s-authenticator"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a\\b"));
    }

    #[test]
    fn urls() {
        let strict = UrlRules { allow_query: false };
        assert!(check_https_url("https://dex.a/token", strict).is_ok());
        assert!(check_https_url("http://dex.a/token", strict).is_err());
        assert!(check_https_url("https://u:p@dex.a/token", strict).is_err());
        assert!(check_https_url("https://dex.a/token#x", strict).is_err());
        assert!(check_https_url("https://dex.a/token?x=1", strict).is_err());
        assert!(check_https_url("https://dex.a/token?x=1", UrlRules { allow_query: true }).is_ok());
        assert!(check_https_url("dex.a/token", strict).is_err());
    }
}
