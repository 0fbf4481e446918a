//! Where the injected sidecar finds its files, and what the injected volumes are called.
//!
//! Kept in one place because the sidecar configuration (file paths), the volume mounts and the
//! idempotency check (which volumes are ours) must agree exactly.

use std::path::PathBuf;

use muster_exchange_api::redact::short_hash;
use muster_exchange_api::validation::syntax::is_dns1123_label;

/// Root of every per-cluster directory in the sidecar container.
pub const MOUNT_ROOT: &str = "/var/run/muster-exchange/clusters";
/// Prefix of the credentials Secret volume of one MCPServer.
pub const CREDENTIALS_VOLUME_PREFIX: &str = "mx-cred-";
/// Prefix of the kubeconfig Secret volume of one MCPServer.
pub const KUBECONFIG_VOLUME_PREFIX: &str = "mx-kcfg-";
/// Prefix of the Dex CA ConfigMap volume of one MCPServer.
pub const DEX_CA_VOLUME_PREFIX: &str = "mx-dexca-";
/// Prefix of the endpoint ConfigMap volume (server URL and CA) of one MCPServer.
pub const ENDPOINT_VOLUME_PREFIX: &str = "mx-endp-";
/// Longest name Kubernetes accepts for a volume (a DNS label).
const MAX_VOLUME_NAME: usize = 63;

/// `/var/run/muster-exchange/clusters/<mcpserver>/credentials`.
pub fn credentials_dir(mcpserver: &str) -> PathBuf {
    PathBuf::from(MOUNT_ROOT).join(mcpserver).join("credentials")
}

/// `/var/run/muster-exchange/clusters/<mcpserver>/kubeconfig` (the whole kubeconfig Secret).
pub fn kubeconfig_dir(mcpserver: &str) -> PathBuf {
    PathBuf::from(MOUNT_ROOT).join(mcpserver).join("kubeconfig")
}

/// The kubeconfig file the sidecar reads; it falls back to `<dir>/kubeconfig` when `value` is absent.
pub fn kubeconfig_file(mcpserver: &str) -> PathBuf {
    kubeconfig_dir(mcpserver).join(muster_exchange_api::names::KUBECONFIG_KEY)
}

/// `/var/run/muster-exchange/clusters/<mcpserver>/dex-ca` (the one key of the Dex CA ConfigMap).
pub fn dex_ca_dir(mcpserver: &str) -> PathBuf {
    PathBuf::from(MOUNT_ROOT).join(mcpserver).join("dex-ca")
}

/// The Dex CA bundle the sidecar reads (its `caFile`).
pub fn dex_ca_file(mcpserver: &str) -> PathBuf {
    dex_ca_dir(mcpserver).join(muster_exchange_api::names::DEX_CA_KEY)
}

/// `/var/run/muster-exchange/clusters/<mcpserver>/endpoint` (the two keys of the endpoint ConfigMap):
/// the sidecar's `endpointDir`.
pub fn endpoint_dir(mcpserver: &str) -> PathBuf {
    PathBuf::from(MOUNT_ROOT).join(mcpserver).join("endpoint")
}

/// Volume name for the MCPServer's endpoint ConfigMap.
pub fn endpoint_volume_name(mcpserver: &str) -> String {
    volume_name(ENDPOINT_VOLUME_PREFIX, mcpserver)
}

/// Volume name for the MCPServer's Dex CA ConfigMap.
pub fn dex_ca_volume_name(mcpserver: &str) -> String {
    volume_name(DEX_CA_VOLUME_PREFIX, mcpserver)
}

/// Volume name for the MCPServer's client credentials.
pub fn credentials_volume_name(mcpserver: &str) -> String {
    volume_name(CREDENTIALS_VOLUME_PREFIX, mcpserver)
}

/// Volume name for the MCPServer's kubeconfig Secret.
pub fn kubeconfig_volume_name(mcpserver: &str) -> String {
    volume_name(KUBECONFIG_VOLUME_PREFIX, mcpserver)
}

/// True when `name` has the shape of a volume this webhook injects.
pub fn is_injected_volume_name(name: &str) -> bool {
    [
        CREDENTIALS_VOLUME_PREFIX,
        KUBECONFIG_VOLUME_PREFIX,
        DEX_CA_VOLUME_PREFIX,
        ENDPOINT_VOLUME_PREFIX,
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// `<prefix><mcpserver>` when that is a valid DNS label; otherwise a truncated, dot-free form with a
/// hash of the full name appended, so two long names sharing a prefix still get distinct volumes.
fn volume_name(prefix: &str, mcpserver: &str) -> String {
    let plain = format!("{prefix}{mcpserver}");
    if plain.len() <= MAX_VOLUME_NAME && is_dns1123_label(&plain) {
        return plain;
    }
    let hash = &short_hash(mcpserver)[..8];
    let sanitized: String = plain
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(MAX_VOLUME_NAME - hash.len() - 1)
        .collect();
    format!("{}-{hash}", sanitized.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_readable() {
        assert_eq!(credentials_volume_name("cluster-a"), "mx-cred-cluster-a");
        assert_eq!(kubeconfig_volume_name("cluster-a"), "mx-kcfg-cluster-a");
        assert_eq!(endpoint_volume_name("cluster-a"), "mx-endp-cluster-a");
        assert!(is_injected_volume_name("mx-endp-cluster-a"));
        assert_eq!(
            kubeconfig_file("cluster-a"),
            PathBuf::from("/var/run/muster-exchange/clusters/cluster-a/kubeconfig/value")
        );
    }

    #[test]
    fn long_and_dotted_names_become_distinct_dns_labels() {
        let long_a = format!("{}-a", "x".repeat(70));
        let long_b = format!("{}-b", "x".repeat(70));
        for name in [long_a.as_str(), long_b.as_str(), "mcp.example.com"] {
            let volume = credentials_volume_name(name);
            assert!(volume.len() <= 63, "{volume}");
            assert!(is_dns1123_label(&volume), "{volume}");
            assert!(is_injected_volume_name(&volume));
        }
        assert_ne!(credentials_volume_name(&long_a), credentials_volume_name(&long_b));
        assert!(credentials_volume_name("mcp.example.com").starts_with("mx-cred-mcp-example-com-"));
    }
}
