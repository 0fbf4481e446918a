//! The request path end to end: exchange, forwarded headers, routing, inbound refusals, operations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{API_SERVER, Harness, HarnessOptions, ca_data, subject_token};
use muster_exchange_dex::jwt::peek_claims;
use serde_json::{Value, json};

#[tokio::test]
async fn forwards_the_exchanged_token_and_auth_headers_and_never_the_callers_kubernetes_headers() {
    let h = Harness::start().await;
    let subject = subject_token("alice");
    let response = h
        .http
        .post(h.url("/mcp?x=1"))
        .bearer_auth(&subject)
        .header("kubernetes-server", "https://evil.example")
        .header("kubernetes-authorization", "Bearer stolen")
        .header("Kubernetes-Certificate-Authority-Data", "ZXZpbA==")
        .header("kubernetes-insecure-skip-tls-verify", "true")
        .header("mcp-session-id", "session-1")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "drop me")
        .header("x-end-to-end", "keep me")
        .body("{\"jsonrpc\":\"2.0\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["mcp-session-id"], "upstream-session");
    assert_eq!(response.headers()["x-app"], "mcp");
    assert!(
        response.headers().get("keep-alive").is_none(),
        "hop-by-hop response header leaked"
    );
    assert_eq!(response.text().await.unwrap(), "app says hi");

    let seen = h.upstream.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.path_and_query, "/mcp?x=1");
    assert_eq!(req.body, "{\"jsonrpc\":\"2.0\"}");
    let exchanged = req
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    assert_ne!(exchanged, subject);
    let claims = peek_claims(&exchanged).unwrap();
    assert_eq!(
        (claims.iss.as_deref(), claims.sub.as_deref()),
        (Some(h.dex().issuer()), Some("exchanged-1"))
    );
    assert_eq!(
        req.header("kubernetes-authorization"),
        Some(format!("Bearer {exchanged}").as_str())
    );
    assert_eq!(
        req.header("kubernetes-server"),
        Some(format!("{API_SERVER}/alpha").as_str())
    );
    assert_eq!(
        req.header("kubernetes-certificate-authority-data"),
        Some(ca_data().as_str())
    );
    let kubernetes: Vec<&str> = req
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("kubernetes-"))
        .collect();
    assert_eq!(
        kubernetes,
        vec![
            "kubernetes-authorization",
            "kubernetes-server",
            "kubernetes-certificate-authority-data"
        ]
    );
    assert_eq!(req.header("mcp-session-id"), Some("session-1"));
    assert_eq!(req.header("x-end-to-end"), Some("keep me"));
    assert_eq!(req.header("x-hop"), None);

    let sent = &h.dex().requests()[0];
    assert_eq!(sent.field("subject_token"), Some(subject.as_str()));
    assert_eq!(sent.field("connector_id"), Some("central"));
    assert_eq!(
        sent.field("scope"),
        Some("openid groups audience:server:client_id:dex-k8s-authenticator")
    );
    // "exchange-client:s3cr%2Bt%2Fwith%3Dchars": the secret's + and / survive (RFC 6749 2.3.1).
    assert_eq!(
        sent.authorization.as_deref(),
        Some("Basic ZXhjaGFuZ2UtY2xpZW50OnMzY3IlMkJ0JTJGd2l0aCUzRGNoYXJz")
    );
}

#[tokio::test]
async fn bearer_mode_sends_only_authorization() {
    let h = Harness::start_with(HarnessOptions {
        header_mode: "bearer",
        ..Default::default()
    })
    .await;
    let response = h
        .http
        .get(h.url("/mcp"))
        .bearer_auth(subject_token("alice"))
        .header("kubernetes-authorization", "Bearer stolen")
        .header("kubernetes-server", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = h.upstream.seen();
    assert_eq!(seen[0].bearer_sub().as_deref(), Some("exchanged-1"));
    let kubernetes: Vec<&str> = seen[0]
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("kubernetes-"))
        .collect();
    assert_eq!(kubernetes, Vec::<&str>::new());
}

