//! The `MCPServer` custom resource (`muster.giantswarm.io/v1alpha1`), field for field as Muster ships it.
//!
//! Muster owns this CRD; these types mirror `helm/muster/crds/muster.giantswarm.io_mcpservers.yaml` so that
//! objects written for Muster keep working and Muster keeps reading ours. We may add validation and printer
//! columns, never drop or rename a field (`tests/crd_compat.rs` holds us to that).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::tolerant::{lenient, tolerant_enum};

/// Scopes Muster requests when `tokenExchange.scopes` is not set (the CRD default).
pub const DEFAULT_EXCHANGE_SCOPES: &str = "openid profile email groups";
/// Secret key holding the exchange client's ID when `clientIdKey` is not set.
pub const DEFAULT_CLIENT_ID_KEY: &str = "client-id";
/// Secret key holding the exchange client's secret when `clientSecretKey` is not set.
pub const DEFAULT_CLIENT_SECRET_KEY: &str = "client-secret";
/// Remote-server timeout in seconds when `spec.timeout` is not set.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 30;

/// MCPServerSpec defines the desired state of MCPServer
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "muster.giantswarm.io",
    version = "v1alpha1",
    kind = "MCPServer",
    plural = "mcpservers",
    singular = "mcpserver",
    shortname = "mcps",
    namespaced,
    status = "MCPServerStatus",
    doc = "MCPServer is the Schema for the mcpservers API",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(name = "AutoStart", type_ = "boolean", json_path = ".spec.autoStart"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Exchange",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"TokenExchangeReady\")].status",
        description = "All token-exchange checks pass (muster-exchange controller, TokenExchangeReady)"
    ),
    printcolumn(
        name = "Dex",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"DexConnected\")].reason",
        description = "Whether the remote Dex answers (muster-exchange controller, DexConnected)"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec.type != 'stdio' || has(self.spec.command)")
        .message("command is required when type is stdio"),
    validation = Rule::new("self.spec.type == 'stdio' || has(self.spec.url)")
        .message("url is required when type is streamable-http or sse"),
    validation = Rule::new("self.spec.type == 'stdio' || !has(self.spec.args)")
        .message("args field is only allowed when type is stdio"),
    validation = Rule::new("self.spec.type != 'stdio' || !has(self.spec.headers)")
        .message("headers field is only allowed when type is streamable-http or sse")
)]
#[serde(rename_all = "camelCase")]
pub struct MCPServerSpec {
    /// Type specifies how this MCP server should be executed.
    /// Supported values: "stdio" for local processes, "streamable-http" for HTTP-based servers, "sse" for Server-Sent Events
    #[serde(rename = "type")]
    pub server_type: ServerType,

    /// ToolPrefix is an optional prefix that will be prepended to all tool names provided by this MCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z][a-zA-Z0-9_-]*$"))]
    pub tool_prefix: Option<String>,

    /// Family declares that this MCP server is an instance of a family of equivalent servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,

    /// Description provides a human-readable description of this MCP server's purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub description: Option<String>,

    /// AutoStart determines whether this MCP server should be automatically started.
    #[serde(default)]
    pub auto_start: bool,

    /// Command specifies the executable path for stdio type servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,

    /// Args specifies the command line arguments for stdio type servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// URL is the endpoint where the remote MCP server can be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/$.?#].[^\s]*$"))]
    pub url: Option<String>,

    /// Env contains environment variables to set for the MCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,

    /// Headers contains HTTP headers to send with requests to remote MCP servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,

    /// Auth configures authentication behavior for this MCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<MCPServerAuth>,

    /// Timeout specifies the connection timeout for remote operations (in seconds)
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 300), transform = without_format)]
    pub timeout: i32,
}

fn default_timeout() -> i32 {
    DEFAULT_TIMEOUT_SECONDS
}

tolerant_enum! {
    /// How Muster runs the server.
    pub enum ServerType {
        /// A local process speaking MCP over stdio.
        Stdio = "stdio",
        /// A remote server speaking MCP streamable HTTP.
        StreamableHttp = "streamable-http",
        /// A remote server speaking MCP over Server-Sent Events.
        Sse = "sse",
    }
}

/// Family groups equivalent servers (for example one mcp-kubernetes per cluster) under one tool name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Family {
    /// Name is the family identifier.
    #[schemars(regex(pattern = r"^[a-zA-Z][a-zA-Z0-9_-]*$"))]
    pub name: String,
    /// InstanceArg names the required parameter callers use to select which family member handles the call.
    #[schemars(regex(pattern = r"^[a-zA-Z][a-zA-Z0-9_]*$"))]
    pub instance_arg: String,
}

