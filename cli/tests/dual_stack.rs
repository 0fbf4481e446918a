//! Every server listens on `[::]` by default and is reachable over IPv6 (`::1`) and IPv4 (`127.0.0.1`):
//! the webhook (`--listen`), the controller's metrics and health server (`--metrics-addr`), and the
//! sidecar, both with the configuration's default and with the address the webhook injects. Each is
//! bound at its default address with port 0 (the default ports may be taken on a shared machine).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use muster_exchange_api::sidecar_config::{SidecarConfig, listen_on_all_addresses};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LOOPBACKS: [IpAddr; 2] = [IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)];

/// What the binary's `main` does first (the webhook's TLS and the sidecar's Dex client need it).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The default address with port 0, after checking it is the all-addresses IPv6 one.
fn any_port(default: SocketAddr, what: &str) -> SocketAddr {
    assert_eq!(
        default.ip(),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "{what} listens on [::] by default"
    );
    SocketAddr::new(default.ip(), 0)
}

/// `GET /healthz` over plain HTTP at `ip`:`port`; the status line.
async fn healthz(ip: IpAddr, port: u16) -> String {
    let mut stream = TcpStream::connect((ip, port))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {ip} port {port}: {e}"));
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_webhook_accepts_ipv6_and_ipv4_on_its_default_address() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhook: muster_exchange_webhook::cli::WebhookArgs,
    }
    install_crypto_provider();
    let args = Cli::try_parse_from(["webhook"]).unwrap().webhook;
    let listen = any_port(args.listen, "the webhook");

    let dir = tempfile::tempdir().unwrap();
    let names = muster_exchange_webhook::tls::authority::service_dns_names("w", "n");
    let issued = muster_exchange_webhook::tls::authority::issue(&names, Duration::from_secs(3600)).unwrap();
    let files = muster_exchange_webhook::tls::pem_files::PemFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::write(&files.cert, &issued.cert_pem).unwrap();
    std::fs::write(&files.key, &issued.key_pem).unwrap();
    let (tls, _) = files.load(&None).unwrap();
    let catalog = muster_exchange_webhook::mcpservers::StaticMcpServers::from_documents(Vec::new()).unwrap();
    let settings = muster_exchange_webhook::inject::InjectorSettings {
        sidecar_image: "image".into(),
        default_mcpserver_namespace: None,
        central_issuer: None,
    };
    let state = Arc::new(muster_exchange_webhook::server::AppState::new(
        settings,
        Arc::new(catalog),
    ));
    let handle = axum_server::Handle::new();
    let server = tokio::spawn(muster_exchange_webhook::server::serve(
        listen,
        muster_exchange_webhook::server::router(state),
        tls,
        handle.clone(),
    ));
    let port = handle.listening().await.unwrap().port();
    for ip in LOOPBACKS {
        // The webhook speaks TLS only: a completed TCP connection shows the socket accepts the family.
        TcpStream::connect((ip, port))
            .await
            .unwrap_or_else(|e| panic!("the webhook is not reachable over {ip}: {e}"));
    }
    handle.shutdown();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_controller_metrics_server_accepts_ipv6_and_ipv4_on_its_default_address() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: muster_exchange_controller::cli::ControllerArgs,
    }
    let args = Cli::try_parse_from(["controller"]).unwrap().args;
    let listener = tokio::net::TcpListener::bind(any_port(args.metrics_addr, "the controller"))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = muster_exchange_controller::http::HttpState {
        registry: Arc::new(prometheus_client::registry::Registry::default()),
        ready: Arc::new(AtomicBool::new(true)),
    };
    let server = tokio::spawn(async move {
        axum::serve(listener, muster_exchange_controller::http::router(state))
            .await
            .unwrap();
    });
    for ip in LOOPBACKS {
        assert_eq!(healthz(ip, port).await, "HTTP/1.1 200 OK", "over {ip}");
    }
    server.abort();
}

#[tokio::test]
async fn the_sidecar_accepts_ipv6_and_ipv4_on_its_default_and_injected_address() {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"clusters": [{{"name": "a", "dexTokenEndpoint": "https://dex.a.example/token",
            "connectorId": "central", "credentialsDir": "{}"}}]}}"#,
        dir.path().display()
    );
    let mut config: SidecarConfig = serde_json::from_str(&config).unwrap();
    let default: SocketAddr = config.listen.parse().unwrap();
    assert_eq!(
        config.listen,
        listen_on_all_addresses(default.port()),
        "what the webhook injects"
    );
    config.listen = any_port(default, "the sidecar").to_string();
    let sidecar = muster_exchange_sidecar::Sidecar::bind(&config, &Default::default())
        .await
        .unwrap();
    let port = sidecar.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sidecar.serve(
        async move {
            let _ = stopped.await;
        },
        Duration::ZERO,
    ));
    for ip in LOOPBACKS {
        assert_eq!(healthz(ip, port).await, "HTTP/1.1 200 OK", "over {ip}");
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
