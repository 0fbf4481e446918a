//! Short, non-reversible fingerprints for logs: a token or secret never appears, its hash may.

use sha2::{Digest, Sha256};

/// First 12 hex digits of SHA-256 of `value`: enough to correlate log lines, useless to an attacker.
pub fn short_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    hex::encode(&digest[..6])
}

/// Full SHA-256 in hex, for cache keys and config hashes.
pub fn sha256_hex(value: &[u8]) -> String {
    hex::encode(Sha256::digest(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hash_is_stable_and_does_not_contain_the_value() {
        let h = short_hash("eyJhbGciOi.secret.token");
        assert_eq!(h.len(), 12);
        assert_eq!(h, short_hash("eyJhbGciOi.secret.token"));
        assert_ne!(h, short_hash("another"));
        assert!(!h.contains("secret"));
    }
}
