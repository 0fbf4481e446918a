//! What the sidecar accepts from callers: a bearer subject token within size limits. Every inbound
//! `kubernetes-*` header is dropped (a caller must never pick the cluster or credentials), and so are
//! hop-by-hop headers.

use http::{HeaderMap, HeaderName, header};

/// Largest subject token accepted (Dex's client library uses the same cap).
pub const MAX_SUBJECT_TOKEN_BYTES: usize = muster_exchange_dex::MAX_SUBJECT_TOKEN_BYTES;
/// Largest total of inbound header names and values accepted; tokens with many groups are big.
pub const MAX_INBOUND_HEADER_BYTES: usize = 96 * 1024;

/// Why a caller's request is refused before any exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// No `Authorization` header.
    #[error("missing Authorization header; send Authorization: Bearer <ID token from the central Dex>")]
    MissingToken,
    /// Not `Bearer <token>`.
    #[error("malformed Authorization header; expected Authorization: Bearer <ID token>")]
    Malformed,
    /// The subject token has expired (checked locally, without asking Dex).
    #[error("the bearer token has expired; refresh it at the central Dex and retry")]
    Expired,
    /// The subject token is too big.
    #[error(
        "the bearer token is {size} bytes, over the {limit}-byte limit; reduce the groups in the ID token"
    )]
    TokenTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// All headers together are too big.
    #[error(
        "request headers total {size} bytes, over the {limit}-byte limit; reduce the groups in the ID token or the header count"
    )]
    HeadersTooLarge {
        /// Their size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// What the header budget counts: every name's and value's length, added up.
pub(crate) fn header_bytes(headers: &HeaderMap) -> usize {
    headers.iter().map(|(n, v)| n.as_str().len() + v.len()).sum()
}

/// Refuses requests whose headers together (`size`, see [`header_bytes`]) exceed
/// [`MAX_INBOUND_HEADER_BYTES`] (answered with 431).
pub fn check_header_size(size: usize) -> Result<(), InboundError> {
    if size > MAX_INBOUND_HEADER_BYTES {
        return Err(InboundError::HeadersTooLarge {
            size,
            limit: MAX_INBOUND_HEADER_BYTES,
        });
    }
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` value, from its raw bytes. Only visible ASCII, space and tab are
/// text, as for [`HeaderValue::to_str`], so both server paths accept exactly the same values.
pub fn bearer_token_bytes(value: Option<&[u8]>) -> Result<&str, InboundError> {
    let bytes = value.ok_or(InboundError::MissingToken)?;
    // No early exit, so the loop vectorizes (tokens are long).
    let mut bad = false;
    for &b in bytes {
        bad |= !(b == b'\t' || (0x20..0x7f).contains(&b));
    }
    if bad {
        return Err(InboundError::Malformed);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| InboundError::Malformed)?;
    let (scheme, token) = text.split_once(' ').ok_or(InboundError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(InboundError::Malformed);
    }
    if token.len() > MAX_SUBJECT_TOKEN_BYTES {
        return Err(InboundError::TokenTooLarge {
            size: token.len(),
            limit: MAX_SUBJECT_TOKEN_BYTES,
        });
    }
    Ok(token)
}

/// Headers defined as hop-by-hop (RFC 9110 7.6.1), never forwarded in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// [`HOP_BY_HOP`] as text, for code that compares raw header names (the fast path's response head).
pub(crate) const HOP_BY_HOP_NAMES: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, including those the `Connection` header names. `Transfer-Encoding` is
/// left to hyper, which re-frames bodies itself. The names are typed constants, so nothing is parsed
/// on the request path (this runs twice per request).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::try_from(name.trim()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every `kubernetes-*` header the caller sent, and the caller's `Authorization`.
pub fn strip_caller_credentials(headers: &mut HeaderMap) {
    let chosen: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("kubernetes-"))
        .cloned()
        .collect();
    for name in chosen {
        headers.remove(name);
    }
    headers.remove(header::AUTHORIZATION);
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_textual_hop_by_hop_list_matches_the_typed_one() {
        let names = HOP_BY_HOP;
        let typed: Vec<&str> = names.iter().map(HeaderName::as_str).collect();
        assert_eq!(typed, HOP_BY_HOP_NAMES);
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    /// What the proxy makes of these headers before the cache and Dex.
    fn subject_token(headers: &HeaderMap) -> Result<&str, InboundError> {
        crate::proxy::caller_subject(
            header_bytes(headers),
            headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes),
        )
    }

    #[test]
    fn extracts_bearer_tokens_only() {
        assert_eq!(subject_token(&with_auth("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(subject_token(&with_auth("bearer abc")), Ok("abc"));
        assert_eq!(subject_token(&HeaderMap::new()), Err(InboundError::MissingToken));
        assert_eq!(
            subject_token(&with_auth("Basic abc")),
            Err(InboundError::Malformed)
        );
        assert_eq!(subject_token(&with_auth("Bearer ")), Err(InboundError::Malformed));
        assert_eq!(
            subject_token(&with_auth("Bearer a b")),
            Err(InboundError::Malformed)
        );
    }

    #[test]
    fn refuses_oversized_tokens_and_headers() {
        let big = format!("Bearer {}", "a".repeat(MAX_SUBJECT_TOKEN_BYTES + 1));
        assert_eq!(
            subject_token(&with_auth(&big)),
            Err(InboundError::TokenTooLarge {
                size: MAX_SUBJECT_TOKEN_BYTES + 1,
                limit: MAX_SUBJECT_TOKEN_BYTES
            })
        );
        let mut h = with_auth("Bearer a");
        h.insert(
            "x-big",
            HeaderValue::from_str(&"b".repeat(MAX_INBOUND_HEADER_BYTES)).unwrap(),
        );
        assert!(matches!(
            subject_token(&h),
            Err(InboundError::HeadersTooLarge { .. })
        ));
    }

    #[test]
    fn strips_caller_credentials_and_hop_by_hop() {
        let mut h = with_auth("Bearer a");
        for name in [
            "kubernetes-server",
            "kubernetes-authorization",
            "kubernetes-x",
            "keep-alive",
            "x-drop",
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from_static("v"));
        }
        h.insert(header::CONNECTION, HeaderValue::from_static("x-drop, keep-alive"));
        h.insert("mcp-session-id", HeaderValue::from_static("s1"));
        strip_caller_credentials(&mut h);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["mcp-session-id"]);
    }
}
