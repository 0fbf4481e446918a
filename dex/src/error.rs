//! Everything an exchange can fail with, classified so callers can map it to a status and a fix.

use std::time::Duration;

/// Why an exchange failed. Messages name the endpoint and say what to check; none contains a token or secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The endpoint is not `https://` (or not a URL at all).
    #[error(
        "dexTokenEndpoint {endpoint:?} is not an https:// URL; token exchange sends credentials, so use https"
    )]
    InsecureEndpoint {
        /// The configured endpoint.
        endpoint: String,
    },
    /// The subject token exceeds [`crate::MAX_SUBJECT_TOKEN_BYTES`].
    #[error(
        "the subject token is {size} bytes, over the {limit}-byte limit; reduce the groups in the ID token"
    )]
    SubjectTokenTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Connecting failed: DNS, TCP or TLS.
    #[error("cannot reach Dex at {endpoint}: {cause}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport error chain.
        cause: String,
    },
    /// No complete answer within the client's timeout.
    #[error("Dex at {endpoint} did not answer within {timeout:?}")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Dex answered 5xx.
    #[error("Dex at {endpoint} failed with status {status}: {detail}")]
    ServerError {
        /// The endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// `error - error_description`, or the start of the body.
        detail: String,
    },
    /// Dex refused the exchange with an OAuth error body (4xx).
    #[error("Dex rejected the token exchange (status {status}): {error} - {description}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description` (may be empty).
        description: String,
    },
    /// A non-200, non-5xx answer without an OAuth error body (e.g. a 404 from a wrong path).
    #[error(
        "Dex at {endpoint} answered status {status} without an OAuth error: {body}; check dexTokenEndpoint"
    )]
    UnexpectedStatus {
        /// The endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A 200 answer we cannot use.
    #[error("invalid token exchange response from {endpoint}: {reason}")]
    InvalidResponse {
        /// The endpoint.
        endpoint: String,
        /// What is wrong with it.
        reason: InvalidResponse,
    },
    /// The issued token's `iss` is not the expected issuer.
    #[error(
        "issuer validation failed: token issuer mismatch: expected {expected:?}, got {actual:?}. Hint: if Dex \
         is reached through a proxy or another URL than its configured issuer, set expectedIssuer to {actual:?}"
    )]
    IssuerMismatch {
        /// The issuer we required.
        expected: String,
        /// What the token says (`<none>` for a token without a readable `iss`).
        actual: String,
    },
}

/// What is wrong with a 200 response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidResponse {
    /// No (or empty) `access_token`.
    #[error("token exchange response missing access_token")]
    MissingAccessToken,
    /// The body is larger than the cap.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// Not JSON, or fields of the wrong type.
    #[error("response is not a token response JSON: {0}")]
    NotJson(String),
    /// Neither `expires_in` nor a JWT `exp`: we cannot know how long the token is valid.
    #[error("response has no expires_in and the token has no readable exp claim")]
    NoLifetime,
    /// The body could not be read completely.
    #[error("reading the response failed: {0}")]
    Read(String),
    /// `expires_in` or `exp` lies beyond what the clock can represent (a broken or hostile answer).
    #[error("the token lifetime ({0}) is out of range; check what answers at dexTokenEndpoint")]
    LifetimeOutOfRange(String),
}

/// Coarse classes of failure: what a sidecar maps to a status and a controller to a condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// 401 `invalid_client`: wrong, missing or badly encoded client credentials.
    CredentialsRejected,
    /// "Requested connector does not exist.": wrong `connectorId` or no token-exchange connector.
    ConnectorUnknown,
    /// "Connector not allowed for this client.": the client's `allowedConnectors` lacks the connector.
    ConnectorNotAllowed,
    /// `access_denied`: the connector refused the subject token (issuer not trusted, expired, wrong claims).
    AccessDenied,
    /// DNS, TCP or TLS failure.
    Unreachable,
    /// No answer in time.
    Timeout,
    /// Dex 5xx.
    ServerError,
    /// The issued token names another issuer.
    IssuerMismatch,
    /// A 200 answer we cannot use.
    InvalidResponse,
    /// The request was refused before sending (insecure endpoint, oversized subject token).
    InvalidRequest,
    /// Anything else (other OAuth errors, unexpected statuses).
    Other,
}

