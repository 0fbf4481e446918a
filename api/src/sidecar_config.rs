//! The token-exchange sidecar's configuration document.
//!
//! The webhook renders it from MCPServers into the pod spec (env [`crate::names::SIDECAR_CONFIG_ENV`], as
//! JSON, so it is visible with `kubectl get pod -o yaml`); the sidecar reads it from there or from
//! `--config FILE` (YAML or JSON). Both sides use these types, so they cannot drift apart.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mcpserver::{DEFAULT_CLIENT_ID_KEY, DEFAULT_CLIENT_SECRET_KEY, MCPServer};

/// Default port the sidecar listens on inside the pod.
pub const DEFAULT_SIDECAR_PORT: u16 = 8090;
/// Default port of the app (mcp-kubernetes) the sidecar forwards to.
pub const DEFAULT_UPSTREAM_PORT: u16 = 8080;

/// The whole sidecar configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarConfig {
    /// Address to listen on, e.g. `[::]:8090` (the default: IPv6 and IPv4, dual-stack on Linux).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The app behind the sidecar, e.g. `http://127.0.0.1:8080`.
    #[serde(default = "default_upstream")]
    pub upstream: String,
    /// How the exchanged token is handed to the app.
    #[serde(default)]
    pub header_mode: HeaderMode,
    /// One entry per remote cluster (MCPServer).
    pub clusters: Vec<ClusterConfig>,
    /// The central Dex's issuer URL. When set, a subject token whose `iss` is neither this issuer nor
    /// the cluster's own is refused before any Dex call; unset, any other issuer is exchanged (Dex
    /// decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub central_issuer: Option<String>,
}

/// How the sidecar passes the exchanged token on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderMode {
    /// `Authorization` plus the `kubernetes-*` headers of the auth-headers provider (server, CA, token).
    #[default]
    AuthHeaders,
    /// Only `Authorization: Bearer <exchanged>`.
    Bearer,
}

impl HeaderMode {
    /// The annotation / config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthHeaders => "auth-headers",
            Self::Bearer => "bearer",
        }
    }
}

impl std::str::FromStr for HeaderMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auth-headers" => Ok(Self::AuthHeaders),
            "bearer" => Ok(Self::Bearer),
            other => Err(format!(
                "unknown header mode {other:?}; use \"auth-headers\" or \"bearer\""
            )),
        }
    }
}

/// One remote cluster: where and how to exchange, and where its files are mounted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    /// The MCPServer's name; also the routing prefix `/clusters/<name>/` when several are configured.
    pub name: String,
    /// The remote Dex token endpoint (`https://`).
    pub dex_token_endpoint: String,
    /// The issuer the exchanged token must carry; derived from the endpoint when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_issuer: Option<String>,
    /// The remote Dex connector that trusts the central Dex.
    pub connector_id: String,
    /// Space-separated scopes.
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// Each becomes `audience:server:client_id:<aud>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_audiences: Vec<String>,
    /// Directory of the mounted credentials Secret (files named by the keys below).
    pub credentials_dir: PathBuf,
    /// File in `credentials_dir` holding the client ID.
    #[serde(default = "default_client_id_key")]
    pub client_id_key: String,
    /// File in `credentials_dir` holding the client secret.
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
    /// The remote cluster's kubeconfig (server URL and CA for `auth-headers` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_file: Option<PathBuf>,
    /// Directory of the mounted endpoint ConfigMap (files `server` and `ca.crt`): the server URL and CA
    /// for `auth-headers` mode without any cluster credentials. Excludes `kubeconfigFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_dir: Option<PathBuf>,
    /// Extra CA bundle (PEM) to trust for the Dex endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// `[::]:port`: every IPv6 and (on Linux, where IPv6 sockets accept IPv4 unless `net.ipv6.bindv6only`
/// is set) every IPv4 address, so the sidecar serves single-stack IPv4, single-stack IPv6 and dual-stack
/// pods alike.
pub fn listen_on_all_addresses(port: u16) -> String {
    format!("[::]:{port}")
}

