//! ApiServerVerifier scenarios for kubeconfig grants: from what the caches hold, the exact requests the
//! reconciles of every namespace send (none to read: every input comes from a watch).

use serde_json::json;

use super::fixtures::{KUBECONFIG, list_org_namespaces, list_secrets, stored, sync_kubeconfig};

#[tokio::test]
async fn first_sync_creates_role_and_binding_restricted_to_kubeconfig_secrets() {
    let expected = vec![
        list_org_namespaces(&["org-acme"]),
        list_secrets(
            "org-acme",
            &["b-kubeconfig", "a-kubeconfig", "-kubeconfig", "tls"],
        ),
        KUBECONFIG.list_roles(vec![]),
        KUBECONFIG.list_bindings(vec![]),
        KUBECONFIG.apply_role("org-acme", &["a-kubeconfig", "b-kubeconfig"]),
        KUBECONFIG.apply_binding("org-acme"),
    ];
    let report = sync_kubeconfig(expected).await;
    assert_eq!(
        (report.sync.applied, report.sync.deleted, report.sync.errors.len()),
        (2, 0, 0)
    );
    assert_eq!(report.sync.granted_namespaces, 1);
}

#[tokio::test]
async fn resync_of_unchanged_state_writes_nothing() {
    let expected = vec![
        list_org_namespaces(&["org-acme"]),
        list_secrets("org-acme", &["a-kubeconfig"]),
        KUBECONFIG.list_roles(vec![stored(KUBECONFIG.role("org-acme", &["a-kubeconfig"]), "r1")]),
        KUBECONFIG.list_bindings(vec![stored(KUBECONFIG.binding("org-acme"), "b1")]),
    ];
    assert_eq!(sync_kubeconfig(expected).await.sync.writes(), 0);
}

#[tokio::test]
async fn a_new_kubeconfig_secret_updates_only_the_role() {
    let expected = vec![
        list_org_namespaces(&["org-acme"]),
        list_secrets("org-acme", &["a-kubeconfig", "c-kubeconfig"]),
        KUBECONFIG.list_roles(vec![stored(KUBECONFIG.role("org-acme", &["a-kubeconfig"]), "r1")]),
        KUBECONFIG.list_bindings(vec![stored(KUBECONFIG.binding("org-acme"), "b1")]),
        KUBECONFIG.apply_role("org-acme", &["a-kubeconfig", "c-kubeconfig"]),
    ];
    assert_eq!(sync_kubeconfig(expected).await.sync.applied, 1);
}

#[tokio::test]
async fn namespace_losing_its_label_or_its_secrets_loses_its_grants() {
    let expected = vec![
        list_org_namespaces(&["org-empty"]),
        list_secrets("org-empty", &["tls"]),
        KUBECONFIG.list_roles(vec![
            stored(KUBECONFIG.role("org-empty", &["x-kubeconfig"]), "r0"),
            stored(KUBECONFIG.role("org-gone", &["a-kubeconfig"]), "r1"),
        ]),
        KUBECONFIG.list_bindings(vec![stored(KUBECONFIG.binding("org-gone"), "b1")]),
        KUBECONFIG.delete_role("org-empty", "r0"),
        KUBECONFIG.delete_role("org-gone", "r1"),
        KUBECONFIG.delete_binding("org-gone", "b1"),
    ];
    let report = sync_kubeconfig(expected).await;
    assert_eq!(
        (
            report.sync.applied,
            report.sync.deleted,
            report.sync.granted_namespaces
        ),
        (0, 3, 0)
    );
}

#[tokio::test]
async fn system_and_controller_namespaces_are_refused_without_a_single_request() {
    let expected = vec![
        list_org_namespaces(&["kube-system", "kube-public", "kube-node-lease", "muster-exchange"]),
        KUBECONFIG.list_roles(vec![]),
        KUBECONFIG.list_bindings(vec![]),
    ];
    let refused: Vec<_> = sync_kubeconfig(expected)
        .await
        .refused
        .iter()
        .map(|(ns, why)| format!("{ns}:{}", why.reason()))
        .collect();
    assert_eq!(
        refused,
        [
            "kube-node-lease:SystemNamespace",
            "kube-public:SystemNamespace",
            "kube-system:SystemNamespace",
            "muster-exchange:ControllerNamespace"
        ]
    );
}

#[tokio::test]
async fn unmanaged_roles_and_bindings_with_our_name_survive() {
    let mut unmanaged_role = stored(KUBECONFIG.role("org-acme", &["a-kubeconfig"]), "u1");
    unmanaged_role["metadata"]["labels"] = json!({"team": "platform"});
    let mut unmanaged_elsewhere = stored(KUBECONFIG.binding("org-gone"), "u2");
    unmanaged_elsewhere["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    let expected = vec![
        list_org_namespaces(&["org-acme"]),
        list_secrets("org-acme", &["a-kubeconfig"]),
        KUBECONFIG.list_roles(vec![unmanaged_role]),
        KUBECONFIG.list_bindings(vec![unmanaged_elsewhere]),
    ];
    let report = sync_kubeconfig(expected).await;
    assert_eq!(report.sync.writes(), 0);
    assert_eq!(report.sync.unmanaged_conflicts, ["org-acme"]);
}

#[tokio::test]
async fn a_failed_apply_is_reported_and_other_namespaces_still_sync() {
    let expected = vec![
        list_org_namespaces(&["org-a", "org-b"]),
        list_secrets("org-a", &["x-kubeconfig"]),
        list_secrets("org-b", &["y-kubeconfig"]),
        KUBECONFIG.list_roles(vec![]),
        KUBECONFIG.list_bindings(vec![]),
        KUBECONFIG.apply_role("org-a", &["x-kubeconfig"]).failing(500),
        KUBECONFIG.apply_role("org-b", &["y-kubeconfig"]),
        KUBECONFIG.apply_binding("org-b"),
    ];
    let report = sync_kubeconfig(expected).await;
    assert_eq!(report.sync.applied, 2);
    assert_eq!(report.sync.errors.len(), 1);
    assert!(
        report.sync.errors[0]
            .to_string()
            .starts_with("cannot apply Role org-a/muster-exchange-kubeconfig-reader")
    );
}

#[tokio::test]
async fn changed_grant_subjects_update_only_the_binding() {
    let old_binding = KUBECONFIG.binding_to(
        "org-acme",
        json!([{"kind": "ServiceAccount", "name": "old-reader", "namespace": "muster"}]),
    );
    let expected = vec![
        list_org_namespaces(&["org-acme"]),
        list_secrets("org-acme", &["a-kubeconfig"]),
        KUBECONFIG.list_roles(vec![stored(KUBECONFIG.role("org-acme", &["a-kubeconfig"]), "r1")]),
        KUBECONFIG.list_bindings(vec![stored(old_binding, "b1")]),
        KUBECONFIG.apply_binding("org-acme"),
    ];
    assert_eq!(sync_kubeconfig(expected).await.sync.applied, 1);
}
