//! Where an MCPServer's client-credentials Secret may live: one rule for validation, the webhook and the
//! controller, so the three cannot drift apart.
//!
//! Why the rule exists: the controller reads that Secret, sends its two values (as Basic auth) to a token
//! endpoint the MCPServer's author chose, and grants the credentials reader `get` on it. Without the rule any
//! MCPServer author could name any Secret in the cluster, including the controller's own (Kyverno's
//! CVE-2026-54523 is that mistake). The system namespaces and the controller's namespace are refused
//! unconditionally; another namespace than the MCPServer's only with an explicit opt-in.

use crate::names::is_system_namespace;

/// Why a namespace was refused; also the stable reason for logs, metrics and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceRefusal {
    /// `kube-system`, `kube-public` or `kube-node-lease`.
    SystemNamespace,
    /// The namespace the controller runs in.
    ControllerNamespace,
    /// A credentials Secret outside the namespace it must sit in (its MCPServer's), without the opt-in.
    CrossNamespace,
}

impl NamespaceRefusal {
    /// Stable reason string.
    pub fn reason(self) -> &'static str {
        match self {
            Self::SystemNamespace => "SystemNamespace",
            Self::ControllerNamespace => "ControllerNamespace",
            Self::CrossNamespace => "CrossNamespace",
        }
    }
}

/// `Some(refusal)` when nothing may be granted in or read from `namespace`: a system namespace, or the
/// controller's own (`None` when the caller does not know it, e.g. offline validation and the webhook).
pub fn protected_namespace(namespace: &str, controller_namespace: Option<&str>) -> Option<NamespaceRefusal> {
    if is_system_namespace(namespace) {
        Some(NamespaceRefusal::SystemNamespace)
    } else if controller_namespace == Some(namespace) {
        Some(NamespaceRefusal::ControllerNamespace)
    } else {
        None
    }
}

/// Where a credentials Secret may live, relative to the namespace it must sit in (its MCPServer's).
/// No `Default`: the controller must say which namespace it runs in ([`Self::for_controller`]); only
/// offline checks ([`Self::offline`]) leave it unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsPolicy {
    /// The controller's own namespace: never read from, never granted in (`None`: not known here).
    pub controller_namespace: Option<String>,
    /// Whether the Secret may live in another namespace (off: authors can only use Secrets next to their
    /// own MCPServers). Never opens the system namespaces or the controller's own.
    pub allow_cross_namespace: bool,
}

impl CredentialsPolicy {
    /// The controller's policy: it runs in `controller_namespace`, and reads Secrets in other namespaces
    /// than the MCPServer's only when `allow_cross_namespace` (`--allow-cross-namespace-credentials`).
    pub fn for_controller(controller_namespace: &str, allow_cross_namespace: bool) -> Self {
        Self {
            controller_namespace: Some(controller_namespace.to_string()),
            allow_cross_namespace,
        }
    }

    /// Checks without a cluster (validation): the controller's namespace and flags are unknown, so only
    /// the system namespaces are protected and another namespace is refused as the controller's default.
    pub fn offline() -> Self {
        Self {
            controller_namespace: None,
            allow_cross_namespace: false,
        }
    }

    /// `Some(refusal)` when the Secret in `secret_namespace` may not be used by an MCPServer in
    /// `server_namespace`. Protected namespaces are judged first, so the flag can never open them.
    pub fn refusal(&self, secret_namespace: &str, server_namespace: &str) -> Option<NamespaceRefusal> {
        protected_namespace(secret_namespace, self.controller_namespace.as_deref()).or_else(|| {
            (secret_namespace != server_namespace && !self.allow_cross_namespace)
                .then_some(NamespaceRefusal::CrossNamespace)
        })
    }

    /// Like [`Self::refusal`], as an error that tells the MCPServer author where to put Secret `name`.
    pub fn check(
        &self,
        secret_namespace: &str,
        name: &str,
        server_namespace: &str,
    ) -> Result<(), CredentialsSecretRefused> {
        match self.refusal(secret_namespace, server_namespace) {
            None => Ok(()),
            Some(why) => Err(CredentialsSecretRefused {
                why,
                namespace: secret_namespace.to_string(),
                name: name.to_string(),
                server_namespace: server_namespace.to_string(),
                server_namespace_protected: protected_namespace(
                    server_namespace,
                    self.controller_namespace.as_deref(),
                )
                .is_some(),
            }),
        }
    }
}

/// A credentials Secret the policy refused, with what the MCPServer author should do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct CredentialsSecretRefused {
    /// Which rule refused it.
    pub why: NamespaceRefusal,
    /// Secret namespace.
    pub namespace: String,
    /// Secret name.
    pub name: String,
    /// The MCPServer's namespace (empty when unknown, e.g. a manifest without one).
    pub server_namespace: String,
    /// The MCPServer itself sits in a protected namespace, so "next to the MCPServer" is no fix.
    server_namespace_protected: bool,
}

impl CredentialsSecretRefused {
    fn message(&self) -> String {
        let Self { namespace, name, .. } = self;
        let fix = self.fix();
        match self.why {
            NamespaceRefusal::SystemNamespace => format!(
                "Secret {namespace}/{name} is in a system namespace; muster-exchange never reads or grants \
                 access to credentials there: {fix}"
            ),
            NamespaceRefusal::ControllerNamespace => format!(
                "Secret {namespace}/{name} is in the muster-exchange controller's own namespace; it never reads \
                 or grants access to credentials there: {fix}"
            ),
            NamespaceRefusal::CrossNamespace => format!(
                "Secret {namespace}/{name} is not in the MCPServer's namespace; {fix} (or, if every MCPServer \
                 author may use Secrets in {namespace:?}, start the controller with \
                 --allow-cross-namespace-credentials=true)"
            ),
        }
    }

    /// Where the Secret should go instead; an unknown MCPServer namespace is not quoted as `""`.
    fn fix(&self) -> String {
        let server_namespace = &self.server_namespace;
        if self.server_namespace_protected {
            return format!(
                "move the MCPServer out of {server_namespace:?} into an application namespace and create the \
                 Secret next to it"
            );
        }
        let target = if server_namespace.is_empty() {
            "the MCPServer's namespace".to_string()
        } else {
            format!("the MCPServer's namespace {server_namespace:?}")
        };
        format!("create the Secret in {target} and point clientCredentialsSecretRef at it")
    }
}

#[cfg(test)]
mod tests;
