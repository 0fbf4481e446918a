//! ApiServerVerifier scenarios for the credential-grant reconciler.

use serde_json::{Value, json};

use super::credential_grants::{CredentialGrantConfig, sync_credential_grants};
use super::subjects::parse_service_account;
use super::tests::{APPLY, binding, binding_list, guarded_delete, role, role_list, stored};
use crate::fixtures::{Expect, run_scenario};
use muster_exchange_api::credentials_policy::{CredentialsPolicy, NamespaceRefusal};

fn mcpserver(ns: &str, name: &str, enabled: bool, secret: Value) -> muster_exchange_api::MCPServer {
    serde_json::from_value(json!({
        "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": enabled, "dexTokenEndpoint": "https://dex.example/token",
                "connectorId": "local", "clientCredentialsSecretRef": secret}}}
    }))
    .unwrap()
}

fn policy(controller_namespace: &str, allow_cross_namespace: bool) -> CredentialsPolicy {
    CredentialsPolicy {
        controller_namespace: Some(controller_namespace.into()),
        allow_cross_namespace,
    }
}

/// Finding: an MCPServer author could make the controller grant Muster `get` on any Secret anywhere.
/// Only Secrets next to their MCPServer are granted; an old cross-namespace grant is removed.
#[tokio::test]
async fn secrets_outside_the_mcpservers_namespace_are_never_granted_by_default() {
    let name = "muster-exchange-credentials-reader";
    let uri =
        |kind: &str, ns: &str| format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}/{name}?");
    let reader = json!([{"kind": "ServiceAccount", "name": "muster", "namespace": "muster"}]);
    let servers = vec![
        mcpserver(
            "org-a",
            "steal",
            true,
            json!({"name": "db-password", "namespace": "org-b"}),
        ),
        mcpserver("org-a", "own", true, json!({"name": "token", "namespace": "mx"})),
        mcpserver(
            "org-a",
            "sys",
            true,
            json!({"name": "token", "namespace": "kube-system"}),
        ),
    ];
    let expected = vec![
        Expect::get(
            "/apis/rbac.authorization.k8s.io/v1/roles?&fieldSelector=metadata.name%3Dmuster-exchange-credentials-reader",
            role_list(vec![stored(
                role("org-b", name, "credentials", &["db-password"]),
                "r1",
            )]),
        ),
        Expect::get(
            "/apis/rbac.authorization.k8s.io/v1/rolebindings?&fieldSelector=metadata.name%3Dmuster-exchange-credentials-reader",
            binding_list(vec![stored(binding("org-b", name, "credentials", reader), "b1")]),
        ),
        Expect::delete(uri("roles", "org-b"), guarded_delete("r1")),
        Expect::delete(uri("rolebindings", "org-b"), guarded_delete("b1")),
    ];
    let config = CredentialGrantConfig {
        reader: Some(parse_service_account("serviceaccount:muster/muster").unwrap()),
        policy: policy("mx", false),
        concurrency: 1,
    };
    let report = run_scenario(expected, |client| async move {
        sync_credential_grants(&client, &servers, &config, false).await
    })
    .await
    .unwrap();
    assert_eq!((report.sync.applied, report.sync.deleted), (0, 2));
    assert_eq!(
        report.refused,
        [
            ("org-b/db-password".to_string(), NamespaceRefusal::CrossNamespace),
            ("mx/token".to_string(), NamespaceRefusal::ControllerNamespace),
            ("kube-system/token".to_string(), NamespaceRefusal::SystemNamespace),
        ]
    );
}

#[tokio::test]
async fn credential_grants_follow_mcpservers_and_drop_unneeded_ones() {
    const CROLES: &str = "/apis/rbac.authorization.k8s.io/v1/roles?&fieldSelector=metadata.name%3Dmuster-exchange-credentials-reader";
    const CBINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/rolebindings?&fieldSelector=metadata.name%3Dmuster-exchange-credentials-reader";
    let servers = vec![
        mcpserver("muster", "a", true, json!({"name": "dex-a"})),
        mcpserver(
            "muster",
            "b",
            true,
            json!({"name": "dex-b", "namespace": "creds"}),
        ),
        mcpserver("muster", "c", false, json!({"name": "dex-c"})),
        mcpserver(
            "muster",
            "d",
            true,
            json!({"name": "dex-d", "namespace": "kube-system"}),
        ),
    ];
    let reader = json!([{"kind": "ServiceAccount", "name": "muster", "namespace": "muster"}]);
    let name = "muster-exchange-credentials-reader";
    let uri =
        |kind: &str, ns: &str| format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}/{name}");
    let expected = vec![
        Expect::get(
            CROLES,
            role_list(vec![stored(role("old", name, "credentials", &["dex-z"]), "r9")]),
        ),
        Expect::get(
            CBINDINGS,
            binding_list(vec![stored(
                binding("creds", name, "credentials", reader.clone()),
                "b1",
            )]),
        ),
        Expect::apply(
            format!("{}{APPLY}", uri("roles", "creds")),
            role("creds", name, "credentials", &["dex-b"]),
        ),
        Expect::apply(
            format!("{}{APPLY}", uri("roles", "muster")),
            role("muster", name, "credentials", &["dex-a"]),
        ),
        Expect::apply(
            format!("{}{APPLY}", uri("rolebindings", "muster")),
            binding("muster", name, "credentials", reader),
        ),
        Expect::delete(format!("{}?", uri("roles", "old")), guarded_delete("r9")),
    ];
    let config = CredentialGrantConfig {
        reader: Some(parse_service_account("serviceaccount:muster/muster").unwrap()),
        policy: policy("muster-exchange", true),
        concurrency: 1,
    };
    let report = run_scenario(expected, |client| async move {
        sync_credential_grants(&client, &servers, &config, false).await
    })
    .await;
    let report = report.unwrap();
    assert_eq!((report.sync.applied, report.sync.deleted), (3, 1));
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, "kube-system/dex-d");
}

#[tokio::test]
async fn without_a_credentials_reader_every_managed_credential_grant_goes() {
    let name = "muster-exchange-credentials-reader";
    let uri =
        |kind: &str, ns: &str| format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}/{name}?");
    let reader = json!([{"kind": "ServiceAccount", "name": "muster", "namespace": "muster"}]);
    let expected = vec![
        Expect::get(
            "/apis/rbac.authorization.k8s.io/v1/roles?&fieldSelector=metadata.name%3Dmuster-exchange-credentials-reader",
            role_list(vec![stored(
                role("muster", name, "credentials", &["dex-a"]),
                "r1",
            )]),
        ),
        Expect::get(
            "/apis/rbac.authorization.k8s.io/v1/rolebindings?&fieldSelector=metadata.name%3Dmuster-exchange-credentials-reader",
            binding_list(vec![stored(binding("muster", name, "credentials", reader), "b1")]),
        ),
        Expect::delete(uri("roles", "muster"), guarded_delete("r1")),
        Expect::delete(uri("rolebindings", "muster"), guarded_delete("b1")),
    ];
    let servers = vec![mcpserver("muster", "a", true, json!({"name": "dex-a"}))];
    let config = CredentialGrantConfig {
        reader: None,
        policy: policy("mx", false),
        concurrency: 1,
    };
    let report = run_scenario(expected, |client| async move {
        sync_credential_grants(&client, &servers, &config, false).await
    })
    .await;
    assert_eq!(report.unwrap().sync.deleted, 2);
}
