//! Per-cluster conditions: building them from a probe outcome and merging them into the observed ones.

pub mod build;
pub mod merge;

/// Condition types the controller writes on MCPServers.
pub const CREDENTIALS_READY: &str = "CredentialsReady";
/// The remote Dex answers and names the expected issuer.
pub const CONNECTED: &str = "Connected";
/// A probe exchange shows credentials and connector are accepted.
pub const TOKEN_EXCHANGE_READY: &str = "TokenExchangeReady";
/// All of the above.
pub const READY: &str = "Ready";
/// The four types, in the order they are written and printed.
pub const CONDITION_TYPES: [&str; 4] = [CREDENTIALS_READY, CONNECTED, TOKEN_EXCHANGE_READY, READY];
