//! Every failure the sidecar answers itself, as JSON `{"error", "message", "cluster", "hint",
//! "dex_error", "dex_error_description"}` with a status that says whose problem it is.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use muster_exchange_dex::{ExchangeError, FailureClass};
use serde::Serialize;

use crate::auth_headers::HeaderBuildError;
use crate::credentials::CredentialsError;
use crate::inbound_auth::InboundError;
use crate::kubeconfig::KubeconfigError;
use crate::routing::RouteError;
use crate::token_cache::FromAbortedFlight;

/// Why an exchange for a request failed (shared by every request waiting on the same exchange).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeFailure {
    /// Dex (or the way to it) failed.
    #[error(transparent)]
    Dex(#[from] ExchangeError),
    /// The credentials Secret files are missing or empty.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The kubeconfig is missing or unusable.
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    /// The forwarded headers could not be built.
    #[error(transparent)]
    Headers(#[from] HeaderBuildError),
    /// Recent failures in this scope: not asking Dex again yet.
    #[error("not retrying yet after repeated failures (retry in {}s): {last}", retry_after_seconds(*.retry_after))]
    BackingOff {
        /// The failure that started the backoff.
        last: Arc<ExchangeFailure>,
        /// Time left.
        retry_after: Duration,
    },
    /// The subject token's `exp` has passed: refused without asking Dex (mapped to the caller's 401).
    #[error("the subject token has expired; log in again")]
    SubjectExpired,
    /// The token names another configured cluster's Dex as issuer: it was exchanged for that cluster.
    #[error(
        "the bearer token was issued by the Dex of cluster {issuer_cluster}, not of this cluster; send it to \
         cluster {issuer_cluster}'s route, or send the ID token from the central Dex"
    )]
    IssuedForOtherCluster {
        /// The cluster whose issuer the token names.
        issuer_cluster: String,
    },
    /// The token names this cluster's Dex as issuer but has no `exp`.
    #[error(
        "the bearer token names this cluster's Dex as issuer but carries no exp claim, so it cannot be \
         forwarded (a Kubernetes API server refuses it too); send a token Dex issued, or the ID token from \
         the central Dex"
    )]
    PassthroughWithoutExpiry,
    /// All exchange slots of the cluster stayed busy for the whole exchange timeout.
    #[error(
        "waited {}s for one of the {slots} exchange slots of this cluster (Dex is slow or many new callers \
         arrived at once); retry shortly", retry_after_seconds(*.waited)
    )]
    SlotTimeout {
        /// How long the request waited.
        waited: Duration,
        /// The number of slots.
        slots: usize,
    },
    /// The exchange task ended without an answer (a bug).
    #[error("the token exchange task ended without an answer; retry")]
    Aborted,
}

impl FromAbortedFlight for Arc<ExchangeFailure> {
    fn aborted_flight() -> Self {
        Arc::new(ExchangeFailure::Aborted)
    }
}

impl ExchangeFailure {
    /// The Dex failure class, when Dex was involved.
    pub fn failure_class(&self) -> Option<FailureClass> {
        match self {
            Self::Dex(e) => Some(e.failure_class()),
            Self::BackingOff { last, .. } => last.failure_class(),
            _ => None,
        }
    }

    /// True when the failure concerns the caller's token rather than the cluster (backoff per subject).
    pub fn is_subject_specific(&self) -> bool {
        self.failure_class() == Some(FailureClass::AccessDenied)
            || matches!(self, Self::Dex(ExchangeError::SubjectTokenTooLarge { .. }))
    }

    /// Metrics label for the outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Dex(e) => e.failure_class().as_str(),
            Self::Credentials(_) => "credentials_unavailable",
            Self::Kubeconfig(_) => "kubeconfig_unavailable",
            Self::Headers(_) => "invalid_headers",
            Self::BackingOff { .. } => "backoff",
            Self::SubjectExpired => "subject_expired",
            Self::IssuedForOtherCluster { .. } => "other_cluster_token",
            Self::PassthroughWithoutExpiry => "no_expiry",
            Self::SlotTimeout { .. } => "queue_timeout",
            Self::Aborted => "aborted",
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Dex(e) => dex_status_and_code(e),
            Self::Credentials(_) => (StatusCode::SERVICE_UNAVAILABLE, "credentials_unavailable"),
            Self::Kubeconfig(_) => (StatusCode::SERVICE_UNAVAILABLE, "kubeconfig_unavailable"),
            Self::Headers(_) => (StatusCode::BAD_GATEWAY, "invalid_exchanged_token"),
            Self::BackingOff { last, .. } => last.status_and_code(),
            Self::SubjectExpired => (StatusCode::UNAUTHORIZED, "token_expired"),
            Self::IssuedForOtherCluster { .. } => (StatusCode::UNAUTHORIZED, "token_for_other_cluster"),
            Self::PassthroughWithoutExpiry => (StatusCode::UNAUTHORIZED, "token_without_expiry"),
            Self::SlotTimeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "exchange_queue_timeout"),
            Self::Aborted => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