#[tokio::test]
async fn the_app_sees_a_loopback_host_and_the_callers_host_as_x_forwarded_host() {
    let h = Harness::start().await;
    let response = h
        .http
        .get(h.url("/mcp"))
        .bearer_auth(subject_token("alice"))
        .header("host", "mcp.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.get("/mcp", &subject_token("alice")).await.status(), 200);
    let seen = h.upstream.seen();
    let upstream_host = h.upstream.addr.to_string();
    let sidecar_host = h.addr.to_string();
    let forwarded = |i: usize| {
        (
            seen[i].header("host"),
            seen[i].header("x-forwarded-host"),
            seen[i].header("x-forwarded-proto"),
        )
    };
    assert_eq!(
        forwarded(0),
        (
            Some(upstream_host.as_str()),
            Some("mcp.example.com"),
            Some("http")
        )
    );
    assert_eq!(
        forwarded(1),
        (
            Some(upstream_host.as_str()),
            Some(sidecar_host.as_str()),
            Some("http")
        )
    );
}

#[tokio::test]
async fn a_subject_exp_at_the_end_of_time_neither_panics_nor_defeats_the_cache() {
    let h = Harness::start().await;
    let subject = common::subject_token_with_exp("alice", i64::MAX);
    assert_eq!(h.get("/mcp", &subject).await.status(), 200);
    assert_eq!(h.get("/mcp", &subject).await.status(), 200);
    assert_eq!(h.dex().exchanges(), 1);
}

#[tokio::test]
async fn missing_or_malformed_tokens_get_401_with_www_authenticate() {
    let h = Harness::start().await;
    let response = h.http.get(h.url("/mcp")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="muster-exchange""#
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "missing_token",
            "message": "missing Authorization header; send Authorization: Bearer <ID token from the central Dex>"})
    );
    let response = h
        .http
        .get(h.url("/mcp"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="muster-exchange", error="invalid_request""#
    );
    assert_eq!(h.dex().token_requests(), 0);
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn expired_subject_tokens_are_refused_without_asking_dex() {
    let h = Harness::start().await;
    let expired = muster_exchange_dex::jwt::unsigned_jwt(&json!({"sub": "bob", "exp": 1_000}));
    let response = h.get("/mcp", &expired).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="muster-exchange", error="invalid_token""#
    );
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "token_expired");
    assert_eq!(h.dex().token_requests(), 0);
}

#[tokio::test]
async fn oversized_headers_get_431_with_a_message() {
    let h = Harness::start().await;
    let huge = format!("{}.{}.sig", "a".repeat(10), "b".repeat(70 * 1024));
    let response = h.get("/mcp", &huge).await;
    assert_eq!(response.status(), 431);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "token_too_large");
    assert_eq!(
        body["message"],
        format!(
            "the bearer token is {} bytes, over the 65536-byte limit; reduce the groups in the ID token",
            huge.len()
        )
    );
    let response = h
        .http
        .get(h.url("/mcp"))
        .bearer_auth(subject_token("a"))
        .header("x-groups", "g".repeat(97 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "headers_too_large"
    );
    assert_eq!(h.dex().token_requests(), 0);
}

#[tokio::test]
async fn several_clusters_route_by_prefix_and_unknown_is_404() {
    let h = Harness::start_with_clusters(&["alpha", "beta"]).await;
    let subject = subject_token("alice");
    assert_eq!(h.get("/clusters/beta/mcp?q=1", &subject).await.status(), 200);
    let seen = h.upstream.seen();
    assert_eq!(seen[0].path_and_query, "/mcp?q=1");
    assert_eq!(
        seen[0].header("kubernetes-server"),
        Some(format!("{API_SERVER}/beta").as_str())
    );
    assert_eq!(
        (
            h.clusters[0].dex.token_requests(),
            h.clusters[1].dex.token_requests()
        ),
        (0, 1)
    );

    let response = h.get("/clusters/gamma/mcp", &subject).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "unknown_cluster", "message": "unknown cluster \"gamma\" (known: alpha, beta)"})
    );
    assert_eq!(h.get("/mcp", &subject).await.status(), 404);
}

