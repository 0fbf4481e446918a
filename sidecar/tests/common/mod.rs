//! Shared harness: a Dex double per cluster, a recording upstream app, credentials and kubeconfig files,
//! and a running sidecar on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod upstream;

use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use base64::Engine as _;
use muster_exchange_api::sidecar_config::SidecarConfig;
use muster_exchange_dex::jwt::unsigned_jwt;
use muster_exchange_dex::test_double::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DexDouble};
use muster_exchange_sidecar::state::AppState;
use muster_exchange_sidecar::{Sidecar, SidecarOptions};
use serde_json::json;

pub use upstream::Upstream;

pub const API_SERVER: &str = "https://api.wc.example:6443";
pub const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn ca_data() -> String {
    base64::engine::general_purpose::STANDARD.encode(CA_PEM)
}

/// A subject token from the central Dex for `user`, valid for an hour.
pub fn subject_token(user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    subject_token_with_exp(user, i64::try_from(now).unwrap() + 3600)
}

/// A subject token for `user` with the given `exp` (seconds since the epoch).
pub fn subject_token_with_exp(user: &str, exp: i64) -> String {
    unsigned_jwt(&json!({"iss": "https://central.example/dex", "sub": user, "exp": exp, "groups": ["devs"]}))
}

/// Seconds since the epoch, now.
pub fn epoch_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

/// Polls `condition` until it holds or 10 s pass.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub struct ClusterFixture {
    pub name: String,
    pub dex: DexDouble,
    pub credentials_dir: PathBuf,
}

impl ClusterFixture {
    pub fn write_secret(&self, secret: &str) {
        std::fs::write(self.credentials_dir.join("client-secret"), format!("{secret}\n")).unwrap();
    }
}

pub struct Harness {
    pub clusters: Vec<ClusterFixture>,
    pub upstream: Upstream,
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct HarnessOptions {
    pub clusters: Vec<&'static str>,
    pub header_mode: &'static str,
    pub sidecar: SidecarOptions,
    pub central_issuer: Option<&'static str>,
    /// Each cluster gets an endpoint directory (`server`, `ca.crt`) instead of a kubeconfig.
    pub endpoint_dir: bool,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        let mut sidecar = SidecarOptions {
            exchange_timeout: Duration::from_millis(800),
            // Tests of the 401 retry use fresh tokens; the cooldown has its own test.
            unauthorized_retry_cooldown: Duration::ZERO,
            ..Default::default()
        };
        sidecar.backoff.initial = Duration::from_secs(2);
        Self {
            clusters: vec!["alpha"],
            header_mode: "auth-headers",
            sidecar,
            central_issuer: None,
            endpoint_dir: false,
        }
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(HarnessOptions::default()).await
    }

    /// A harness with the default options but these clusters (routed as `/clusters/<name>/...`).
    pub async fn start_with_clusters(clusters: &[&'static str]) -> Self {
        Self::start_with(HarnessOptions {
            clusters: clusters.to_vec(),
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(options: HarnessOptions) -> Self {
        install_provider();
        let dir = tempfile::tempdir().unwrap();
        let upstream = Upstream::start().await;
        let mut clusters = Vec::new();
        let mut entries = Vec::new();
        for name in &options.clusters {
            let dex = DexDouble::start().await.unwrap();
            let cluster_dir = dir.path().join(name);
            let credentials_dir = cluster_dir.join("credentials");
            std::fs::create_dir_all(&credentials_dir).unwrap();
            std::fs::write(
                credentials_dir.join("client-id"),
                format!("{DEFAULT_CLIENT_ID}\n"),
            )
            .unwrap();
            std::fs::write(
                credentials_dir.join("client-secret"),
                format!("{DEFAULT_CLIENT_SECRET}\n"),
            )
            .unwrap();
            let kube_dir = cluster_dir.join("kubeconfig");
            std::fs::create_dir_all(&kube_dir).unwrap();
            std::fs::write(
                kube_dir.join("value"),
                kubeconfig(&format!("{API_SERVER}/{name}")),
            )
            .unwrap();
            std::fs::write(cluster_dir.join("ca.pem"), dex.ca_pem()).unwrap();
            let endpoint_dir = cluster_dir.join("endpoint");
            std::fs::create_dir_all(&endpoint_dir).unwrap();
            std::fs::write(
                endpoint_dir.join("server"),
                format!("{API_SERVER}/{name}-endpoint\n"),
            )
            .unwrap();
            std::fs::write(endpoint_dir.join("ca.crt"), CA_PEM).unwrap();
            let mut entry = json!({
                "name": name,
                "dexTokenEndpoint": dex.token_endpoint(),
                "connectorId": "central",
                "scopes": "openid groups",
                "requiredAudiences": ["dex-k8s-authenticator"],
                "credentialsDir": credentials_dir,
                "kubeconfigFile": kube_dir.join("value"),
                "caFile": cluster_dir.join("ca.pem"),
            });
            if options.endpoint_dir {
                entry["endpointDir"] = json!(endpoint_dir);
                entry.as_object_mut().unwrap().remove("kubeconfigFile");
            }
            entries.push(entry);
            clusters.push(ClusterFixture {
                name: name.to_string(),
                dex,
                credentials_dir,
            });
        }
        let mut config: SidecarConfig = serde_json::from_value(json!({
            "listen": "127.0.0.1:0",
            "upstream": format!("http://{}", upstream.addr),
            "headerMode": options.header_mode,
            "clusters": entries,
        }))
        .unwrap();
        config.central_issuer = options.central_issuer.map(str::to_string);
        let sidecar = Sidecar::bind(&config, &options.sidecar).await.unwrap();
        let addr = sidecar.local_addr().unwrap();
        let state = sidecar.state();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(sidecar.serve(
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(1),
        ));
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(600)
            .build()
            .unwrap();
        Self {
            clusters,
            upstream,
            addr,
            state,
            http,
            dir,
            shutdown: Some(tx),
            serving: Some(serving),
        }
    }

    /// Sends the shutdown signal and returns the server task (it ends after the 1 s grace at most).
    pub fn shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.serving.take().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn dex(&self) -> &DexDouble {
        &self.clusters[0].dex
    }

    pub async fn get(&self, path: &str, subject: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(subject)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, subject: &str, body: &'static str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(subject)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Sends one GET to `path` per subject, all at once, and returns what `read` takes from each
    /// response, in the order of `subjects`.
    pub async fn get_all_at_once<T: Send + 'static>(
        &self,
        path: &str,
        subjects: impl IntoIterator<Item = String>,
        read: fn(&reqwest::Response) -> T,
    ) -> Vec<T> {
        let requests = subjects.into_iter().map(|subject| {
            let (http, url) = (self.http.clone(), self.url(path));
            tokio::spawn(async move { read(&http.get(url).bearer_auth(subject).send().await.unwrap()) })
        });
        futures::future::join_all(requests)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    /// Asserts that the `/metrics` text contains `sample` (a whole sample: name, labels and value).
    pub async fn assert_metric(&self, sample: &str) {
        let metrics = self.metrics().await;
        assert!(metrics.contains(sample), "no {sample} in\n{metrics}");
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The string at `field` of a JSON error body (fails the test, showing the body, if there is none).
pub fn text<'a>(body: &'a serde_json::Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {body}"))
}

pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: wc\ncontexts:\n- name: wc\n  context:\n    cluster: wc\n    \
         user: u\nclusters:\n- name: wc\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\n\
         users:\n- name: u\n  user: {{}}\n",
        ca_data()
    )
}
