//! Entry points for the cargo-fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which
//! cargo-fuzz sets): thin wrappers, so the targets depend on these names and not on the module layout.

use std::time::SystemTime;

use crate::error::ExchangeError;
use crate::response::ExchangedToken;

/// Dex's complete answer (`status`, `body`) read as the exchange client reads it.
pub fn interpret(
    endpoint: &str,
    status: u16,
    body: &[u8],
    expected_issuer: Option<&str>,
    now: SystemTime,
) -> Result<ExchangedToken, ExchangeError> {
    crate::response::interpret(endpoint, status, body, expected_issuer, now)
}

/// The start of a body as error messages quote it.
pub fn body_excerpt(body: &[u8]) -> String {
    crate::response::body_excerpt(body)
}
