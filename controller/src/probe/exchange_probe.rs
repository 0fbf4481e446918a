//! `TokenExchangeReady`: a probe exchange with a deliberately invalid subject token. Dex checks client
//! authentication first, then the connector, then the client's allowed connectors, and only then the
//! subject token (docs/facts.md, "Dex: how a token exchange is checked"), so the error it answers tells which of those is wrong; 401
//! `access_denied` means credentials and connector are good and the bogus token was rightly refused.

use muster_exchange_dex::{ExchangeClient, ExchangeError, ExchangeRequest, FailureClass};

use super::credentials::ClientCredentials;
use super::outcome::Check;
use super::target::ProbeTarget;

/// The subject token the probe sends: not a JWT, so no Dex connector can accept it.
pub(crate) const PROBE_SUBJECT_TOKEN: &str = "muster-exchange-probe.not-a-valid-subject-token";

/// Runs the probe exchange. `Err` carries a transport failure (unreachable, timeout, 5xx) for `Connected`.
pub(crate) async fn probe_exchange(
    client: &ExchangeClient,
    target: &ProbeTarget,
    credentials: &ClientCredentials,
) -> Result<Check, ExchangeError> {
    let request = ExchangeRequest {
        endpoint: &target.endpoint,
        subject_token: PROBE_SUBJECT_TOKEN,
        connector_id: &target.connector_id,
        scope: &target.scope,
        client_id: &credentials.client_id,
        client_secret: &credentials.client_secret,
        expected_issuer: Some(&target.expected_issuer),
    };
    let error = match client.exchange(&request).await {
        Ok(_) => {
            return Ok(Check::ok(
                "ProbeTokenAccepted",
                "Dex issued a token for the deliberately invalid probe token; credentials and connector work, \
                 but check that the remote connector verifies subject tokens",
            ));
        }
        Err(e) if super::discovery::is_disconnection(&e) => return Err(e),
        Err(e) => e,
    };
    let hint = error.hint().map(|h| format!("; {h}")).unwrap_or_default();
    Ok(match error.failure_class() {
        FailureClass::AccessDenied => Check::ok(
            "ExchangeVerified",
            format!(
                "Dex accepted the client credentials and connector {:?} and refused the probe token as expected",
                target.connector_id
            ),
        ),
        FailureClass::CredentialsRejected => Check::fail("CredentialsRejected", format!("{error}{hint}")),
        FailureClass::ConnectorUnknown => Check::fail("ConnectorUnknown", format!("{error}{hint}")),
        FailureClass::ConnectorNotAllowed => Check::fail("ConnectorNotAllowed", format!("{error}{hint}")),
        FailureClass::InvalidRequest => Check::fail("InvalidSpec", error.to_string()),
        _ => Check::fail("ExchangeFailed", format!("{error}{hint}")),
    })
}
