//! Why a pod is refused, each with a message that tells the user what to do.

/// A pod asked for injection but cannot get it; the admission is denied with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Injection is never done in the Kubernetes system namespaces.
    #[error(
        "muster-exchange never injects into system namespace {namespace}; run the pod in an application \
         namespace or remove the annotation {annotation}"
    )]
    SystemNamespace {
        /// The pod's namespace.
        namespace: String,
        /// The annotation that asked for injection.
        annotation: &'static str,
    },
    /// An annotation value cannot be used.
    #[error("pod annotation {annotation}={value:?} is invalid: {problem}")]
    MalformedAnnotation {
        /// The annotation key.
        annotation: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// The pod names an MCPServer that does not exist.
    #[error(
        "MCPServer {namespace}/{name} not found; create it, fix the pod annotation {annotation}, or set \
         {namespace_annotation} to the namespace holding it"
    )]
    UnknownMcpServer {
        /// Namespace looked in.
        namespace: String,
        /// MCPServer name.
        name: String,
        /// The annotation listing the MCPServers.
        annotation: &'static str,
        /// The annotation choosing their namespace.
        namespace_annotation: &'static str,
    },
    /// The MCPServer exists but token exchange is off or misconfigured.
    #[error("MCPServer {namespace}/{name} cannot be used for token exchange: {detail}")]
    TokenExchangeUnusable {
        /// Namespace of the MCPServer.
        namespace: String,
        /// MCPServer name.
        name: String,
        /// The problems found.
        detail: String,
    },
    /// A Secret volume can only mount a Secret from the pod's own namespace.
    #[error(
        "MCPServer {mcpserver} keeps its client credentials in Secret {secret_namespace}/{secret}, but the pod \
         runs in namespace {pod_namespace} and a Secret volume can only mount from the pod's own namespace; \
         copy the Secret to {pod_namespace} and point clientCredentialsSecretRef at it, or run the pod in \
         {secret_namespace}"
    )]
    SecretInOtherNamespace {
        /// MCPServer name.
        mcpserver: String,
        /// Secret name.
        secret: String,
        /// Namespace of the Secret.
        secret_namespace: String,
        /// Namespace of the pod.
        pod_namespace: String,
    },
    /// `auth-headers` mode needs the kubeconfig Secret in the pod's namespace, and the conventional one
    /// lives next to an MCPServer in another namespace.
    #[error(
        "MCPServer {mcpserver} lives in namespace {mcpserver_namespace}, where its kubeconfig Secret {secret} \
         is expected, but the pod runs in namespace {pod_namespace} and a Secret volume can only mount from the \
         pod's own namespace; copy the kubeconfig Secret to {pod_namespace} and set the MCPServer annotation \
         {annotation} to its name, use header mode bearer, or run the pod in {mcpserver_namespace}"
    )]
    KubeconfigInOtherNamespace {
        /// MCPServer name.
        mcpserver: String,
        /// The conventional Secret name.
        secret: String,
        /// Namespace of the MCPServer.
        mcpserver_namespace: String,
        /// Namespace of the pod.
        pod_namespace: String,
        /// The MCPServer annotation naming a Secret in the pod's namespace.
        annotation: &'static str,
    },
    /// The user already has a container or volume with a name the injection needs.
    #[error(
        "the pod already has a {what} named {name:?} that muster-exchange did not inject; rename it, or label \
         the pod exchange.muster.giantswarm.io/injection=disabled to opt out"
    )]
    NameCollision {
        /// `container` or `volume`.
        what: &'static str,
        /// The colliding name.
        name: String,
    },
    /// The sidecar configuration built from the MCPServers fails the sidecar's own checks.
    #[error(
        "cannot build the token-exchange sidecar configuration: {0}; fix the MCPServers named in the pod \
         annotation exchange.muster.giantswarm.io/mcpservers"
    )]
    RenderFailed(String),
    /// The pod object is not shaped like a pod.
    #[error("the object is not a valid pod: {0}; submit a Pod manifest with metadata and spec.containers")]
    NotAPod(String),
}

impl Refusal {
    /// Low-cardinality label for the refusals metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SystemNamespace { .. } => "system-namespace",
            Self::MalformedAnnotation { .. } => "malformed-annotation",
            Self::UnknownMcpServer { .. } => "unknown-mcpserver",
            Self::TokenExchangeUnusable { .. } => "token-exchange-unusable",
            Self::SecretInOtherNamespace { .. } => "secret-in-other-namespace",
            Self::KubeconfigInOtherNamespace { .. } => "kubeconfig-in-other-namespace",
            Self::NameCollision { .. } => "name-collision",
            Self::RenderFailed(_) => "render-failed",
            Self::NotAPod(_) => "not-a-pod",
        }
    }
}
