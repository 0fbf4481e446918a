//! Loopback TLS: `--self-signed` serves a certificate valid for the Service name and rotates; a file
//! pair swapped the way Secret volumes swap (symlink) is picked up without restart while requests keep
//! succeeding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use futures::future::BoxFuture;
use muster_exchange_webhook::server::router;
use muster_exchange_webhook::server::serve;
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use muster_exchange_webhook::tls::ca_bundle::{
    CaBundleSink, PublishError, PublishedBundles, ReadConfiguration,
};
use muster_exchange_webhook::tls::pem_files::PemFiles;
use muster_exchange_webhook::tls::self_signed::{SelfSigned, SelfSignedSettings};
use tokio_util::sync::CancellationToken;

const SERVICE: &str = "muster-exchange-webhook.muster-exchange.svc";

#[derive(Default)]
struct RecordedBundles(Mutex<Vec<String>>);

impl CaBundleSink for RecordedBundles {
    fn publish<'a>(
        &'a self,
        bundle_pem: &'a str,
        _read: &'a PublishedBundles,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        self.0.lock().unwrap().push(bundle_pem.to_string());
        Box::pin(async { Ok(()) })
    }

    /// One webhook, carrying the last bundle published.
    fn current(&self) -> BoxFuture<'_, Result<PublishedBundles, PublishError>> {
        let last = self.0.lock().unwrap().last().cloned().unwrap_or_default();
        let configuration = ReadConfiguration {
            resource_version: "1".into(),
            webhooks: vec![("webhook".into(), last)],
        };
        Box::pin(async move {
            Ok(PublishedBundles {
                configurations: vec![configuration],
            })
        })
    }
}

async fn start_server(tls: RustlsConfig) -> (SocketAddr, Handle<SocketAddr>) {
    let handle = Handle::new();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    tokio::spawn(serve(listen, router(common::state()), tls, handle.clone()));
    let addr = handle.listening().await.expect("the server listens");
    (addr, handle)
}

/// A client trusting only `bundle_pem`, resolving `name` to the loopback server.
fn client(bundle_pem: &str, name: &str, addr: SocketAddr, keep_alive: bool) -> reqwest::Client {
    let roots = reqwest::Certificate::from_pem_bundle(bundle_pem.as_bytes()).unwrap();
    let builder = reqwest::Client::builder()
        .tls_certs_only(roots)
        .resolve(name, addr);
    let builder = if keep_alive {
        builder
    } else {
        builder.pool_max_idle_per_host(0)
    };
    builder.build().unwrap()
}

async fn healthz(client: &reqwest::Client, name: &str, addr: SocketAddr) -> Result<u16, reqwest::Error> {
    let response = client
        .get(format!("https://{name}:{}/healthz", addr.port()))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn self_signed_serves_the_service_name_and_rotates_keeping_the_old_ca_in_the_bundle() {
    common::install_crypto_provider();
    let sink = Arc::new(RecordedBundles::default());
    let settings = SelfSignedSettings {
        dns_names: service_dns_names("muster-exchange-webhook", "muster-exchange"),
        validity: Duration::from_secs(3600),
        check_interval: Duration::from_secs(3600),
        propagation_delay: Duration::ZERO,
        client_verifier: None,
    };
    let mut authority = SelfSigned::start(settings, sink.clone(), common::MemoryCaStore::new())
        .await
        .unwrap();
    let first_ca = authority.current().ca_pem.clone();
    assert_eq!(sink.0.lock().unwrap().as_slice(), std::slice::from_ref(&first_ca));
    let (addr, _handle) = start_server(authority.rustls_config()).await;

    let trusting_first = client(&first_ca, SERVICE, addr, false);
    assert_eq!(healthz(&trusting_first, SERVICE, addr).await.unwrap(), 200);
    let wrong_name = client(&first_ca, "evil.example.com", addr, false);
    assert!(
        healthz(&wrong_name, "evil.example.com", addr).await.is_err(),
        "the certificate names the Service only"
    );

    authority.rotate().await.unwrap();
    let second_ca = authority.current().ca_pem.clone();
    assert_ne!(second_ca, first_ca);
    assert_eq!(
        sink.0.lock().unwrap()[1],
        format!("{second_ca}{first_ca}"),
        "new CA first, old CA kept"
    );
    assert_eq!(authority.bundle(), format!("{second_ca}{first_ca}"));

    let trusting_bundle = client(&authority.bundle(), SERVICE, addr, false);
    assert_eq!(healthz(&trusting_bundle, SERVICE, addr).await.unwrap(), 200);
    let trusting_second = client(&second_ca, SERVICE, addr, false);
    assert_eq!(healthz(&trusting_second, SERVICE, addr).await.unwrap(), 200);
    assert!(
        healthz(&trusting_first, SERVICE, addr).await.is_err(),
        "new handshakes present the new certificate"
    );
}

/// Writes a pair into `dir/<version>/` and points `dir/..data` at it by an atomic rename, like the
/// kubelet updating a Secret volume.
fn publish_pair(dir: &Path, version: &str, cert: &str, key: &str) {
    let target = dir.join(version);
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("tls.crt"), cert).unwrap();
    std::fs::write(target.join("tls.key"), key).unwrap();
    let staging = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staging);
    std::os::unix::fs::symlink(version, &staging).unwrap();
    std::fs::rename(&staging, dir.join("..data")).unwrap();
}

