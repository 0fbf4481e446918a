//! The request flow inside a Muster installation, in one process and on loopback: a central Dex double
//! that logs users in, one Dex double per remote cluster whose connector verifies subject tokens against
//! the central issuer (as Dex's OIDC connector does, so a token a remote Dex issued is refused there with
//! 401 `access_denied`), a client playing Muster, the real sidecar server, and an MCP streamable-HTTP app.
//!
//! - **Topology M** (`tokenExchange.enabled: true`): Muster exchanges at the remote Dex itself, once per
//!   (user, cluster), and calls the sidecar with the remote token, which the sidecar passes through.
//! - **Topology F** (`forwardToken: true`, `enabled: false`): Muster forwards the central ID token and the
//!   sidecar exchanges once per (user, cluster).
//!
//! docs/muster-flow.md describes the same flow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "muster_flow/mcp_app.rs"]
mod mcp_app;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{API_SERVER, ca_data, install_provider, kubeconfig, text};
use mcp_app::{Call, McpApp};
use muster_exchange_api::sidecar_config::SidecarConfig;
use muster_exchange_dex::jwt::{peek_claims, unsigned_jwt};
use muster_exchange_dex::test_double::{
    Behaviour, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CONNECTOR, DexDouble,
};
use muster_exchange_dex::{ClientOptions, ExchangeClient, ExchangeRequest};
use muster_exchange_sidecar::{Sidecar, SidecarOptions};
use serde_json::{Value, json};

const SCOPES: &str = "openid profile email groups";
const AUDIENCE: &str = "dex-k8s-authenticator";
const USERS: [&str; 2] = ["alice", "bob"];
const CALLS_PER_USER: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    /// Muster exchanges; the sidecar passes Muster's tokens through.
    M,
    /// Muster forwards the central token; the sidecar exchanges.
    F,
}

/// One remote management cluster: its Dex and its API server as the kubeconfig names it.
struct Remote {
    name: &'static str,
    dex: DexDouble,
}

impl Remote {
    fn api_server(&self) -> String {
        format!("{API_SERVER}/{}", self.name)
    }
}

