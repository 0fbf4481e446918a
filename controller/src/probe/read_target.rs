//! A probe target built from the cluster: the credentials Secret is read only where the namespace policy
//! allows it and only when it has opted in (see [`super::secret_optin`]).

use std::time::Duration;

use kube::Client;
use muster_exchange_api::MCPServer;
use muster_exchange_api::credentials_policy::CredentialsPolicy;

use super::outcome::Check;
use super::secret_optin::{SecretLookup, read_credentials_secret};
use super::target::{ProbeTarget, credentials_secret_of};

/// The lookup of one credentials Secret, with where it was looked up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LocatedLookup {
    /// Secret namespace.
    pub(crate) namespace: String,
    /// Secret name.
    pub(crate) name: String,
    /// What was found.
    pub(crate) lookup: SecretLookup,
}

/// The target for `server` given what reading its Secret found (`None`: not read, because there is no
/// reference or the policy refused it; `Err`: the read failed, with why). `None` when token exchange is
/// not enabled on it.
pub(crate) fn target_from_lookup(
    server: &MCPServer,
    read: Result<Option<&LocatedLookup>, String>,
    policy: &CredentialsPolicy,
) -> Option<ProbeTarget> {
    let secret = read
        .as_ref()
        .ok()
        .copied()
        .flatten()
        .and_then(|l| l.lookup.opted_in());
    let mut target = ProbeTarget::from_server(server, secret, policy)?;
    match read {
        Err(error) => target.credentials_check = Check::unknown("SecretUnreadable", error),
        Ok(Some(LocatedLookup {
            namespace,
            name,
            lookup: SecretLookup::Refused(refusal),
        })) => {
            target.credentials_check = refusal.check(namespace, name);
            target.credentials = None;
        }
        Ok(_) => {}
    }
    Some(target)
}

/// Reads `server`'s credentials Secret where allowed (bounded by `timeout`) and builds its target.
pub(crate) async fn target_from_cluster(
    client: &Client,
    server: &MCPServer,
    policy: &CredentialsPolicy,
    timeout: Duration,
) -> Option<ProbeTarget> {
    let readable = credentials_secret_of(server, policy)
        .and_then(|l| l.readable().map(|(ns, name)| (ns.to_string(), name.to_string())));
    let read = match readable {
        None => Ok(None),
        Some((namespace, name)) => read_located(client, namespace, name, timeout).await.map(Some),
    };
    target_from_lookup(
        server,
        read.as_ref().map(Option::as_ref).map_err(Clone::clone),
        policy,
    )
}

/// [`read_credentials_secret`] under `timeout`, with the error as the message a condition carries.
pub(crate) async fn read_located(
    client: &Client,
    namespace: String,
    name: String,
    timeout: Duration,
) -> Result<LocatedLookup, String> {
    match tokio::time::timeout(timeout, read_credentials_secret(client, &namespace, &name)).await {
        Ok(Ok(lookup)) => Ok(LocatedLookup {
            namespace,
            name,
            lookup,
        }),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "the Kubernetes API did not return Secret {namespace}/{name} within the probe timeout of {timeout:?}; \
             the next probe retries"
        )),
    }
}
