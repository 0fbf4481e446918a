//! The documented command-line interface of each app the examples run, with where each list comes from.
//! A new app in `examples/` needs its entry here, copied from the app's source, never guessed.

/// What one app accepts.
pub struct AppInterface {
    /// The app, for messages.
    pub name: &'static str,
    /// Matched against the container image (substring).
    pub image_contains: &'static str,
    /// A subcommand that must come first in `args`, if the app has one.
    pub subcommand: Option<&'static str>,
    /// Long flags, without `--`.
    pub flags: &'static [&'static str],
    /// Environment variables the app reads.
    pub env: &'static [&'static str],
    /// Keys of its configuration file, if it reads one.
    pub config_keys: &'static [&'static str],
}

/// giantswarm/mcp-kubernetes at 392ac05 (2026, mcp-oauth v1.2.16): `serve`'s flags are every
/// `cmd.Flags().*Var(…, "<name>", …)` in cmd/serve.go; the environment variables are the
/// `loadEnvIfEmpty`/`os.Getenv` fallbacks in cmd/serve.go and the ones helm/mcp-kubernetes/templates/
/// deployment.yaml sets.
const MCP_KUBERNETES: AppInterface = AppInterface {
    name: "giantswarm/mcp-kubernetes serve",
    image_contains: "giantswarm/mcp-kubernetes",
    subcommand: Some("serve"),
    flags: &[
        "allow-insecure-auth-without-state",
        "allow-link-local-redirect-uris",
        "allow-localhost-redirect-uris",
        "allow-private-ip-redirect-uris",
        "allow-private-oauth-urls",
        "allow-public-registration",
        "burst-limit",
        "cimd-allow-private-ips",
        "debug",
        "dex-ca-file",
        "dex-client-id",
        "dex-client-secret",
        "dex-connector-id",
        "dex-issuer-url",
        "dex-k8s-authenticator-client-id",
        "disable-authorization-time-validation",
        "disable-dns-validation",
        "disable-dns-validation-strict",
        "disable-production-mode",
        "disable-streaming",
        "disable-strict-scheme-matching",
        "downstream-oauth",
        "dry-run",
        "enable-cimd",
        "enable-oauth",
        "google-client-id",
        "google-client-secret",
        "http-addr",
        "http-endpoint",
        "in-cluster",
        "max-clients-per-ip",
        "message-endpoint",
        "metrics-addr",
        "metrics-enabled",
        "non-destructive",
        "oauth-base-url",
        "oauth-encryption-key",
        "oauth-provider",
        "oauth-storage-type",
        "oauth-trusted-audiences",
        "qps-limit",
        "registration-token",
        "sse-endpoint",
        "sso-allow-private-ips",
        "tls-cert-file",
        "tls-key-file",
        "transport",
        "trusted-public-registration-schemes",
        "valkey-db",
        "valkey-key-prefix",
        "valkey-password",
        "valkey-tls",
        "valkey-url",
    ],
    env: &[
        "TLS_CERT_FILE",
        "TLS_KEY_FILE",
        "ENABLE_CIMD",
        "CIMD_ALLOW_PRIVATE_IPS",
        "SSO_ALLOW_PRIVATE_IPS",
        "GOOGLE_CLIENT_ID",
        "GOOGLE_CLIENT_SECRET",
        "DEX_ISSUER_URL",
        "DEX_CLIENT_ID",
        "DEX_CLIENT_SECRET",
        "DEX_CONNECTOR_ID",
        "DEX_CA_FILE",
        "DEX_K8S_AUTHENTICATOR_CLIENT_ID",
        "OAUTH_ENCRYPTION_KEY",
        "OAUTH_TRUSTED_AUDIENCES",
        "OAUTH_STORAGE_TYPE",
        "VALKEY_URL",
        "VALKEY_PASSWORD",
        "VALKEY_TLS_ENABLED",
        "VALKEY_KEY_PREFIX",
        "VALKEY_DB",
        "ENABLE_HSTS",
        "ALLOWED_ORIGINS",
    ],
    config_keys: &[],
};

/// containers/kubernetes-mcp-server pull request #509 (open, not merged; head e5b583e4): the flags
/// declared in pkg/kubernetes-mcp-server/cmd/root.go (`flag* = "<name>"` constants bound with
/// `cmd.Flags()`), the TOML keys of pkg/config/config.go's `StaticConfig` (`toml:"<key>"` tags).
/// `cluster_provider_strategy = "auth-headers"` exists only as a TOML key there, not as a flag.
const KUBERNETES_MCP_SERVER_PR_509: AppInterface = AppInterface {
    name: "containers/kubernetes-mcp-server (PR #509)",
    image_contains: "kubernetes-mcp-server",
    subcommand: None,
    flags: &[
        "version",
        "log-level",
        "config",
        "port",
        "sse-base-url",
        "kubeconfig",
        "toolsets",
        "list-output",
        "read-only",
        "disable-destructive",
        "require-oauth",
        "oauth-audience",
        "validate-token",
        "authorization-url",
        "server-url",
        "certificate-authority",
        "disable-multi-cluster",
    ],
    env: &[],
    config_keys: &[
        "denied_resources",
        "log_level",
        "port",
        "sse_base_url",
        "kubeconfig",
        "list_output",
        "read_only",
        "disable_destructive",
        "toolsets",
        "enabled_tools",
        "disabled_tools",
        "require_oauth",
        "oauth_audience",
        "validate_token",
        "authorization_url",
        "disable_dynamic_client_registration",
        "oauth_scopes",
        "sts_client_id",
        "sts_client_secret",
        "sts_audience",
        "sts_scopes",
        "certificate_authority",
        "server_url",
        "cluster_provider_strategy",
        "cluster_provider_configs",
        "toolset_configs",
    ],
};

/// kubernetes/kubernetes test/images/agnhost (the e2e's app double), `netexec` subcommand: flags
/// declared in test/images/agnhost/netexec/netexec.go (`CmdNetexec.Flags()`).
const AGNHOST_NETEXEC: AppInterface = AppInterface {
    name: "agnhost netexec",
    image_contains: "e2e-test-images/agnhost",
    subcommand: Some("netexec"),
    flags: &[
        "http-port",
        "http-override",
        "udp-port",
        "udp-listen-addresses",
        "sctp-port",
        "tls-cert-file",
        "tls-private-key-file",
        "delay-shutdown",
    ],
    env: &[],
    config_keys: &[],
};

const ALL: [&AppInterface; 3] = [&MCP_KUBERNETES, &KUBERNETES_MCP_SERVER_PR_509, &AGNHOST_NETEXEC];

/// The interface of the app `image` runs, if it is one of ours.
pub fn interface_for_image(image: &str) -> Option<&'static AppInterface> {
    ALL.into_iter().find(|app| image.contains(app.image_contains))
}
