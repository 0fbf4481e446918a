//! Bodies stream: SSE events reach the client one by one, while the upstream is still sending.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Harness, subject_token};
use futures::StreamExt as _;

#[tokio::test]
async fn sse_events_arrive_event_by_event() {
    let h = Harness::start().await;
    let events = h.upstream.sse_channel();
    let response = h.get("/sse", &subject_token("alice")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    for i in 0..3 {
        let event = format!("id: {i}\nevent: message\ndata: {{\"n\":{i}}}\n\n");
        events.send(event.clone()).await.unwrap();
        // The next event is only sent after this one arrived: buffering would block here forever.
        let mut received = Vec::new();
        while received.len() < event.len() {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .expect("event not delivered");
            received.extend_from_slice(&chunk.unwrap().unwrap());
        }
        assert_eq!(String::from_utf8(received).unwrap(), event);
    }
    drop(events);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap()
            .is_none(),
        "stream ends"
    );
}

#[tokio::test]
async fn large_request_bodies_stream_to_the_app() {
    let h = Harness::start().await;
    let chunks = (0..64).map(|i| Ok::<_, std::io::Error>(vec![b'a' + (i % 26) as u8; 16 * 1024]));
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = h
        .http
        .post(h.url("/upload"))
        .bearer_auth(subject_token("alice"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = h.upstream.seen();
    assert_eq!(seen[0].body.len(), 64 * 16 * 1024);
    assert_eq!(&seen[0].body[16 * 1024..16 * 1024 + 3], b"bbb");
}

#[tokio::test]
async fn shutdown_refuses_new_connections_and_ends_open_streams_after_the_grace_period() {
    let mut h = Harness::start().await;
    let _events = h.upstream.sse_channel();
    let response = h.get("/sse", &subject_token("alice")).await;
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    let serving = h.shutdown();
    let result = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("server did not stop");
    assert!(result.unwrap().is_ok());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(
        tokio::net::TcpStream::connect(h.addr).await.is_err(),
        "listener closed"
    );
    drop(response);
}
