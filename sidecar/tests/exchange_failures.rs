//! Every way the exchange fails, as the caller sees it: status, JSON body, hint, backoff, isolation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Harness, HarnessOptions, subject_token, text};
use muster_exchange_dex::test_double::{DoubleClient, FailureMode};
use serde_json::{Value, json};

async fn call(h: &Harness, subject: &str) -> (u16, Option<String>, Value) {
    let response = h.get("/mcp", subject).await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn invalid_client_is_403_with_dex_error_and_hint_then_backs_off() {
    let h = Harness::start().await;
    h.clusters[0].write_secret("wrong");
    let (status, retry_after, body) = call(&h, &subject_token("alice")).await;
    assert_eq!((status, retry_after), (403, None));
    assert_eq!(
        body,
        json!({
            "error": "exchange_rejected",
            "message": "token exchange for cluster alpha failed: Dex rejected the token exchange (status 401): invalid_client - Invalid client credentials.",
            "cluster": "alpha",
            "hint": "check the credentials Secret: the client ID and secret must match a client registered in the remote Dex",
            "dex_error": "invalid_client",
            "dex_error_description": "Invalid client credentials.",
        })
    );
    // Within the backoff window Dex is not asked again, whoever asks; the answer says when to retry.
    let (status, retry_after, body) = call(&h, &subject_token("bob")).await;
    assert_eq!((status, retry_after.as_deref()), (403, Some("2")));
    assert!(text(&body, "message").contains("not retrying yet after repeated failures (retry in 2s)"));
    assert_eq!(body["dex_error"], "invalid_client");
    assert_eq!(h.dex().token_requests(), 1);
}

#[tokio::test]
async fn connector_errors_carry_dex_wording_and_hints() {
    let h = Harness::start_with_clusters(&["unknown", "notallowed"]).await;
    h.clusters[0].dex.update(|b| {
        b.connectors.clear();
    });
    h.clusters[1].dex.update(|b| {
        for client in b.clients.values_mut() {
            *client = DoubleClient {
                secret: client.secret.clone(),
                allowed_connectors: vec!["other".into()],
            };
        }
    });
    let subject = subject_token("alice");
    let response = h.get("/clusters/unknown/mcp", &subject).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["dex_error_description"],
        "Requested connector does not exist."
    );
    assert_eq!(
        body["hint"],
        "check connectorId and that the remote Dex has an OIDC connector with that ID (trusting the central Dex issuer)"
    );
    let response = h.get("/clusters/notallowed/mcp", &subject).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (text(&body, "dex_error"), text(&body, "dex_error_description")),
        ("invalid_grant", "Connector not allowed for this client.")
    );
    assert_eq!(
        body["hint"],
        "add the connector to the exchange client's allowedConnectors in the remote Dex"
    );
}