impl FailureClass {
    /// The fix to suggest, for the failures that have a known one.
    pub fn hint(self) -> Option<&'static str> {
        Some(match self {
            Self::CredentialsRejected => {
                "check the credentials Secret: the client ID and secret must match a client registered in the \
                 remote Dex"
            }
            Self::ConnectorUnknown => {
                "check connectorId and that the remote Dex has an OIDC connector with that ID (trusting the \
                 central Dex issuer)"
            }
            Self::ConnectorNotAllowed => {
                "add the connector to the exchange client's allowedConnectors in the remote Dex"
            }
            Self::AccessDenied => {
                "the remote Dex does not trust the central issuer or refused the subject token: check the \
                 remote connector's issuer and that the caller's ID token is valid"
            }
            Self::Unreachable => {
                "check dexTokenEndpoint, DNS, network policies and caFile (extra CA for Dex)"
            }
            Self::Timeout => "the remote Dex is slow or a network path drops packets; check its health",
            Self::ServerError => {
                "the remote Dex failed; if it reports that a peer does not trust the client, add the exchange \
                 client to the peer's trustedPeers"
            }
            Self::IssuerMismatch => {
                "set expectedIssuer to the issuer the remote Dex is configured with (needed behind a proxy)"
            }
            Self::InvalidResponse => "check that dexTokenEndpoint is the token endpoint of a Dex >= 2.38",
            Self::InvalidRequest | Self::Other => return None,
        })
    }

    /// Stable lowercase name for metrics labels and JSON errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialsRejected => "credentials_rejected",
            Self::ConnectorUnknown => "connector_unknown",
            Self::ConnectorNotAllowed => "connector_not_allowed",
            Self::AccessDenied => "access_denied",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::ServerError => "server_error",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::InvalidResponse => "invalid_response",
            Self::InvalidRequest => "invalid_request",
            Self::Other => "other",
        }
    }
}

impl ExchangeError {
    /// The class of this failure (Dex's exact wording decides between the connector cases).
    pub fn failure_class(&self) -> FailureClass {
        match self {
            Self::InsecureEndpoint { .. } | Self::SubjectTokenTooLarge { .. } => FailureClass::InvalidRequest,
            Self::Unreachable { .. } => FailureClass::Unreachable,
            Self::Timeout { .. } => FailureClass::Timeout,
            Self::ServerError { .. } => FailureClass::ServerError,
            Self::Rejected {
                error, description, ..
            } => classify_rejection(error, description),
            Self::UnexpectedStatus { .. } => FailureClass::Other,
            Self::InvalidResponse { .. } => FailureClass::InvalidResponse,
            Self::IssuerMismatch { .. } => FailureClass::IssuerMismatch,
        }
    }

    /// Shortcut for `self.failure_class().hint()`.
    pub fn hint(&self) -> Option<&'static str> {
        self.failure_class().hint()
    }

    /// Dex's OAuth `error` and `error_description`, when Dex sent them.
    pub fn oauth_error(&self) -> Option<(&str, &str)> {
        match self {
            Self::Rejected {
                error, description, ..
            } => Some((error, description)),
            _ => None,
        }
    }
}

fn classify_rejection(error: &str, description: &str) -> FailureClass {
    match (error, description) {
        ("invalid_client", _) => FailureClass::CredentialsRejected,
        (_, "Requested connector does not exist.") => FailureClass::ConnectorUnknown,
        (_, "Connector not allowed for this client.") => FailureClass::ConnectorNotAllowed,
        ("access_denied", _) => FailureClass::AccessDenied,
        _ => FailureClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16, error: &str, description: &str) -> ExchangeError {
        ExchangeError::Rejected {
            status,
            error: error.into(),
            description: description.into(),
        }
    }

    #[test]
    fn classifies_dex_answers_by_exact_wording() {
        let cases = [
            (
                rejected(401, "invalid_client", "Invalid client credentials."),
                FailureClass::CredentialsRejected,
            ),
            (
                rejected(400, "invalid_request", "Requested connector does not exist."),
                FailureClass::ConnectorUnknown,
            ),
            (
                rejected(400, "invalid_grant", "Connector not allowed for this client."),
                FailureClass::ConnectorNotAllowed,
            ),
            (rejected(401, "access_denied", ""), FailureClass::AccessDenied),
            (
                rejected(400, "request_not_supported", "Invalid subject_token_type."),
                FailureClass::Other,
            ),
        ];
        for (error, class) in cases {
            assert_eq!(error.failure_class(), class, "{error}");
        }
    }

    #[test]
    fn issuer_mismatch_message_suggests_expected_issuer() {
        let e = ExchangeError::IssuerMismatch {
            expected: "https://a".into(),
            actual: "https://b".into(),
        };
        assert_eq!(
            e.to_string(),
            "issuer validation failed: token issuer mismatch: expected \"https://a\", got \"https://b\". Hint: if \
             Dex is reached through a proxy or another URL than its configured issuer, set expectedIssuer to \
             \"https://b\""
        );
        assert!(e.hint().unwrap().contains("expectedIssuer"));
    }

    #[test]
    fn known_failures_have_hints() {
        assert!(
            FailureClass::CredentialsRejected
                .hint()
                .unwrap()
                .contains("credentials Secret")
        );
        assert!(
            FailureClass::ConnectorUnknown
                .hint()
                .unwrap()
                .contains("connectorId")
        );
        assert!(
            FailureClass::AccessDenied
                .hint()
                .unwrap()
                .contains("does not trust the central issuer")
        );
        assert_eq!(FailureClass::Other.hint(), None);
    }
}
