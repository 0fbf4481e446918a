//! Per-cluster conditions on MCPServers: probing one MCPServer's remote Dex (credentials, discovery,
//! the probe exchange), a fleet of them for `diagnose`, the conditions built from the outcome, their
//! status write and Events, and the probe controller that schedules it all.

pub(crate) mod conditions;
pub(crate) mod controller;
pub(crate) mod credentials;
pub(crate) mod discovery;
pub(crate) mod events;
pub(crate) mod exchange_probe;
pub(crate) mod fleet;
pub(crate) mod mcpserver;
pub(crate) mod outcome;
pub(crate) mod read_target;
pub(crate) mod resolve_guard;
pub(crate) mod schedule;
pub(crate) mod secret_optin;
pub(crate) mod status;
pub(crate) mod target;

#[cfg(test)]
mod controller_review_tests;
#[cfg(test)]
pub(crate) mod controller_tests;
#[cfg(test)]
mod status_coexist_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

use muster_exchange_dex::ExchangeClient;

use self::discovery::{check_connected, disconnected, last_answered_text};
use self::outcome::{Check, CheckStatus, ProbeOutcome};
use self::target::ProbeTarget;

/// How probes run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeSettings {
    /// Deadline for one MCPServer's whole probe (discovery plus exchange).
    pub(crate) timeout: Duration,
    /// Whether to send the probe exchange (`TokenExchangeReady`); off reports `ProbeDisabled`.
    pub(crate) exchange_probe: bool,
}

/// The HTTPS client's own timeout for a probe timeout: strictly longer, so a black hole always ends in
/// the probe timeout's message (one stable message means no status write per probe).
pub(crate) fn http_client_timeout(probe_timeout: Duration) -> Duration {
    probe_timeout.saturating_add(Duration::from_secs(1))
}

/// Probes one MCPServer. Never takes longer than `settings.timeout` (plus scheduling).
pub(crate) async fn probe_one(
    client: &ExchangeClient,
    target: &ProbeTarget,
    settings: &ProbeSettings,
) -> ProbeOutcome {
    match tokio::time::timeout(settings.timeout, probe_unbounded(client, target, settings)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let message = format!(
                "Dex at {} did not answer within the probe timeout of {:?}; {}",
                target.endpoint,
                settings.timeout,
                last_answered_text(target.last_answered)
            );
            ProbeOutcome {
                credentials: target.credentials_check.clone(),
                connected: Check::fail("Disconnected", message),
                token_exchange: Check::unknown("NotProbed", "skipped: the remote Dex is not connected"),
            }
        }
    }
}

async fn probe_unbounded(
    client: &ExchangeClient,
    target: &ProbeTarget,
    settings: &ProbeSettings,
) -> ProbeOutcome {
    let credentials_check = target.credentials_check.clone();
    if target.endpoint.is_empty() {
        return ProbeOutcome {
            credentials: credentials_check,
            connected: Check::fail(
                "InvalidSpec",
                "tokenExchange.dexTokenEndpoint is not set; set the remote Dex token endpoint",
            ),
            token_exchange: Check::unknown("NotProbed", "skipped: no dexTokenEndpoint"),
        };
    }
    if let Some(why) = resolve_guard::refused_endpoint(&resolve_guard::SystemLookup, &target.endpoint).await {
        return ProbeOutcome {
            credentials: credentials_check,
            connected: Check::fail("EndpointRefused", why),
            token_exchange: Check::unknown("NotProbed", "skipped: the Dex endpoint is refused"),
        };
    }
    let connected = check_connected(
        client,
        &target.endpoint,
        &target.expected_issuer,
        target.last_answered,
    )
    .await;
    let token_exchange = if !settings.exchange_probe {
        Check::unknown(
            "ProbeDisabled",
            "the probe exchange is switched off (--probe-exchange=false)",
        )
    } else if connected.status != CheckStatus::True {
        Check::unknown(
            "NotProbed",
            format!("skipped: DexConnected is {}", connected.reason),
        )
    } else if let Some(credentials) = &target.credentials {
        match exchange_probe::probe_exchange(client, target, credentials).await {
            Ok(check) => check,
            Err(error) => {
                return ProbeOutcome {
                    credentials: credentials_check,
                    connected: disconnected(&error, target.last_answered),
                    token_exchange: Check::unknown("NotProbed", "skipped: the token endpoint did not answer"),
                };
            }
        }
    } else {
        Check::unknown("NotProbed", "skipped: credentials are not ready")
    };
    ProbeOutcome {
        credentials: credentials_check,
        connected,
        token_exchange,
    }
}