/// Auth configures authentication behavior for this MCP server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.authorizationServer) || self.type == 'oauth'")
        .message("authorizationServer is only valid when type is oauth"),
    validation = Rule::new(
        "!(has(self.forwardToken) && self.forwardToken == true && has(self.authorizationServer))"
    )
    .message("forwardToken bypasses per-backend OAuth; set one or the other, not both"),
    validation = Rule::new(
        "!(has(self.tokenExchange) && has(self.tokenExchange.enabled) && self.tokenExchange.enabled == true && has(self.authorizationServer))"
    )
    .message("tokenExchange has its own issuer/endpoint config; set one or the other, not both")
)]
pub struct MCPServerAuth {
    /// Type specifies the authentication type: "oauth" or "none".
    #[serde(rename = "type", default)]
    pub auth_type: AuthType,

    /// ForwardToken enables ID token forwarding for SSO.
    #[serde(default)]
    pub forward_token: bool,

    /// RequiredAudiences specifies additional audience(s) that the forwarded ID token should contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_audiences: Option<Vec<String>>,

    /// TokenExchange enables SSO via RFC 8693 Token Exchange for cross-cluster SSO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<TokenExchangeConfig>,

    /// AuthorizationServer is an opt-out for backends that don't publish RFC 9728 Protected Resource Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<AuthorizationServer>,
}

tolerant_enum! {
    /// Authentication type of the server.
    #[derive(Default)]
    pub enum AuthType {
        /// OAuth 2.0 / OIDC authentication.
        OAuth = "oauth",
        /// No authentication.
        #[default]
        None = "none",
    }
}

/// RFC 8693 token exchange at the remote cluster's Dex.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenExchangeConfig {
    /// Enabled determines whether token exchange should be attempted.
    #[serde(default)]
    pub enabled: bool,

    /// DexTokenEndpoint is the URL used to connect to the remote cluster's Dex token endpoint.
    /// Required when Enabled is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https://[^\s/$.?#].[^\s]*$"))]
    pub dex_token_endpoint: Option<String>,

    /// ExpectedIssuer is the expected issuer URL in the exchanged token's "iss" claim.
    /// If not specified, the issuer is derived from DexTokenEndpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https://[^\s/$.?#].[^\s]*$"))]
    pub expected_issuer: Option<String>,

    /// ConnectorID is the ID of the OIDC connector on the remote Dex that trusts the local cluster's Dex.
    /// Required when Enabled is true.
    #[serde(rename = "connectorId", default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z][a-zA-Z0-9_-]*$"))]
    pub connector_id: Option<String>,

    /// Scopes are the scopes to request for the exchanged token.
    #[serde(default = "default_scopes")]
    pub scopes: String,

    /// ClientCredentialsSecretRef references a Kubernetes Secret containing client credentials for
    /// authenticating with the remote Dex's token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_credentials_secret_ref: Option<ClientCredentialsSecretRef>,
}

fn default_scopes() -> String {
    DEFAULT_EXCHANGE_SCOPES.to_string()
}

/// Where the exchange client's ID and secret live.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentialsSecretRef {
    /// Name is the name of the Kubernetes Secret.
    pub name: String,
    /// Namespace is the Kubernetes namespace where the secret is located.
    /// If not specified, defaults to the MCPServer's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// ClientIDKey is the key in the secret data that contains the client ID.
    #[serde(rename = "clientIdKey", default = "default_client_id_key")]
    pub client_id_key: String,
    /// ClientSecretKey is the key in the secret data that contains the client secret.
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
}

fn default_client_id_key() -> String {
    DEFAULT_CLIENT_ID_KEY.to_string()
}

fn default_client_secret_key() -> String {
    DEFAULT_CLIENT_SECRET_KEY.to_string()
}

/// OAuth authorization server override for backends without RFC 9728 metadata.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationServer {
    /// Issuer is the OAuth 2.0 / OIDC issuer URL.
    #[schemars(regex(pattern = r"^https://[^/?#]+(/[^?#]*[^/?#])?$"))]
    pub issuer: String,
    /// Scopes is the OAuth scope parameter value (space-separated scope tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
}

/// MCPServerStatus defines the observed state of MCPServer.
///
/// Muster writes `state`, `lastError` and `lastConnected`; the muster-exchange controller writes only its
/// own condition types in `conditions` (`names::OUR_CONDITION_TYPES`) and keeps every other entry. Read
/// leniently: a field of a shape this build does not know reads as unset instead of failing the object.
#[derive(Serialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPServerStatus {
    /// State represents the high-level infrastructure state of the MCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = without_null_value)]
    pub state: Option<ServerState>,
    /// LastError contains any error message from the most recent server operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// LastConnected indicates when the server was last successfully connected
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_connected: Option<Time>,
    /// RestartCount tracks how many times this server has been restarted (stdio only)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = without_format)]
    pub restart_count: Option<i32>,
    /// ConsecutiveFailures tracks the number of consecutive connection failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = without_format)]
    pub consecutive_failures: Option<i32>,
    /// LastAttempt indicates when the last connection attempt was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Time>,
    /// NextRetryAfter indicates the earliest time when the next retry should be attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_after: Option<Time>,
    /// Conditions represent the latest available observations of the MCPServer's current state,
    /// one entry per type. The muster-exchange controller writes ExchangeCredentialsReady, DexConnected,
    /// TokenExchangeVerified and TokenExchangeReady, and keeps every other writer's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
}

