//! Rules for `spec.auth` and `spec.auth.tokenExchange`: Muster's exclusivity CEL plus what Muster's CRD
//! leaves to runtime (docs/facts.md: Muster's `spec.auth`, its exchange request, Dex's checks).

use std::collections::BTreeSet;

use super::syntax::{self, UrlRules};
use super::{FieldError, Report};
use crate::credentials_policy::{CredentialsPolicy, NamespaceRefusal};
use crate::issuer;
use crate::mcpserver::{AuthType, ClientCredentialsSecretRef, MCPServer, MCPServerAuth, TokenExchangeConfig};
use crate::topology::{self, Topology};

const AUTH: &str = "spec.auth";
const TE: &str = "spec.auth.tokenExchange";
const SECRET: &str = "spec.auth.tokenExchange.clientCredentialsSecretRef";
const AUDIENCE_SCOPE_PREFIX: &str = "audience:server:client_id:";
const MAX_CONNECTOR_ID_LEN: usize = 64;

pub(super) fn check(mcpserver: &MCPServer, report: &mut Report) {
    let Some(auth) = &mcpserver.spec.auth else { return };
    check_exclusivity(auth, report);
    check_audiences(auth, report);
    if let Some(server) = &auth.authorization_server
        && !is_issuer_url(&server.issuer)
    {
        report.error(FieldError::invalid(
            format!("{AUTH}.authorizationServer.issuer"),
            &server.issuer,
            "must be an https:// URL without trailing slash, query or fragment (RFC 8414)",
        ));
    }
    if let Some(te) = &auth.token_exchange {
        check_token_exchange(mcpserver, auth, te, report);
    }
}

fn check_exclusivity(auth: &MCPServerAuth, report: &mut Report) {
    let has_as = auth.authorization_server.is_some();
    if has_as && auth.auth_type == AuthType::None {
        report.error(FieldError::forbidden(
            format!("{AUTH}.authorizationServer"),
            "authorizationServer is only valid when type is oauth; set spec.auth.type: oauth or remove it",
        ));
    }
    if has_as && auth.forward_token {
        report.error(FieldError::forbidden(
            format!("{AUTH}.forwardToken"),
            "forwardToken bypasses per-backend OAuth; set one or the other, not both",
        ));
    }
    let exchange_on = auth.token_exchange.as_ref().is_some_and(|te| te.enabled);
    if has_as && exchange_on {
        report.error(FieldError::forbidden(
            format!("{TE}.enabled"),
            "tokenExchange has its own issuer/endpoint config; set one or the other, not both (remove spec.auth.authorizationServer)",
        ));
    }
    if exchange_on && auth.forward_token {
        report.warn(
            format!("{AUTH}.forwardToken"),
            "tokenExchange takes precedence over forwardToken; forwardToken has no effect here and can be removed",
        );
    }
}

fn check_audiences(auth: &MCPServerAuth, report: &mut Report) {
    let Some(audiences) = &auth.required_audiences else {
        return;
    };
    let mut seen = BTreeSet::new();
    for (i, aud) in audiences.iter().enumerate() {
        let path = format!("{AUTH}.requiredAudiences[{i}]");
        if !syntax::is_audience(aud) {
            report.error(FieldError::invalid(
                path,
                aud,
                "must be 1-256 characters of letters, digits, '_' and '-' (Muster silently drops other entries)",
            ));
        } else if !seen.insert(aud.as_str()) {
            report.error(FieldError::duplicate(path, aud, "list each audience once"));
        }
    }
}