/// Requests sent in a loop until stopped, counting successes and failures.
struct Traffic {
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(client: reqwest::Client, addr: SocketAddr) -> Self {
        let (ok, failed, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (ok2, failed2, done2) = (ok.clone(), failed.clone(), done.clone());
        let task = tokio::spawn(async move {
            while !done2.load(Ordering::Relaxed) {
                match healthz(&client, SERVICE, addr).await {
                    Ok(200) => ok2.fetch_add(1, Ordering::Relaxed),
                    _ => failed2.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
        Self {
            ok,
            failed,
            done,
            task,
        }
    }

    async fn stop(self) -> (usize, usize) {
        self.done.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test]
async fn a_swapped_file_pair_is_served_without_restart_while_requests_keep_succeeding() {
    common::install_crypto_provider();
    let names = service_dns_names("muster-exchange-webhook", "muster-exchange");
    let first = issue(&names, Duration::from_secs(3600)).unwrap();
    let second = issue(&names, Duration::from_secs(3600)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    publish_pair(dir.path(), "v1", &first.cert_pem, &first.key_pem);
    std::os::unix::fs::symlink("..data/tls.crt", dir.path().join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", dir.path().join("tls.key")).unwrap();

    let files = PemFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let (config, loaded) = files.load(&None).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(files.watch(
        (config.clone(), None),
        loaded,
        Duration::from_millis(50),
        stop.clone(),
    ));
    let (addr, _handle) = start_server(config).await;

    // Traffic throughout the swap, a new handshake per request, trusting both CAs.
    let traffic = Traffic::start(
        client(
            &format!("{}{}", first.ca_pem, second.ca_pem),
            SERVICE,
            addr,
            false,
        ),
        addr,
    );

    let only_second = client(&second.ca_pem, SERVICE, addr, false);
    assert!(
        healthz(&only_second, SERVICE, addr).await.is_err(),
        "still serving the first certificate"
    );
    publish_pair(dir.path(), "v2", &second.cert_pem, &second.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while healthz(&only_second, SERVICE, addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the swapped certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ok, failed) = traffic.stop().await;
    stop.cancel();
    assert_eq!(failed, 0, "no request failed during the swap");
    assert!(ok > 0);
    let only_first = client(&first.ca_pem, SERVICE, addr, false);
    assert!(healthz(&only_first, SERVICE, addr).await.is_err());
}

#[tokio::test]
async fn graceful_shutdown_drains_a_review_in_flight_and_refuses_new_connections() {
    common::install_crypto_provider();
    let names = service_dns_names("muster-exchange-webhook", "muster-exchange");
    let certificate = issue(&names, Duration::from_secs(3600)).unwrap();
    let tls = RustlsConfig::from_pem(
        certificate.cert_pem.clone().into_bytes(),
        certificate.key_pem.clone().into_bytes(),
    )
    .await
    .unwrap();
    // Signals when a request's headers are in, i.e. the connection has a review in flight.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let signal = arrived.clone();
    let app = router(common::state()).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            signal.notify_one();
            next.run(request)
        },
    ));
    let handle = Handle::new();
    let server = tokio::spawn(serve("127.0.0.1:0".parse().unwrap(), app, tls, handle.clone()));
    let addr = handle.listening().await.unwrap();
    let reviewer = client(&certificate.ca_pem, SERVICE, addr, true);

    // A review whose body arrives in two parts, with the shutdown in between.
    let review = common::fixture("pod-create-generate-name.json").into_bytes();
    let (first, second) = review.split_at(review.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    tx.send(Ok(first.to_vec())).await.unwrap();
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let url = format!("https://{SERVICE}:{}/mutate-pods", addr.port());
    let in_flight = tokio::spawn(
        reviewer
            .post(url)
            .header("content-length", review.len())
            .body(body)
            .send(),
    );
    tokio::time::timeout(Duration::from_secs(5), arrived.notified())
        .await
        .expect("the review reached the server");

    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    let fresh = client(&certificate.ca_pem, SERVICE, addr, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while healthz(&fresh, SERVICE, addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "new connections are still accepted after shutdown"
        );
        tokio::task::yield_now().await;
    }
    tx.send(Ok(second.to_vec())).await.unwrap();
    drop(tx);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert!(
        answer["response"]["patch"].is_string(),
        "the drained review was fully answered"
    );
    server.await.unwrap().unwrap();
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
