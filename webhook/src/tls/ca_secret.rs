//! The CA all `--self-signed` replicas share, kept in one Secret in the webhook's namespace.
//!
//! - Created once: a replica that finds no Secret mints a CA and creates it; when another replica
//!   created it first (409 AlreadyExists) it reads and uses theirs, so replicas starting together agree.
//! - Rotated by replacing it conditionally on the `resourceVersion` read: the new CA goes in `ca.crt`,
//!   the old one moves to `previous-ca.crt` (still trusted while replicas switch); when two replicas
//!   rotate at once, the loser's write is refused (409 Conflict) and it adopts the winner's CA.
//!
//! RBAC: `get` and `update` on this one Secret by name, and `create` on Secrets (which RBAC cannot
//! restrict by name); the code never touches another Secret.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use super::authority::CaKeyPair;
use crate::apiserver::{CALL_TIMEOUT, within};

/// Default name of the CA Secret.
pub const DEFAULT_CA_SECRET: &str = "muster-exchange-webhook-ca";
/// Key of the current CA certificate.
pub const CA_CERT_KEY: &str = "ca.crt";
/// Key of the current CA's private key.
pub const CA_KEY_KEY: &str = "ca.key";
/// Key of the CA replaced by the last rotation (absent before the first rotation).
pub const PREVIOUS_CA_CERT_KEY: &str = "previous-ca.crt";

/// The Secret's content as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCa {
    /// The CA every replica signs its serving certificate with.
    pub ca: CaKeyPair,
    /// The CA before the last rotation (PEM), trusted until it expires.
    pub previous_pem: Option<String>,
    /// `metadata.resourceVersion`: the precondition of a rotation.
    pub resource_version: String,
}

/// Why the CA Secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CaStoreError {
    /// The API server refused or could not be reached.
    #[error(
        "cannot {action} the CA Secret {namespace}/{name}: {source}; check that the webhook's ServiceAccount \
         may get, create and update it (manifests/webhook/ca-secret-rbac.yaml)"
    )]
    Api {
        /// `read`, `create` or `update`.
        action: &'static str,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The API error (boxed: it is large and rare).
        #[source]
        source: Box<kube::Error>,
    },
    /// The Secret exists but does not hold a CA.
    #[error(
        "the CA Secret {namespace}/{name} has no usable {CA_CERT_KEY} and {CA_KEY_KEY}; delete it and the \
         webhook creates a new one"
    )]
    Malformed {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// The Secret changed since it was read (another replica rotated first), or was created meanwhile.
    #[error("the CA Secret changed since it was read: another replica wrote first")]
    Conflict,
}

/// Where the shared CA lives; the cluster in production, a double in tests.
pub trait CaStore: Send + Sync {
    /// The stored CA, `None` when the Secret does not exist.
    fn get(&self) -> BoxFuture<'_, Result<Option<StoredCa>, CaStoreError>>;

    /// Creates the Secret with `ca`; [`CaStoreError::Conflict`] when it exists already.
    fn create<'a>(&'a self, ca: &'a CaKeyPair) -> BoxFuture<'a, Result<StoredCa, CaStoreError>>;

    /// Replaces the CA with `next`, keeping `read.ca` as the previous one, on condition that the Secret
    /// is still at `read.resource_version` ([`CaStoreError::Conflict`] otherwise).
    fn rotate<'a>(
        &'a self,
        read: &'a StoredCa,
        next: &'a CaKeyPair,
    ) -> BoxFuture<'a, Result<StoredCa, CaStoreError>>;
}

/// The CA Secret in the cluster.
#[derive(Clone)]
pub struct SecretCaStore {
    api: Api<Secret>,
    namespace: String,
    name: String,
}

impl SecretCaStore {
    /// The Secret `name` in `namespace` (the webhook's own).
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `verb Secret namespace/name`, naming a call that timed out.
    fn call(&self, verb: &str) -> String {
        format!("{verb} Secret {}/{}", self.namespace, self.name)
    }

    fn api_error(&self, action: &'static str) -> impl FnOnce(kube::Error) -> CaStoreError + '_ {
        move |source| match source {
            kube::Error::Api(status) if status.is_conflict() || status.is_already_exists() => {
                CaStoreError::Conflict
            }
            source => CaStoreError::Api {
                action,
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                source: Box::new(source),
            },
        }
    }

    fn parse(&self, secret: Secret) -> Result<StoredCa, CaStoreError> {
        let malformed = || CaStoreError::Malformed {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        };
        let data = secret.data.unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .and_then(|value| String::from_utf8(value.0.clone()).ok())
                .filter(|value| !value.trim().is_empty())
        };
        let ca = CaKeyPair {
            cert_pem: text(CA_CERT_KEY).ok_or_else(malformed)?,
            key_pem: text(CA_KEY_KEY).ok_or_else(malformed)?,
        };
        Ok(StoredCa {
            ca,
            previous_pem: text(PREVIOUS_CA_CERT_KEY),
            resource_version: secret.metadata.resource_version.unwrap_or_default(),
        })
    }

    fn secret(&self, ca: &CaKeyPair, previous_pem: Option<&str>, resource_version: Option<&str>) -> Secret {
        let mut data = BTreeMap::from([
            (
                CA_CERT_KEY.to_string(),
                ByteString(ca.cert_pem.clone().into_bytes()),
            ),
            (
                CA_KEY_KEY.to_string(),
                ByteString(ca.key_pem.clone().into_bytes()),
            ),
        ]);
        if let Some(previous) = previous_pem {
            data.insert(
                PREVIOUS_CA_CERT_KEY.to_string(),
                ByteString(previous.as_bytes().to_vec()),
            );
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                resource_version: resource_version.map(str::to_string),
                labels: Some(BTreeMap::from([
                    (
                        "app.kubernetes.io/name".to_string(),
                        "muster-exchange-webhook".to_string(),
                    ),
                    (
                        "app.kubernetes.io/part-of".to_string(),
                        "muster-exchange".to_string(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(data),
            ..Secret::default()
        }
    }
}

impl CaStore for SecretCaStore {
    fn get(&self) -> BoxFuture<'_, Result<Option<StoredCa>, CaStoreError>> {
        Box::pin(async move {
            let secret = within(CALL_TIMEOUT, || self.call("get"), self.api.get_opt(&self.name))
                .await
                .map_err(self.api_error("read"))?;
            secret.map(|secret| self.parse(secret)).transpose()
        })
    }

    fn create<'a>(&'a self, ca: &'a CaKeyPair) -> BoxFuture<'a, Result<StoredCa, CaStoreError>> {
        Box::pin(async move {
            let secret = self.secret(ca, None, None);
            let params = PostParams::default();
            let create = self.api.create(&params, &secret);
            let created = within(CALL_TIMEOUT, || self.call("create"), create)
                .await
                .map_err(self.api_error("create"))?;
            self.parse(created)
        })
    }

    fn rotate<'a>(
        &'a self,
        read: &'a StoredCa,
        next: &'a CaKeyPair,
    ) -> BoxFuture<'a, Result<StoredCa, CaStoreError>> {
        Box::pin(async move {
            let secret = self.secret(next, Some(&read.ca.cert_pem), Some(&read.resource_version));
            let params = PostParams::default();
            let replace = self.api.replace(&self.name, &params, &secret);
            let replaced = within(CALL_TIMEOUT, || self.call("update"), replace)
                .await
                .map_err(self.api_error("update"))?;
            self.parse(replaced)
        })
    }
}