#[tokio::test]
async fn access_denied_is_401_for_that_caller_only() {
    let h = Harness::start().await;
    let refused = subject_token("mallory");
    h.dex().update(|b| {
        b.refused_subject_tokens.insert(refused.clone());
    });
    let (status, _, body) = call(&h, &refused).await;
    assert_eq!(status, 401);
    assert_eq!(
        (text(&body, "error"), text(&body, "dex_error")),
        ("exchange_denied", "access_denied")
    );
    assert!(text(&body, "hint").starts_with("the remote Dex does not trust the central issuer"));
    // The backoff is scoped to the refused caller: another user still gets through at once.
    let (status, _, _) = call(&h, &subject_token("alice")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn wrong_issuer_fails_closed_with_the_expected_issuer_hint() {
    let h = Harness::start().await;
    h.dex()
        .update(|b| b.token_issuer = Some("https://dex.real.example".into()));
    let (status, _, body) = call(&h, &subject_token("alice")).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"], "issuer_mismatch");
    let message = text(&body, "message");
    assert!(
        message.contains(&format!(
            "expected \"{}\", got \"https://dex.real.example\"",
            h.dex().issuer()
        )),
        "{message}"
    );
    assert!(
        message.contains("set expectedIssuer to \"https://dex.real.example\""),
        "{message}"
    );
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn missing_expires_in_uses_exp_and_the_token_is_cached() {
    let mut options = HarnessOptions::default();
    options.sidecar.cache.expiry_margin = Duration::from_secs(1);
    // No background refresh: the re-exchange happens exactly when the entry ends.
    options.sidecar.cache.refresh_window = Duration::ZERO;
    let h = Harness::start_with(options).await;
    h.dex().update(|b| {
        b.expires_in = None;
        b.token_lifetime = Duration::from_secs(3);
    });
    let subject = subject_token("alice");
    let first = Instant::now();
    assert_eq!(call(&h, &subject).await.0, 200);
    assert_eq!(call(&h, &subject).await.0, 200);
    assert_eq!(h.dex().exchanges(), 1, "cached");
    // exp = floor(now + 3 s), so the entry ends 1 to 2 s after the exchange (exp - margin).
    let deadline = first + Duration::from_secs(5);
    while h.dex().exchanges() == 1 {
        assert!(
            Instant::now() < deadline,
            "never re-exchanged: the exp claim was not used"
        );
        assert_eq!(call(&h, &subject).await.0, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = first.elapsed();
    assert!(
        after >= Duration::from_millis(950) && after < Duration::from_millis(2600),
        "re-exchanged after {after:?}"
    );
}

#[tokio::test]
async fn an_absurd_expires_in_from_dex_is_an_invalid_response() {
    let h = Harness::start().await;
    h.dex().update(|b| b.expires_in = Some(u64::MAX));
    let (status, _, body) = call(&h, &subject_token("alice")).await;
    assert_eq!((status, text(&body, "error")), (502, "dex_invalid_response"));
    assert!(
        text(&body, "message").contains("expires_in 18446744073709551615"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queued_for_an_exchange_slot_see_the_backoff_and_never_reach_dex() {
    let h = Harness::start().await;
    h.dex().update(|b| {
        b.delay = Duration::from_millis(400);
        b.failure = Some(FailureMode::ServerError);
    });
    let subjects = (0..24).map(|i| subject_token(&format!("user-{i}")));
    let answers = h
        .get_all_at_once("/mcp", subjects, |r| {
            (r.status().as_u16(), r.headers().contains_key("retry-after"))
        })
        .await;
    assert!(answers.iter().all(|(status, _)| *status == 502), "{answers:?}");
    assert_eq!(
        h.dex().token_requests(),
        muster_exchange_sidecar::exchanger::MAX_CONCURRENT_EXCHANGES,
        "the queued requests must not ask a Dex already known to fail"
    );
    assert_eq!(answers.iter().filter(|(_, backoff)| *backoff).count(), 24 - 16);
}

#[tokio::test]
async fn oversized_response_and_server_errors_are_502() {
    let h = Harness::start_with_clusters(&["big", "broken"]).await;
    h.clusters[0]
        .dex
        .update(|b| b.failure = Some(FailureMode::OversizedBody));
    h.clusters[1]
        .dex
        .update(|b| b.failure = Some(FailureMode::ServerError));
    let subject = subject_token("alice");
    let response = h.get("/clusters/big/x", &subject).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "dex_invalid_response");
    assert!(
        text(&body, "message").ends_with("response body larger than 1048576 bytes"),
        "{body}"
    );
    let response = h.get("/clusters/broken/x", &subject).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "dex_server_error"
    );
}

#[tokio::test]
async fn hanging_dex_is_504_within_the_timeout_while_other_clusters_work() {
    let h = Harness::start_with_clusters(&["hang", "fine"]).await;
    h.clusters[0].dex.update(|b| b.failure = Some(FailureMode::Hang));
    let subject = subject_token("alice");

    let started = Instant::now();
    let response = h.get("/clusters/hang/mcp", &subject).await;
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the exchange timeout bounds the wait"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (text(&body, "error"), text(&body, "cluster")),
        ("dex_timeout", "hang")
    );
    assert!(
        text(&body, "message").contains("did not answer within 800ms"),
        "{body}"
    );

    let response = h.get("/clusters/fine/mcp", &subject).await;
    assert_eq!(
        response.status(),
        200,
        "a hanging cluster does not affect the others"
    );
}

#[tokio::test]
async fn refused_connection_is_502_naming_cluster_and_cause() {
    let port = muster_exchange_dex::test_double::refused_addr().unwrap().port();
    let h = Harness::start().await;
    // A second sidecar whose only cluster points at a port nothing listens on.
    let mut config: muster_exchange_api::sidecar_config::SidecarConfig = serde_json::from_value(json!({
        "listen": "127.0.0.1:0",
        "upstream": format!("http://{}", h.upstream.addr),
        "headerMode": "bearer",
        "clusters": [{"name": "gone", "dexTokenEndpoint": format!("https://127.0.0.1:{port}/dex/token"),
            "connectorId": "central", "credentialsDir": h.clusters[0].credentials_dir}],
    }))
    .unwrap();
    config.clusters[0].expected_issuer = None;
    let sidecar = muster_exchange_sidecar::Sidecar::bind(&config, &Default::default())
        .await
        .unwrap();
    let addr = sidecar.local_addr().unwrap();
    tokio::spawn(sidecar.serve(std::future::pending(), Duration::from_secs(1)));
    let response = h
        .http
        .get(format!("http://{addr}/mcp"))
        .bearer_auth(subject_token("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (text(&body, "error"), text(&body, "cluster")),
        ("dex_unreachable", "gone")
    );
    let message = text(&body, "message");
    assert!(
        message.starts_with(&format!(
            "token exchange for cluster gone failed: cannot reach Dex at https://127.0.0.1:{port}/dex/token"
        )),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert_eq!(
        body["hint"],
        "check dexTokenEndpoint, DNS, network policies and caFile (extra CA for Dex)"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_used_without_restart() {
    let h = Harness::start().await;
    assert_eq!(call(&h, &subject_token("alice")).await.0, 200);
    h.dex().update(|b| {
        for client in b.clients.values_mut() {
            client.secret = "rotated+secret/2".into();
        }
    });
    h.clusters[0].write_secret("rotated+secret/2");
    assert_eq!(call(&h, &subject_token("bob")).await.0, 200);
    let requests = h.dex().requests();
    assert_eq!(requests.len(), 2);
    assert_ne!(requests[0].authorization, requests[1].authorization);
    assert_eq!(h.dex().exchanges(), 2);
}
