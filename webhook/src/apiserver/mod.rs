//! Talking to the Kubernetes API server: one client for the whole process, and a deadline on every
//! request/response call.
//!
//! The client has no read timeout. kube applies a read timeout to watch streams too, and the MCPServer
//! watch is quiet for as long as nothing changes: a read timeout would cut it, force a re-list and
//! delay events. kube-runtime's watcher already asks the API server to end each watch after
//! `timeoutSeconds` and guards against a dead connection with its own idle timeout above that.
//!
//! Request/response calls (the SubjectAccessReview, the CA Secret's get, create and update, the
//! webhook configurations' get and caBundle patch) each run under [`within`] instead, so a call the
//! API server never answers fails with an error naming it rather than holding a review or the
//! certificate loop forever.

#[cfg(test)]
mod call_tests;
mod deadline;
#[cfg(test)]
mod watch_tests;

use kube::{Client, Config};

pub(crate) use deadline::{CALL_TIMEOUT, within};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// Neither in-cluster nor kubeconfig configuration found.
    #[error(
        "no Kubernetes configuration: {0}; run in a pod with a ServiceAccount, set KUBECONFIG, or use \
         --mcpservers FILE"
    )]
    Config(#[from] kube::config::InferConfigError),
    /// The configuration did not give a client (e.g. bad TLS material).
    #[error("cannot build a Kubernetes client: {0}; check the kubeconfig or the ServiceAccount token mount")]
    Client(#[from] kube::Error),
}

/// The client, from the inferred configuration (in-cluster, else kubeconfig).
pub(crate) async fn client() -> Result<Client, ClientError> {
    client_from(Config::infer().await?)
}

/// The client from `config`, without a read timeout whatever `config` says (see the module docs).
pub(crate) fn client_from(mut config: Config) -> Result<Client, ClientError> {
    config.read_timeout = None;
    Ok(Client::try_from(config)?)
}
