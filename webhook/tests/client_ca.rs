//! `--client-ca-file`: only clients with a certificate from that CA complete the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns fail loudly by design

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use muster_exchange_webhook::server::router;
use muster_exchange_webhook::server::serve;
use muster_exchange_webhook::tls::authority::{issue, service_dns_names};
use muster_exchange_webhook::tls::server_config::{client_verifier, server_config};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

const SERVICE: &str = "muster-exchange-webhook.muster-exchange.svc";

/// A client CA (PEM) and a client certificate plus key it signed (PEM, as reqwest's identity wants).
fn client_pki() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["kube-apiserver".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    (
        ca_cert.pem(),
        format!("{}{}", leaf_cert.pem(), leaf_key.serialize_pem()),
    )
}

async fn healthz(server_ca: &str, identity: Option<&str>, addr: SocketAddr) -> Result<u16, reqwest::Error> {
    let roots = reqwest::Certificate::from_pem_bundle(server_ca.as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only(roots)
        .resolve(SERVICE, addr)
        .timeout(Duration::from_secs(5));
    if let Some(identity) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
    }
    let response = builder
        .build()
        .unwrap()
        .get(format!("https://{SERVICE}:{}/healthz", addr.port()))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn only_clients_with_a_certificate_from_the_client_ca_are_served() {
    common::install_crypto_provider();
    let (client_ca, identity) = client_pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &client_ca).unwrap();
    let verifier = Some(client_verifier(&ca_file).unwrap());

    let serving = issue(
        &service_dns_names("muster-exchange-webhook", "muster-exchange"),
        Duration::from_secs(3600),
    )
    .unwrap();
    let config = server_config(serving.cert_pem.as_bytes(), serving.key_pem.as_bytes(), &verifier).unwrap();
    let handle = Handle::new();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    tokio::spawn(serve(
        listen,
        router(common::state()),
        RustlsConfig::from_config(config),
        handle.clone(),
    ));
    let addr = handle.listening().await.unwrap();

    assert_eq!(
        healthz(&serving.ca_pem, Some(&identity), addr).await.unwrap(),
        200
    );
    assert!(
        healthz(&serving.ca_pem, None, addr).await.is_err(),
        "a client without a certificate must not be served"
    );
    let (_, stranger) = client_pki();
    assert!(
        healthz(&serving.ca_pem, Some(&stranger), addr).await.is_err(),
        "a certificate from another CA must not be accepted"
    );
    handle.shutdown();
}

#[test]
fn a_client_ca_file_without_certificates_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let error = client_verifier(&path).err().unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot use {} as --client-ca-file: it holds no PEM certificate; give a file of PEM CA certificates",
            path.display()
        )
    );
}
