//! Sending a request to the app and handing its response back, bodies streaming both ways.

use axum::body::Body;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri};

use crate::auth_headers::ForwardAuth;
use crate::inbound_auth::strip_hop_by_hop;
pub use crate::upstream_pool::{PooledBody, UpstreamClient};

/// Builds the client: per-thread keep-alive pool, no Nagle delay (small SSE events must leave at once).
pub fn upstream_client() -> UpstreamClient {
    UpstreamClient::default()
}

/// The app's base URL, parsed once.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    scheme: Scheme,
    authority: Authority,
    base_path: String,
}

/// Why `upstream` is unusable.
#[derive(Debug, thiserror::Error)]
#[error("upstream {upstream:?} {reason}; use http://127.0.0.1:<app port>")]
pub struct UpstreamError {
    upstream: String,
    reason: &'static str,
}

impl UpstreamTarget {
    /// Parses `http://host:port[/base]`.
    pub fn parse(upstream: &str) -> Result<Self, UpstreamError> {
        let fail = |reason| UpstreamError {
            upstream: upstream.to_string(),
            reason,
        };
        let uri: Uri = upstream.parse().map_err(|_| fail("is not a URL"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(fail(
                "must be an http:// URL (the app listens on the pod's loopback)",
            ));
        }
        let authority = uri.authority().cloned().ok_or_else(|| fail("has no host"))?;
        if uri.query().is_some() {
            return Err(fail("must not have a query"));
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        Ok(Self {
            scheme: Scheme::HTTP,
            authority,
            base_path,
        })
    }

    /// The app's `host:port`.
    pub(crate) fn authority(&self) -> &str {
        self.authority.as_str()
    }

    /// The `Host` the app gets: as HTTP clients send it, without the default port 80.
    pub(crate) fn host_header(&self) -> &str {
        match self.authority.port_u16() {
            Some(80) => self.authority.host(),
            _ => self.authority.as_str(),
        }
    }

    /// The upstream URL's path without a trailing `/` (empty for none).
    pub(crate) fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The URL for `upstream`, the routed form of the caller's `original` path: the caller's
    /// `PathAndQuery` is reused (a reference-count bump) when nothing changes.
    pub fn uri_for(&self, original: &PathAndQuery, upstream: &str) -> Result<Uri, http::Error> {
        if !self.base_path.is_empty() || original.as_str() != upstream {
            return self.uri(upstream);
        }
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(original.clone())
            .build()
    }

    /// The URL for `path_and_query` (which starts with `/`).
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let path = if self.base_path.is_empty() {
            PathAndQuery::try_from(path_and_query)?
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.base_path))?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
    }
}

/// `x-forwarded-host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `x-forwarded-proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Moves the caller's `Host` to `X-Forwarded-Host` (unless a proxy in front already set one) so the
/// client fills `Host` from the upstream URI: MCP SDKs with DNS-rebinding protection (go-sdk >= 1.4,
/// mcp-go) answer 403 to a loopback connection that carries a non-loopback `Host`.
pub fn mark_forwarded_host(headers: &mut HeaderMap) {
    let Some(host) = headers.remove(http::header::HOST) else {
        return;
    };
    if !headers.contains_key(&X_FORWARDED_HOST) {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
}

/// The request to the app: the caller's end-to-end `headers` (moved, not copied) plus the exchanged
/// identity.
pub fn upstream_request(
    method: &http::Method,
    uri: Uri,
    mut headers: HeaderMap,
    auth: &ForwardAuth,
    body: Body,
) -> Result<Request<Body>, http::Error> {
    headers.insert(http::header::AUTHORIZATION, auth.authorization.clone());
    for (name, value) in &auth.extra {
        headers.insert(name, value.clone());
    }
    let mut request = Request::builder().method(method.clone()).uri(uri).body(body)?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The app's response for the caller: hop-by-hop headers removed, body streamed as it arrives.
pub fn downstream_response(response: Response<PooledBody>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_upstream_uris() {
        let t = UpstreamTarget::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            t.uri("/mcp?x=1").unwrap().to_string(),
            "http://127.0.0.1:8080/mcp?x=1"
        );
        let t = UpstreamTarget::parse("http://127.0.0.1:8080/base/").unwrap();
        assert_eq!(
            t.uri("/mcp").unwrap().to_string(),
            "http://127.0.0.1:8080/base/mcp"
        );
        assert!(UpstreamTarget::parse("https://x").is_err());
        assert!(UpstreamTarget::parse("nope").is_err());
    }
}
