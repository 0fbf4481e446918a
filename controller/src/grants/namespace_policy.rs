//! Where grants may never be written: the Kubernetes system namespaces and the controller's own namespace.
//!
//! A controller that can be talked into granting Secret access in its own namespace or in `kube-system`
//! hands out its own credentials (Kyverno's CVE-2026-54523 is that mistake). The refusal is unconditional.

use muster_exchange_api::names::is_system_namespace;

/// Why a namespace was refused, for logs, metrics and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `kube-system`, `kube-public` or `kube-node-lease`.
    SystemNamespace,
    /// The namespace the controller runs in.
    ControllerNamespace,
}

impl Refusal {
    /// Stable reason string.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::SystemNamespace => "SystemNamespace",
            Refusal::ControllerNamespace => "ControllerNamespace",
        }
    }
}

/// `Some(refusal)` when no grant may be written in `namespace`.
pub fn refusal(namespace: &str, controller_namespace: &str) -> Option<Refusal> {
    if is_system_namespace(namespace) {
        Some(Refusal::SystemNamespace)
    } else if namespace == controller_namespace {
        Some(Refusal::ControllerNamespace)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_system_and_own_namespaces_only() {
        assert_eq!(refusal("kube-system", "mx"), Some(Refusal::SystemNamespace));
        assert_eq!(refusal("kube-public", "mx"), Some(Refusal::SystemNamespace));
        assert_eq!(refusal("kube-node-lease", "mx"), Some(Refusal::SystemNamespace));
        assert_eq!(refusal("mx", "mx"), Some(Refusal::ControllerNamespace));
        assert_eq!(refusal("org-acme", "mx"), None);
    }
}
