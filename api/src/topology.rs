//! Who exchanges the central token for a remote cluster's token: the one decision every component
//! (validation, the webhook, the controller) takes from an MCPServer, made here only.
//!
//! - **M, Muster exchanges** (`tokenExchange.enabled: true`): Muster exchanges at the remote Dex with the
//!   credentials Secret and calls the MCPServer's `url` with the remote token; the sidecar passes that
//!   token through and exchanges only for callers that bring a central token themselves.
//! - **F, the sidecar exchanges** (`forwardToken: true`, a `tokenExchange` block, `enabled: false`):
//!   Muster forwards the central ID token unchanged and never reads the credentials Secret; the sidecar
//!   exchanges once per (token, cluster).
//!
//! Anything else gives the sidecar nothing it can use: no block means there is no remote Dex to exchange
//! at, and a disabled block without `forwardToken` means Muster sends no user token at all.

use crate::mcpserver::{MCPServer, MCPServerAuth, TokenExchangeConfig};

/// How a token-exchange MCPServer is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// M: `tokenExchange.enabled: true`; Muster exchanges and sends the remote token.
    MusterExchanges,
    /// F: `forwardToken: true` with a disabled `tokenExchange` block; the sidecar exchanges.
    SidecarExchanges,
}

impl Topology {
    /// One line for users: the letter and who exchanges.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MusterExchanges => "topology M: Muster exchanges (tokenExchange.enabled: true)",
            Self::SidecarExchanges => {
                "topology F: the sidecar exchanges (forwardToken: true, tokenExchange.enabled: false)"
            }
        }
    }

    /// True when Muster reads the credentials Secret itself (its ServiceAccount needs `get` on it).
    pub fn muster_reads_credentials(self) -> bool {
        self == Self::MusterExchanges
    }
}

/// Why an MCPServer has no topology; the message names both ways to get one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoTopology {
    /// No `spec.auth.tokenExchange` block.
    #[error(
        "spec.auth.tokenExchange is not set, so there is no remote Dex to exchange at; add the tokenExchange \
         block and either set tokenExchange.enabled: true (Muster exchanges, topology M) or keep it disabled \
         and set spec.auth.forwardToken: true (the sidecar exchanges, topology F)"
    )]
    NoTokenExchange,
    /// The block is there, disabled, and Muster forwards no token.
    #[error(
        "tokenExchange.enabled is false and spec.auth.forwardToken is false, so Muster sends no user token \
         for anyone to exchange; set tokenExchange.enabled: true (Muster exchanges, topology M) or \
         spec.auth.forwardToken: true (the sidecar exchanges, topology F), or remove the tokenExchange block \
         if this server should not use token exchange"
    )]
    Disabled,
}

/// The topology of `auth` (an MCPServer's `spec.auth`). `enabled: true` wins over `forwardToken`, as in
/// Muster, where token exchange takes precedence.
pub fn of_auth(auth: Option<&MCPServerAuth>) -> Result<Topology, NoTopology> {
    let Some(auth) = auth else {
        return Err(NoTopology::NoTokenExchange);
    };
    match &auth.token_exchange {
        None => Err(NoTopology::NoTokenExchange),
        Some(te) if te.enabled => Ok(Topology::MusterExchanges),
        Some(_) if auth.forward_token => Ok(Topology::SidecarExchanges),
        Some(_) => Err(NoTopology::Disabled),
    }
}

/// The topology of `mcpserver`.
pub fn of(mcpserver: &MCPServer) -> Result<Topology, NoTopology> {
    of_auth(mcpserver.spec.auth.as_ref())
}

/// The `tokenExchange` block when someone exchanges with it (topology M or F), with the topology.
pub fn exchange_config(mcpserver: &MCPServer) -> Option<(Topology, &TokenExchangeConfig)> {
    let topology = of(mcpserver).ok()?;
    Some((topology, mcpserver.token_exchange()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcpserver::MCPServerAuth;

    fn auth(block: Option<bool>, forward_token: bool) -> MCPServerAuth {
        MCPServerAuth {
            forward_token,
            token_exchange: block.map(|enabled| TokenExchangeConfig {
                enabled,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn enabled_is_m_whatever_forward_token_says() {
        assert_eq!(
            of_auth(Some(&auth(Some(true), false))),
            Ok(Topology::MusterExchanges)
        );
        assert_eq!(
            of_auth(Some(&auth(Some(true), true))),
            Ok(Topology::MusterExchanges)
        );
    }

    #[test]
    fn a_disabled_block_with_forward_token_is_f() {
        assert_eq!(
            of_auth(Some(&auth(Some(false), true))),
            Ok(Topology::SidecarExchanges)
        );
    }

    #[test]
    fn neither_is_refused_naming_both_ways() {
        assert_eq!(of_auth(None), Err(NoTopology::NoTokenExchange));
        assert_eq!(of_auth(Some(&auth(None, true))), Err(NoTopology::NoTokenExchange));
        assert_eq!(
            of_auth(Some(&auth(Some(false), false))),
            Err(NoTopology::Disabled)
        );
        for refusal in [NoTopology::NoTokenExchange, NoTopology::Disabled] {
            let message = refusal.to_string();
            assert!(
                message.contains("tokenExchange.enabled: true (Muster exchanges, topology M)"),
                "{message}"
            );
            assert!(
                message.contains("forwardToken: true (the sidecar exchanges, topology F)"),
                "{message}"
            );
        }
    }

    #[test]
    fn only_m_has_muster_read_the_credentials() {
        assert!(Topology::MusterExchanges.muster_reads_credentials());
        assert!(!Topology::SidecarExchanges.muster_reads_credentials());
    }
}
