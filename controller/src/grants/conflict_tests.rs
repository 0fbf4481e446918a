//! Scenarios from review: a half-managed grant, an incomplete MCPServer view, one unreadable namespace.

use serde_json::json;

use super::credential_grants::{CredentialGrantConfig, sync_credential_grants};
use super::kubeconfig_grants::sync_kubeconfig_grants;
use super::subjects::parse_service_account;
use super::tests::{
    APPLY, BINDINGS, NS_LIST, ROLES, binding, binding_list, config, guarded_delete, kc_binding, kc_role,
    kc_uri, role, role_list, secrets_uri, stored,
};
use crate::fixtures::{Expect, metadata_list, run_scenario};
use muster_exchange_api::credentials_policy::CredentialsPolicy;

/// Finding: with the Role taken over by someone else, our RoleBinding stayed and bound our subjects to
/// a Role we do not control. Our half is deleted (guarded), theirs is left alone.
#[tokio::test]
async fn a_managed_binding_next_to_a_foreign_role_is_deleted() {
    let mut foreign_role = stored(kc_role("org-acme", &["a-kubeconfig", "prod-db"]), "u1");
    foreign_role["metadata"]["labels"] = json!({"team": "platform"});
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-acme"])),
        Expect::get(
            secrets_uri("org-acme"),
            metadata_list("org-acme", &["a-kubeconfig"]),
        ),
        Expect::get(ROLES, role_list(vec![foreign_role])),
        Expect::get(BINDINGS, binding_list(vec![stored(kc_binding("org-acme"), "b1")])),
        Expect::delete(
            format!("{}?", kc_uri("rolebindings", "org-acme")),
            guarded_delete("b1"),
        ),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await
    .unwrap();
    assert_eq!((report.sync.applied, report.sync.deleted), (0, 1));
    assert_eq!(report.sync.unmanaged_conflicts, ["org-acme"]);
}

/// Finding: one namespace whose Secrets could not be listed aborted the whole sync. Now that namespace
/// is left exactly as it is (its stale-looking grant is not deleted) and the others sync.
#[tokio::test]
async fn an_unreadable_namespace_is_left_alone_and_the_others_sync() {
    let expected = vec![
        Expect::get(NS_LIST, metadata_list("", &["org-a", "org-b"])),
        Expect::get(secrets_uri("org-a"), json!({})).failing(500),
        Expect::get(secrets_uri("org-b"), metadata_list("org-b", &["y-kubeconfig"])),
        Expect::get(
            ROLES,
            role_list(vec![stored(kc_role("org-a", &["x-kubeconfig"]), "r1")]),
        ),
        Expect::get(BINDINGS, binding_list(vec![stored(kc_binding("org-a"), "b1")])),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("roles", "org-b")),
            kc_role("org-b", &["y-kubeconfig"]),
        ),
        Expect::apply(
            format!("{}{APPLY}", kc_uri("rolebindings", "org-b")),
            kc_binding("org-b"),
        ),
    ];
    let report = run_scenario(expected, |client| async move {
        sync_kubeconfig_grants(&client, &config()).await
    })
    .await
    .unwrap();
    assert_eq!((report.sync.applied, report.sync.deleted), (2, 0));
    assert_eq!(report.sync.errors.len(), 1);
    assert!(
        report.sync.errors[0].to_string().contains("secrets in org-a"),
        "{}",
        report.sync.errors[0]
    );
}

/// Finding: an MCPServer that did not parse dropped out of the desired set and lost its grant. With an
/// incomplete view, grants are still added but none is deleted.
#[tokio::test]
async fn an_incomplete_mcpserver_view_deletes_no_credential_grant() {
    let name = "muster-exchange-credentials-reader";
    let reader = json!([{"kind": "ServiceAccount", "name": "muster", "namespace": "muster"}]);
    let uri =
        |kind: &str, ns: &str| format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}/{name}");
    let server: muster_exchange_api::MCPServer = serde_json::from_value(json!({
        "apiVersion": "muster.giantswarm.io/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "a", "namespace": "org-a"},
        "spec": {"type": "streamable-http", "url": "https://mcp.example/mcp", "auth": {"type": "oauth",
            "tokenExchange": {"enabled": true, "dexTokenEndpoint": "https://dex.example/token",
                "connectorId": "local", "clientCredentialsSecretRef": {"name": "dex-a"}}}}}))
    .unwrap();
    let expected = vec![
        Expect::get(
            format!("/apis/rbac.authorization.k8s.io/v1/roles?&fieldSelector=metadata.name%3D{name}"),
            role_list(vec![stored(role("org-b", name, "credentials", &["dex-b"]), "r1")]),
        ),
        Expect::get(
            format!("/apis/rbac.authorization.k8s.io/v1/rolebindings?&fieldSelector=metadata.name%3D{name}"),
            binding_list(vec![stored(
                binding("org-b", name, "credentials", reader.clone()),
                "b1",
            )]),
        ),
        Expect::apply(
            format!("{}{APPLY}", uri("roles", "org-a")),
            role("org-a", name, "credentials", &["dex-a"]),
        ),
        Expect::apply(
            format!("{}{APPLY}", uri("rolebindings", "org-a")),
            binding("org-a", name, "credentials", reader),
        ),
    ];
    let config = CredentialGrantConfig {
        reader: Some(parse_service_account("serviceaccount:muster/muster").unwrap()),
        policy: CredentialsPolicy {
            controller_namespace: Some("mx".into()),
            allow_cross_namespace: false,
        },
        concurrency: 1,
    };
    let report = run_scenario(expected, |client| async move {
        sync_credential_grants(&client, &[server], &config, true).await
    })
    .await
    .unwrap();
    assert_eq!((report.sync.applied, report.sync.deleted), (2, 0));
}