tolerant_enum! {
    /// High-level infrastructure state, written by Muster.
    pub enum ServerState {
        /// A stdio process is running.
        Running = "Running",
        /// A stdio process is starting.
        Starting = "Starting",
        /// Stopped.
        Stopped = "Stopped",
        /// A remote server is connected.
        Connected = "Connected",
        /// The server demands authentication.
        AuthRequired = "Auth Required",
        /// The endpoint answers but no session is connected (forwardToken/tokenExchange servers, Muster 5.28).
        AwaitingSession = "Awaiting Session",
        /// A remote server is being connected.
        Connecting = "Connecting",
        /// A remote server is unreachable.
        Disconnected = "Disconnected",
        /// Failed.
        Failed = "Failed",
    }
}

impl<'de> Deserialize<'de> for MCPServerStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(MCPServerStatus::read_leniently(&value))
    }
}

impl MCPServerStatus {
    /// Reads each field on its own: one field of an unknown shape (or a `status` that is not an object)
    /// costs that field, never the object. Conditions are read entry by entry.
    pub fn read_leniently(value: &serde_json::Value) -> Self {
        let conditions = value.get("conditions").and_then(|c| c.as_array()).map(|entries| {
            entries
                .iter()
                .filter_map(|entry| serde_json::from_value::<Condition>(entry.clone()).ok())
                .collect()
        });
        MCPServerStatus {
            state: lenient(value.get("state")),
            last_error: lenient(value.get("lastError")),
            last_connected: lenient(value.get("lastConnected")),
            restart_count: lenient(value.get("restartCount")),
            consecutive_failures: lenient(value.get("consecutiveFailures")),
            last_attempt: lenient(value.get("lastAttempt")),
            next_retry_after: lenient(value.get("nextRetryAfter")),
            conditions,
        }
    }
}

impl MCPServer {
    /// The token-exchange block, when present.
    pub fn token_exchange(&self) -> Option<&TokenExchangeConfig> {
        self.spec.auth.as_ref()?.token_exchange.as_ref()
    }

    /// `requiredAudiences`, empty when unset.
    pub fn required_audiences(&self) -> &[String] {
        self.spec
            .auth
            .as_ref()
            .and_then(|a| a.required_audiences.as_deref())
            .unwrap_or_default()
    }
}

impl ClientCredentialsSecretRef {
    /// The Secret's namespace: the one named, else the MCPServer's (Muster's fallback order).
    pub fn namespace_or<'a>(&'a self, mcpserver_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => mcpserver_namespace,
        }
    }
}

/// Muster's CRD (controller-gen, Go `int`) declares these integers without `format`; `int32` would make
/// ours refuse values Muster's admits.
fn without_format(schema: &mut schemars::Schema) {
    schema.remove("format");
}

/// An optional enum is `nullable`; a `null` among the enum values is not a state Muster writes.
fn without_null_value(schema: &mut schemars::Schema) {
    if let Some(values) = schema.get_mut("enum").and_then(|v| v.as_array_mut()) {
        values.retain(|v| !v.is_null());
    }
}

/// The standard `metav1.Condition` list schema, with the validation Muster's CRD (controller-gen) carries
/// and k8s-openapi's generated schema lacks, merged by `type` so each condition type appears once.
fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Conditions represent the latest available observations of the MCPServer's current state, one entry per type. The muster-exchange controller writes ExchangeCredentialsReady, DexConnected, TokenExchangeVerified and TokenExchangeReady, and keeps every other writer's entries.",
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "description": "Condition contains details for one aspect of the current state of this API Resource.",
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {
                    "description": "lastTransitionTime is the last time the condition transitioned from one status to another.",
                    "type": "string",
                    "format": "date-time"
                },
                "message": {
                    "description": "message is a human readable message indicating details about the transition.",
                    "type": "string",
                    "maxLength": 32768
                },
                "observedGeneration": {
                    "description": "observedGeneration represents the .metadata.generation that the condition was set based upon.",
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0
                },
                "reason": {
                    "description": "reason contains a programmatic identifier indicating the reason for the condition's last transition.",
                    "type": "string",
                    "maxLength": 1024,
                    "minLength": 1,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
                },
                "status": {
                    "description": "status of the condition, one of True, False, Unknown.",
                    "type": "string",
                    "enum": ["True", "False", "Unknown"]
                },
                "type": {
                    "description": "type of condition in CamelCase or in foo.example.com/CamelCase.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                }
            }
        }
    })
}
