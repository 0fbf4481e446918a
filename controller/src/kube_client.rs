//! The Kubernetes API client of the controller and of `diagnose`: the inferred configuration (in-cluster
//! or kubeconfig) with a read timeout, so a hung API call fails instead of freezing a loop forever.

use std::time::Duration;

use kube::{Client, Config};

/// Longest wait for an answer from the API server (watches re-establish on their own after it).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neither in-cluster nor kubeconfig configuration found.
    #[error("no Kubernetes configuration: {0}; run in-cluster or set a kubeconfig context")]
    Config(#[from] kube::config::InferConfigError),
    /// The configuration did not give a client (e.g. bad TLS material).
    #[error("cannot build a Kubernetes client: {0}; check the kubeconfig")]
    Client(#[from] kube::Error),
}

/// A client from the inferred configuration with [`READ_TIMEOUT`].
pub async fn client() -> Result<Client, ClientError> {
    let mut config = Config::infer().await?;
    config.read_timeout = Some(READ_TIMEOUT);
    Ok(Client::try_from(config)?)
}
