//! The HTTP/1.1 wire as callers may use it, on a raw socket: pipelined requests, a head split across
//! writes, chunked request bodies followed by another request, `Connection: close`, HTTP/1.0, and a
//! head over the buffer cap (refused with 431 as before).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Harness, subject_token};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One response read off `stream` (`Content-Length` bodies only, as the test app sends): status line,
/// lower-cased headers, body. `pending` keeps bytes read past it.
async fn response(stream: &mut TcpStream, pending: &mut Vec<u8>) -> (String, Vec<(String, String)>, String) {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = parsed.parse(pending).unwrap() {
            let status = format!("HTTP/1.{} {}", parsed.version.unwrap(), parsed.code.unwrap());
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .expect("content-length");
            while pending.len() < len + length {
                read_some(stream, pending).await;
            }
            let body = String::from_utf8(pending[len..len + length].to_vec()).unwrap();
            pending.drain(..len + length);
            return (status, headers, body);
        }
        read_some(stream, pending).await;
    }
}

async fn read_some(stream: &mut TcpStream, pending: &mut Vec<u8>) {
    let mut buf = [0u8; 16 * 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        n > 0,
        "connection closed; had {:?}",
        String::from_utf8_lossy(pending)
    );
    pending.extend_from_slice(&buf[..n]);
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let h = Harness::start().await;
    let token = subject_token("alice");
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let two = format!(
        "GET /first HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n\
         POST /second HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 4\r\n\r\nbody"
    );
    stream.write_all(two.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let (first, headers, body) = response(&mut stream, &mut pending).await;
    assert_eq!((first.as_str(), body.as_str()), ("HTTP/1.1 200", "app says hi"));
    assert_eq!(
        header(&headers, "keep-alive"),
        None,
        "hop-by-hop headers are dropped"
    );
    assert_eq!(header(&headers, "x-app"), Some("mcp"));
    let (second, _, _) = response(&mut stream, &mut pending).await;
    assert_eq!(second, "HTTP/1.1 200");
    let seen = h.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].path_and_query.as_str(), &seen[0].body[..]),
        ("/first", &b""[..])
    );
    assert_eq!(
        (seen[1].path_and_query.as_str(), &seen[1].body[..]),
        ("/second", &b"body"[..])
    );
    assert!(seen[1].header("authorization").unwrap().starts_with("Bearer "));
    assert_ne!(
        seen[1].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(seen[1].header("x-forwarded-host"), Some("x"));
}

#[tokio::test]
async fn a_head_split_across_writes_and_a_chunked_body_then_another_request() {
    let h = Harness::start().await;
    let token = subject_token("alice");
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /chunked HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (a, b) = head.split_at(20);
    for piece in [
        a.as_bytes(),
        b.as_bytes(),
        b"5\r\nhello\r\n",
        b"6;ext=1\r\n world\r\n0\r\n",
        b"\r\n",
    ] {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let next = format!("GET /after HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n");
    stream.write_all(next.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    assert_eq!(response(&mut stream, &mut pending).await.0, "HTTP/1.1 200");
    assert_eq!(response(&mut stream, &mut pending).await.0, "HTTP/1.1 200");
    let seen = h.upstream.seen();
    assert_eq!(&seen[0].body[..], b"hello world");
    assert_eq!(seen[1].path_and_query, "/after");
}

#[tokio::test]
async fn connection_close_is_honoured_and_http_1_0_is_served() {
    let h = Harness::start().await;
    let token = subject_token("alice");
    for (version, extra) in [("1.1", "Connection: close\r\n"), ("1.0", "")] {
        let mut stream = TcpStream::connect(h.addr).await.unwrap();
        let request =
            format!("GET /v HTTP/{version}\r\nHost: x\r\n{extra}Authorization: Bearer {token}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with("HTTP/1."), "{text}");
        assert!(text[..12].ends_with(" 200"), "{text}");
        assert!(text.ends_with("app says hi"), "{text}");
    }
    assert_eq!(h.upstream.seen().len(), 2);
}

#[tokio::test]
async fn a_head_over_the_buffer_cap_is_refused_with_431() {
    let h = Harness::start().await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let mut request = b"GET /mcp HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..80 {
        request.extend_from_slice(format!("x-filler-{i}: {}\r\n", "f".repeat(2000)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    // The server may refuse (and stop reading) before the head is complete.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn refusals_on_a_kept_alive_connection_leave_it_usable() {
    let h = Harness::start().await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let requests = format!(
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nAuthorization: Bearer {}\r\n\r\n",
        subject_token("alice")
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let (status, headers, body) = response(&mut stream, &mut pending).await;
    assert_eq!(status, "HTTP/1.1 401");
    assert!(header(&headers, "www-authenticate").is_some());
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "missing_token");
    assert_eq!(response(&mut stream, &mut pending).await.0, "HTTP/1.1 200");
    assert_eq!(h.upstream.seen().len(), 1);
}

#[tokio::test]
async fn a_chunked_body_that_stalls_while_streaming_fails_the_request_with_502() {
    let mut options = common::HarnessOptions::default();
    options.sidecar.limits.body_timeout = std::time::Duration::from_millis(300);
    let h = Harness::start_with(options).await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        subject_token("alice")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 502"), "{text}");
    assert!(text.contains("upstream_unreachable"), "{text}");
    assert!(text.contains("the request body sent nothing for 300ms"), "{text}");
}