fn default_listen() -> String {
    listen_on_all_addresses(DEFAULT_SIDECAR_PORT)
}
fn default_upstream() -> String {
    format!("http://127.0.0.1:{DEFAULT_UPSTREAM_PORT}")
}
fn default_scopes() -> String {
    crate::mcpserver::DEFAULT_EXCHANGE_SCOPES.to_string()
}
fn default_client_id_key() -> String {
    DEFAULT_CLIENT_ID_KEY.to_string()
}
fn default_client_secret_key() -> String {
    DEFAULT_CLIENT_SECRET_KEY.to_string()
}

/// Why an MCPServer cannot become a sidecar cluster entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterConfigError {
    /// Neither Muster nor the sidecar would exchange for this MCPServer (see [`crate::topology`]).
    #[error("MCPServer {name} uses neither token-exchange topology: {why}")]
    NoTopology {
        /// MCPServer name.
        name: String,
        /// Which fields are missing, naming both topologies.
        why: crate::topology::NoTopology,
    },
    /// A field the exchange needs is missing.
    #[error(
        "MCPServer {name} has no spec.auth.tokenExchange.{field}; set it (run `muster-exchange validate`)"
    )]
    Missing {
        /// MCPServer name.
        name: String,
        /// The missing field.
        field: &'static str,
    },
}

impl ClusterConfig {
    /// Builds the entry for `mcpserver`, with its files mounted at `credentials_dir` and `kubeconfig_file`.
    pub fn from_mcpserver(
        mcpserver: &MCPServer,
        credentials_dir: PathBuf,
        kubeconfig_file: Option<PathBuf>,
    ) -> Result<Self, ClusterConfigError> {
        let name = mcpserver.metadata.name.clone().unwrap_or_default();
        let te = match crate::topology::of(mcpserver) {
            Ok(_) => mcpserver.token_exchange(),
            Err(why) => {
                return Err(ClusterConfigError::NoTopology {
                    name: name.clone(),
                    why,
                });
            }
        };
        let te = te.ok_or(ClusterConfigError::NoTopology {
            name: name.clone(),
            why: crate::topology::NoTopology::NoTokenExchange,
        })?;
        let missing = |field| ClusterConfigError::Missing {
            name: name.clone(),
            field,
        };
        let endpoint = te
            .dex_token_endpoint
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("dexTokenEndpoint"))?;
        let connector = te
            .connector_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("connectorId"))?;
        let secret = te
            .client_credentials_secret_ref
            .as_ref()
            .ok_or_else(|| missing("clientCredentialsSecretRef"))?;
        Ok(Self {
            name: name.clone(),
            dex_token_endpoint: endpoint,
            expected_issuer: te.expected_issuer.clone().filter(|s| !s.is_empty()),
            connector_id: connector,
            scopes: te.scopes.clone(),
            required_audiences: mcpserver.required_audiences().to_vec(),
            credentials_dir,
            client_id_key: secret.client_id_key.clone(),
            client_secret_key: secret.client_secret_key.clone(),
            kubeconfig_file,
            endpoint_dir: None,
            ca_file: None,
        })
    }

    /// The issuer the exchanged token must carry.
    pub fn expected_issuer(&self) -> String {
        crate::issuer::expected_issuer(self.expected_issuer.as_deref(), &self.dex_token_endpoint)
    }

    /// The `scope` form value: configured scopes plus one cross-client audience scope per required audience.
    pub fn scope_parameter(&self) -> String {
        let mut scope: Vec<String> = self.scopes.split_whitespace().map(str::to_string).collect();
        for aud in &self.required_audiences {
            let extra = format!("audience:server:client_id:{aud}");
            if !scope.contains(&extra) {
                scope.push(extra);
            }
        }
        scope.join(" ")
    }
}

