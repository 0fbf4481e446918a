//! Shared API of muster-exchange: the MCPServer types, label and annotation names, validation and
//! defaulting rules, the sidecar configuration document, and manifest reading.
//!
//! Everything here is pure (no I/O beyond reading a manifest file), so the webhook, the sidecar, the
//! controller and the CLI agree by construction.

pub mod crd;
pub mod credentials_policy;
pub mod defaulting;
pub mod documents;
pub mod duration;
// Fuzz entry points (fuzz/); compiled in the crate's tests too, so they cannot drift from the code.
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod issuer;
pub mod mcpserver;
pub mod names;
pub mod redact;
pub mod sidecar_config;
mod tolerant;
pub mod topology;
pub mod validation;

pub use mcpserver::{
    AuthType, ClientCredentialsSecretRef, MCPServer, MCPServerAuth, MCPServerSpec, MCPServerStatus,
    ServerState, ServerType, TokenExchangeConfig,
};
