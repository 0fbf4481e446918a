//! Scenarios from review: a half-managed grant, an incomplete MCPServer view, one unreadable namespace.

use serde_json::json;

use super::fixtures::{
    CREDENTIALS, KUBECONFIG, credential_config, list_opted_in, list_org_namespaces, list_secrets,
    list_secrets_failing, mcpserver, stored, sync_credentials, sync_kubeconfig,
};

/// Finding: with the Role taken over by someone else, our RoleBinding stayed and bound our subjects to
/// a Role we do not control. Our half is deleted (guarded), theirs is left alone.
#[tokio::test]
async fn a_managed_binding_next_to_a_foreign_role_is_deleted() {
    let mut foreign_role = stored(KUBECONFIG.role("org-acme", &["a-kubeconfig", "prod-db"]), "u1");
    foreign_role["metadata"]["labels"] = json!({"team": "platform"});
    let expected = vec![
        list_org_namespaces(&["org-acme"]),
        list_secrets("org-acme", &["a-kubeconfig"]),
        KUBECONFIG.list_roles(vec![foreign_role]),
        KUBECONFIG.list_bindings(vec![stored(KUBECONFIG.binding("org-acme"), "b1")]),
        KUBECONFIG.delete_binding("org-acme", "b1"),
    ];
    let report = sync_kubeconfig(expected).await.unwrap();
    assert_eq!((report.sync.applied, report.sync.deleted), (0, 1));
    assert_eq!(report.sync.unmanaged_conflicts, ["org-acme"]);
}

/// Finding: one namespace whose Secrets could not be listed aborted the whole sync. Now that namespace
/// is left exactly as it is (its stale-looking grant is not deleted) and the others sync.
#[tokio::test]
async fn an_unreadable_namespace_is_left_alone_and_the_others_sync() {
    let expected = vec![
        list_org_namespaces(&["org-a", "org-b"]),
        list_secrets_failing("org-a"),
        list_secrets("org-b", &["y-kubeconfig"]),
        KUBECONFIG.list_roles(vec![stored(KUBECONFIG.role("org-a", &["x-kubeconfig"]), "r1")]),
        KUBECONFIG.list_bindings(vec![stored(KUBECONFIG.binding("org-a"), "b1")]),
        KUBECONFIG.apply_role("org-b", &["y-kubeconfig"]),
        KUBECONFIG.apply_binding("org-b"),
    ];
    let report = sync_kubeconfig(expected).await.unwrap();
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
    let server = mcpserver("org-a", "a", true, json!({"name": "dex-a"}));
    let expected = vec![
        list_opted_in(&[("org-a", "dex-a")]),
        CREDENTIALS.list_roles(vec![stored(CREDENTIALS.role("org-b", &["dex-b"]), "r1")]),
        CREDENTIALS.list_bindings(vec![stored(CREDENTIALS.binding("org-b"), "b1")]),
        CREDENTIALS.apply_role("org-a", &["dex-a"]),
        CREDENTIALS.apply_binding("org-a"),
    ];
    let config = credential_config(Some("serviceaccount:muster/muster"), "mx", false);
    let incomplete = true;
    let report = sync_credentials(expected, vec![server], config, incomplete)
        .await
        .unwrap();
    assert_eq!((report.sync.applied, report.sync.deleted), (2, 0));
}
