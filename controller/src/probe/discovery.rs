//! `Connected`: the remote Dex answers its discovery document beside the token endpoint (the address the
//! controller can reach, also behind a proxy) and names the expected issuer.

use k8s_openapi::jiff::Timestamp;
use muster_exchange_api::issuer::{discovery_url, issuers_match};
use muster_exchange_dex::{ExchangeClient, ExchangeError, FailureClass};

use super::outcome::Check;

/// True for failures that mean "Dex is not answering": unreachable, timed out, or 5xx (on discovery or
/// the token endpoint, which the dex crate both classify as `ServerError`).
pub(crate) fn is_disconnection(error: &ExchangeError) -> bool {
    matches!(
        error.failure_class(),
        FailureClass::Unreachable | FailureClass::Timeout | FailureClass::ServerError
    )
}

/// "when it last answered", for messages.
pub(crate) fn last_answered_text(last_answered: Option<Timestamp>) -> String {
    match last_answered {
        Some(at) => format!("last answered at {at}"),
        None => "no answer seen since the checker started".to_string(),
    }
}

/// The `Disconnected` check for a failure.
pub(crate) fn disconnected(error: &ExchangeError, last_answered: Option<Timestamp>) -> Check {
    Check::fail(
        "Disconnected",
        format!("{error}; {}", last_answered_text(last_answered)),
    )
}

/// Reads discovery and compares its issuer with `expected_issuer`.
pub(crate) async fn check_connected(
    client: &ExchangeClient,
    endpoint: &str,
    expected_issuer: &str,
    last_answered: Option<Timestamp>,
) -> Check {
    match client.discover_issuer(endpoint).await {
        Ok(issuer) if issuers_match(expected_issuer, &issuer) => Check::ok(
            "DexAnswered",
            format!("Dex at {} answered with issuer {issuer}", discovery_url(endpoint)),
        ),
        Ok(issuer) => Check::fail(
            "IssuerMismatch",
            format!(
                "discovery at {} names issuer {issuer:?}, expected {expected_issuer:?}; set expectedIssuer to the \
                 issuer the remote Dex is configured with (needed when Dex is reached through a proxy)",
                discovery_url(endpoint)
            ),
        ),
        Err(e) if is_disconnection(&e) => disconnected(&e, last_answered),
        Err(e) => Check::fail(
            "DiscoveryFailed",
            format!("{e}; check that dexTokenEndpoint points at a Dex token endpoint"),
        ),
    }
}