impl SidecarConfig {
    /// Parses a YAML or JSON document.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("invalid sidecar config JSON: {e}"))
        } else {
            serde_saphyr::from_str_with_options(text, crate::documents::yaml_options())
                .map_err(|e| format!("invalid sidecar config YAML: {e}"))
        }
    }

    /// Checks what serde cannot: at least one cluster, unique names, https endpoints.
    pub fn check(&self) -> Result<(), String> {
        if self.clusters.is_empty() {
            return Err("the sidecar config lists no clusters; add at least one".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.clusters {
            if !seen.insert(c.name.as_str()) {
                return Err(format!(
                    "cluster {:?} is listed twice; names must be unique",
                    c.name
                ));
            }
            if !c.dex_token_endpoint.starts_with("https://") {
                return Err(format!(
                    "cluster {:?}: dexTokenEndpoint must be an https:// URL",
                    c.name
                ));
            }
            if c.connector_id.is_empty() {
                return Err(format!("cluster {:?}: connectorId is empty", c.name));
            }
            if c.kubeconfig_file.is_some() && c.endpoint_dir.is_some() {
                return Err(format!(
                    "cluster {:?}: set either kubeconfigFile or endpointDir, not both (endpointDir is the \
                     credential-free one)",
                    c.name
                ));
            }
        }
        if let Some(issuer) = &self.central_issuer
            && !issuer.starts_with("https://")
        {
            return Err(format!(
                "centralIssuer {issuer:?} must be an https:// URL (the central Dex's issuer), or be left unset"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parameter_appends_audiences_once() {
        let c = ClusterConfig {
            name: "a".into(),
            dex_token_endpoint: "https://dex/token".into(),
            expected_issuer: None,
            connector_id: "central".into(),
            scopes: "openid groups".into(),
            required_audiences: vec!["dex-k8s-authenticator".into()],
            credentials_dir: "/x".into(),
            client_id_key: "client-id".into(),
            client_secret_key: "client-secret".into(),
            kubeconfig_file: None,
            endpoint_dir: None,
            ca_file: None,
        };
        assert_eq!(
            c.scope_parameter(),
            "openid groups audience:server:client_id:dex-k8s-authenticator"
        );
    }

    #[test]
    fn parses_yaml_with_defaults_and_refuses_unknown_fields() {
        let cfg = SidecarConfig::parse(
            "clusters:\n- name: a\n  dexTokenEndpoint: https://d/token\n  connectorId: c\n  credentialsDir: /s\n",
        )
        .unwrap();
        assert_eq!(cfg.listen, "[::]:8090");
        assert_eq!(cfg.header_mode, HeaderMode::AuthHeaders);
        assert_eq!(cfg.clusters[0].client_secret_key, "client-secret");
        assert!(cfg.check().is_ok());
        assert!(SidecarConfig::parse("{\"clusters\":[],\"bogus\":1}").is_err());
        assert_eq!(cfg.central_issuer, None);
    }

    #[test]
    fn central_issuer_is_optional_and_must_be_https() {
        let base = "clusters:\n- name: a\n  dexTokenEndpoint: https://d/token\n  connectorId: c\n  credentialsDir: /s\n";
        let cfg =
            SidecarConfig::parse(&format!("{base}centralIssuer: https://central.example/dex\n")).unwrap();
        assert_eq!(cfg.central_issuer.as_deref(), Some("https://central.example/dex"));
        assert!(cfg.check().is_ok());
        let cfg = SidecarConfig::parse(&format!("{base}centralIssuer: http://central.example\n")).unwrap();
        assert!(cfg.check().unwrap_err().contains("centralIssuer"));
    }

    #[test]
    fn endpoint_dir_and_kubeconfig_file_exclude_each_other() {
        let base = "clusters:\n- name: a\n  dexTokenEndpoint: https://d/token\n  connectorId: c\n  credentialsDir: /s\n";
        let cfg = SidecarConfig::parse(&format!("{base}  endpointDir: /e\n")).unwrap();
        assert_eq!(cfg.clusters[0].endpoint_dir, Some(PathBuf::from("/e")));
        assert!(cfg.check().is_ok());
        let both =
            SidecarConfig::parse(&format!("{base}  endpointDir: /e\n  kubeconfigFile: /k/value\n")).unwrap();
        let error = both.check().unwrap_err();
        assert!(error.contains("either kubeconfigFile or endpointDir"), "{error}");
    }
}
