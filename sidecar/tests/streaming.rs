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
    let upstream = h.upstream.state.clone();
    // Chunk 1 is only produced once the app has chunk 0: a proxy that buffers the body deadlocks here
    // and the stream fails after 5 s.
    let chunks = futures::stream::unfold(0u8, move |i| {
        let upstream = upstream.clone();
        async move {
            if i >= 64 {
                return None;
            }
            if i == 1 {
                let arrived =
                    tokio::time::timeout(Duration::from_secs(5), upstream.first_chunk_received.notified());
                if arrived.await.is_err() {
                    let error = std::io::Error::other("the app never saw the first chunk: the proxy buffers");
                    return Some((Err(error), u8::MAX));
                }
            }
            Some((Ok(vec![b'a' + (i % 26); 16 * 1024]), i + 1))
        }
    });
    let body = reqwest::Body::wrap_stream(chunks);
    let response = h
        .http
        .post(h.url("/upload-streaming"))
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
