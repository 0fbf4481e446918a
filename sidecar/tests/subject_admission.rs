//! Subject tokens refused before Dex (not a JWT, expired, no `exp`, foreign issuer with `centralIssuer`)
//! and the length cap of the queue for an exchange slot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Harness, HarnessOptions, epoch_now, subject_token};
use muster_exchange_dex::jwt::unsigned_jwt;
use muster_exchange_sidecar::SidecarOptions;
use serde_json::{Value, json};

async fn refusal(h: &Harness, subject: &str) -> (u16, Value) {
    let response = h.get("/mcp", subject).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn opaque_and_expiry_less_tokens_never_reach_dex() {
    let h = Harness::start().await;
    for opaque in ["opaque-access-token", "a.b", "a.!!!.c", "e30.bm90IGpzb24.c2ln"] {
        let (status, body) = refusal(&h, opaque).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("token_not_jwt")),
            "{opaque}"
        );
    }
    let no_exp = unsigned_jwt(&json!({"iss": "https://central.example/dex", "sub": "bob"}));
    let (status, body) = refusal(&h, &no_exp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token_without_expiry"))
    );
    let expired = unsigned_jwt(&json!({"iss": "https://central.example/dex", "exp": epoch_now() - 1}));
    let (status, body) = refusal(&h, &expired).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("token_expired")));
    assert_eq!(h.dex().token_requests(), 0);
    assert!(h.upstream.seen().is_empty());
    h.assert_metric(r#"muster_exchange_sidecar_exchanges_total{cluster="alpha",outcome="not_jwt"} 4"#)
        .await;
    h.assert_metric(r#"muster_exchange_sidecar_exchanges_total{cluster="alpha",outcome="no_expiry"} 1"#)
        .await;
    // A well-formed central token is still exchanged.
    assert_eq!(h.get("/mcp", &subject_token("alice")).await.status(), 200);
    assert_eq!(h.dex().token_requests(), 1);
}

#[tokio::test]
async fn with_a_central_issuer_other_issuers_are_refused_before_dex() {
    let h = Harness::start_with(HarnessOptions {
        central_issuer: Some("https://central.example/dex"),
        ..Default::default()
    })
    .await;
    let foreign =
        unsigned_jwt(&json!({"iss": "https://attacker.example", "sub": "bob", "exp": epoch_now() + 600}));
    let (status, body) = refusal(&h, &foreign).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "token_issuer_unknown");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("https://central.example/dex"),
        "{body}"
    );
    let no_issuer = unsigned_jwt(&json!({"sub": "bob", "exp": epoch_now() + 600}));
    assert_eq!(refusal(&h, &no_issuer).await.1["error"], "token_issuer_unknown");
    assert_eq!(h.dex().token_requests(), 0);
    assert_eq!(h.get("/mcp", &subject_token("alice")).await.status(), 200);
    // The cluster's own tokens still pass through.
    let own = h.dex().id_token("carol", Duration::from_secs(600));
    assert_eq!(h.get("/mcp", &own).await.status(), 200);
    assert_eq!(h.dex().token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_queue_cap_requests_get_503_at_once_and_are_counted() {
    let h = Harness::start_with(HarnessOptions {
        sidecar: SidecarOptions {
            exchange_timeout: Duration::from_secs(5),
            exchange_queue_limit: 2,
            unauthorized_retry_cooldown: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    // Slow enough that all requests arrive while the first 16 hold every slot.
    h.dex().update(|b| b.delay = Duration::from_millis(1500));
    let slots = muster_exchange_sidecar::exchanger::MAX_CONCURRENT_EXCHANGES;
    let subjects = (0..slots + 8).map(|i| subject_token(&format!("user-{i}")));
    let answers = h
        .get_all_at_once("/mcp", subjects, |r| {
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry_after)
        })
        .await;
    let refused: Vec<_> = answers.iter().filter(|(status, _)| *status == 503).collect();
    assert_eq!(refused.len(), 6, "{answers:?}");
    assert!(
        refused.iter().all(|(_, retry)| retry.as_deref() == Some("1")),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|(status, _)| *status == 200).count(),
        slots + 2
    );
    assert_eq!(h.dex().token_requests(), slots + 2);
    h.assert_metric(r#"muster_exchange_sidecar_exchanges_total{cluster="alpha",outcome="queue_full"} 6"#)
        .await;
}
