//! The sidecar's own answers on the fast path (refusals, errors, `overloaded`), written as hyper's
//! server would write them: the same status, headers and JSON body the error types produce.

use std::io::Write as _;
use std::time::SystemTime;

use axum::response::Response;
use http_body_util::BodyExt as _;

/// `response` as HTTP/1.1 bytes; with `close`, the connection is announced to close after it.
pub(crate) async fn encode(response: Response, close: bool) -> Vec<u8> {
    let (parts, body) = response.into_parts();
    // The sidecar's own bodies are in memory; a failure here would be a bug, answered with no body.
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let mut out = Vec::with_capacity(256 + body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_str(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let _ = write!(
        out,
        "content-length: {}\r\ndate: {}\r\n",
        body.len(),
        httpdate::fmt_http_date(SystemTime::now())
    );
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_error_response_is_written_whole_with_its_length() {
        let bytes = encode(crate::limits::overloaded(), true).await;
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{head}");
        assert!(head.contains("\r\nretry-after: 1\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(head.ends_with("\r\nconnection: close"), "{head}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).unwrap()["error"],
            "overloaded"
        );
    }
}