#[tokio::test]
async fn readiness_follows_credentials_and_metrics_count_exchanges_and_cache() {
    let h = Harness::start().await;
    let ready = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(
        (ready.status().as_u16(), ready.text().await.unwrap()),
        (200, "ready\n".to_string())
    );
    assert_eq!(h.http.get(h.url("/healthz")).send().await.unwrap().status(), 200);
    let subject = subject_token("alice");
    for _ in 0..3 {
        assert_eq!(h.get("/mcp", &subject).await.status(), 200);
    }
    let metrics = h.metrics().await;
    for line in [
        r#"muster_exchange_sidecar_exchanges_total{cluster="alpha",outcome="success"} 1"#,
        r#"muster_exchange_sidecar_cache_lookups_total{cluster="alpha",result="miss"} 1"#,
        r#"muster_exchange_sidecar_cache_lookups_total{cluster="alpha",result="hit"} 2"#,
        r#"muster_exchange_sidecar_requests_total{cluster="alpha",code="2xx"} 3"#,
        r#"muster_exchange_sidecar_exchange_duration_seconds_count{cluster="alpha"} 1"#,
        r#"muster_exchange_sidecar_proxy_duration_seconds_count{cluster="alpha"} 3"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line} in\n{metrics}");
    }
    std::fs::remove_file(h.clusters[0].credentials_dir.join("client-secret")).unwrap();
    let not_ready = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503);
    let body: Value = not_ready.json().await.unwrap();
    let problem = body["problems"][0].as_str().unwrap();
    assert!(
        problem.starts_with("cluster alpha: cannot read ") && problem.contains("client-secret"),
        "{problem}"
    );
}

#[tokio::test]
async fn an_endpoint_dir_supplies_server_and_ca_and_readiness_reports_a_bad_file() {
    let h = Harness::start_with(HarnessOptions {
        endpoint_dir: true,
        ..Default::default()
    })
    .await;
    let ready = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(h.get("/mcp", &subject_token("alice")).await.status(), 200);
    let seen = h.upstream.seen();
    // From the endpoint directory, not from the kubeconfig (which names `.../alpha`).
    assert_eq!(
        seen[0].header("kubernetes-server"),
        Some(format!("{API_SERVER}/alpha-endpoint").as_str())
    );
    assert_eq!(
        seen[0].header("kubernetes-certificate-authority-data"),
        Some(ca_data().as_str())
    );
    let endpoint = h.dir.path().join("alpha").join("endpoint");
    std::fs::write(endpoint.join("server"), "http://api.wc.example:6443").unwrap();
    let not_ready = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503);
    let body: Value = not_ready.json().await.unwrap();
    let problem = body["problems"][0].as_str().unwrap();
    assert!(
        problem.starts_with("cluster alpha: endpoint ConfigMap file ")
            && problem.contains("server")
            && problem.contains("https://"),
        "{problem}"
    );
    std::fs::write(endpoint.join("server"), "https://api.wc.example:6443").unwrap();
    std::fs::write(endpoint.join("ca.crt"), "not a certificate").unwrap();
    let body: Value = h
        .http
        .get(h.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let problem = body["problems"][0].as_str().unwrap();
    assert!(problem.contains("ca.crt") && problem.contains("PEM"), "{problem}");
    std::fs::remove_file(endpoint.join("ca.crt")).unwrap();
    let body: Value = h
        .http
        .get(h.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let problem = body["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("ca.crt") && problem.contains("mount the endpoint ConfigMap"),
        "{problem}"
    );
}
