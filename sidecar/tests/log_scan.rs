//! Runs the success, failure and 401-retry paths with every log level captured as JSON, then scans the
//! output: no subject token, exchanged token, client secret or Basic credential may appear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Harness, subject_token};
use muster_exchange_dex::test_double::DEFAULT_CLIENT_SECRET;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_tokens_or_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let h = Harness::start().await;
    let alice = subject_token("alice");
    let mallory = subject_token("mallory");
    h.dex().update(|b| {
        b.refused_subject_tokens.insert(mallory.clone());
    });
    h.upstream.reject_subjects(["exchanged-1"]);
    assert_eq!(
        h.get("/mcp", &alice).await.status(),
        200,
        "success after one 401 retry"
    );
    assert_eq!(h.get("/mcp", &mallory).await.status(), 401);
    h.clusters[0].write_secret("another+secret");
    assert_eq!(h.get("/mcp", &subject_token("carol")).await.status(), 403);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(&muster_exchange_api::redact::short_hash(&alice)),
        "the subject's hash is logged:\n{logs}"
    );
    assert!(logs.contains("token exchange failed"), "{logs}");
    let exchanged: Vec<String> = h
        .upstream
        .seen()
        .iter()
        .map(|s| {
            s.header("authorization")
                .unwrap()
                .trim_start_matches("Bearer ")
                .to_string()
        })
        .collect();
    let basic = h.dex().requests()[0].authorization.clone().unwrap();
    let mut forbidden = vec![
        alice.clone(),
        mallory.clone(),
        DEFAULT_CLIENT_SECRET.to_string(),
        "another+secret".into(),
    ];
    forbidden.push("s3cr%2Bt".into());
    forbidden.push(basic.trim_start_matches("Basic ").to_string());
    forbidden.extend(exchanged);
    // Payload parts alone would also leak identity and be replayable material.
    forbidden.push(alice.split('.').nth(1).unwrap().to_string());
    for secret in &forbidden {
        assert!(
            !logs.contains(secret.as_str()),
            "a token or secret leaked into the logs: {secret}"
        );
    }
}
