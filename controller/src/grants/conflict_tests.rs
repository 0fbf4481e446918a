//! Grants next to objects we do not own, an MCPServer that does not parse, and caches not yet synced.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::controller::{GrantContext, reconcile};
use super::fixtures::{
    CREDENTIALS, KUBECONFIG, credential_config, list_opted_in, list_org_namespaces, list_secrets, mcpserver,
    stored, sync_credentials, sync_kubeconfig,
};

/// A RoleBinding of ours next to a Role someone else owns would bind our subjects to a Role we do not
/// control: ours is deleted (guarded), theirs is left alone.
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
    let report = sync_kubeconfig(expected).await;
    assert_eq!((report.sync.applied, report.sync.deleted), (0, 1));
    assert_eq!(report.sync.unmanaged_conflicts, ["org-acme"]);
}

/// Until every cache holds a complete list, a reconcile waits and sends nothing: an empty MCPServer
/// cache would make every credential grant look unneeded.
#[tokio::test(start_paused = true)]
async fn nothing_is_written_before_every_cache_is_synced() {
    crate::probe::tests::install_crypto();
    crate::runtime::fixtures::run_scenario_for(Duration::from_secs(7200), vec![], |client| async move {
        let (_leader_tx, leader) = tokio::sync::watch::channel(true);
        let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
        let probe = crate::probe::controller_tests::probe_config(Duration::from_secs(60));
        let ctx = crate::runtime::fixtures::test_context(client, exchange, leader, probe);
        let mut stores = super::fixtures::synced_stores();
        // The MCPServer watch has not delivered its list yet.
        let (writer, synced) = super::stores::Synced::incomplete();
        stores.synced = synced;
        let g = Arc::new(GrantContext::new(Arc::new(ctx), stores));
        let namespace = Arc::new(
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "org-a"}}))
            .unwrap(),
        );
        let waited = tokio::time::timeout(Duration::from_secs(3600), reconcile(namespace, g)).await;
        assert!(waited.is_err(), "the reconcile waits for the MCPServer cache");
        drop(writer);
    })
    .await;
}

/// An MCPServer that does not parse cannot say which grant it needs: in the namespace its credentials
/// Secret is in, grants are still added but none is deleted; elsewhere deletes go ahead.
#[tokio::test]
async fn a_malformed_mcpserver_holds_back_credential_deletes_in_its_namespace() {
    let mut broken = mcpserver("org-b", "broken", true, json!({"name": "dex-b"}));
    broken["spec"]["type"] = json!(["carrier-pigeon"]);
    let servers = vec![
        mcpserver("org-a", "a", true, json!({"name": "dex-a"})),
        mcpserver(
            "org-a",
            "b",
            true,
            json!({"name": "dex-b2", "namespace": "org-b"}),
        ),
        broken,
    ];
    let expected = vec![
        list_opted_in(&[("org-a", "dex-a"), ("org-b", "dex-b2")]),
        CREDENTIALS.list_roles(vec![
            stored(CREDENTIALS.role("org-b", &["dex-b"]), "r1"),
            stored(CREDENTIALS.role("org-c", &["dex-c"]), "r2"),
        ]),
        CREDENTIALS.list_bindings(vec![stored(CREDENTIALS.binding("org-b"), "b1")]),
        CREDENTIALS.apply_role("org-a", &["dex-a"]),
        CREDENTIALS.apply_binding("org-a"),
        CREDENTIALS.delete_role("org-c", "r2"),
    ];
    let config = credential_config(Some("serviceaccount:muster/muster"), "mx", false);
    let report = sync_credentials(expected, servers, config).await;
    assert_eq!((report.sync.applied, report.sync.deleted), (2, 1));
}

/// Each log line of a reconcile names the namespace it is about, through the reconcile's span.
#[tokio::test]
async fn log_lines_of_a_reconcile_carry_its_namespace() {
    let (captured, _guard) = crate::runtime::fixtures::capture_logs();
    crate::probe::tests::install_crypto();
    // kube-system labelled as an organization: the grant is refused, with a warning, and nothing sent.
    crate::runtime::fixtures::run_scenario(vec![], |client| async move {
        let (_leader_tx, leader) = tokio::sync::watch::channel(true);
        let exchange = muster_exchange_dex::ExchangeClient::new(Default::default()).unwrap();
        let probe = crate::probe::controller_tests::probe_config(Duration::from_secs(60));
        let ctx = crate::runtime::fixtures::test_context(client, exchange, leader, probe);
        let mut stores = super::fixtures::synced_stores();
        let namespace = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {"name": "kube-system"}});
        stores.organizations = crate::runtime::fixtures::synced(std::slice::from_ref(&namespace), ());
        let g = Arc::new(GrantContext::new(Arc::new(ctx), stores));
        let namespace = Arc::new(serde_json::from_value(namespace).unwrap());
        reconcile(namespace, g).await.unwrap();
    })
    .await;
    let line = captured.line_with("refusing to grant kubeconfig access here");
    assert!(
        line.contains(r#"reconcile{controller="grants" kind="Namespace" namespace=kube-system}"#),
        "{line}"
    );
}
