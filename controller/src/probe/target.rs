//! What to probe for one MCPServer: its endpoint, issuer, connector and (checked) credentials.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use muster_exchange_api::credentials_policy::{CredentialsPolicy, CredentialsSecretRefused};
use muster_exchange_api::{MCPServer, issuer, topology};

use super::credentials::{ClientCredentials, check_credentials};
use super::outcome::Check;

/// Where an MCPServer's credentials Secret is, and whether the policy lets it be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretLocation {
    /// Secret namespace (the MCPServer's when the reference names none).
    pub(crate) namespace: String,
    /// Secret name.
    pub(crate) name: String,
    /// The MCPServer's namespace.
    pub(crate) server_namespace: String,
    /// `Some` (which rule, and what to do) when the Secret must be neither read nor granted.
    pub(crate) refused: Option<CredentialsSecretRefused>,
}

impl SecretLocation {
    /// `(namespace, name)` when the Secret may be read.
    pub(crate) fn readable(&self) -> Option<(&str, &str)> {
        self.refused
            .is_none()
            .then_some((self.namespace.as_str(), self.name.as_str()))
    }

    /// The `ExchangeCredentialsReady=False` check of a refused Secret.
    pub(crate) fn refused_check(&self) -> Option<Check> {
        let refused = self.refused.as_ref()?;
        Some(Check::fail("SecretNamespaceRefused", refused.to_string()))
    }
}

/// One MCPServer ready to be probed.
#[derive(Debug, Clone)]
pub(crate) struct ProbeTarget {
    /// MCPServer namespace.
    pub(crate) namespace: String,
    /// MCPServer name.
    pub(crate) name: String,
    /// `metadata.generation`, copied into `observedGeneration`.
    pub(crate) generation: Option<i64>,
    /// `dexTokenEndpoint` (empty when missing: the probe reports it).
    pub(crate) endpoint: String,
    /// `expectedIssuer`, else derived from the endpoint.
    pub(crate) expected_issuer: String,
    /// `connectorId`.
    pub(crate) connector_id: String,
    /// `scopes`.
    pub(crate) scope: String,
    /// Result of the credentials check.
    pub(crate) credentials_check: Check,
    /// The credentials when the check passed.
    pub(crate) credentials: Option<ClientCredentials>,
    /// When this Dex last answered, for the `Disconnected` message.
    pub(crate) last_answered: Option<Timestamp>,
}

impl ProbeTarget {
    /// `namespace/name`.
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The target for `server`, with `secret` the credentials Secret as found (`None`: not found; ignored
    /// when `policy` refuses the Secret's namespace). `None` when nobody exchanges for it (neither
    /// topology M nor F: in F the sidecar depends on this exchange as Muster does in M).
    pub(crate) fn from_server(
        server: &MCPServer,
        secret: Option<&Secret>,
        policy: &CredentialsPolicy,
    ) -> Option<Self> {
        let (_, te) = topology::exchange_config(server)?;
        let namespace = server.namespace().unwrap_or_default();
        let endpoint = te.dex_token_endpoint.clone().unwrap_or_default();
        let refused = credentials_secret_of(server, policy).and_then(|l| l.refused_check());
        let (credentials_check, credentials) = match (&te.client_credentials_secret_ref, refused) {
            (_, Some(refused)) => (refused, None),
            (Some(secret_ref), None) => {
                check_credentials(secret_ref, secret_ref.namespace_or(&namespace), secret)
            }
            (None, None) => (
                Check::fail(
                    "SecretNotFound",
                    "tokenExchange.clientCredentialsSecretRef is not set; Dex requires client authentication \
                     for token exchange, so reference a Secret with client-id and client-secret",
                ),
                None,
            ),
        };
        Some(ProbeTarget {
            name: server.name_any(),
            generation: server.metadata.generation,
            expected_issuer: issuer::expected_issuer(te.expected_issuer.as_deref(), &endpoint),
            endpoint,
            connector_id: te.connector_id.clone().unwrap_or_default(),
            scope: te.scopes.clone(),
            credentials_check,
            credentials,
            last_answered: None,
            namespace,
        })
    }
}

/// The credentials Secret `server` references, when someone exchanges with it (topology M or F), judged
/// by `policy`.
pub(crate) fn credentials_secret_of(
    server: &MCPServer,
    policy: &CredentialsPolicy,
) -> Option<SecretLocation> {
    let secret_ref = topology::exchange_config(server)?
        .1
        .client_credentials_secret_ref
        .as_ref()?;
    let server_namespace = server.namespace().unwrap_or_default();
    let namespace = secret_ref.namespace_or(&server_namespace).to_string();
    Some(SecretLocation {
        refused: policy
            .check(&namespace, &secret_ref.name, &server_namespace)
            .err(),
        namespace,
        name: secret_ref.name.clone(),
        server_namespace,
    })
}