fn check_token_exchange(
    mcpserver: &MCPServer,
    auth: &MCPServerAuth,
    te: &TokenExchangeConfig,
    report: &mut Report,
) {
    // The block is present, so "neither" can only mean disabled without forwardToken: nothing would ever
    // use it. Both topologies need the whole block, M for Muster and F for the sidecar.
    let topology = match topology::of_auth(Some(auth)) {
        Ok(topology) => Some(topology),
        Err(neither) => {
            report.error(FieldError::invalid(
                format!("{TE}.enabled"),
                "false",
                neither.to_string(),
            ));
            None
        }
    };
    let exchanging = topology.is_some();
    let needed_by = match topology {
        Some(Topology::SidecarExchanges) => {
            "required with forwardToken: true and enabled: false (topology F: the sidecar exchanges with it)"
        }
        _ => "required when enabled is true (Muster silently never exchanges otherwise)",
    };
    check_endpoint(te, exchanging, needed_by, report);
    check_connector(te, exchanging, needed_by, report);
    check_scopes(te, auth, exchanging, report);
    match &te.client_credentials_secret_ref {
        Some(secret) => check_secret_ref(mcpserver, secret, report),
        None if exchanging => report.error(FieldError::required(
            SECRET,
            "the remote Dex requires client authentication for token exchange (it answers invalid_client otherwise); \
             reference a Secret with client-id and client-secret",
        )),
        None => {}
    }
}

fn check_endpoint(te: &TokenExchangeConfig, exchanging: bool, needed_by: &str, report: &mut Report) {
    let endpoint = te.dex_token_endpoint.as_deref().filter(|s| !s.is_empty());
    match endpoint {
        None if exchanging => report.error(FieldError::required(
            format!("{TE}.dexTokenEndpoint"),
            format!(
                "{needed_by}; set the remote Dex token endpoint, e.g. https://dex.cluster-a.example.com/token"
            ),
        )),
        None => {}
        Some(raw) => {
            if let Err(why) = syntax::check_https_url(raw, UrlRules { allow_query: false }) {
                report.error(FieldError::invalid(format!("{TE}.dexTokenEndpoint"), raw, why));
            } else if te.expected_issuer.as_deref().is_none_or(str::is_empty)
                && !url_path(raw).trim_end_matches('/').ends_with("/token")
            {
                report.warn(
                    format!("{TE}.expectedIssuer"),
                    format!(
                        "unset, and dexTokenEndpoint does not end in /token, so the issuer cannot be derived reliably: \
                         exchanged tokens must carry iss {:?}; set expectedIssuer to the remote Dex issuer",
                        issuer::derive_issuer(raw)
                    ),
                );
            }
        }
    }
    if let Some(raw) = te.expected_issuer.as_deref().filter(|s| !s.is_empty())
        && let Err(why) = syntax::check_https_url(raw, UrlRules { allow_query: true })
    {
        report.error(FieldError::invalid(format!("{TE}.expectedIssuer"), raw, why));
    }
}

fn check_connector(te: &TokenExchangeConfig, exchanging: bool, needed_by: &str, report: &mut Report) {
    let path = format!("{TE}.connectorId");
    match te.connector_id.as_deref().filter(|s| !s.is_empty()) {
        None if exchanging => report.error(FieldError::required(
            path,
            format!("{needed_by}; set the ID of the remote Dex connector that trusts the central Dex"),
        )),
        None => {}
        Some(id) if !syntax::is_identifier(id) => report.error(FieldError::invalid(
            path,
            id,
            "must start with a letter and contain only letters, digits, '_' and '-'",
        )),
        Some(id) if id.len() > MAX_CONNECTOR_ID_LEN => {
            report.error(FieldError::invalid(
                path,
                id,
                "may not be longer than 64 characters",
            ));
        }
        Some(_) => {}
    }
}

fn check_scopes(te: &TokenExchangeConfig, auth: &MCPServerAuth, exchanging: bool, report: &mut Report) {
    let path = format!("{TE}.scopes");
    let mut seen = BTreeSet::new();
    for token in te.scopes.split(' ').filter(|t| !t.is_empty()) {
        if !syntax::is_scope_token(token) {
            report.error(FieldError::invalid(
                &path,
                token,
                "scope tokens are printable ASCII without '\"' or '\\', separated by single spaces (RFC 6749 3.3)",
            ));
        } else if !seen.insert(token) {
            report.error(FieldError::duplicate(&path, token, "list each scope once"));
        }
    }
    if !seen.contains("openid") {
        report.error(FieldError::invalid(
            &path,
            &te.scopes,
            "must contain openid: Dex issues an ID token only for OpenID Connect requests",
        ));
    }
    let has_audience_scope = seen.iter().any(|s| s.starts_with(AUDIENCE_SCOPE_PREFIX));
    let has_required_audiences = auth.required_audiences.as_ref().is_some_and(|a| !a.is_empty());
    if exchanging && !has_audience_scope && !has_required_audiences {
        report.warn(
            path,
            "no audience:server:client_id: scope and no requiredAudiences: the exchanged token's audience is the \
             exchange client alone and a Kubernetes API server will reject it; add e.g. \
             audience:server:client_id:dex-k8s-authenticator",
        );
    }
}

