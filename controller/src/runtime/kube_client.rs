//! The Kubernetes API clients of the controller and of `diagnose`, from the inferred configuration
//! (in-cluster or kubeconfig). Two clients on the same configuration, because one timeout cannot suit
//! both kinds of call:
//! - `watch`: no read timeout. A watch is quiet for as long as nothing changes; a read timeout would cut
//!   it and force a re-list (kube-runtime's watcher has its own idle timeout above the server's).
//! - `call`: request/response calls (get, apply, delete, Lease rounds) with a read timeout counted from
//!   the request, so a hung call fails instead of freezing a reconcile.

use std::time::Duration;

use kube::{Client, Config};

/// Longest wait for an answer to one request/response call.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The client for watches and the client for request/response calls.
#[derive(Clone)]
pub(crate) struct Clients {
    /// Long-lived watch streams: no read timeout.
    pub(crate) watch: Client,
    /// Request/response calls: [`READ_TIMEOUT`].
    pub(crate) call: Client,
}

/// Both clients from the inferred configuration.
pub(crate) async fn clients() -> Result<Clients, ClientError> {
    clients_from(Config::infer().await?)
}

/// Both clients from `config`.
pub(crate) fn clients_from(config: Config) -> Result<Clients, ClientError> {
    let mut watch = config.clone();
    watch.read_timeout = None;
    let mut call = config;
    call.read_timeout = Some(READ_TIMEOUT);
    // Count the timeout from each request, not from when its pooled connection went idle.
    call.reset_reader_on_write = true;
    Ok(Clients {
        watch: Client::try_from(watch)?,
        call: Client::try_from(call)?,
    })
}
