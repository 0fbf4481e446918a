//! The headers that carry the exchanged identity to the app, built once per exchange (not per request):
//! `Authorization: Bearer <exchanged>` always; in `auth-headers` mode also the auth-headers provider's
//! `kubernetes-authorization`, `kubernetes-server` and `kubernetes-certificate-authority-data`.

use std::time::{Instant, SystemTime};

use http::{HeaderName, HeaderValue};
use muster_exchange_api::sidecar_config::HeaderMode;

use crate::kubeconfig::ClusterEndpoint;

/// `kubernetes-authorization`.
pub const KUBERNETES_AUTHORIZATION: HeaderName = HeaderName::from_static("kubernetes-authorization");
/// `kubernetes-server`.
pub const KUBERNETES_SERVER: HeaderName = HeaderName::from_static("kubernetes-server");
/// `kubernetes-certificate-authority-data`.
pub const KUBERNETES_CA_DATA: HeaderName = HeaderName::from_static("kubernetes-certificate-authority-data");

/// What the sidecar adds to each forwarded request for one (cluster, subject) pair.
#[derive(Clone)]
pub struct ForwardAuth {
    /// `Bearer <exchanged>`, marked sensitive.
    pub authorization: HeaderValue,
    /// The `kubernetes-*` headers (empty in `bearer` mode).
    pub extra: Vec<(HeaderName, HeaderValue)>,
    /// Short hash of the exchanged token, for logs.
    pub token_fingerprint: String,
    /// When the exchanged token expires.
    pub expires_at: SystemTime,
    /// When the exchange happened (a 401 for a token this young is not retried).
    pub exchanged_at: Instant,
    /// The caller's own token, forwarded unchanged (no exchange): a 401 from the app is never retried,
    /// since a new lookup would forward the same token again.
    pub passthrough: bool,
}

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuth")
            .field("token_fingerprint", &self.token_fingerprint)
            .field(
                "extra",
                &self.extra.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .field("expires_at", &self.expires_at)
            .field("passthrough", &self.passthrough)
            .finish()
    }
}

/// Why headers could not be built.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HeaderBuildError {
    /// Token or kubeconfig value not representable as a header.
    #[error("the {0} value contains characters not allowed in an HTTP header")]
    InvalidValue(&'static str),
    /// `auth-headers` mode with neither an endpoint directory nor a kubeconfig.
    #[error(
        "headerMode auth-headers needs the cluster's endpointDir or kubeconfigFile; set one or use headerMode bearer"
    )]
    NoKubeconfig,
}

/// Builds the headers for `token`.
pub fn build(
    token: &str,
    expires_at: SystemTime,
    mode: HeaderMode,
    endpoint: Option<&ClusterEndpoint>,
) -> Result<ForwardAuth, HeaderBuildError> {
    let mut authorization = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| HeaderBuildError::InvalidValue("exchanged token"))?;
    authorization.set_sensitive(true);
    let extra = match mode {
        HeaderMode::Bearer => Vec::new(),
        HeaderMode::AuthHeaders => {
            let endpoint = endpoint.ok_or(HeaderBuildError::NoKubeconfig)?;
            let server = HeaderValue::try_from(endpoint.server.as_str())
                .map_err(|_| HeaderBuildError::InvalidValue("kubeconfig server"))?;
            let ca = HeaderValue::try_from(endpoint.ca_data_base64.as_str())
                .map_err(|_| HeaderBuildError::InvalidValue("kubeconfig certificate-authority-data"))?;
            vec![
                (KUBERNETES_AUTHORIZATION, authorization.clone()),
                (KUBERNETES_SERVER, server),
                (KUBERNETES_CA_DATA, ca),
            ]
        }
    };
    let token_fingerprint = muster_exchange_api::redact::short_hash(token);
    Ok(ForwardAuth {
        authorization,
        extra,
        token_fingerprint,
        expires_at,
        exchanged_at: Instant::now(),
        passthrough: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_headers_mode_adds_the_provider_headers() {
        let endpoint = ClusterEndpoint {
            server: "https://api.wc:6443".into(),
            ca_data_base64: "Q0E=".into(),
        };
        let auth = build(
            "tok",
            SystemTime::UNIX_EPOCH,
            HeaderMode::AuthHeaders,
            Some(&endpoint),
        )
        .unwrap();
        assert_eq!(auth.authorization, "Bearer tok");
        assert!(auth.authorization.is_sensitive());
        let extra: Vec<(&str, &str)> = auth
            .extra
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            extra,
            vec![
                ("kubernetes-authorization", "Bearer tok"),
                ("kubernetes-server", "https://api.wc:6443"),
                ("kubernetes-certificate-authority-data", "Q0E="),
            ]
        );
        assert!(!format!("{auth:?}").contains("tok\""));
    }

    #[test]
    fn bearer_mode_adds_nothing_else_and_auth_headers_needs_a_kubeconfig() {
        let auth = build("tok", SystemTime::UNIX_EPOCH, HeaderMode::Bearer, None).unwrap();
        assert!(auth.extra.is_empty());
        let e = build("tok", SystemTime::UNIX_EPOCH, HeaderMode::AuthHeaders, None).unwrap_err();
        assert_eq!(e, HeaderBuildError::NoKubeconfig);
    }
}
