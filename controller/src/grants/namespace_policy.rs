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
    /// A credentials Secret outside its MCPServer's namespace (without `--allow-cross-namespace-credentials`).
    CrossNamespace,
}

impl Refusal {
    /// Stable reason string.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::SystemNamespace => "SystemNamespace",
            Refusal::ControllerNamespace => "ControllerNamespace",
            Refusal::CrossNamespace => "CrossNamespace",
        }
    }
}

/// Where an MCPServer's credentials Secret may live. The same rule guards the probe's Secret read, the
/// credential grant and `diagnose`: otherwise any MCPServer author could name any Secret in the cluster
/// and have its two values sent to a token endpoint of their choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsPolicy {
    /// The controller's own namespace: never read from, never granted in.
    pub controller_namespace: String,
    /// Whether a Secret may live in another namespace than its MCPServer (off: authors can only use
    /// Secrets next to their own MCPServers).
    pub allow_cross_namespace: bool,
}

impl CredentialsPolicy {
    /// `Some(refusal)` when the Secret in `secret_namespace` may not be used by an MCPServer in
    /// `server_namespace`.
    pub fn refusal(&self, secret_namespace: &str, server_namespace: &str) -> Option<Refusal> {
        refusal(secret_namespace, &self.controller_namespace).or_else(|| {
            (secret_namespace != server_namespace && !self.allow_cross_namespace)
                .then_some(Refusal::CrossNamespace)
        })
    }
}

/// What to tell the MCPServer author whose credentials Secret `namespace/name` was refused.
pub fn refused_secret_message(why: Refusal, namespace: &str, name: &str, server_namespace: &str) -> String {
    let move_it = format!(
        "create the Secret in the MCPServer's namespace {server_namespace:?} and point clientCredentialsSecretRef at it"
    );
    match why {
        Refusal::SystemNamespace => format!(
            "Secret {namespace}/{name} is in a system namespace; muster-exchange never reads or grants access \
             to credentials there: {move_it}"
        ),
        Refusal::ControllerNamespace => format!(
            "Secret {namespace}/{name} is in the muster-exchange controller's own namespace; it never reads or \
             grants access to credentials there: {move_it}"
        ),
        Refusal::CrossNamespace => format!(
            "Secret {namespace}/{name} is not in the MCPServer's namespace; {move_it} (or, if every MCPServer \
             author may use Secrets in {namespace:?}, start the controller with \
             --allow-cross-namespace-credentials)"
        ),
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

    #[test]
    fn credentials_must_stay_next_to_their_mcpserver_unless_allowed() {
        let strict = CredentialsPolicy {
            controller_namespace: "mx".into(),
            allow_cross_namespace: false,
        };
        assert_eq!(strict.refusal("org-a", "org-a"), None);
        assert_eq!(strict.refusal("org-b", "org-a"), Some(Refusal::CrossNamespace));
        assert_eq!(
            strict.refusal("kube-system", "kube-system"),
            Some(Refusal::SystemNamespace)
        );
        assert_eq!(strict.refusal("mx", "mx"), Some(Refusal::ControllerNamespace));
        let lax = CredentialsPolicy {
            allow_cross_namespace: true,
            ..strict
        };
        assert_eq!(lax.refusal("org-b", "org-a"), None);
        // The flag never opens the system namespaces or the controller's own.
        assert_eq!(
            lax.refusal("kube-system", "org-a"),
            Some(Refusal::SystemNamespace)
        );
        assert_eq!(lax.refusal("mx", "org-a"), Some(Refusal::ControllerNamespace));
    }
}
