//! RFC 8693 token exchange against Dex, shared by the sidecar (real exchanges) and the controller
//! (probe exchanges and discovery checks).
//!
//! - [`ExchangeClient`] sends the exchange exactly as Dex expects (docs/facts.md: Muster's exchange request, Dex's checks) and checks
//!   the answer (2.3, 2.4).
//! - [`ExchangeError::failure_class`] and [`FailureClass::hint`] turn Dex's answers into fixes a user can act on.
//! - [`jwt::peek_claims`] reads `iss`/`exp` without verifying a signature (the caller is not the audience).
//! - `test_double` (feature `test-double`) is an HTTPS Dex double for tests.

pub mod client;
pub mod credentials;
pub mod error;
// Fuzz entry points (fuzz/); compiled in the crate's tests too, so they cannot drift from the code.
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod jwt;
pub mod request;
pub mod response;
#[cfg(feature = "test-double")]
pub mod test_double;

pub use client::{BuildError, ClientOptions, ExchangeClient};
pub use credentials::ClientCredentials;
pub use error::{ExchangeError, FailureClass, InvalidResponse};
pub use request::ExchangeRequest;
pub use response::ExchangedToken;

/// `grant_type` of an RFC 8693 token exchange.
pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type of an OpenID Connect ID token (subject and requested type: mcp-kubernetes needs an ID token).
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// Token type of an OAuth access token (accepted by Dex, never sent by us).
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Largest Dex response body read (mcp-oauth uses the same cap).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Largest subject token sent (mcp-oauth uses the same cap).
pub const MAX_SUBJECT_TOKEN_BYTES: usize = 64 * 1024;