fn check_secret_ref(mcpserver: &MCPServer, secret: &ClientCredentialsSecretRef, report: &mut Report) {
    if !syntax::is_dns1123_subdomain(&secret.name) {
        report.error(FieldError::invalid(
            format!("{SECRET}.name"),
            &secret.name,
            "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters",
        ));
    }
    check_secret_namespace(mcpserver, secret, report);
    for (field, key) in [
        ("clientIdKey", &secret.client_id_key),
        ("clientSecretKey", &secret.client_secret_key),
    ] {
        if !syntax::is_secret_key(key) {
            report.error(FieldError::invalid(
                format!("{SECRET}.{field}"),
                key,
                "must be a valid Secret data key: letters, digits, '-', '_' and '.'",
            ));
        }
    }
    if secret.client_id_key == secret.client_secret_key {
        report.error(FieldError::invalid(
            format!("{SECRET}.clientSecretKey"),
            &secret.client_secret_key,
            "must differ from clientIdKey; the ID and the secret are two values",
        ));
    }
}

/// Where the Secret may live, by the one [`CredentialsPolicy`] the webhook and the controller also apply.
/// Judged on the effective namespace (the MCPServer's when the reference names none), as the controller
/// does. Offline, the controller's namespace and its `--allow-cross-namespace-credentials` are unknown: a
/// system namespace is an error, another namespace than the MCPServer's only a warning.
fn check_secret_namespace(mcpserver: &MCPServer, secret: &ClientCredentialsSecretRef, report: &mut Report) {
    let path = format!("{SECRET}.namespace");
    let explicit = secret.namespace.as_deref().filter(|s| !s.is_empty());
    if let Some(ns) = explicit
        && !syntax::is_dns1123_label(ns)
    {
        report.error(FieldError::invalid(
            path,
            ns,
            "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
        ));
        return;
    }
    let own = mcpserver.metadata.namespace.as_deref().filter(|s| !s.is_empty());
    let Some(secret_namespace) = explicit.or(own) else {
        return;
    };
    // Without its namespace (a manifest applied with `-n`) the MCPServer cannot be judged
    // cross-namespace; the protected namespaces are refused all the same.
    let policy = CredentialsPolicy {
        allow_cross_namespace: own.is_none(),
        ..CredentialsPolicy::offline()
    };
    match policy.check(secret_namespace, &secret.name, own.unwrap_or("")) {
        Ok(()) => {}
        Err(refused) if refused.why == NamespaceRefusal::CrossNamespace => {
            // The webhook mounts Secrets into the pod, so injection needs it in the pod's namespace whatever
            // the controller allows.
            report.warn(
                path,
                format!(
                    "{refused}; an injected sidecar can only mount a Secret from its pod's namespace either way"
                ),
            );
        }
        Err(refused) => report.error(FieldError::forbidden(path, refused.to_string())),
    }
}

/// Muster's `IssuerURL` pattern `^https://[^/?#]+(/[^?#]*[^/?#])?$`.
fn is_issuer_url(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix("https://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').map_or((rest, None), |(h, p)| (h, Some(p)));
    let host_ok = !host.is_empty() && !host.contains(['?', '#']);
    let path_ok = path.is_none_or(|p| !p.is_empty() && !p.contains(['?', '#']) && !p.ends_with('/'));
    host_ok && path_ok
}

fn url_path(raw: &str) -> String {
    url::Url::parse(raw)
        .map(|u| u.path().to_string())
        .unwrap_or_default()
}