fn dex_status_and_code(e: &ExchangeError) -> (StatusCode, &'static str) {
    match e.failure_class() {
        FailureClass::Unreachable => (StatusCode::BAD_GATEWAY, "dex_unreachable"),
        FailureClass::Timeout => (StatusCode::GATEWAY_TIMEOUT, "dex_timeout"),
        FailureClass::ServerError => (StatusCode::BAD_GATEWAY, "dex_server_error"),
        FailureClass::IssuerMismatch => (StatusCode::BAD_GATEWAY, "issuer_mismatch"),
        FailureClass::InvalidResponse => (StatusCode::BAD_GATEWAY, "dex_invalid_response"),
        // The caller's token was refused: they may fix it by logging in again.
        FailureClass::AccessDenied => (StatusCode::UNAUTHORIZED, "exchange_denied"),
        _ => match e {
            ExchangeError::SubjectTokenTooLarge { .. } => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "token_too_large")
            }
            ExchangeError::InsecureEndpoint { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "config_error"),
            ExchangeError::UnexpectedStatus { .. } => (StatusCode::BAD_GATEWAY, "dex_invalid_response"),
            // Dex refused the exchange for a reason the caller cannot fix (credentials, connector, ...).
            _ => (StatusCode::FORBIDDEN, "exchange_rejected"),
        },
    }
}

fn retry_after_seconds(left: Duration) -> u64 {
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

/// A failure answered by the sidecar itself.
#[derive(Debug)]
pub enum ProxyError {
    /// The caller's request is unacceptable.
    Inbound(InboundError),
    /// No cluster for the path.
    Route(RouteError),
    /// The exchange failed.
    Exchange {
        /// Cluster name.
        cluster: String,
        /// Why.
        failure: Arc<ExchangeFailure>,
    },
    /// The caller's request body could not be read (client hung up, broken chunking).
    RequestBody {
        /// Cluster name.
        cluster: String,
        /// The read error.
        cause: String,
    },
    /// The app did not answer.
    Upstream {
        /// Cluster name.
        cluster: String,
        /// The transport error.
        cause: String,
    },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dex_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dex_error_description: Option<&'a str>,
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = match &self {
            Self::Inbound(e) => (inbound_status(e), plain(inbound_code(e), e.to_string()), None),
            Self::Route(e) => (
                StatusCode::NOT_FOUND,
                plain("unknown_cluster", e.to_string()),
                None,
            ),
            Self::Upstream { cluster, cause } => {
                let mut body = plain(
                    "upstream_unreachable",
                    format!("cannot reach the app: {cause}; check upstream"),
                );
                body.cluster = Some(cluster);
                (StatusCode::BAD_GATEWAY, body, None)
            }
            Self::RequestBody { cluster, cause } => {
                let mut body = plain(
                    "request_body_unreadable",
                    format!(
                        "reading the request body failed: {cause}; resend the request with a complete body"
                    ),
                );
                body.cluster = Some(cluster);
                (StatusCode::BAD_REQUEST, body, None)
            }
            Self::Exchange { cluster, failure } => exchange_body(cluster, failure),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, www_authenticate(&self));
        }
        response
    }
}

fn plain(code: &str, message: String) -> ErrorBody<'_> {
    ErrorBody {
        error: code,
        message,
        cluster: None,
        hint: None,
        dex_error: None,
        dex_error_description: None,
    }
}

fn exchange_body<'a>(
    cluster: &'a str,
    failure: &'a ExchangeFailure,
) -> (StatusCode, ErrorBody<'a>, Option<u64>) {
    let (status, code) = failure.status_and_code();
    let (dex, retry_after) = match failure {
        ExchangeFailure::BackingOff { last, retry_after } => {
            (&**last, Some(retry_after_seconds(*retry_after)))
        }
        other => (other, None),
    };
    let (dex_error, dex_error_description) = match dex {
        ExchangeFailure::Dex(e) => e.oauth_error().map_or((None, None), |(e, d)| (Some(e), Some(d))),
        _ => (None, None),
    };
    let body = ErrorBody {
        error: code,
        message: format!("token exchange for cluster {cluster} failed: {failure}"),
        cluster: Some(cluster),
        hint: failure.failure_class().and_then(FailureClass::hint),
        dex_error,
        dex_error_description,
    };
    (status, body, retry_after)
}

fn inbound_status(e: &InboundError) -> StatusCode {
    match e {
        InboundError::MissingToken | InboundError::Malformed | InboundError::Expired => {
            StatusCode::UNAUTHORIZED
        }
        InboundError::TokenTooLarge { .. } | InboundError::HeadersTooLarge { .. } => {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        }
    }
}

fn inbound_code(e: &InboundError) -> &'static str {
    match e {
        InboundError::MissingToken => "missing_token",
        InboundError::Malformed => "malformed_token",
        InboundError::Expired => "token_expired",
        InboundError::TokenTooLarge { .. } => "token_too_large",
        InboundError::HeadersTooLarge { .. } => "headers_too_large",
    }
}

/// RFC 6750 3: no error code when no credentials were sent.
fn www_authenticate(error: &ProxyError) -> HeaderValue {
    HeaderValue::from_static(match error {
        ProxyError::Inbound(InboundError::MissingToken) => r#"Bearer realm="muster-exchange""#,
        ProxyError::Inbound(InboundError::Malformed) => {
            r#"Bearer realm="muster-exchange", error="invalid_request""#
        }
        _ => r#"Bearer realm="muster-exchange", error="invalid_token""#,
    })
}