/// Everything of one installation: central Dex, remote clusters, the app and the sidecar in front of it.
struct Installation {
    central: DexDouble,
    remotes: Vec<Remote>,
    app: McpApp,
    sidecar: std::net::SocketAddr,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Installation {
    /// `sidecar_clusters` are the remote clusters the sidecar serves (all when several are routed by
    /// `/clusters/<name>/`); `others` exist (their Dex issues tokens) but this sidecar does not serve them.
    async fn start(
        sidecar_clusters: &[&'static str],
        others: &[&'static str],
        header_mode: &'static str,
    ) -> Self {
        install_provider();
        let central = DexDouble::start().await.unwrap();
        let mut remotes = Vec::new();
        for name in sidecar_clusters.iter().chain(others) {
            let behaviour = Behaviour {
                connector_issuer: Some(central.issuer().to_string()),
                token_lifetime: Duration::from_secs(1800),
                expires_in: Some(1800),
                ..Behaviour::default()
            };
            let dex = DexDouble::start_with(behaviour).await.unwrap();
            remotes.push(Remote { name, dex });
        }
        let app = McpApp::start().await;
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Value> = remotes
            .iter()
            .filter(|r| sidecar_clusters.contains(&r.name))
            .map(|r| cluster_entry(dir.path(), r))
            .collect();
        let config: SidecarConfig = serde_json::from_value(json!({
            "listen": "127.0.0.1:0",
            "upstream": format!("http://{}", app.addr),
            "headerMode": header_mode,
            "clusters": entries,
        }))
        .unwrap();
        let sidecar = Sidecar::bind(&config, &SidecarOptions::default()).await.unwrap();
        let addr = sidecar.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(sidecar.serve(
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        Self {
            central,
            remotes,
            app,
            sidecar: addr,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
            _stop: stop,
        }
    }

    fn remote(&self, name: &str) -> &Remote {
        self.remotes.iter().find(|r| r.name == name).unwrap()
    }

    /// The sidecar's URL for `cluster`: the only one, or `/clusters/<name>/` when it serves several.
    fn route(&self, cluster: &str, served: usize) -> String {
        if served == 1 {
            format!("http://{}/mcp", self.sidecar)
        } else {
            format!("http://{}/clusters/{cluster}/mcp", self.sidecar)
        }
    }

    /// A sample of the sidecar's `/metrics` (0 when the series is missing).
    async fn metric(&self, sample: &str) -> u64 {
        let metrics = self
            .http
            .get(format!("http://{}/metrics", self.sidecar))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// The sidecar's entry for `remote`, as the webhook renders it from the MCPServer (files as mounted).
fn cluster_entry(dir: &Path, remote: &Remote) -> Value {
    let cluster_dir = dir.join(remote.name);
    let credentials = cluster_dir.join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("client-id"), DEFAULT_CLIENT_ID).unwrap();
    std::fs::write(credentials.join("client-secret"), DEFAULT_CLIENT_SECRET).unwrap();
    std::fs::write(cluster_dir.join("kubeconfig"), kubeconfig(&remote.api_server())).unwrap();
    std::fs::write(cluster_dir.join("ca.pem"), remote.dex.ca_pem()).unwrap();
    json!({
        "name": remote.name,
        "dexTokenEndpoint": remote.dex.token_endpoint(),
        "connectorId": DEFAULT_CONNECTOR,
        "scopes": SCOPES,
        "requiredAudiences": [AUDIENCE],
        "credentialsDir": credentials,
        "kubeconfigFile": cluster_dir.join("kubeconfig"),
        "caFile": cluster_dir.join("ca.pem"),
    })
}

/// Muster, as far as the flow goes: it holds each user's central ID token and, per topology, either
/// exchanges it at the remote Dex itself (M, with the credentials Secret; cached per (user, cluster),
/// like Muster's per-session pool) or forwards it unchanged (F). It speaks MCP streamable HTTP.
struct Muster<'a> {
    topology: Topology,
    installation: &'a Installation,
    remote_tokens: HashMap<(String, String), String>,
}

impl<'a> Muster<'a> {
    fn new(topology: Topology, installation: &'a Installation) -> Self {
        Self {
            topology,
            installation,
            remote_tokens: HashMap::new(),
        }
    }

    /// The token Muster sends for `user` to `cluster`.
    async fn token_for(&mut self, user: &str, central_token: &str, cluster: &str) -> String {
        if self.topology == Topology::F {
            return central_token.to_string();
        }
        let key = (user.to_string(), cluster.to_string());
        if let Some(token) = self.remote_tokens.get(&key) {
            return token.clone();
        }
        let token = exchange_as_muster(self.installation.remote(cluster), central_token).await;
        self.remote_tokens.insert(key, token.clone());
        token
    }

    /// One MCP session of `user` with `cluster` through the sidecar: initialize, initialized, then
    /// `calls` tool calls. Returns the tool results' texts.
    async fn session(
        &mut self,
        user: &str,
        central_token: &str,
        cluster: &str,
        url: &str,
        calls: usize,
    ) -> Vec<String> {
        let token = self.token_for(user, central_token, cluster).await;
        let http = &self.installation.http;
        let post = |body: Value, session: Option<&str>| {
            let mut request = http
                .post(url)
                .bearer_auth(&token)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .json(&body);
            if let Some(session) = session {
                request = request.header("mcp-session-id", session);
            }
            request.send()
        };
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "muster", "version": "0"}}});
        let response = post(init, None).await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "initialize for {user} at {cluster}: {}",
            response.text().await.unwrap()
        );
        let session = response.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(post(initialized, Some(&session)).await.unwrap().status(), 202);
        let mut texts = Vec::new();
        for id in 0..calls {
            let call = json!({"jsonrpc": "2.0", "id": id + 2, "method": "tools/call",
                "params": {"name": "pods_list", "arguments": {}}});
            let response = post(call, Some(&session)).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "text/event-stream");
            let body = response.text().await.unwrap();
            let data = body.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let message: Value = serde_json::from_str(data).unwrap();
            texts.push(
                message["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        texts
    }
}

/// Muster's own exchange at `remote`'s Dex with the credentials Secret (topology M).
async fn exchange_as_muster(remote: &Remote, central_token: &str) -> String {
    let client = ExchangeClient::new(ClientOptions {
        timeout: Duration::from_secs(5),
        extra_ca_pem: Some(remote.dex.ca_pem().as_bytes().to_vec()),
    })
    .unwrap();
    let scope = format!("{SCOPES} audience:server:client_id:{AUDIENCE}");
    let request = ExchangeRequest {
        endpoint: &remote.dex.token_endpoint(),
        subject_token: central_token,
        connector_id: DEFAULT_CONNECTOR,
        scope: &scope,
        client_id: DEFAULT_CLIENT_ID,
        client_secret: DEFAULT_CLIENT_SECRET,
        expected_issuer: Some(remote.dex.issuer()),
    };
    client.exchange(&request).await.unwrap().access_token
}

/// The `sub` a remote Dex gives `user` logged in at the central Dex (the double's GenSubject).
fn remote_sub(user: &str) -> String {
    muster_exchange_dex::jwt::base64url(format!("{user}/{DEFAULT_CONNECTOR}").as_bytes())
}

/// Asserts that every call the app got carries a token `remote`'s Dex issued, for one of `USERS`, and
/// the cluster's headers in auth-headers mode; returns the users seen, one per call.
fn assert_remote_identity(calls: &[Call], remote: &Remote, header_mode: &str) -> Vec<String> {
    let subs: HashMap<String, &str> = USERS.iter().map(|u| (remote_sub(u), *u)).collect();
    calls
        .iter()
        .map(|call| {
            let token = call.bearer().expect("the app got no bearer token");
            let claims = peek_claims(token).unwrap();
            assert_eq!(claims.iss.as_deref(), Some(remote.dex.issuer()), "{call:?}");
            let user = subs
                .get(claims.sub.as_deref().unwrap())
                .expect("a token for an unknown user");
            match header_mode {
                "auth-headers" => {
                    let expected = [
                        ("kubernetes-authorization", format!("Bearer {token}")),
                        ("kubernetes-certificate-authority-data", ca_data()),
                        ("kubernetes-server", remote.api_server()),
                    ];
                    let got: Vec<(&str, String)> = call
                        .kubernetes
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .collect();
                    assert_eq!(got, expected.to_vec(), "{call:?}");
                }
                _ => assert!(
                    call.kubernetes.is_empty(),
                    "bearer mode sent {:?}",
                    call.kubernetes
                ),
            }
            user.to_string()
        })
        .collect()
}

/// The subject tokens `remote`'s Dex was asked to exchange, in order.
fn exchanged_subjects(remote: &Remote) -> Vec<String> {
    remote
        .dex
        .requests()
        .iter()
        .map(|r| r.field("subject_token").unwrap().to_string())
        .collect()
}

/// Many calls by two users in `topology`: the app sees only tokens the remote Dex issued (with the
/// cluster's headers), and each (user, cluster) costs exactly one exchange, by Muster in M and by the
/// sidecar in F.
async fn many_calls_one_exchange_per_user(topology: Topology, header_mode: &'static str) {
    let installation = Installation::start(&["cluster-a"], &[], header_mode).await;
    let remote = installation.remote("cluster-a");
    let url = installation.route("cluster-a", 1);
    let mut muster = Muster::new(topology, &installation);
    let mut central_tokens = Vec::new();
    for user in USERS {
        let central_token = installation.central.id_token(user, Duration::from_secs(3600));
        // Two sessions per user: Muster reconnects, the token (and so the exchange) is reused.
        for _ in 0..2 {
            let texts = muster
                .session(user, &central_token, "cluster-a", &url, CALLS_PER_USER / 2)
                .await;
            let expected = match header_mode {
                "auth-headers" => format!("pods listed at {}", remote.api_server()),
                _ => "pods listed at ".to_string(),
            };
            assert!(texts.iter().all(|t| *t == expected), "{texts:?}");
        }
        central_tokens.push(central_token);
    }

    let calls = installation.app.calls();
    let per_session = 2 + CALLS_PER_USER / 2;
    assert_eq!(calls.len(), USERS.len() * 2 * per_session);
    let tool_calls = calls.iter().filter(|c| c.method == "tools/call").count();
    assert_eq!(tool_calls, USERS.len() * CALLS_PER_USER);
    let users = assert_remote_identity(&calls, remote, header_mode);
    for user in USERS {
        assert_eq!(
            users.iter().filter(|u| *u == user).count(),
            2 * per_session,
            "calls of {user}"
        );
    }
    // Exactly one exchange per (user, cluster), each of a central token, over all those calls.
    assert_eq!(exchanged_subjects(remote), central_tokens, "{topology:?}");
    assert_eq!(remote.dex.exchanges(), USERS.len());
    let by_sidecar = installation
        .metric(r#"muster_exchange_sidecar_exchanges_total{cluster="cluster-a",outcome="success"}"#)
        .await;
    let passthroughs = installation
        .metric(r#"muster_exchange_sidecar_passthroughs_total{cluster="cluster-a"}"#)
        .await;
    match topology {
        // Muster did the exchanges; the sidecar passed each remote token through (one cache miss each).
        Topology::M => assert_eq!((by_sidecar, passthroughs), (0, USERS.len() as u64)),
        Topology::F => assert_eq!((by_sidecar, passthroughs), (USERS.len() as u64, 0)),
    }
}

#[tokio::test]
async fn topology_m_muster_exchanges_and_the_sidecar_passes_its_tokens_through_auth_headers() {
    many_calls_one_exchange_per_user(Topology::M, "auth-headers").await;
}

#[tokio::test]
async fn topology_m_muster_exchanges_and_the_sidecar_passes_its_tokens_through_bearer() {
    many_calls_one_exchange_per_user(Topology::M, "bearer").await;
}

#[tokio::test]
async fn topology_f_the_sidecar_exchanges_once_per_user_auth_headers() {
    many_calls_one_exchange_per_user(Topology::F, "auth-headers").await;
}

#[tokio::test]
async fn topology_f_the_sidecar_exchanges_once_per_user_bearer() {
    many_calls_one_exchange_per_user(Topology::F, "bearer").await;
}

#[tokio::test]
async fn in_topology_m_a_client_with_a_central_token_is_still_exchanged_for() {
    let installation = Installation::start(&["cluster-a"], &[], "auth-headers").await;
    let remote = installation.remote("cluster-a");
    let url = installation.route("cluster-a", 1);
    let alice = installation.central.id_token("alice", Duration::from_secs(3600));
    Muster::new(Topology::M, &installation)
        .session("alice", &alice, "cluster-a", &url, 2)
        .await;
    // An MCP client connecting to the sidecar directly, with its central token (as in F).
    let bob = installation.central.id_token("bob", Duration::from_secs(3600));
    Muster::new(Topology::F, &installation)
        .session("bob", &bob, "cluster-a", &url, 2)
        .await;
    let users = assert_remote_identity(&installation.app.calls(), remote, "auth-headers");
    assert_eq!(
        users,
        ["alice", "alice", "alice", "alice", "bob", "bob", "bob", "bob"]
    );
    assert_eq!(exchanged_subjects(remote), [alice, bob]);
}

/// A token cluster B's Dex issued, sent to cluster A's route.
async fn cluster_b_token_on_cluster_a_route(
    sidecar_clusters: &[&'static str],
    others: &[&'static str],
) -> (Installation, Value) {
    let installation = Installation::start(sidecar_clusters, others, "auth-headers").await;
    let alice = installation.central.id_token("alice", Duration::from_secs(3600));
    let for_b = exchange_as_muster(installation.remote("cluster-b"), &alice).await;
    let url = installation.route("cluster-a", sidecar_clusters.len());
    let response = installation
        .http
        .post(&url)
        .bearer_auth(&for_b)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"),
        "{:?}",
        response.headers()
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        installation.app.calls().is_empty(),
        "the app got {:?}",
        installation.app.calls()
    );
    (installation, body)
}

#[tokio::test]
async fn a_token_for_cluster_b_is_refused_on_cluster_as_route_by_a_sidecar_serving_both() {
    let (installation, body) = cluster_b_token_on_cluster_a_route(&["cluster-a", "cluster-b"], &[]).await;
    assert_eq!(text(&body, "error"), "token_for_other_cluster");
    assert_eq!(text(&body, "cluster"), "cluster-a");
    assert!(
        text(&body, "message").contains("issued by the Dex of cluster cluster-b"),
        "{body}"
    );
    // Refused by the sidecar itself: cluster A's Dex was never asked.
    assert_eq!(installation.remote("cluster-a").dex.token_requests(), 0);
}

#[tokio::test]
async fn a_token_for_cluster_b_is_refused_by_cluster_as_dex_behind_a_sidecar_serving_only_a() {
    let (installation, body) = cluster_b_token_on_cluster_a_route(&["cluster-a"], &["cluster-b"]).await;
    // Not cluster A's issuer, so exchanged as a central token: A's connector verifies it against the
    // central issuer and refuses it.
    assert_eq!(text(&body, "error"), "exchange_denied");
    assert_eq!(text(&body, "dex_error"), "access_denied");
    let remote_a = installation.remote("cluster-a");
    assert_eq!((remote_a.dex.token_requests(), remote_a.dex.exchanges()), (1, 0));
}

#[tokio::test]
async fn an_expired_passthrough_token_is_refused_without_reaching_the_app_or_dex() {
    let installation = Installation::start(&["cluster-a"], &[], "bearer").await;
    let remote = installation.remote("cluster-a");
    let expired =
        unsigned_jwt(&json!({"iss": remote.dex.issuer(), "sub": remote_sub("alice"), "exp": 1_000}));
    let response = installation
        .http
        .post(installation.route("cluster-a", 1))
        .bearer_auth(&expired)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(text(&body, "error"), "token_expired");
    assert!(installation.app.calls().is_empty());
    assert_eq!(remote.dex.token_requests(), 0);
}

#[tokio::test]
async fn a_passthrough_token_the_app_refuses_is_returned_as_is_not_retried() {
    // The harness retries a 401 for any exchanged token (no cooldown), so only the passthrough rule
    // keeps this from being sent twice.
    let h = common::Harness::start().await;
    let exp = common::epoch_now() + 3600;
    let token = unsigned_jwt(&json!({"iss": h.dex().issuer(), "sub": "carol", "exp": exp}));
    h.upstream.reject_subjects(["carol"]);
    let response = h.get("/mcp", &token).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.text().await.unwrap(), "token rejected");
    let seen = h.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(h.dex().token_requests(), 0);
    h.assert_metric(r#"muster_exchange_sidecar_unauthorized_retries_total{cluster="alpha"} 0"#)
        .await;
}
